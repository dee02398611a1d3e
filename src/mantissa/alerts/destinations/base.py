"""The Destination plugin contract: a typed ``Config`` plus one ``send`` method.

A destination module is ``alerts/destinations/<type>.py`` defining one subclass of
:class:`Destination` whose ``type`` is the name users write in ``mantissa.yaml``
(``destinations: {oncall: {type: pagerduty, ...}}``). Defining it registers it.

The framework (:mod:`mantissa.alerts.outbox`) owns queueing, retries with backoff and
jitter, ``Retry-After``, dead letters and redaction; ``send`` does one attempt and
either returns a small JSON-able receipt or raises
:class:`~mantissa.errors.RetryableDeliveryError` / :class:`~mantissa.errors.PermanentDeliveryError`.
"""

from __future__ import annotations

import builtins
import email.utils
import importlib
import pkgutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from mantissa import __version__
from mantissa.alerts.model import Alert
from mantissa.config import resolve_secret
from mantissa.errors import ConfigError, PermanentDeliveryError, RetryableDeliveryError

_TYPES: dict[str, type[Destination]] = {}

USER_AGENT = f"mantissa-log/{__version__}"


class DestinationConfig(BaseModel):
    """Settings every destination has; each destination extends it with its own."""

    model_config = ConfigDict(extra="forbid")

    type: str
    #: external destinations get redacted alerts (PII, secrets); None = the type's default
    external: bool | None = None
    #: also pseudonymise IP addresses / user names for this destination
    redact_ips: bool = False
    redact_users: bool = False
    #: attempts before a delivery is dead-lettered
    max_attempts: int = Field(default=8, ge=1, le=100)
    timeout_secs: float = Field(default=10.0, gt=0)
    #: exponential backoff: base * 2^(attempt-1), capped, with full jitter
    backoff_base_secs: float = Field(default=2.0, gt=0)
    backoff_max_secs: float = Field(default=900.0, gt=0)


@dataclass
class Delivery:
    """One attempt to tell a destination about an alert."""

    alert: Alert
    kind: str  # trigger | update | resolve | acknowledge | escalate | test
    idempotency_key: str
    destination_id: str
    attempt: int = 1
    #: receipt of the earlier ``trigger`` delivery of this alert here (issue key, ts ...)
    previous: dict[str, Any] | None = None
    console_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class DestinationContext:
    """What a destination may need from its surroundings."""

    data_dir: Path | None = None
    #: a ready transport for tests (httpx.MockTransport) or proxies
    transport: httpx.BaseTransport | None = None


class Destination:
    """Base of every destination; subclasses set ``type`` and ``Config`` and implement ``send``."""

    type: ClassVar[str] = ""
    Config: ClassVar[builtins.type[DestinationConfig]] = DestinationConfig
    #: redact for this destination unless its config says ``external: false``
    external_default: ClassVar[bool] = True
    #: whether ``update``/``resolve`` deliveries mean anything here
    supports_updates: ClassVar[bool] = False
    #: documented guarantee: "at_least_once", or "effectively_once" where the API dedups
    delivery_guarantee: ClassVar[str] = "at_least_once"

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.type:
            _TYPES[cls.type] = cls

    def __init__(self, id: str, config: DestinationConfig, context: DestinationContext | None):
        self.id = id
        self.config = config
        self.context = context or DestinationContext()
        self._client: httpx.Client | None = None

    @property
    def external(self) -> bool:
        return self.external_default if self.config.external is None else self.config.external

    def send(self, delivery: Delivery) -> dict[str, Any]:
        """Deliver once; return a receipt, raise a retryable or permanent DeliveryError."""
        raise PermanentDeliveryError(f"destination type {self.type!r} cannot send")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- helpers for subclasses ---------------------------------------------------------
    def secret(self, value: str | None) -> str | None:
        """Resolve ``${env:VAR}`` now (at send time), never earlier, never logged."""
        return resolve_secret(value)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.config.timeout_secs,
                headers={"User-Agent": USER_AGENT},
                transport=self.context.transport,
                follow_redirects=False,
            )
        return self._client

    def http(self, method: str, url: str, **kw: Any) -> httpx.Response:
        """One HTTP request; maps transport failures and 408/429/5xx to retryable errors,
        other 4xx to permanent ones. Messages name the host only: webhook URLs of Slack and
        Teams carry their secret in the path and query."""
        host = _host(url)
        try:
            resp = self.client.request(method, url, **kw)
        except httpx.TimeoutException:
            raise RetryableDeliveryError(f"{self.type}: timeout talking to {host}") from None
        except httpx.TransportError as exc:
            raise RetryableDeliveryError(
                f"{self.type}: cannot reach {host}: {type(exc).__name__}"
            ) from None
        check_response(self.type, host, resp)
        return resp


def check_response(type_: str, host: str, resp: httpx.Response) -> None:
    """Raise the right DeliveryError for a non-2xx response."""
    if resp.is_success:
        return
    detail = _short(resp.text)
    msg = f"{type_}: {host} answered HTTP {resp.status_code}" + (f": {detail}" if detail else "")
    if resp.status_code in (408, 425, 429) or resp.status_code >= 500:
        raise RetryableDeliveryError(msg, retry_after_secs=parse_retry_after(resp))
    raise PermanentDeliveryError(msg)


def parse_retry_after(resp: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP-date, RFC 9110 §10.2.3)."""
    value = resp.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _host(url: str) -> str:
    try:
        parts = urlsplit(url)
        return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "?"
    except ValueError:
        return "?"


def _short(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text[:n] + ("…" if len(text) > n else "")


def message_alert(
    title: str,
    text: str | None = None,
    severity: str = "informational",
    entities: dict[str, str] | None = None,
    tags: list[str] | None = None,
    source: str = "mantissa",
) -> Alert:
    """A synthetic alert carrying a free-form message (SOAR notifications, tests), so any
    destination can send it with its usual rendering."""
    import datetime as dt
    import uuid

    now = dt.datetime.now(dt.UTC)
    return Alert(
        id="msg_" + uuid.uuid4().hex[:16],
        rule_id=source,
        rule_title=title,
        severity=severity,  # type: ignore[arg-type]
        dedup_key=f"{source}|{title}",
        entities=entities or {},
        tags=tags or [],
        description=text,
        first_seen=now,
        last_seen=now,
        created_at=now,
        updated_at=now,
        source=source,
    )


# -- registry -------------------------------------------------------------------------
def load_destination_modules() -> None:
    """Import every module of this package (defining a destination registers it)."""
    from mantissa.alerts import destinations as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_") and mod.name != "base":
            importlib.import_module(f"{pkg.__name__}.{mod.name}")


def destination_types() -> dict[str, type[Destination]]:
    load_destination_modules()
    return dict(sorted(_TYPES.items()))


def destination_class(type_: str) -> type[Destination]:
    if type_ not in _TYPES:
        try:
            importlib.import_module(f"mantissa.alerts.destinations.{type_}")
        except ModuleNotFoundError:
            pass
    if type_ not in _TYPES:
        raise ConfigError(
            f"unknown destination type {type_!r}",
            hint="known: " + ", ".join(destination_types()),
        )
    return _TYPES[type_]


# -- rendering shared by the chat/ticket destinations -----------------------------------
SEVERITY_EMOJI = {
    "informational": "ℹ️",
    "low": "🔵",
    "medium": "🟡",
    "high": "🟠",
    "critical": "🔴",
}

KIND_PREFIX = {
    "trigger": "",
    "escalate": "[ESCALATED] ",
    "update": "[UPDATED] ",
    "acknowledge": "[ACKNOWLEDGED] ",
    "resolve": "[RESOLVED] ",
    "test": "[TEST] ",
}


def alert_summary(alert: Alert, kind: str = "trigger", limit: int = 250) -> str:
    """One line: ``[HIGH] Rule title — user=alice ip=1.2.3.4``."""
    ents = " ".join(f"{k}={v}" for k, v in list(alert.entities.items())[:3])
    text = f"{KIND_PREFIX.get(kind, '')}[{alert.severity.value.upper()}] {alert.rule_title}"
    if ents:
        text += f" — {ents}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alert_facts(alert: Alert) -> list[tuple[str, str]]:
    """Label/value pairs every human-facing destination shows."""
    facts = [
        ("Severity", alert.severity.value),
        ("Status", alert.status.value),
        ("Rule", alert.rule_id),
        ("Count", str(alert.count)),
        ("First seen", alert.first_seen.isoformat()),
        ("Last seen", alert.last_seen.isoformat()),
    ]
    if alert.source:
        facts.append(("Source", alert.source))
    for k, v in alert.entities.items():
        facts.append((k.replace("_", " ").capitalize(), v))
    if alert.tags:
        facts.append(("Tags", ", ".join(alert.tags[:12])))
    geo = (alert.enrichment or {}).get("geoip") or {}
    for ip, g in list(geo.items())[:3]:
        if isinstance(g, dict) and g.get("country"):
            where = ", ".join(x for x in (g.get("city"), g.get("country")) if x)
            facts.append((f"Geo {ip}", where))
    intel = (alert.enrichment or {}).get("threat_intel") or {}
    hits = intel.get("matches") or []
    if hits:
        facts.append(("Threat intel", "; ".join(f"{h['value']} ({h['feed']})" for h in hits[:5])))
    facts.append(("Alert id", alert.id))
    return facts
