"""The durable delivery outbox: every notification is a row before it is a request.

Routing writes one ``alert_outbox`` row per (alert, destination, kind); :meth:`Outbox.flush`
claims due rows with a lease, sends them (redacted for external destinations) on a small
thread pool and records the outcome:

* success → ``delivered`` with the destination's receipt (issue key, message ts ...);
* retryable failure → back to ``pending`` after exponential backoff with jitter, or after
  the vendor's ``Retry-After`` when it sent one;
* permanent failure, or ``max_attempts`` used up → ``dead`` (shown by ``alerts show``;
  ``alerts deliver --retry-dead`` queues them again);
* an escalation whose alert was acknowledged or closed meanwhile → ``skipped``.

A process killed mid-delivery leaves its rows ``in_flight`` with a lease; once the lease
expires any process claims them again and re-sends with the same idempotency key, so
destinations whose API dedups (PagerDuty ``dedup_key``, Jira label search, ServiceNow
``correlation_id``, the file destination, webhook receivers honouring
``Idempotency-Key``) see each alert once. Delivery is at-least-once everywhere else.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import secrets
import socket
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from mantissa.alerts.destinations.base import Delivery, Destination
from mantissa.alerts.redact import RedactionConfig, redact_alert
from mantissa.alerts.store import AlertStore, alert_outbox
from mantissa.engines.base import to_jsonable
from mantissa.errors import (
    ConfigError,
    NotFound,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from mantissa.state.store import StateStore, as_utc, kv, utcnow

log = logging.getLogger(__name__)

PENDING, IN_FLIGHT, DELIVERED, DEAD, SKIPPED = (
    "pending",
    "in_flight",
    "delivered",
    "dead",
    "skipped",
)


class DeliverySettings(BaseModel):
    """``alerts.delivery`` in mantissa.yaml."""

    model_config = ConfigDict(extra="forbid")
    #: how long ``detect run`` / ``alerts deliver`` keep retrying before leaving rows queued
    flush_timeout_secs: float = Field(default=30.0, ge=0)
    #: a claimed row is someone else's to retry after this long without an outcome
    lease_secs: float = Field(default=120.0, gt=0)
    workers: int = Field(default=8, ge=1, le=64)
    batch_size: int = Field(default=200, ge=1)
    #: how often ``mantissa serve`` looks for due deliveries (retries, escalations)
    poll_secs: float = Field(default=5.0, gt=0)


@dataclass
class FlushResult:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0
    pending: int = 0
    in_flight: int = 0
    seconds: float = 0.0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "retried": self.retried,
            "dead": self.dead,
            "skipped": self.skipped,
            "pending": self.pending,
            "in_flight": self.in_flight,
            "seconds": round(self.seconds, 3),
            "errors": self.errors[:20],
        }


@dataclass
class _Outcome:
    row_id: str
    alert_id: str
    destination: str
    status: str
    attempts: int
    response: dict[str, Any] | None = None
    error: str | None = None
    retry_at: dt.datetime | None = None
    token: str | None = None


def backoff_secs(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random."""
    d = min(cap, base * (2 ** max(0, attempt - 1)))
    return d / 2 + random.uniform(0, d / 2)


def idempotency_key(alert_id: str, destination: str, kind: str, suffix: str = "") -> str:
    return f"{alert_id}:{destination}:{kind}" + (f":{suffix}" if suffix else "")


class Outbox:
    """Queue and deliver notifications through the state store."""

    def __init__(
        self,
        state: StateStore,
        store: AlertStore,
        destinations: dict[str, Destination],
        settings: DeliverySettings | None = None,
        redaction: RedactionConfig | None = None,
        console_url: str | None = None,
    ) -> None:
        self.state = state
        self.store = store
        self.destinations = destinations
        self.settings = settings or DeliverySettings()
        self.redaction = redaction or RedactionConfig()
        self.console_url = console_url
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._redaction_key: bytes | None = None

    # -- queueing -----------------------------------------------------------------------
    def enqueue(
        self,
        conn: sa.Connection,
        alert_id: str,
        destination: str,
        kind: str,
        route: str | None = None,
        delay_secs: float = 0.0,
        key_suffix: str = "",
    ) -> bool:
        """Add a delivery in the caller's transaction; False if it was already queued."""
        dest = self.destinations.get(destination)
        if dest is None:
            raise ConfigError(f"unknown destination {destination!r}")
        now = utcnow()
        key = idempotency_key(alert_id, destination, kind, key_suffix)
        exists = conn.execute(
            sa.select(alert_outbox.c.id).where(alert_outbox.c.idempotency_key == key)
        ).first()
        if exists:
            return False
        try:
            with conn.begin_nested():
                conn.execute(
                    alert_outbox.insert().values(
                        id="dl_" + uuid.uuid4().hex[:20],
                        alert_id=alert_id,
                        destination=destination,
                        route=route,
                        kind=kind,
                        idempotency_key=key,
                        status=PENDING,
                        attempts=0,
                        max_attempts=dest.config.max_attempts,
                        next_attempt_at=now + dt.timedelta(seconds=delay_secs),
                        created_at=now,
                        updated_at=now,
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def enqueue_many(
        self, conn: sa.Connection, items: list[tuple[str, str, str, str | None, float, str]]
    ) -> list[tuple[str, str, str]]:
        """Queue ``(alert_id, destination, kind, route, delay_secs, key_suffix)`` deliveries in
        one statement; returns the ``(alert_id, destination, kind)`` newly queued."""
        now = utcnow()
        rows: dict[str, dict[str, Any]] = {}
        for alert_id, destination, kind, route, delay, suffix in items:
            dest = self.destinations.get(destination)
            if dest is None:
                raise ConfigError(f"unknown destination {destination!r}")
            key = idempotency_key(alert_id, destination, kind, suffix)
            rows.setdefault(
                key,
                {
                    "id": "dl_" + uuid.uuid4().hex[:20],
                    "alert_id": alert_id,
                    "destination": destination,
                    "route": route,
                    "kind": kind,
                    "idempotency_key": key,
                    "status": PENDING,
                    "attempts": 0,
                    "max_attempts": dest.config.max_attempts,
                    "next_attempt_at": now + dt.timedelta(seconds=delay),
                    "created_at": now,
                    "updated_at": now,
                },
            )
        keys = list(rows)
        for i in range(0, len(keys), 500):
            for (k,) in conn.execute(
                sa.select(alert_outbox.c.idempotency_key).where(
                    alert_outbox.c.idempotency_key.in_(keys[i : i + 500])
                )
            ):
                rows.pop(k, None)
        if not rows:
            return []
        try:
            with conn.begin_nested():
                conn.execute(alert_outbox.insert(), list(rows.values()))
        except sa.exc.IntegrityError:
            # someone queued one of them meanwhile: fall back to one by one
            done = []
            for r in rows.values():
                if self.enqueue(conn, r["alert_id"], r["destination"], r["kind"], r["route"]):
                    done.append((r["alert_id"], r["destination"], r["kind"]))
            return done
        return [(r["alert_id"], r["destination"], r["kind"]) for r in rows.values()]

    def retry_dead(self, alert_id: str | None = None) -> int:
        """Queue dead deliveries again with a fresh attempt budget."""
        cond = [alert_outbox.c.status == DEAD]
        if alert_id:
            cond.append(alert_outbox.c.alert_id == alert_id)
        with self.state.begin() as conn:
            res = conn.execute(
                alert_outbox.update()
                .where(*cond)
                .values(status=PENDING, attempts=0, next_attempt_at=utcnow(), updated_at=utcnow())
            )
            return int(res.rowcount or 0)

    def counts(self) -> dict[str, int]:
        with self.state.engine.connect() as conn:
            rows = conn.execute(
                sa.select(alert_outbox.c.status, sa.func.count()).group_by(alert_outbox.c.status)
            ).all()
        return {r[0]: int(r[1]) for r in rows}

    # -- delivering -----------------------------------------------------------------------
    def flush(self, timeout_secs: float | None = None) -> FlushResult:
        """Deliver everything due, retrying within ``timeout_secs``; what is still not
        delivered then stays queued for the next flush (``alerts deliver``, the server)."""
        timeout = self.settings.flush_timeout_secs if timeout_secs is None else timeout_secs
        start = time.monotonic()
        deadline = start + timeout
        result = FlushResult()
        with ThreadPoolExecutor(max_workers=self.settings.workers) as pool:
            while True:
                batch = self._claim(self.settings.batch_size)
                if batch:
                    self._prefetch(batch)
                    outcomes = list(pool.map(self._attempt, batch))
                    self._record(outcomes, result)
                    if time.monotonic() > deadline:
                        break  # the rest stays queued for the next flush
                    continue
                nxt = self._next_due()
                if nxt is None:
                    break
                wait = (nxt - utcnow()).total_seconds()
                if time.monotonic() + max(wait, 0) > deadline:
                    break
                time.sleep(min(max(wait, 0.01), 1.0))
        counts = self.counts()
        result.pending = counts.get(PENDING, 0)
        result.in_flight = counts.get(IN_FLIGHT, 0)
        result.seconds = time.monotonic() - start
        return result

    def _due(self, now: dt.datetime) -> Any:
        return sa.or_(
            sa.and_(alert_outbox.c.status == PENDING, alert_outbox.c.next_attempt_at <= now),
            sa.and_(alert_outbox.c.status == IN_FLIGHT, alert_outbox.c.lease_expires_at < now),
        )

    def _claim(self, limit: int) -> list[dict[str, Any]]:
        now = utcnow()
        token = f"{self.owner}:{uuid.uuid4().hex[:8]}"
        with self.state.begin() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    sa.select(alert_outbox.c.id)
                    .where(self._due(now), alert_outbox.c.destination.in_(list(self.destinations)))
                    .order_by(alert_outbox.c.next_attempt_at)
                    .limit(limit)
                )
            ]
            if not ids:
                return []
            # the due-condition again in the UPDATE: of two racing claimers only one wins a row
            conn.execute(
                alert_outbox.update()
                .where(alert_outbox.c.id.in_(ids), self._due(now))
                .values(
                    status=IN_FLIGHT,
                    lease_owner=token,
                    lease_expires_at=now + dt.timedelta(seconds=self.settings.lease_secs),
                    attempts=alert_outbox.c.attempts + 1,
                    updated_at=now,
                )
            )
        with self.state.engine.connect() as conn:
            rows = conn.execute(
                sa.select(alert_outbox).where(alert_outbox.c.lease_owner == token)
            ).mappings()
            return [{**dict(r), "_token": token} for r in rows]

    def _next_due(self) -> dt.datetime | None:
        with self.state.engine.connect() as conn:
            pend = conn.execute(
                sa.select(sa.func.min(alert_outbox.c.next_attempt_at)).where(
                    alert_outbox.c.status == PENDING,
                    alert_outbox.c.destination.in_(list(self.destinations)),
                )
            ).scalar()
            lease = conn.execute(
                sa.select(sa.func.min(alert_outbox.c.lease_expires_at)).where(
                    alert_outbox.c.status == IN_FLIGHT,
                    alert_outbox.c.destination.in_(list(self.destinations)),
                )
            ).scalar()
        times = [t for t in (as_utc(pend), as_utc(lease)) if t is not None]
        return min(times) if times else None

    def redaction_key(self) -> bytes:
        """Per-installation secret that keys pseudonyms (created once, kept in the store)."""
        if self._redaction_key is None:
            value = self.state.get("alerts", "redaction_key")
            if value is None:
                try:
                    with self.state.begin() as conn:
                        conn.execute(
                            kv.insert().values(
                                namespace="alerts",
                                key="redaction_key",
                                value=secrets.token_hex(32),
                                updated_at=utcnow(),
                            )
                        )
                except sa.exc.IntegrityError:
                    pass  # another process made it first: use theirs
                value = self.state.get("alerts", "redaction_key")
            self._redaction_key = bytes.fromhex(value)
        return self._redaction_key

    def _prefetch(self, batch: list[dict[str, Any]]) -> None:
        """Load the batch's alerts and earlier trigger receipts in two queries, not 2N."""
        alerts = self.store.get_many(list({r["alert_id"] for r in batch}))
        want = {
            idempotency_key(r["alert_id"], r["destination"], "trigger"): r
            for r in batch
            if r["kind"] != "trigger"
        }
        receipts: dict[str, Any] = {}
        if want:
            with self.state.engine.connect() as conn:
                for k, resp in conn.execute(
                    sa.select(alert_outbox.c.idempotency_key, alert_outbox.c.response).where(
                        alert_outbox.c.idempotency_key.in_(list(want)),
                        alert_outbox.c.status == DELIVERED,
                    )
                ):
                    receipts[k] = resp
        for r in batch:
            r["_alert"] = alerts.get(r["alert_id"])
            r["_previous"] = (
                receipts.get(idempotency_key(r["alert_id"], r["destination"], "trigger"))
                if r["kind"] != "trigger"
                else None
            )

    def _attempt(self, row: dict[str, Any]) -> _Outcome:
        out = _Outcome(row["id"], row["alert_id"], row["destination"], DELIVERED, row["attempts"])
        out.token = row["_token"]
        dest = self.destinations[row["destination"]]
        alert = row.get("_alert")
        if alert is None:
            out.status, out.error = DEAD, "the alert no longer exists"
            return out
        if row["kind"] == "escalate" and alert.status.value != "open":
            out.status, out.error = SKIPPED, f"alert is {alert.status.value}: no escalation"
            return out
        cfg = dest.config
        try:
            if dest.external:
                red = self.redaction.model_copy(
                    update={
                        "ips": self.redaction.ips or cfg.redact_ips,
                        "users": self.redaction.users or cfg.redact_users,
                    }
                )
                alert = redact_alert(alert, red, self.redaction_key())
            delivery = Delivery(
                alert=alert,
                kind=row["kind"],
                idempotency_key=row["idempotency_key"],
                destination_id=row["destination"],
                attempt=row["attempts"],
                previous=row.get("_previous"),
                console_url=(self.console_url.format(id=alert.id) if self.console_url else None),
            )
            out.response = to_jsonable(dest.send(delivery) or {})
        except RetryableDeliveryError as exc:
            out.error = exc.message
            if row["attempts"] >= row["max_attempts"]:
                out.status = DEAD
            else:
                delay = (
                    # honour the vendor, within reason (a day): a bogus header must not
                    # park an alert for years
                    min(exc.retry_after_secs, 86400.0)
                    if exc.retry_after_secs is not None
                    else backoff_secs(row["attempts"], cfg.backoff_base_secs, cfg.backoff_max_secs)
                )
                out.status = PENDING
                out.retry_at = utcnow() + dt.timedelta(seconds=delay)
        except PermanentDeliveryError as exc:
            out.status, out.error = DEAD, exc.message
        except ConfigError as exc:
            # e.g. an ${env:VAR} not set in this process: another process may have it
            out.error = exc.message
            if row["attempts"] >= row["max_attempts"]:
                out.status = DEAD
            else:
                out.status = PENDING
                out.retry_at = utcnow() + dt.timedelta(
                    seconds=backoff_secs(
                        row["attempts"], cfg.backoff_base_secs, cfg.backoff_max_secs
                    )
                )
        except Exception as exc:  # a bug in a destination must not stall the queue
            log.exception("destination %s crashed", row["destination"])
            out.status, out.error = DEAD, f"{type(exc).__name__} in destination {dest.type}"
        return out

    def _record(self, outcomes: Iterable[_Outcome], result: FlushResult) -> None:
        now = utcnow()
        dead: list[_Outcome] = []
        with self.state.begin() as conn:
            for o in outcomes:
                values: dict[str, Any] = {
                    "status": o.status,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "updated_at": now,
                    "last_error": o.error,
                }
                if o.status == DELIVERED:
                    values.update(delivered_at=now, response=o.response, last_error=None)
                    result.delivered += 1
                elif o.status == PENDING:
                    values["next_attempt_at"] = o.retry_at
                    result.retried += 1
                elif o.status == DEAD:
                    result.dead += 1
                    dead.append(o)
                else:
                    result.skipped += 1
                if o.error:
                    result.errors.append(
                        {"alert_id": o.alert_id, "destination": o.destination, "error": o.error}
                    )
                conn.execute(
                    alert_outbox.update().where(alert_outbox.c.id == o.row_id).values(**values)
                )
        for o in dead:
            try:
                self.store.append_history(
                    o.alert_id,
                    {
                        "actor": "outbox",
                        "action": "delivery_dead",
                        "destination": o.destination,
                        "attempts": o.attempts,
                        "error": o.error,
                    },
                )
            except NotFound:
                pass
