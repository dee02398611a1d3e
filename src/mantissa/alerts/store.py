"""Alerts in the state store: tables, dedup-aware upsert, listing and status changes.

One SQLAlchemy Core code path for SQLite and PostgreSQL. Three tables:

* ``alerts``: one row per alert (JSON columns for tags, entities, evidence, history,
  enrichment);
* ``alert_dedup``: one row per dedup key pointing at its current alert, so two
  processes that see the same match at once create one alert, not two;
* ``alert_outbox``: the durable delivery queue (see :mod:`mantissa.alerts.outbox`); its
  rows are the alert's delivery records.
"""

from __future__ import annotations

import builtins
import datetime as dt
import math
import random
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mantissa.alerts.model import (
    DEFAULT_SUPPRESS_SECS,
    MAX_EVIDENCE_IDS,
    MAX_EVIDENCE_ROWS,
    Alert,
    AlertCandidate,
    AlertStatus,
    Severity,
    new_alert_id,
)
from mantissa.errors import ConfigError, NotFound, StateError
from mantissa.state.store import StateStore, as_utc, metadata, utcnow

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("dedup_key", sa.String(1024), nullable=False, index=True),
    sa.Column("rule_id", sa.String(256), nullable=False, index=True),
    sa.Column("rule_title", sa.Text, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("severity_rank", sa.Integer, nullable=False, index=True),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("entities", sa.JSON, nullable=False),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("query", sa.Text),
    sa.Column("window_start", sa.DateTime(timezone=True)),
    sa.Column("window_end", sa.DateTime(timezone=True)),
    sa.Column("evidence_event_ids", sa.JSON, nullable=False),
    sa.Column("evidence_rows", sa.JSON, nullable=False),
    sa.Column("source", sa.String(128)),
    sa.Column("description", sa.Text),
    sa.Column("suppress_secs", sa.Integer),
    sa.Column("history", sa.JSON, nullable=False),
    sa.Column("enrichment", sa.JSON, nullable=False),
    # lower-cased rule id/title/description/entities/tags for ``list(q=...)``
    sa.Column("search_text", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

alert_dedup = sa.Table(
    "alert_dedup",
    metadata,
    sa.Column("dedup_key", sa.String(1024), primary_key=True),
    sa.Column("alert_id", sa.String(64), nullable=False),
)

alert_outbox = sa.Table(
    "alert_outbox",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("alert_id", sa.String(64), nullable=False, index=True),
    sa.Column("destination", sa.String(256), nullable=False),
    sa.Column("route", sa.String(256)),
    sa.Column("kind", sa.String(32), nullable=False),  # trigger | update | resolve | test
    # one delivery per (alert, destination, kind, revision): enqueueing twice is a no-op
    sa.Column("idempotency_key", sa.String(512), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("response", sa.JSON),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
)

_SORTS = {
    "last_seen": alerts.c.last_seen,
    "first_seen": alerts.c.first_seen,
    "created_at": alerts.c.created_at,
    "updated_at": alerts.c.updated_at,
    "severity": alerts.c.severity_rank,
    "count": alerts.c.count,
    "rule_id": alerts.c.rule_id,
    "status": alerts.c.status,
}

_ACTIVE = (AlertStatus.open.value, AlertStatus.acknowledged.value)


def _search_text(c: AlertCandidate) -> str:
    parts = [c.rule_id, c.rule_title, c.description or "", c.source or "", " ".join(c.tags)]
    parts += [f"{k}={v}" for k, v in c.entities.items()]
    return " ".join(parts).lower()


def _merge_ids(old: list[str], new: list[str]) -> list[str]:
    seen = dict.fromkeys(old)
    for i in new:
        if len(seen) >= MAX_EVIDENCE_IDS:
            break
        seen.setdefault(i)
    return list(seen)


def _merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # keep how it started (the oldest rows) and fill up with the newest
    if len(old) >= MAX_EVIDENCE_ROWS:
        return old
    return old + new[: MAX_EVIDENCE_ROWS - len(old)]


def _jsonable_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from mantissa.engines.base import to_jsonable

    return [_finite(to_jsonable(r)) for r in rows]


def _finite(v: Any) -> Any:
    # NaN/Infinity are not JSON: PostgreSQL rejects them, SQLite would store invalid JSON
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v


class AlertStore:
    """CRUD for alerts on a :class:`StateStore` (SQLite or PostgreSQL)."""

    def __init__(self, state: StateStore, default_suppress_secs: int = DEFAULT_SUPPRESS_SECS):
        self.state = state
        self.default_suppress_secs = default_suppress_secs

    # -- create / update ------------------------------------------------------------
    def upsert(self, candidate: AlertCandidate, actor: str = "detection") -> tuple[Alert, bool]:
        """Store ``candidate``; returns ``(alert, created)``.

        An open or acknowledged alert with the same ``dedup_key`` whose ``last_seen`` is
        within the suppression window of the candidate's ``first_seen`` is updated
        (last_seen, count, evidence) instead of a new alert being created. Replaying a
        match already counted (same evidence, not newer) changes nothing.
        """
        for attempt in range(30):
            if attempt:
                time.sleep(random.uniform(0, 0.002 * attempt))
            try:
                with self.state.begin() as conn:
                    return self._upsert(conn, candidate, actor)
            except sa.exc.IntegrityError:
                continue  # another process created this dedup key meanwhile: look again
            except sa.exc.OperationalError as exc:
                msg = str(exc.orig).lower()
                if "locked" in msg or "deadlock" in msg or "could not serialize" in msg:
                    continue
                raise StateError(f"alert store: {exc.orig}") from None
        raise StateError(f"could not store alert for dedup key {candidate.dedup_key!r}")

    def upsert_many(
        self, candidates: list[AlertCandidate], actor: str = "detection"
    ) -> list[tuple[Alert, bool]]:
        """:meth:`upsert` for a batch: one transaction and a handful of statements for the
        whole batch when nobody races us; else one by one."""
        if not candidates:
            return []
        try:
            with self.state.begin() as conn:
                return self._upsert_batch(conn, candidates, actor)
        except (sa.exc.IntegrityError, sa.exc.OperationalError):
            return [self.upsert(c, actor) for c in candidates]

    def _upsert_batch(
        self, conn: Connection, cands: list[AlertCandidate], actor: str
    ) -> list[tuple[Alert, bool]]:
        now = utcnow()
        keys = sorted({c.dedup_key for c in cands})
        locked = 0
        links: dict[str, str] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            # lock first (see _upsert), in key order so concurrent batches cannot deadlock
            locked += conn.execute(
                alert_dedup.update()
                .where(alert_dedup.c.dedup_key.in_(chunk))
                .values(alert_id=alert_dedup.c.alert_id)
            ).rowcount
            links.update(
                conn.execute(
                    sa.select(alert_dedup.c.dedup_key, alert_dedup.c.alert_id).where(
                        alert_dedup.c.dedup_key.in_(chunk)
                    )
                ).all()
            )
        if len(links) != locked:
            raise sa.exc.IntegrityError("dedup keys appeared", None, Exception("race"))
        rows: dict[str, Any] = {}
        ids = list(links.values())
        for i in range(0, len(ids), 500):
            for r in conn.execute(
                sa.select(alerts).where(alerts.c.id.in_(ids[i : i + 500]))
            ).mappings():
                rows[r["id"]] = r
        out: list[tuple[Alert, bool] | None] = [None] * len(cands)
        seen: set[str] = set()
        later: list[int] = []
        new_rows: list[dict[str, Any]] = []
        new_links: list[dict[str, Any]] = []
        moved: list[dict[str, Any]] = []
        for i, c in enumerate(cands):
            if c.dedup_key in seen:
                later.append(i)  # the same key again: handled once the first is written
                continue
            seen.add(c.dedup_key)
            suppress = (
                c.suppress_secs if c.suppress_secs is not None else self.default_suppress_secs
            )
            link = links.get(c.dedup_key)
            row = rows.get(link) if link else None
            if row is not None and row["status"] in _ACTIVE:
                last_seen = as_utc(row["last_seen"])
                assert last_seen is not None
                if c.first_seen - last_seen <= dt.timedelta(seconds=suppress):
                    out[i] = (self._update_existing(conn, row, c, now), False)
                    continue
            values = self._values(c, new_alert_id(), now, actor)
            new_rows.append(values)
            if link is None:
                new_links.append({"dedup_key": c.dedup_key, "alert_id": values["id"]})
            else:
                moved.append({"_k": c.dedup_key, "_id": values["id"]})
            out[i] = (self._from_row(values, []), True)
        if new_rows:
            conn.execute(alerts.insert(), new_rows)
        if new_links:
            conn.execute(alert_dedup.insert(), new_links)
        if moved:
            conn.execute(
                alert_dedup.update()
                .where(alert_dedup.c.dedup_key == sa.bindparam("_k"))
                .values(alert_id=sa.bindparam("_id")),
                moved,
            )
        for i in later:
            out[i] = self._upsert(conn, cands[i], actor)
        return [r for r in out if r is not None]

    def _upsert(self, conn: Connection, c: AlertCandidate, actor: str) -> tuple[Alert, bool]:
        now = utcnow()
        suppress = c.suppress_secs if c.suppress_secs is not None else self.default_suppress_secs
        # Lock first, read second: a no-op write on the dedup row takes PostgreSQL's row lock
        # and SQLite's write lock, so concurrent upserts of one key serialize instead of
        # losing each other's count/evidence updates.
        locked = conn.execute(
            alert_dedup.update()
            .where(alert_dedup.c.dedup_key == c.dedup_key)
            .values(alert_id=alert_dedup.c.alert_id)
        ).rowcount
        link = conn.execute(
            sa.select(alert_dedup.c.alert_id).where(alert_dedup.c.dedup_key == c.dedup_key)
        ).first()
        if link is not None and not locked:
            # PostgreSQL: the key was committed by another upsert after our UPDATE looked;
            # we hold no lock on it, so start over (the retry loop in upsert)
            raise sa.exc.IntegrityError("dedup key appeared", None, Exception("race"))
        if link is not None:
            row = conn.execute(sa.select(alerts).where(alerts.c.id == link[0])).mappings().first()
            if row is not None and row["status"] in _ACTIVE:
                last_seen = as_utc(row["last_seen"])
                assert last_seen is not None
                if c.first_seen - last_seen <= dt.timedelta(seconds=suppress):
                    return self._update_existing(conn, row, c, now), False
        alert_id = new_alert_id()
        values = self._values(c, alert_id, now, actor)
        conn.execute(alerts.insert().values(**values))
        if link is None:
            conn.execute(alert_dedup.insert().values(dedup_key=c.dedup_key, alert_id=alert_id))
        else:
            # optimistic: only if nobody re-pointed the key since we read it
            res = conn.execute(
                alert_dedup.update()
                .where(alert_dedup.c.dedup_key == c.dedup_key, alert_dedup.c.alert_id == link[0])
                .values(alert_id=alert_id)
            )
            if res.rowcount != 1:
                raise sa.exc.IntegrityError("dedup key moved", None, Exception("race"))
        return self._from_row(values, []), True

    def _values(self, c: AlertCandidate, alert_id: str, now: dt.datetime, actor: str) -> dict:
        return {
            "id": alert_id,
            "dedup_key": c.dedup_key,
            "rule_id": c.rule_id,
            "rule_title": c.rule_title,
            "severity": c.severity.value,
            "severity_rank": c.severity.rank(),
            "status": AlertStatus.open.value,
            "tags": list(c.tags),
            "entities": dict(c.entities),
            "first_seen": c.first_seen,
            "last_seen": c.last_seen,
            "count": c.count,
            "query": c.query,
            "window_start": c.window_start,
            "window_end": c.window_end,
            "evidence_event_ids": list(c.evidence_event_ids),
            "evidence_rows": _jsonable_rows(c.evidence_rows),
            "source": c.source,
            "description": c.description,
            "suppress_secs": c.suppress_secs,
            "history": [
                {"at": now.isoformat(), "actor": actor, "action": "created", "status": "open"}
            ],
            "enrichment": {},
            "search_text": _search_text(c),
            "created_at": now,
            "updated_at": now,
        }

    def _update_existing(
        self, conn: Connection, row: Any, c: AlertCandidate, now: dt.datetime
    ) -> Alert:
        old_ids = list(row["evidence_event_ids"] or [])
        last_seen = as_utc(row["last_seen"])
        first_seen = as_utc(row["first_seen"])
        assert last_seen is not None and first_seen is not None
        replay = (
            bool(c.evidence_event_ids)
            and set(c.evidence_event_ids) <= set(old_ids)
            and c.last_seen <= last_seen
        )
        values: dict[str, Any] = {}
        if not replay:
            values = {
                "last_seen": max(last_seen, c.last_seen),
                "first_seen": min(first_seen, c.first_seen),
                "count": int(row["count"]) + c.count,
                "evidence_event_ids": _merge_ids(old_ids, c.evidence_event_ids),
                "evidence_rows": _merge_rows(
                    list(row["evidence_rows"] or []), _jsonable_rows(c.evidence_rows)
                ),
                "window_end": c.window_end or row["window_end"],
                "updated_at": now,
            }
            # a rule can escalate a running alert (e.g. a threshold crossed again, harder)
            if c.severity.rank() > int(row["severity_rank"]):
                values["severity"] = c.severity.value
                values["severity_rank"] = c.severity.rank()
            conn.execute(alerts.update().where(alerts.c.id == row["id"]).values(**values))
        merged = {**dict(row), **values}
        return self._from_row(merged, self._deliveries(conn, row["id"]))

    def save_enrichment(self, alert_id: str, enrichment: dict[str, Any]) -> None:
        """Replace the alert's enrichment document."""
        from mantissa.engines.base import to_jsonable

        with self.state.begin() as conn:
            conn.execute(
                alerts.update()
                .where(alerts.c.id == alert_id)
                .values(enrichment=to_jsonable(enrichment))
            )

    def save_enrichments(self, docs: dict[str, dict[str, Any]]) -> None:
        """Replace the enrichment of several alerts in one transaction."""
        from mantissa.engines.base import to_jsonable

        if not docs:
            return
        with self.state.begin() as conn:
            conn.execute(
                alerts.update()
                .where(alerts.c.id == sa.bindparam("_id"))
                .values(enrichment=sa.bindparam("_doc")),
                [{"_id": k, "_doc": to_jsonable(v)} for k, v in docs.items()],
            )

    # -- read -----------------------------------------------------------------------
    def get_many(self, ids: list[str]) -> dict[str, Alert]:
        """The alerts with these ids (missing ones are left out), with deliveries."""
        out: dict[str, Alert] = {}
        with self.state.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                rows = (
                    conn.execute(sa.select(alerts).where(alerts.c.id.in_(chunk))).mappings().all()
                )
                deliveries = self._deliveries_for(conn, [r["id"] for r in rows])
                for r in rows:
                    out[r["id"]] = self._from_row(dict(r), deliveries.get(r["id"], []))
        return out

    def get(self, alert_id: str) -> Alert:
        """The alert with this id (with its delivery records); :class:`NotFound` if none."""
        with self.state.engine.connect() as conn:
            row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).mappings().first()
            if row is None:
                raise NotFound(f"alert {alert_id} not found", hint="see `mantissa alerts list`")
            return self._from_row(dict(row), self._deliveries(conn, alert_id))

    def list(
        self,
        status: str | list[str] | None = None,
        severity: str | list[str] | None = None,
        rule_id: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        q: str | None = None,
        sort: str = "-last_seen",
        limit: int = 50,
        offset: int = 0,
        *,
        min_severity: str | None = None,
        tag: str | None = None,
        dedup_key: str | None = None,
    ) -> tuple[list[Alert], int]:
        """Alerts matching every filter given, sorted, paged; plus the total count.

        ``since``/``until`` bound ``last_seen``; ``rule_id`` accepts ``*`` globs; ``q`` is
        a case-insensitive substring of rule id/title, description, tags and entities.
        """
        conds: list[Any] = []
        if status:
            sts = [status] if isinstance(status, str) else list(status)
            conds.append(alerts.c.status.in_([AlertStatus(s).value for s in sts]))
        if severity:
            sevs = [severity] if isinstance(severity, str) else list(severity)
            conds.append(alerts.c.severity.in_([Severity.parse(s).value for s in sevs]))
        if min_severity:
            conds.append(alerts.c.severity_rank >= Severity.parse(min_severity).rank())
        if rule_id:
            if "*" in rule_id or "?" in rule_id:
                pat = rule_id.replace("%", r"\%").replace("_", r"\_")
                pat = pat.replace("*", "%").replace("?", "_")
                conds.append(alerts.c.rule_id.like(pat, escape="\\"))
            else:
                conds.append(alerts.c.rule_id == rule_id)
        if since:
            conds.append(alerts.c.last_seen >= since)
        if until:
            conds.append(alerts.c.last_seen < until)
        if q:
            pat = "%" + q.lower().replace("%", r"\%").replace("_", r"\_") + "%"
            conds.append(alerts.c.search_text.like(pat, escape="\\"))
        if tag:
            pat = "%" + tag.lower().replace("%", r"\%").replace("_", r"\_") + "%"
            conds.append(alerts.c.search_text.like(pat, escape="\\"))
        if dedup_key:
            conds.append(alerts.c.dedup_key == dedup_key)
        desc = sort.startswith("-")
        key = sort.lstrip("-+")
        if key not in _SORTS:
            raise ConfigError(f"unknown sort {sort!r}", hint="one of " + ", ".join(_SORTS))
        col = _SORTS[key]
        order = [col.desc() if desc else col.asc(), alerts.c.id.desc() if desc else alerts.c.id]
        where = sa.and_(sa.true(), *conds)
        with self.state.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(alerts).where(where))
            total_n = int(total.scalar_one())
            rows = (
                conn.execute(
                    sa.select(alerts).where(where).order_by(*order).limit(limit).offset(offset)
                )
                .mappings()
                .all()
            )
            ids = [r["id"] for r in rows]
            deliveries = self._deliveries_for(conn, ids)
        return [self._from_row(dict(r), deliveries.get(r["id"], [])) for r in rows], total_n

    # -- status -----------------------------------------------------------------------
    def set_status(
        self, alert_id: str, status: AlertStatus | str, actor: str, reason: str | None = None
    ) -> Alert:
        """Move the alert to ``status``, appending ``{at, actor, action, from, status, reason}``
        to its history."""
        new = AlertStatus(status)
        now = utcnow()
        with self.state.begin() as conn:
            row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).mappings().first()
            if row is None:
                raise NotFound(f"alert {alert_id} not found", hint="see `mantissa alerts list`")
            history = list(row["history"] or [])
            entry: dict[str, Any] = {
                "at": now.isoformat(),
                "actor": actor,
                "action": "status",
                "from": row["status"],
                "status": new.value,
            }
            if reason:
                entry["reason"] = reason
            history.append(entry)
            conn.execute(
                alerts.update()
                .where(alerts.c.id == alert_id)
                .values(status=new.value, history=history, updated_at=now)
            )
            merged = {**dict(row), "status": new.value, "history": history, "updated_at": now}
            return self._from_row(merged, self._deliveries(conn, alert_id))

    def append_history_many(self, conn: Connection, entries: dict[str, dict[str, Any]]) -> None:
        """Append one history entry to each of several alerts (two statements in all)."""
        if not entries:
            return
        at = utcnow().isoformat()
        ids = list(entries)
        params = []
        for i in range(0, len(ids), 500):
            for alert_id, history in conn.execute(
                sa.select(alerts.c.id, alerts.c.history).where(alerts.c.id.in_(ids[i : i + 500]))
            ):
                params.append(
                    {"_id": alert_id, "_h": [*list(history or []), {"at": at, **entries[alert_id]}]}
                )
        if params:
            conn.execute(
                alerts.update()
                .where(alerts.c.id == sa.bindparam("_id"))
                .values(history=sa.bindparam("_h")),
                params,
            )

    def append_history(
        self, alert_id: str, entry: dict[str, Any], conn: Connection | None = None
    ) -> None:
        """Append one history entry (routing decisions, dead letters ...)."""
        if conn is None:
            with self.state.begin() as c:
                self.append_history(alert_id, entry, c)
            return
        row = conn.execute(sa.select(alerts.c.history).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFound(f"alert {alert_id} not found")
        history = [*list(row[0] or []), {"at": utcnow().isoformat(), **entry}]
        conn.execute(alerts.update().where(alerts.c.id == alert_id).values(history=history))

    # -- rows -------------------------------------------------------------------------
    def _deliveries(self, conn: Connection, alert_id: str) -> builtins.list[dict[str, Any]]:
        return self._deliveries_for(conn, [alert_id]).get(alert_id, [])

    def _deliveries_for(
        self, conn: Connection, ids: builtins.list[str]
    ) -> dict[str, builtins.list[dict]]:
        out: dict[str, builtins.list[dict]] = {}
        if not ids:
            return out
        rows = conn.execute(
            sa.select(alert_outbox)
            .where(alert_outbox.c.alert_id.in_(ids))
            .order_by(alert_outbox.c.created_at, alert_outbox.c.id)
        ).mappings()
        for r in rows:
            out.setdefault(r["alert_id"], []).append(delivery_record(r))
        return out

    @staticmethod
    def _from_row(row: dict[str, Any], deliveries: builtins.list[dict[str, Any]]) -> Alert:
        data = {k: v for k, v in row.items() if k not in ("severity_rank", "search_text")}
        for k in ("first_seen", "last_seen", "window_start", "window_end"):
            data[k] = as_utc(data.get(k))
        data["created_at"] = as_utc(data["created_at"])
        data["updated_at"] = as_utc(data["updated_at"])
        data["deliveries"] = deliveries
        return Alert.model_validate(data)


def delivery_record(r: Any) -> dict[str, Any]:
    """An outbox row as the delivery record shown with an alert."""

    def iso(v: Any) -> str | None:
        v = as_utc(v)
        return v.isoformat() if v else None

    return {
        "id": r["id"],
        "destination": r["destination"],
        "route": r["route"],
        "kind": r["kind"],
        "status": r["status"],
        "attempts": r["attempts"],
        "max_attempts": r["max_attempts"],
        "next_attempt_at": iso(r["next_attempt_at"]) if r["status"] == "pending" else None,
        "last_error": r["last_error"],
        "response": r["response"],
        "created_at": iso(r["created_at"]),
        "delivered_at": iso(r["delivered_at"]),
    }
