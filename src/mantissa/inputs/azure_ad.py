"""Microsoft Entra ID (Azure AD): sign-in and directory audit logs via Microsoft Graph.

https://learn.microsoft.com/graph/api/signin-list and .../directoryaudit-list:

* ``GET {base}/v1.0/auditLogs/signIns?$filter=createdDateTime ge {a} and createdDateTime lt {b}``
* ``GET {base}/v1.0/auditLogs/directoryAudits?$filter=activityDateTime ge {a} and activityDateTime lt {b}``

with ``$top`` (≤ 999 here, valid on both) and paging by following ``@odata.nextLink``
verbatim until it is absent. Rows are the Graph ``signIn`` / ``directoryAudit``
resources as returned; the ``azure_ad`` parser recognises each by its time field
(``createdDateTime`` → ``SignInLogs``, ``activityDateTime`` → ``AuditLogs``).
Throttling: 429 with ``Retry-After`` (honoured); 5xx/timeouts back off.

Windows: ``[start, now - lag)``, fixed until all pages are read; the ``@odata.nextLink``
is checkpointed after every page, so a restart resumes mid-window (a crash between the
lake write and the checkpoint re-reads one page; dedup on the event ``id`` absorbs it).
Microsoft documented the reporting latency of both logs as 2 min (95th percentile) and
5 min (99th); ``lag`` defaults to 10 min. Graph keeps 30 days (7 without Entra ID
P1/P2), so ``start`` is capped at 30 days.

Token: client credentials at ``{login_url}/{tenant}/oauth2/v2.0/token`` with
``scope=https://graph.microsoft.com/.default``.
Needs: an app registration with the Microsoft Graph *application* permission
``AuditLog.Read.All`` (sign-ins also need ``Directory.Read.All``), admin consent
granted, a client secret; sign-in logs need an Entra ID P1 or P2 licence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import field_validator

from mantissa.errors import InputError
from mantissa.inputs._oauth import LOGIN_URL, EntraToken, ms_error_detail
from mantissa.inputs.base import (
    Batch,
    Input,
    InputConfig,
    iso,
    parse_duration,
    parse_time,
    utcnow,
)

#: Graph collection → its time property
LOGS = {"signIns": "createdDateTime", "directoryAudits": "activityDateTime"}
RETENTION = dt.timedelta(days=30)


class AzureADConfig(InputConfig):
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    logs: list[str] = ["signIns", "directoryAudits"]
    #: identity platform root (sovereign clouds: https://login.microsoftonline.us, ...)
    login_url: str = LOGIN_URL
    #: Graph root the token is for (US Gov: https://graph.microsoft.us, ...)
    resource: str = "https://graph.microsoft.com"
    lag: float = 600.0
    page_size: int = 999
    max_pages: int = 10_000

    @field_validator("lag", mode="before")
    @classmethod
    def _duration_lag(cls, v: Any) -> float:
        return parse_duration(v)


class AzureAD(Input):
    type = "azure_ad"
    source = "azure_ad"
    config_model = AzureADConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg: AzureADConfig = self.config  # type: ignore[assignment]
        if not cfg.tenant_id:
            raise InputError(f"input {self.id}: azure_ad needs `tenant_id`")
        unknown = [x for x in cfg.logs if x not in LOGS]
        if unknown:
            raise InputError(
                f"input {self.id}: unknown logs {unknown} (known: signIns, directoryAudits)"
            )
        if not 1 <= cfg.page_size <= 999:
            raise InputError(f"input {self.id}: page_size must be 1..999")
        self.api = self.base_url(cfg.resource) + "/v1.0/auditLogs"
        self.token = EntraToken(self, cfg.login_url, cfg.tenant_id, cfg.resource)

    def auth_headers(self) -> dict[str, str]:
        return self.token.header()

    def refresh_auth(self) -> bool:
        self.token.cache.invalidate()
        return True

    def error_detail(self, resp: httpx.Response) -> str:
        return ms_error_detail(resp)

    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        cfg: AzureADConfig = self.config  # type: ignore[assignment]
        cursor = dict(cursor or {})
        for name in cfg.logs:
            for batch in self._log(name, cursor):
                cursor = batch.cursor
                yield batch

    def _log(self, name: str, cursor: dict[str, Any]) -> Iterator[Batch]:
        cfg: AzureADConfig = self.config  # type: ignore[assignment]
        field = LOGS[name]
        state = dict(cursor.get(name) or {})
        if not state.get("end"):
            floor = utcnow() - RETENTION + dt.timedelta(minutes=10)
            start = max(parse_time(state.get("start")) or self.backfill_from(), floor)
            end = utcnow() - dt.timedelta(seconds=cfg.lag)
            if end <= start:
                return
            state = {"start": iso(start), "end": iso(end)}
        restarted = False
        for _ in range(cfg.max_pages):
            if state.get("next"):
                try:
                    body, _ = self.http.json("GET", state["next"])
                except InputError as exc:
                    if "HTTP 400" not in str(exc) or restarted:
                        raise
                    restarted = True
                    # a skip token Graph no longer honours: re-read the window (dedup)
                    state = {"start": state["start"], "end": state["end"]}
                    continue
            else:
                body, _ = self.http.json(
                    "GET",
                    f"{self.api}/{name}",
                    params={
                        "$filter": f"{field} ge {state['start']} and {field} lt {state['end']}",
                        "$top": cfg.page_size,
                    },
                )
            rows = body.get("value") if isinstance(body, dict) else None
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise InputError(
                    f"azure_ad {name}: expected an OData page with a `value` array; "
                    "the checkpoint was not advanced"
                )
            nxt = body.get("@odata.nextLink")
            new = dict(cursor)
            new[name] = {**state, "next": nxt} if nxt else {"start": state["end"]}
            times = [parse_time(r.get(field)) for r in rows]
            newest = max((t for t in times if t is not None), default=None)
            yield Batch(rows, new, last_event_time=newest, name=f"{self.id}-{name}.json")
            cursor = new
            if not nxt:
                return
            state = new[name]
