"""``GET /overview`` (role viewer): what the Overview page draws.

Events per source over time (an aggregate through the guarded engine), alert counts
and the top alerting rules (from the alert store), and ingestion health per table:
last event, rows, files and dead letters (from Parquet footers, cached briefly).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from mantissa.api.auth import Principal, Role, require
from mantissa.engines.base import to_jsonable
from mantissa.errors import MantissaError
from mantissa.lake.catalog import table_stats, tables
from mantissa.lake.deadletter import DeadLetterStore

router = APIRouter(tags=["overview"])

_HEALTH_TTL_SECS = 15.0
_health_lock = threading.Lock()


class SourceHealth(BaseModel):
    table: str
    rows: int
    files: int
    first_event: str | None
    last_event: str | None
    dead_letter: int


class OverviewOut(BaseModel):
    since: str
    until: str
    bucket: str
    events: list[dict[str, Any]]
    events_error: str | None = None
    alerts: dict[str, Any]
    top_rules: list[dict[str, Any]]
    ingestion: list[SourceHealth]


def _iso(v: Any) -> str | None:
    return to_jsonable(v) if v is not None else None


def _events(request: Request, since: dt.datetime, bucket: str) -> list[dict[str, Any]]:
    rt = request.app.state.runtime
    stamp = since.strftime("%Y-%m-%d %H:%M:%S")
    sql = (
        f"SELECT source, date_trunc('{bucket}', event_time) AS bucket, count(*) AS events "
        f"FROM events WHERE event_time >= TIMESTAMPTZ '{stamp}+00' "
        "GROUP BY ALL ORDER BY bucket, source"
    )
    result = rt.engine.execute(sql)
    return [{"source": r[0], "bucket": to_jsonable(r[1]), "events": int(r[2])} for r in result.rows]


def _alerts(request: Request, since: dt.datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        from mantissa.alerts.store import alerts as alerts_table
    except ImportError:
        return {"open": 0, "by_severity": {}, "by_status": {}}, []
    state = request.app.state.runtime.state
    t = alerts_table
    with state.engine.connect() as conn:
        by_status = dict(
            conn.execute(sa.select(t.c.status, sa.func.count()).group_by(t.c.status)).all()
        )
        by_sev = dict(
            conn.execute(
                sa.select(t.c.severity, sa.func.count())
                .where(t.c.status.in_(["open", "acknowledged"]))
                .group_by(t.c.severity)
            ).all()
        )
        top = conn.execute(
            sa.select(
                t.c.rule_id,
                sa.func.max(t.c.rule_title),
                sa.func.count(),
                sa.func.sum(t.c.count),
                sa.func.max(t.c.severity_rank),
                sa.func.max(t.c.last_seen),
            )
            .where(t.c.last_seen >= since)
            .group_by(t.c.rule_id)
            .order_by(sa.func.count().desc(), t.c.rule_id)
            .limit(10)
        ).all()
    sev_names = ["informational", "low", "medium", "high", "critical"]
    top_rules = [
        {
            "rule_id": r[0],
            "rule_title": r[1],
            "alerts": int(r[2]),
            "matches": int(r[3] or 0),
            "max_severity": sev_names[int(r[4])] if r[4] is not None else None,
            "last_seen": _iso(r[5]),
        }
        for r in top
    ]
    summary = {
        "open": int(by_status.get("open", 0)),
        "by_status": {k: int(v) for k, v in by_status.items()},
        "by_severity": {k: int(v) for k, v in by_sev.items()},
    }
    return summary, top_rules


def _ingestion(request: Request) -> list[SourceHealth]:
    app_state = request.app.state
    with _health_lock:
        cached = getattr(app_state, "ingestion_cache", None)
        if cached and time.monotonic() - cached[0] < _HEALTH_TTL_SECS:
            return cached[1]
        storage = app_state.runtime.storage
        dead = DeadLetterStore(storage).counts()
        out = []
        for name, spec in tables().items():
            st = table_stats(storage, spec)
            if st.files == 0 and not dead.get(name):
                continue
            out.append(
                SourceHealth(
                    table=name,
                    rows=st.rows,
                    files=st.files,
                    first_event=_iso(st.first_event),
                    last_event=_iso(st.last_event),
                    dead_letter=int(dead.get(name, 0)),
                )
            )
        app_state.ingestion_cache = (time.monotonic(), out)
        return out


@router.get("/overview", response_model=OverviewOut)
def overview(
    request: Request,
    hours: int = Query(24, ge=1, le=24 * 90, description="Window, in hours back from now."),
    _: Principal = Depends(require(Role.viewer)),
) -> OverviewOut:
    """Events per source over time, alert counts, top alerting rules, ingestion health."""
    now = dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(hours=hours)
    bucket = "hour" if hours <= 72 else "day"
    events_error = None
    try:
        events = _events(request, since, bucket)
    except MantissaError as exc:  # one broken table must not blank the whole page
        events, events_error = [], exc.message
    summary, top_rules = _alerts(request, since)
    return OverviewOut(
        since=_iso(since) or "",
        until=_iso(now) or "",
        bucket=bucket,
        events=events,
        events_error=events_error,
        alerts=summary,
        top_rules=top_rules,
        ingestion=_ingestion(request),
    )
