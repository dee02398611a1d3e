"""Microsoft 365: the Office 365 Management Activity API (unified audit log).

https://learn.microsoft.com/office/office-365-management-api/office-365-management-activity-api-reference
— all under ``{base}/api/v1.0/{tenant}/activity/feed``:

* ``POST /subscriptions/start?contentType=...`` once per content type (idempotent:
  an already enabled subscription answers 400 ``AF20024``, which is fine);
* ``GET /subscriptions/content?contentType=&startTime=&endTime=`` lists the content
  blobs *made available* in the window (``contentCreated``, the arrival clock, not the
  event time); both times or neither, at most 24 h apart, the start at most 7 days back;
  more pages come as a full URL in the ``NextPageUri`` response header;
* ``GET {contentUri}`` returns a blob: a JSON array of audit records for the
  ``microsoft_365`` parser.

``PublisherIdentifier`` (the tenant GUID by default) is sent on every call: Microsoft
counts the per-publisher quota on it; throttled calls answer 429 (``Retry-After``
honoured, else exponential backoff).

Cursor per content type: ``{"start"}`` (the next window starts there) or, while a
window is read, ``{"start", "end", "page", "done"}``: the listing page being read and
the ``contentId`` s of it already in the lake. Each blob is one batch, checkpointed after
its lake write, so a restart neither skips nor re-reads a blob (a crash between the two
re-reads one; the lake's dedup on the record ``Id`` absorbs it). Windows end ``delay``
before now (default 5 min) so blobs still being indexed are listed by the next window.
Records typically arrive 60–90 minutes after the event (Microsoft's FAQ); there is no SLA.

Token: client credentials at ``{login_url}/{tenant}/oauth2/v2.0/token`` with
``scope=https://manage.office.com/.default``.
Needs: unified audit logging turned on; an Entra app registration with the *Office 365
Management APIs* application permission ``ActivityFeed.Read`` (``ActivityFeed.ReadDlp``
for ``DLP.All``), admin consent granted, and a client secret.
"""

from __future__ import annotations

import datetime as dt
import logging
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

log = logging.getLogger("mantissa.inputs")

CONTENT_TYPES = (
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
    "DLP.All",
)
MAX_WINDOW = dt.timedelta(hours=24)
RETENTION = dt.timedelta(days=7)
API_TIME = "%Y-%m-%dT%H:%M:%S"


class Microsoft365Config(InputConfig):
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    content_types: list[str] = [
        "Audit.AzureActiveDirectory",
        "Audit.Exchange",
        "Audit.SharePoint",
        "Audit.General",
    ]
    #: identity platform root (sovereign clouds: https://login.microsoftonline.us, ...)
    login_url: str = LOGIN_URL
    #: API resource the token is for (GCC High: https://manage.office365.us, ...)
    resource: str = "https://manage.office.com"
    publisher_id: str | None = None
    delay: float = 300.0
    interval: float = 300.0
    max_pages: int = 10_000

    @field_validator("delay", mode="before")
    @classmethod
    def _duration_delay(cls, v: Any) -> float:
        return parse_duration(v)


def _api_time(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime(API_TIME)


class Microsoft365(Input):
    type = "microsoft_365"
    source = "microsoft_365"
    config_model = Microsoft365Config

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg: Microsoft365Config = self.config  # type: ignore[assignment]
        if not cfg.tenant_id:
            raise InputError(f"input {self.id}: microsoft_365 needs `tenant_id` (a GUID)")
        unknown = [c for c in cfg.content_types if c not in CONTENT_TYPES]
        if unknown:
            raise InputError(
                f"input {self.id}: unknown content types {unknown} (known: {', '.join(CONTENT_TYPES)})"
            )
        self.feed = self.base_url(cfg.resource) + f"/api/v1.0/{cfg.tenant_id}/activity/feed"
        self.token = EntraToken(self, cfg.login_url, cfg.tenant_id, cfg.resource)
        self.publisher = cfg.publisher_id or cfg.tenant_id
        #: listed blobs that were gone when fetched (reported at the end of the cycle)
        self.lost: list[str] = []

    def auth_headers(self) -> dict[str, str]:
        return self.token.header()

    def refresh_auth(self) -> bool:
        self.token.cache.invalidate()
        return True

    def error_detail(self, resp: httpx.Response) -> str:
        return ms_error_detail(resp)

    # -- API calls --------------------------------------------------------------------
    def start_subscription(self, content_type: str) -> None:
        """Enable the subscription; "already enabled" (AF20024) is the wanted state."""
        try:
            self.http.request(
                "POST",
                self.feed + "/subscriptions/start",
                params={"contentType": content_type, "PublisherIdentifier": self.publisher},
                headers={"Content-Type": "application/json"},
                content=b"{}",
            )
        except InputError as exc:
            if "AF20024" in str(exc) or "already enabled" in str(exc):
                return
            raise

    def _blob(self, uri: str) -> list[dict[str, Any]]:
        sep = "&" if "?" in uri else "?"
        if "publisheridentifier=" not in uri.lower():
            uri = f"{uri}{sep}PublisherIdentifier={self.publisher}"
        body, _ = self.http.json("GET", uri)
        if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
            raise InputError(
                "microsoft_365: a content blob is not a JSON array of records; "
                "the checkpoint was not advanced"
            )
        return body

    # -- fetching ---------------------------------------------------------------------
    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        cfg: Microsoft365Config = self.config  # type: ignore[assignment]
        cursor = dict(cursor or {})
        for ct in cfg.content_types:
            self.start_subscription(ct)
            for batch in self._content_type(ct, cursor):
                cursor = batch.cursor
                yield batch
        if self.lost:
            # not silent: the cycle reports it (inputs status), the checkpoint has moved on
            # since retrying cannot bring an expired blob back
            raise InputError(
                f"microsoft_365: {len(self.lost)} listed content blob(s) were no longer "
                f"available when fetched (expired or removed upstream): {', '.join(self.lost[:5])}"
            )

    def _content_type(self, ct: str, cursor: dict[str, Any]) -> Iterator[Batch]:
        cfg: Microsoft365Config = self.config  # type: ignore[assignment]
        pages = 0
        while pages < cfg.max_pages:
            state = dict(cursor.get(ct) or {})
            if not state.get("end"):
                now = utcnow()
                floor = now - RETENTION + dt.timedelta(minutes=10)
                start = parse_time(state.get("start")) or self.backfill_from()
                if start < floor:
                    if state.get("start"):
                        log.warning(
                            "input %s: %s resumes at the API's 7-day limit; content made "
                            "available before %s is no longer listed",
                            self.id,
                            ct,
                            iso(floor),
                        )
                    start = floor
                start = start.replace(microsecond=0)
                end = min(start + MAX_WINDOW, now - dt.timedelta(seconds=cfg.delay))
                end = end.replace(microsecond=0)
                if end <= start:
                    return
                state = {"start": iso(start), "end": iso(end), "page": None, "done": []}
            uri = state.get("page")
            if uri:
                page, resp = self.http.json("GET", uri)
            else:
                page, resp = self.http.json(
                    "GET",
                    self.feed + "/subscriptions/content",
                    params={
                        "contentType": ct,
                        "startTime": _api_time(parse_time(state["start"])),  # type: ignore[arg-type]
                        "endTime": _api_time(parse_time(state["end"])),  # type: ignore[arg-type]
                        "PublisherIdentifier": self.publisher,
                    },
                )
            pages += 1
            if not isinstance(page, list) or not all(
                isinstance(b, dict) and b.get("contentUri") for b in page
            ):
                raise InputError(
                    f"microsoft_365 {ct}: the content listing is not a JSON array of "
                    "{contentId, contentUri, ...}; the checkpoint was not advanced"
                )
            done = list(state.get("done") or [])
            for blob in page:
                cid = str(blob.get("contentId") or blob["contentUri"])
                if cid in done:
                    continue
                try:
                    records = self._blob(str(blob["contentUri"]))
                except InputError as exc:
                    if "AF20051" in str(exc) or "HTTP 404" in str(exc):
                        # expired (blobs live 7 days) or gone: nothing left to fetch
                        log.warning(
                            "input %s: content blob %s of %s is no longer available: %s",
                            self.id,
                            cid,
                            ct,
                            exc,
                        )
                        records = []
                        self.lost.append(cid)
                    else:
                        raise
                done.append(cid)
                new = {**cursor, ct: {**state, "done": done}}
                times = [parse_time(r.get("CreationTime")) for r in records]
                newest = max((t for t in times if t is not None), default=None)
                yield Batch(records, new, last_event_time=newest, name=f"{self.id}-{ct}.json")
                cursor = new
            nxt = resp.headers.get("NextPageUri")
            if nxt:
                new = {**cursor, ct: {**state, "page": nxt, "done": []}}
            else:
                new = {**cursor, ct: {"start": state["end"]}}
            yield Batch([], new, name=f"{self.id}-{ct}.json")
            cursor = new
