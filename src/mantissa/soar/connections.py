"""Vendor connections from ``mantissa.yaml`` ``connections:``.

    connections:
      okta_main: {type: okta, base_url: https://acme.okta.com, token: "${env:OKTA_TOKEN}"}

Every connection has a ``type`` and a ``base_url``; other keys are vendor options.
``${env:NAME}`` and ``${secret:NAME}`` (a backend of the ``secrets:`` section, e.g. AWS
Secrets Manager) references resolve at send time (never stored, logged or returned).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, RootModel

from mantissa.errors import ConfigError, MantissaError
from mantissa.secrets import SecretsConfig, resolve

SECRET_KEYS = re.compile(r"token|secret|password|api_key|apikey|key_id|private|credential", re.I)
_REF = re.compile(r"\$\{(env|secret):[^}]+\}")


class Connection(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    base_url: str
    _secrets: SecretsConfig = PrivateAttr(default_factory=SecretsConfig)

    def option(self, name: str, default: Any = None) -> Any:
        return (self.model_extra or {}).get(name, default)

    def secret(self, name: str) -> str | None:
        """Resolve the option ``name`` now (``${env:VAR}``, ``${secret:NAME}``), for one
        request."""
        v = self.option(name)
        return resolve(v, self._secrets) if isinstance(v, str) else v

    def secret_values(self) -> list[str]:
        out = []
        for k, v in (self.model_extra or {}).items():
            if isinstance(v, str) and (SECRET_KEYS.search(k) or _REF.search(v)):
                try:
                    r = resolve(v, self._secrets)
                except MantissaError:
                    continue
                if r and len(r) >= 4:
                    out.append(r)
        return out


class Connections(RootModel[dict[str, Connection]]):
    pass


_LOADED: dict[int, tuple[Any, dict[str, Connection]]] = {}


def load_connections(runtime: Any) -> dict[str, Connection]:
    """The validated ``connections:`` section (once per loaded config: it is immutable)."""
    from mantissa.secrets import secrets_config

    cfg = runtime.config
    hit = _LOADED.get(id(cfg))
    if hit is not None and hit[0] is cfg:
        return hit[1]
    conns = cfg.section("connections", Connections).root
    backend = secrets_config(runtime)
    for c in conns.values():
        c._secrets = backend
    if len(_LOADED) > 64:  # configs of short-lived runtimes (tests, benchmarks)
        _LOADED.clear()
    _LOADED[id(cfg)] = (cfg, conns)
    return conns


def connection(runtime: Any, name: str | None, vendors: tuple[str, ...]) -> Connection:
    """The named connection, or the only one of a type in ``vendors``."""
    conns = load_connections(runtime)
    if name:
        if name not in conns:
            raise ConfigError(
                f"unknown connection {name!r}",
                hint="known: " + (", ".join(conns) or "none (add a connections: section)"),
            )
        c = conns[name]
        if vendors and c.type not in vendors:
            raise ConfigError(
                f"connection {name!r} has type {c.type!r}; this action supports "
                + ", ".join(vendors)
            )
        return c
    fits = [c for c in conns.values() if c.type in vendors]
    if len(fits) != 1:
        raise ConfigError(
            "set parameters.connection: "
            + ("no" if not fits else "several")
            + " connection of type "
            + "|".join(vendors)
            + " configured"
        )
    return fits[0]
