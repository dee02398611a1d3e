"""``secrets: {backend: env}``: ``${secret:okta-token}`` reads ``MANTISSA_SECRET_OKTA_TOKEN``
(the prefix, then the name upper-cased with every other character as ``_``)."""

from __future__ import annotations

import os
import re

from mantissa.secrets import SecretBackend, SecretNotFound


class EnvBackend(SecretBackend):
    type = "env"

    def variable(self, name: str) -> str:
        return self.config.prefix + re.sub(r"[^A-Za-z0-9]", "_", name).upper()

    def get(self, name: str) -> str:
        var = self.variable(name)
        value = os.environ.get(var)
        if value is None:
            raise SecretNotFound(
                f"secret {name!r}: environment variable {var} is not set",
                hint="export it, or set secrets.backend",
            )
        return value
