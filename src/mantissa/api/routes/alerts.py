"""``/alerts``: list (viewer), detail (viewer), status change (analyst)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from mantissa.alerts.model import Alert, AlertStatus, Severity
from mantissa.alerts.store import AlertStore
from mantissa.api.auth import Principal, Role, require
from mantissa.api.errors import error_responses
from mantissa.api.middleware import audit_detail
from mantissa.api.paging import (
    InvalidParameter,
    Paged,
    PageParams,
    check_sort,
    paged,
    paging,
    parse_time,
    time_param,
)

router = APIRouter(prefix="/alerts", tags=["alerts"])

SORTS = {
    "last_seen",
    "first_seen",
    "created_at",
    "updated_at",
    "severity",
    "count",
    "rule_id",
    "status",
}
_ALERT_ID = r"^[A-Za-z0-9_.:-]{1,64}$"


class AlertSummary(BaseModel):
    """An alert as lists show it (no evidence rows, history or deliveries)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    rule_id: str
    rule_title: str
    severity: Severity
    status: AlertStatus
    tags: list[str]
    entities: dict[str, str]
    first_seen: dt.datetime
    last_seen: dt.datetime
    count: int
    source: str | None = None
    description: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: AlertStatus
    reason: str | None = Field(None, max_length=2000)


def store(request: Request) -> AlertStore:
    st = getattr(request.app.state, "alert_store", None)
    if st is None:
        st = request.app.state.alert_store = AlertStore(request.app.state.runtime.state)
    return st


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [p.strip() for p in v.split(",") if p.strip()]
    return out


@router.get("", response_model=Paged[AlertSummary])
def list_alerts(
    request: Request,
    status: list[str] | None = Query(
        None, description="open, acknowledged, closed, false_positive (repeat or comma-separate)."
    ),
    severity: list[str] | None = Query(
        None, description="informational, low, medium, high, critical (repeat or comma-separate)."
    ),
    min_severity: Severity | None = Query(None, description="This severity or higher."),
    rule_id: str | None = Query(None, max_length=256, description="Rule id; * and ? globs."),
    tag: str | None = Query(None, max_length=256),
    q: str | None = Query(None, max_length=256, description="Text in rule, tags or entities."),
    since: str | None = time_param("last_seen at or after (ISO-8601)."),
    until: str | None = time_param("last_seen before (ISO-8601)."),
    page: PageParams = Depends(paging(SORTS)),
    _: Principal = Depends(require(Role.viewer)),
) -> dict:
    """Alerts matching every filter, sorted (default ``-last_seen``) and paged."""
    statuses = _split(status)
    severities = _split(severity)
    try:
        statuses = [AlertStatus(s).value for s in statuses]
        severities = [Severity.parse(s).value for s in severities]
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None
    sort = check_sort(page.sort, SORTS, "-last_seen")
    items, total = store(request).list(
        status=statuses or None,
        severity=severities or None,
        rule_id=rule_id,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        q=q,
        sort=sort,
        limit=page.limit,
        offset=page.offset,
        min_severity=min_severity.value if min_severity else None,
        tag=tag,
    )
    return paged([a.model_dump() for a in items], total, page)


@router.get("/{alert_id}", response_model=Alert, responses=error_responses(404))
def get_alert(
    request: Request,
    alert_id: str = Path(..., pattern=_ALERT_ID),
    _: Principal = Depends(require(Role.viewer)),
) -> Any:
    """One alert with its evidence rows, enrichment, deliveries and history."""
    return store(request).get(alert_id)


@router.patch("/{alert_id}", response_model=Alert, responses=error_responses(404))
def change_status(
    body: StatusChange,
    request: Request,
    alert_id: str = Path(..., pattern=_ALERT_ID),
    who: Principal = Depends(require(Role.analyst)),
) -> Any:
    """Acknowledge, close, mark false positive or reopen an alert (recorded in its history)."""
    # through the alert service, so destinations that heard of the alert learn the change
    # (PagerDuty acknowledge/resolve, Jira/ServiceNow update); the serve worker delivers
    from mantissa.alerts.service import AlertService

    alert = AlertService(request.app.state.runtime).set_status(
        alert_id, body.status, actor=who.actor, reason=body.reason, flush=False
    )
    audit_detail(request, action="alert.status", alert_id=alert_id, status=body.status.value)
    return alert
