"""``secrets: {backend: file, path: /run/secrets}``: ``${secret:okta_token}`` reads the
file ``/run/secrets/okta_token`` (Docker and Kubernetes secret mounts); a trailing newline
is dropped. Names with ``/`` or ``..`` are refused: a reference cannot leave the folder."""

from __future__ import annotations

from pathlib import Path

from mantissa.errors import ConfigError
from mantissa.secrets import SecretBackend, SecretNotFound


class FileBackend(SecretBackend):
    type = "file"

    def get(self, name: str) -> str:
        if not self.config.path:
            raise ConfigError("secrets.path: set the folder holding the secret files")
        if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
            raise ConfigError(f"secret {name!r}: a file secret name is a plain file name")
        root = Path(self.config.path)
        f = root / name
        try:
            data = f.read_text()
        except FileNotFoundError:
            raise SecretNotFound(f"secret {name!r}: no file {name} in {root}") from None
        except OSError as exc:
            raise SecretNotFound(f"secret {name!r}: cannot read {f}: {exc.strerror}") from None
        return data.removesuffix("\n").removesuffix("\r")
