"""Actions: typed functions registered by the :func:`action` decorator.

An action is ``fn(ctx: ActionContext, <typed parameters>) -> dict``; its parameter schema
comes from the type hints (a pydantic model built from the signature), its idempotency
class is declared (how a crash between sending and recording is handled):

* ``natural``: doing it twice has the effect of doing it once (disable a user);
* ``keyed``: the request carries an ``Idempotency-Key`` the vendor deduplicates on;
* ``verify-first``: the action reads the current state and does nothing if done;
* ``unsafe``: none of the above; a crash mid-call leaves the step ``in_doubt``.

One module per action type in this package; defining it registers it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import ConfigDict, ValidationError, create_model

from mantissa.errors import ConfigError, MantissaError, RetryableDeliveryError

Idempotency = Literal["natural", "keyed", "verify-first", "unsafe"]
USER_AGENT = "mantissa-log-soar/0.1"
MASK = "***"


class ActionError(MantissaError):
    """An action failed (the vendor refused, answered 5xx, or was unreachable)."""

    code = "action_error"
    http_status = 502


class DryRunStop(Exception):
    """Raised by :meth:`ActionContext.http` under ``--dry-run`` once a request is recorded."""


@dataclass
class ActionSpec:
    name: str
    fn: Callable[..., dict[str, Any]]
    idempotency: Idempotency
    vendors: tuple[str, ...]
    params: Any  # pydantic model
    description: str

    def schema(self) -> dict[str, Any]:
        return self.params.model_json_schema()

    def validate(self, params: dict[str, Any], where: str) -> dict[str, Any]:
        try:
            return self.params.model_validate(params).model_dump()
        except ValidationError as exc:
            e = exc.errors()[0]
            loc = ".".join(str(x) for x in e["loc"])
            raise ActionError(f"{where}: parameters.{loc}: {e['msg']}") from None


_ACTIONS: dict[str, ActionSpec] = {}


def action(
    name: str, *, idempotency: Idempotency, vendors: tuple[str, ...] = ()
) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Register ``fn(ctx, **params)`` as action ``name``."""

    def deco(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        sig = inspect.signature(fn)
        hints = inspect.get_annotations(fn, eval_str=True)
        fields: dict[str, Any] = {}
        for pname, p in list(sig.parameters.items())[1:]:
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[pname] = (hints.get(pname, Any), default)
        model = create_model(
            f"{name}_parameters",
            __config__=ConfigDict(extra="forbid"),
            **fields,
        )
        _ACTIONS[name] = ActionSpec(
            name, fn, idempotency, vendors, model, (fn.__doc__ or "").strip().split("\n")[0]
        )
        return fn

    return deco


def _load() -> None:
    from mantissa.soar import actions as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")


def action_types() -> dict[str, ActionSpec]:
    if not _ACTIONS:
        _load()
    return _ACTIONS


def get_action(name: str) -> ActionSpec:
    types = action_types()
    if name not in types:
        raise ConfigError(f"unknown action {name!r}", hint="known: " + ", ".join(sorted(types)))
    return types[name]


@dataclass
class ActionContext:
    """What an action gets besides its parameters: connections, HTTP, dry-run, audit."""

    runtime: Any
    execution_id: str
    step_key: str
    idempotency_key: str
    deadline: float  # time.monotonic() by which the step must end
    dry_run: bool = False
    audit: Callable[[dict[str, Any]], None] = lambda d: None
    transport: httpx.BaseTransport | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    max_transport_retries: int = 3

    def connection(self, name: str | None, vendors: tuple[str, ...]) -> Any:
        from mantissa.soar.connections import connection

        conn = connection(self.runtime, name, vendors)
        self.secrets.extend(conn.secret_values())
        return conn

    def remaining(self) -> float:
        return max(0.05, self.deadline - time.monotonic())

    def mask(self, value: Any) -> Any:
        return mask(value, self.secrets)

    def http(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        params: dict[str, Any] | None = None,
        ok: tuple[int, ...] | None = None,
    ) -> httpx.Response:
        """One vendor call: audited (method, host, path, status, latency), retried on
        429/503 per ``Retry-After`` (capped by the step deadline), masked in dry-run."""
        headers = {"User-Agent": USER_AGENT, **(headers or {})}
        for k, v in headers.items():
            if k.lower() in ("authorization", "x-api-key", "x-auth-token") and v:
                parts = v.split(" ", 1)
                self.secrets.append(parts[-1])
        if self.dry_run:
            self.requests.append(
                self.mask(
                    {
                        "method": method,
                        "url": url,
                        "params": params,
                        "headers": headers,
                        "body": json if json is not None else content,
                    }
                )
            )
            raise DryRunStop()
        u = urlsplit(url)
        attempt = 0
        while True:
            attempt += 1
            t0 = time.monotonic()
            try:
                with httpx.Client(
                    timeout=self.remaining(), transport=self.transport, follow_redirects=False
                ) as client:
                    resp = client.request(
                        method, url, headers=headers, json=json, content=content, params=params
                    )
            except httpx.TimeoutException:
                self.audit(_call(method, u, None, t0, "timeout"))
                raise ActionError(f"timeout calling {method} {u.hostname}{u.path}") from None
            except httpx.TransportError as exc:
                self.audit(_call(method, u, None, t0, type(exc).__name__))
                raise RetryableDeliveryError(
                    f"cannot reach {u.hostname}:{u.port or ''}: {type(exc).__name__}"
                ) from None
            self.audit(_call(method, u, resp.status_code, t0, None))
            if resp.status_code in (429, 503) and attempt <= self.max_transport_retries:
                wait = _retry_after(resp, attempt)
                if time.monotonic() + wait < self.deadline:
                    time.sleep(wait)
                    continue
            if ok is not None and resp.status_code not in ok:
                raise ActionError(
                    f"{method} {u.hostname}{u.path} answered {resp.status_code}: "
                    + self.mask(_short(resp.text))
                )
            if ok is None and resp.status_code >= 400:
                raise ActionError(
                    f"{method} {u.hostname}{u.path} answered {resp.status_code}: "
                    + self.mask(_short(resp.text))
                )
            return resp


def _retry_after(resp: httpx.Response, attempt: int) -> float:
    # Retry-After (RFC 9110 10.2.3) in seconds; Okta sends X-Rate-Limit-Reset (epoch s)
    ra = resp.headers.get("Retry-After")
    if ra:
        try:
            return min(60.0, max(0.0, float(ra)))
        except ValueError:
            pass
    reset = resp.headers.get("X-Rate-Limit-Reset") or resp.headers.get("x-ratelimit-reset")
    if reset:
        try:
            return min(60.0, max(0.0, float(reset) - time.time()))
        except ValueError:
            pass
    return min(30.0, 0.5 * 2 ** (attempt - 1))


def _call(method: str, u: Any, status: int | None, t0: float, error: str | None) -> dict[str, Any]:
    return {
        "event": "call",
        "method": method,
        "host": u.hostname,
        "path": u.path,
        "status": status,
        "latency_ms": round((time.monotonic() - t0) * 1000, 1),
        "error": error,
    }


def _short(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text[:n]


def mask(value: Any, secrets: list[str]) -> Any:
    """Replace every known secret value (and auth headers) in ``value`` with ``***``."""
    if isinstance(value, str):
        for s in secrets:
            if s and len(s) >= 4 and s in value:
                value = value.replace(s, MASK)
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and k.lower() in ("authorization", "x-api-key", "x-auth-token"):
                out[k] = MASK
            else:
                out[k] = mask(v, secrets)
        return out
    if isinstance(value, list | tuple):
        return [mask(v, secrets) for v in value]
    return value
