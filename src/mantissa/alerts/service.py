"""The alert path: upsert → enrich → hooks → route → deliver.

:meth:`AlertService.raise_alerts` is the one call detections (Sigma rules, identity
detections, APM rules) make. Modules that react to alerts (SOAR) append a callable
``(alert, created, runtime) -> None`` to :attr:`AlertService.on_alert`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from mantissa.alerts.destinations.base import DestinationContext
from mantissa.alerts.enrich import Enricher, EnrichmentConfig
from mantissa.alerts.model import DEFAULT_SUPPRESS_SECS, Alert, AlertCandidate, AlertStatus
from mantissa.alerts.outbox import DeliverySettings, FlushResult, Outbox
from mantissa.alerts.redact import RedactionConfig
from mantissa.alerts.routing import Router
from mantissa.alerts.store import AlertStore, alert_outbox

log = logging.getLogger(__name__)

#: ``hook(alert, created, runtime)``: the runtime that raised the alert is passed explicitly
AlertHook = Callable[[Alert, bool, Any], None]

# what a status change tells destinations that already heard about the alert
_STATUS_KIND = {
    AlertStatus.acknowledged: "acknowledge",
    AlertStatus.closed: "resolve",
    AlertStatus.false_positive: "resolve",
    AlertStatus.open: "update",
}


class AlertsConfig(BaseModel):
    """The ``alerts:`` section of mantissa.yaml."""

    model_config = ConfigDict(extra="forbid")
    #: default dedup window when a rule sets none
    suppress_secs: int = Field(default=DEFAULT_SUPPRESS_SECS, ge=0)
    #: link put in notifications, ``{id}`` is the alert id
    console_url: str | None = None
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    redaction: RedactionConfig = Field(default_factory=RedactionConfig)
    enrichment: EnrichmentConfig = Field(default_factory=EnrichmentConfig)


class AlertService:
    """Stores, enriches, routes and delivers alerts for one runtime."""

    #: callables ``(alert, created, runtime) -> None`` run after each upsert (SOAR triggers)
    on_alert: ClassVar[list[AlertHook]] = []

    def __init__(self, runtime: Any, context: DestinationContext | None = None) -> None:
        self.runtime = runtime
        self.settings: AlertsConfig = runtime.config.section("alerts", AlertsConfig)
        self.store = AlertStore(runtime.state, self.settings.suppress_secs)
        ctx = context or DestinationContext()
        if ctx.data_dir is None:
            ctx.data_dir = runtime.data_dir
        self.router = Router.from_config(runtime.config, runtime.state, ctx)
        self.outbox = Outbox(
            runtime.state,
            self.store,
            self.router.destinations,
            self.settings.delivery,
            self.settings.redaction,
            self.settings.console_url,
        )
        self._enricher: Enricher | None = None

    @property
    def enricher(self) -> Enricher:
        if self._enricher is None:
            self._enricher = Enricher(self.settings.enrichment, self.runtime)
        return self._enricher

    def close(self) -> None:
        self.router.close()

    # -- the alert path -------------------------------------------------------------------
    def raise_alerts(self, candidates: list[AlertCandidate], flush: bool = True) -> list[Alert]:
        """Upsert, enrich new alerts, run hooks, route new alerts and flush the outbox.

        Returns the alerts created or updated, in the order of ``candidates`` (one per
        distinct alert), with their delivery records.
        """
        results: list[tuple[Alert, bool]] = self.store.upsert_many(candidates)
        created = [a for a, new in results if new]
        if created:
            self._enrich(created)
        for alert, new in results:
            for hook in list(self.on_alert):
                try:
                    hook(alert, new, self.runtime)
                except Exception:  # one broken hook must not stop alerting
                    log.exception("alert hook %r failed for %s", hook, alert.id)
        if created:
            self.route_many(created)
        if flush and self.router.destinations:
            self.outbox.flush()
        ids = list(dict.fromkeys(a.id for a, _ in results))
        found = self.store.get_many(ids)
        return [found[i] for i in ids if i in found]

    def _enrich(self, alerts: list[Alert]) -> None:
        try:
            docs = self.enricher.enrich(alerts)
        except Exception as exc:  # enrichment is best effort; the alert matters more
            log.warning("enrichment failed: %s: %s", type(exc).__name__, exc)
            return
        for a in alerts:
            doc = docs.get(a.id)
            if doc:
                a.enrichment = doc
        self.store.save_enrichments({k: v for k, v in docs.items() if v})

    def route(self, alert: Alert) -> list[str]:
        """Queue the deliveries the routes decide for ``alert``; returns destination ids."""
        return self.route_many([alert]).get(alert.id, [])

    def route_many(self, alerts: list[Alert]) -> dict[str, list[str]]:
        """Route a batch of alerts in one transaction; destination ids queued per alert."""
        items: list[tuple[str, str, str, str | None, float, str]] = []
        marks: list[tuple[Any, Alert]] = []
        notes: dict[str, tuple[list[str], list[str]]] = {}
        for alert in alerts:
            fired: list[str] = []
            suppressed: list[str] = []
            for d in self.router.decide(alert):
                if not d.matched:
                    continue
                if d.suppressed:
                    suppressed.append(d.route)
                    continue
                fired.append(d.route)
                route = self.router.routes[d.index]
                items += [(alert.id, dest, "trigger", d.route, 0.0, "") for dest in route.to]
                if route.escalate:
                    items += [
                        (
                            alert.id,
                            dest,
                            "escalate",
                            d.route,
                            float(route.escalate.after_secs),
                            d.route,
                        )
                        for dest in route.escalate.to
                    ]
                marks.append((d, alert))
            if fired or suppressed:
                notes[alert.id] = (fired, suppressed)
        queued: dict[str, list[str]] = {}
        if not notes:
            return queued
        with self.runtime.state.begin() as conn:
            for alert_id, dest, kind in self.outbox.enqueue_many(conn, items):
                if kind == "trigger":
                    queued.setdefault(alert_id, []).append(dest)
            for d, alert in marks:
                self.router.mark_sent(d, alert, conn)
            entries: dict[str, dict[str, Any]] = {}
            for alert_id, (fired, suppressed) in notes.items():
                entry: dict[str, Any] = {
                    "actor": "router",
                    "action": "routed",
                    "routes": fired,
                    "destinations": queued.get(alert_id, []),
                }
                if suppressed:
                    entry["suppressed_routes"] = suppressed
                entries[alert_id] = entry
            self.store.append_history_many(conn, entries)
        return queued

    # -- people acting on alerts --------------------------------------------------------
    def set_status(
        self,
        alert_id: str,
        status: AlertStatus | str,
        actor: str,
        reason: str | None = None,
        flush: bool = True,
    ) -> Alert:
        """Change status and tell destinations that heard of the alert (PagerDuty
        acknowledge/resolve, Jira/ServiceNow update, Slack thread reply ...)."""
        new = AlertStatus(status)
        alert = self.store.set_status(alert_id, new, actor, reason)
        kind = _STATUS_KIND[new]
        revision = str(len(alert.history))
        with self.runtime.state.begin() as conn:
            told = conn.execute(
                sa.select(alert_outbox.c.destination, alert_outbox.c.route)
                .where(
                    alert_outbox.c.alert_id == alert_id,
                    # destinations that heard (or are about to hear) of the alert; an
                    # escalation still waiting for its time has told nobody yet
                    sa.or_(
                        sa.and_(
                            alert_outbox.c.kind.in_(["trigger", "escalate"]),
                            alert_outbox.c.status.in_(["delivered", "in_flight"]),
                        ),
                        sa.and_(
                            alert_outbox.c.kind == "trigger", alert_outbox.c.status == "pending"
                        ),
                    ),
                )
                .distinct()
            ).all()
            for dest_id, route in told:
                dest = self.router.destinations.get(dest_id)
                if dest is None or not dest.supports_updates:
                    continue
                self.outbox.enqueue(conn, alert_id, dest_id, kind, route, key_suffix=revision)
        if flush and told:
            self.outbox.flush()
        return self.store.get(alert_id)

    def deliver(self, timeout_secs: float | None = None, retry_dead: bool = False) -> FlushResult:
        """Flush the outbox (``alerts deliver``); optionally give dead deliveries another go."""
        if retry_dead:
            self.outbox.retry_dead()
        return self.outbox.flush(timeout_secs)

    def test_route(self, alert_id: str) -> dict[str, Any]:
        """Which routes fire for this alert and why (no side effects)."""
        alert = self.store.get(alert_id)
        decisions = self.router.decide(alert)
        dests: dict[str, None] = {}
        for d in decisions:
            if d.matched and not d.suppressed:
                for x in d.to:
                    dests.setdefault(x)
        return {
            "alert_id": alert.id,
            "rule_id": alert.rule_id,
            "severity": alert.severity.value,
            "tags": alert.tags,
            "source": alert.source,
            "routes": [d.model_dump() for d in decisions],
            "destinations": [
                {
                    "id": x,
                    "type": self.router.destinations[x].type,
                    "external": self.router.destinations[x].external,
                    "already_queued": any(
                        r["destination"] == x and r["kind"] == "trigger" for r in alert.deliveries
                    ),
                }
                for x in dests
            ],
        }
