"""Secret backends for ``${secret:NAME}`` references.

    secrets: {backend: aws_secrets_manager, region: us-east-1, endpoint_url: ..., cache_secs: 60}
    secrets: {backend: env, prefix: MANTISSA_SECRET_}        # the default
    secrets: {backend: file, path: /run/secrets}             # one file per secret

A reference is resolved when a value is used (an action's request, a link signature),
never when the config is read; values are cached in memory for ``cache_secs`` (default
60) and never logged, stored or returned. ``${secret:NAME#key}`` picks one key of a
secret holding a JSON object (AWS Secrets Manager's usual layout). ``${env:VAR}``
references keep working beside them (:func:`mantissa.config.resolve_secret`).

One module per backend (``secrets/<backend>.py``); a module defines a subclass of
:class:`SecretBackend` whose ``type`` is the name a user writes in ``backend:``.
"""

from __future__ import annotations

import abc
import importlib
import json
import re
import threading
import time
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from mantissa.config import resolve_secret
from mantissa.errors import ConfigError

SECRET_REF = re.compile(r"\$\{secret:([^}#]+)(?:#([^}]+))?\}")
_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")


class SecretNotFound(ConfigError):
    """A ``${secret:NAME}`` reference names no secret (or the backend refused it)."""

    code = "secret_not_found"


class SecretsConfig(BaseModel):
    """The ``secrets:`` section of ``mantissa.yaml``."""

    model_config = ConfigDict(extra="forbid")
    backend: str = "env"
    #: seconds a resolved value stays in memory (0: ask the backend every time)
    cache_secs: float = Field(default=60.0, ge=0, le=3600)
    #: env: the prefix of the variable holding ``NAME`` (``MANTISSA_SECRET_OKTA_TOKEN``)
    prefix: str = "MANTISSA_SECRET_"
    #: file: the folder holding one file per secret (Docker/Kubernetes secrets)
    path: str | None = None
    #: aws_secrets_manager: region and an optional endpoint (a VPC endpoint, moto)
    region: str | None = None
    endpoint_url: str | None = None


class SecretBackend(abc.ABC):
    """One secret store; :meth:`get` returns a secret's value or raises SecretNotFound."""

    type: ClassVar[str]

    def __init__(self, config: SecretsConfig) -> None:
        self.config = config

    @abc.abstractmethod
    def get(self, name: str) -> str:
        """The current value of secret ``name``."""


_BACKENDS = ("env", "file", "aws_secrets_manager")
_CACHE: dict[tuple[str, str], tuple[float, str]] = {}
_LOCK = threading.Lock()
_INSTANCES: dict[str, SecretBackend] = {}


def backend_for(config: SecretsConfig) -> SecretBackend:
    """The backend ``config`` names (one instance per distinct config in a process)."""
    if config.backend not in _BACKENDS:
        raise ConfigError(
            f"secrets.backend: unknown backend {config.backend!r}",
            hint="one of: " + ", ".join(_BACKENDS),
        )
    key = config.model_dump_json()
    with _LOCK:
        hit = _INSTANCES.get(key)
    if hit is not None:
        return hit
    module = importlib.import_module(f"{__name__}.{config.backend}")
    cls = next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, SecretBackend) and v is not SecretBackend
    )
    inst = cls(config)
    with _LOCK:
        _INSTANCES[key] = inst
    return inst


def secrets_config(runtime: Any) -> SecretsConfig:
    return runtime.config.section("secrets", SecretsConfig)


def clear_cache() -> None:
    """Forget cached values (tests, a rotated secret)."""
    with _LOCK:
        _CACHE.clear()


def fetch(config: SecretsConfig, name: str) -> str:
    """The value of secret ``name`` (from the cache while fresh)."""
    if not _NAME.match(name):
        raise ConfigError(f"${{secret:{name[:40]}}}: not a valid secret name")
    key = (config.model_dump_json(), name)
    now = time.monotonic()
    with _LOCK:
        hit = _CACHE.get(key)
        if hit and hit[0] > now:
            return hit[1]
    value = backend_for(config).get(name)
    if config.cache_secs:
        with _LOCK:
            _CACHE[key] = (now + config.cache_secs, value)
    return value


def resolve(value: str | None, config: SecretsConfig) -> str | None:
    """Resolve ``${secret:NAME}``, ``${secret:NAME#key}`` and ``${env:VAR}`` in ``value``."""
    if value is None or "${" not in value:
        return value

    def repl(m: re.Match[str]) -> str:
        name, field = m.group(1).strip(), m.group(2)
        raw = fetch(config, name)
        if field is None:
            return raw
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or field not in doc:
            # the message names the secret and key, never the value
            raise SecretNotFound(f"secret {name!r} has no JSON key {field!r}")
        return str(doc[field])

    return resolve_secret(SECRET_REF.sub(repl, value))
