"""Routing: which destinations hear about which alerts, parsed from ``mantissa.yaml``.

```yaml
destinations:
  soc_webhook: {type: webhook, url: "http://127.0.0.1:9999/hook", secret: "${env:WEBHOOK_SECRET}"}
  oncall:      {type: pagerduty, routing_key: "${env:PD_ROUTING_KEY}"}
routes:
  - {match: {severity: [high, critical]}, to: [oncall, soc_webhook], suppress_secs: 900}
  - {match: {tags: ["attack.credential_access"]}, to: [soc_webhook]}
```

Every route whose ``match`` holds fires (unless an earlier matching route says
``stop: true``); within ``match`` all criteria must hold and each list is "any of".
``rule_id``, ``tags``, ``source`` and entity values accept ``*``/``?`` globs.
``suppress_secs`` throttles a route: it notifies about one dedup key at most once per
window. ``escalate: {after_secs, to}`` re-notifies other destinations while the alert is
still ``open`` (not acknowledged) after that long.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, field_validator

from mantissa.alerts.destinations.base import (
    Destination,
    DestinationConfig,
    DestinationContext,
    destination_class,
)
from mantissa.alerts.model import Alert, Severity
from mantissa.config import Config, _config_error, _line_of
from mantissa.errors import ConfigError
from mantissa.state.store import StateStore, as_utc, utcnow

THROTTLE_NS = "alert_route_throttle"


def _listify(v: Any) -> Any:
    if v is None or isinstance(v, list):
        return v
    return [v]


class RouteMatch(BaseModel):
    """Criteria of a route; all given ones must hold, each list means "any of"."""

    model_config = ConfigDict(extra="forbid")

    severity: list[Severity] | None = None
    min_severity: Severity | None = None
    tags: list[str] | None = None
    rule_id: list[str] | None = None
    source: list[str] | None = None
    entities: dict[str, str] | None = None

    @field_validator("severity", "tags", "rule_id", "source", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        v = _listify(v)
        return v

    @field_validator("severity", mode="before")
    @classmethod
    def _sev(cls, v: Any) -> Any:
        return [Severity.parse(x) for x in v] if isinstance(v, list) else v

    @field_validator("min_severity", mode="before")
    @classmethod
    def _minsev(cls, v: Any) -> Any:
        return Severity.parse(v) if isinstance(v, str) else v

    def explain(self, alert: Alert) -> list[dict[str, Any]]:
        """One ``{criterion, expected, actual, ok}`` per criterion given."""
        out: list[dict[str, Any]] = []
        if self.severity is not None:
            out.append(
                _check(
                    "severity",
                    [s.value for s in self.severity],
                    alert.severity.value,
                    alert.severity in self.severity,
                )
            )
        if self.min_severity is not None:
            out.append(
                _check(
                    "min_severity",
                    self.min_severity.value,
                    alert.severity.value,
                    alert.severity.rank() >= self.min_severity.rank(),
                )
            )
        if self.tags is not None:
            hit = [t for t in alert.tags if any(_glob(t, p) for p in self.tags)]
            out.append(_check("tags", self.tags, alert.tags, bool(hit)))
        if self.rule_id is not None:
            out.append(
                _check(
                    "rule_id",
                    self.rule_id,
                    alert.rule_id,
                    any(_glob(alert.rule_id, p) for p in self.rule_id),
                )
            )
        if self.source is not None:
            src = alert.source or ""
            out.append(
                _check("source", self.source, alert.source, any(_glob(src, p) for p in self.source))
            )
        for key, pat in (self.entities or {}).items():
            val = alert.entities.get(key)
            out.append(_check(f"entities.{key}", pat, val, val is not None and _glob(val, pat)))
        return out


def _glob(value: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


def _check(name: str, expected: Any, actual: Any, ok: bool) -> dict[str, Any]:
    return {"criterion": name, "expected": expected, "actual": actual, "ok": ok}


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after_secs: int = Field(gt=0)
    to: list[str] = Field(min_length=1)


class Route(BaseModel):
    """``{match, to, suppress_secs, escalate, stop, name}``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    match: RouteMatch = Field(default_factory=RouteMatch)
    to: list[str] = Field(min_length=1)
    suppress_secs: int | None = Field(default=None, ge=0)
    escalate: Escalation | None = None
    stop: bool = False

    @field_validator("to", mode="before")
    @classmethod
    def _to(cls, v: Any) -> Any:
        return _listify(v)


class Routes(RootModel[list[Route]]):
    pass


class DestinationSpec(BaseModel):
    """The common part of a destination entry; the rest is the type's own Config."""

    model_config = ConfigDict(extra="allow")
    type: str


class Destinations(RootModel[dict[str, DestinationSpec]]):
    pass


class RouteDecision(BaseModel):
    """What routing decided for one route and one alert (``alerts test-route``)."""

    route: str
    index: int
    matched: bool
    checks: list[dict[str, Any]]
    to: list[str]
    suppressed: bool = False
    suppressed_until: str | None = None
    escalate: dict[str, Any] | None = None
    stopped_here: bool = False


class Router:
    """Destinations and routes from the config; decides where an alert goes."""

    def __init__(
        self,
        destinations: dict[str, Destination],
        routes: list[Route],
        state: StateStore | None = None,
    ) -> None:
        self.destinations = destinations
        self.routes = routes
        self.state = state

    @classmethod
    def from_config(
        cls,
        config: Config,
        state: StateStore | None = None,
        context: DestinationContext | None = None,
    ) -> Router:
        """Parse and validate ``destinations:`` and ``routes:`` (errors carry file:line)."""
        specs = config.section("destinations", Destinations).root
        dests: dict[str, Destination] = {}
        for dest_id, spec in specs.items():
            dests[dest_id] = build_destination(config, dest_id, spec.model_dump(), context)
        raw_routes = config.raw_section("routes")
        if raw_routes is None:
            routes: list[Route] = []
        else:
            if not isinstance(raw_routes, list):
                line = _line_of(config.path, ("routes",))
                where = f"{config.path}:{line}" if config.path and line else "config"
                raise ConfigError(f"{where}: routes: must be a list of routes")
            routes = config.section("routes", Routes).root
        for i, route in enumerate(routes):
            for dest_id in route.to + (route.escalate.to if route.escalate else []):
                if dest_id not in dests:
                    line = _line_of(config.path, ("routes", i))
                    where = f"{config.path}:{line}" if config.path and line else "config"
                    raise ConfigError(
                        f"{where}: routes.{i}.to: unknown destination {dest_id!r}",
                        hint="known: " + (", ".join(dests) or "none (add a destinations: section)"),
                    )
        return cls(dests, routes, state)

    def route_name(self, index: int) -> str:
        return self.routes[index].name or f"route{index}"

    def decide(self, alert: Alert, now: dt.datetime | None = None) -> list[RouteDecision]:
        """Evaluate every route against ``alert`` (reads, never writes, throttle state)."""
        now = now or utcnow()
        out: list[RouteDecision] = []
        stopped = False
        for i, route in enumerate(self.routes):
            checks = route.match.explain(alert)
            matched = all(c["ok"] for c in checks) and not stopped
            d = RouteDecision(
                route=self.route_name(i),
                index=i,
                matched=matched,
                checks=checks,
                to=route.to,
                escalate=route.escalate.model_dump() if route.escalate else None,
            )
            if stopped:
                d.checks = [*checks, _check("earlier route with stop: true", None, None, False)]
            if matched and route.suppress_secs and self.state is not None:
                last = self.state.get(THROTTLE_NS, self._throttle_key(i, alert))
                if last:
                    last_at = as_utc(dt.datetime.fromisoformat(last["at"]))
                    assert last_at is not None
                    until = last_at + dt.timedelta(seconds=route.suppress_secs)
                    if now < until and last.get("alert_id") != alert.id:
                        d.suppressed = True
                        d.suppressed_until = until.isoformat()
            if matched and route.stop:
                d.stopped_here = True
                stopped = True
            out.append(d)
        return out

    def _throttle_key(self, index: int, alert: Alert) -> str:
        return f"{self.route_name(index)}|{alert.dedup_key}"

    def mark_sent(self, decision: RouteDecision, alert: Alert, conn: Any = None) -> None:
        if self.state is None or not self.routes[decision.index].suppress_secs:
            return
        self.state.put(
            THROTTLE_NS,
            self._throttle_key(decision.index, alert),
            {"at": utcnow().isoformat(), "alert_id": alert.id},
            conn,
        )

    def close(self) -> None:
        for d in self.destinations.values():
            d.close()


def build_destination(
    config: Config, dest_id: str, data: dict[str, Any], context: DestinationContext | None
) -> Destination:
    """Validate one destination entry with its type's Config and instantiate it."""
    type_ = str(data.get("type"))
    try:
        cls = destination_class(type_)
    except ConfigError as exc:
        line = _line_of(config.path, ("destinations", dest_id, "type"))
        where = f"{config.path}:{line}: " if config.path and line else ""
        raise ConfigError(
            f"{where}destinations.{dest_id}.type: {exc.message}", hint=exc.hint
        ) from None
    try:
        cfg: DestinationConfig = cls.Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, config.path, prefix=("destinations", dest_id)) from None
    return cls(dest_id, cfg, context)


def load_destination(runtime: Any, dest_id: str) -> Destination:
    """One configured destination by id (for SOAR ``send_notification``/``create_ticket``)."""
    from mantissa.alerts.destinations.base import DestinationContext

    specs = runtime.config.section("destinations", Destinations).root
    if dest_id not in specs:
        raise ConfigError(
            f"unknown destination {dest_id!r}",
            hint="known: " + (", ".join(specs) or "none (add a destinations: section)"),
        )
    ctx = DestinationContext(data_dir=getattr(runtime, "data_dir", None))
    return build_destination(runtime.config, dest_id, specs[dest_id].model_dump(), ctx)
