"""Google Workspace: Admin SDK Reports API ``activities.list``, one application at a time.

https://developers.google.com/admin-sdk/reports/reference/rest/v1/activities/list —
``GET {base}/admin/reports/v1/activity/users/all/applications/{applicationName}`` with
``startTime``/``endTime`` (RFC 3339), ``maxResults`` (≤ 1000), ``pageToken`` from the
previous page's ``nextPageToken``, optional ``customerId``. Items are ``admin#reports#activity``
resources, newest first; the ``google_workspace`` parser turns each ``events[]`` entry
into a row.

Auth: a service account with domain-wide delegation. A JWT (RS256, signed with the
service account's private key by ``google-auth``) with ``iss`` = the service account,
``sub`` = the admin to impersonate, ``scope`` = ``admin.reports.audit.readonly``,
``aud`` = the token URI, ``iat``/``exp`` (1 h) is exchanged at the token URI
(``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``) for an access token,
renewed 60 s before it expires.

Windows and the reporting lag: Google documents ("Data retention and lag times") that
events reach the Reports API after a delay: a couple of minutes for most applications
(admin, login, token, drive, user_accounts, ...), up to half an hour for groups, an
hour for saml, a couple of hours for calendar, a few hours for some others. A window
therefore ends ``lag`` before now (per application, :data:`DEFAULT_LAG`) and the next
one starts where it ended. A window is fixed until all its pages are read; the
``pageToken`` is checkpointed after every page, so a restart resumes mid-window (the
lake's dedup absorbs a re-read page). The API keeps 180 days; ``start`` is capped there.

Needs: ``pip install 'mantissa-log[collect-google]'``; in Google Cloud a service account
with a JSON key and the Admin SDK API enabled; in the Admin console (Security → API
controls → Domain-wide delegation) its client ID with the scope
``https://www.googleapis.com/auth/admin.reports.audit.readonly``; ``subject`` a user
with the *Reports* admin privilege.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from google.auth import crypt
from google.auth import jwt as google_jwt
from pydantic import field_validator

from mantissa.errors import InputError
from mantissa.inputs._oauth import token_request
from mantissa.inputs.base import (
    Batch,
    Input,
    InputConfig,
    TokenCache,
    iso,
    parse_duration,
    parse_time,
    utcnow,
)

SCOPE = "https://www.googleapis.com/auth/admin.reports.audit.readonly"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_URI = "https://oauth2.googleapis.com/token"
RETENTION = dt.timedelta(days=180)
#: documented lag per application (support.google.com/a/answer/7061566) plus a margin
DEFAULT_LAG: dict[str, float] = {
    "calendar": 3 * 3600.0,  # "tens of minutes (can also go up to a couple of hours)"
    "saml": 3600.0,  # "entries usually appear within an hour"
    "groups": 3600.0,  # "within half an hour"
    "gcp": 3 * 3600.0,
    "jamboard": 3 * 3600.0,
}
NEAR_REAL_TIME_LAG = 600.0  # "near real time (couple of minutes)"
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


class GoogleWorkspaceConfig(InputConfig):
    #: the service account's JSON key: a file path, or the JSON itself (``${env:...}``)
    credentials_file: str | None = None
    credentials_json: str | None = None
    #: the admin user to impersonate (domain-wide delegation ``sub``)
    subject: str | None = None
    applications: list[str] = ["admin", "login", "token", "saml", "user_accounts", "drive"]
    customer_id: str | None = None
    max_results: int = 1000
    #: end each window this long before now: one duration, or per application
    lag: dict[str, float] | float | None = None
    #: token URI override (default: the key's ``token_uri``)
    token_url: str | None = None
    interval: float = 300.0
    max_pages: int = 10_000

    @field_validator("lag", mode="before")
    @classmethod
    def _lag(cls, v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, dict):
            return {str(k): parse_duration(x) for k, x in v.items()}
        return parse_duration(v)


class GoogleWorkspace(Input):
    type = "google_workspace"
    source = "google_workspace"
    config_model = GoogleWorkspaceConfig
    settle_secs = NEAR_REAL_TIME_LAG

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg: GoogleWorkspaceConfig = self.config  # type: ignore[assignment]
        if not cfg.subject:
            raise InputError(
                f"input {self.id}: google_workspace needs `subject` (the admin to impersonate)"
            )
        if not (cfg.credentials_file or cfg.credentials_json):
            raise InputError(
                f"input {self.id}: google_workspace needs `credentials_file` or "
                "`credentials_json` (the service account's JSON key)"
            )
        if not 1 <= cfg.max_results <= 1000:
            raise InputError(f"input {self.id}: max_results must be 1..1000")
        self.base = self.base_url("https://admin.googleapis.com")
        self.tokens = TokenCache(self._fetch_token)
        self._key: dict[str, Any] | None = None

    # -- auth -------------------------------------------------------------------------
    def _service_account(self) -> dict[str, Any]:
        if self._key is None:
            cfg: GoogleWorkspaceConfig = self.config  # type: ignore[assignment]
            try:
                if cfg.credentials_json:
                    text = cfg.secret("credentials_json")
                else:
                    text = Path(str(cfg.credentials_file)).expanduser().read_text()
                info = json.loads(text)
            except (OSError, ValueError) as exc:
                # the message names the file or the parse error, never the key's content
                where = cfg.credentials_file or "credentials_json"
                raise InputError(
                    f"google_workspace: cannot read the service account key ({where}): "
                    f"{type(exc).__name__}"
                ) from None
            if not isinstance(info, dict) or info.get("type") != "service_account":
                raise InputError(
                    "google_workspace: the key is not a service account JSON key "
                    '(`"type": "service_account"`)'
                )
            for k in ("client_email", "private_key"):
                if not info.get(k):
                    raise InputError(f"google_workspace: the service account key has no {k}")
            self._key = info
        return self._key

    def _fetch_token(self) -> tuple[str, float]:
        cfg: GoogleWorkspaceConfig = self.config  # type: ignore[assignment]
        info = self._service_account()
        token_uri = cfg.token_url or info.get("token_uri") or TOKEN_URI
        try:
            signer = crypt.RSASigner.from_service_account_info(info)
        except (ValueError, TypeError):
            raise InputError(
                "google_workspace: the service account private key is invalid"
            ) from None
        now = int(time.time())
        claims = {
            "iss": info["client_email"],
            "sub": cfg.subject,
            "scope": SCOPE,
            "aud": token_uri,
            "iat": now,
            "exp": now + 3600,
        }
        assertion = google_jwt.encode(signer, claims).decode()
        body = token_request(self, token_uri, {"grant_type": JWT_GRANT, "assertion": assertion})
        return str(body["access_token"]), float(body.get("expires_in", 3599))

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.get()}", "Accept": "application/json"}

    def refresh_auth(self) -> bool:
        self.tokens.invalidate()
        return True

    def is_rate_limited(self, resp: httpx.Response) -> bool:
        # older Google APIs answer quota errors with 403 and an `errors[].reason`
        if resp.status_code != 403:
            return False
        try:
            errors = (resp.json().get("error") or {}).get("errors") or []
        except (ValueError, AttributeError):
            return False
        return any(isinstance(e, dict) and e.get("reason") in RATE_LIMIT_REASONS for e in errors)

    def error_detail(self, resp: httpx.Response) -> str:
        try:
            err = resp.json().get("error")
        except (ValueError, AttributeError):
            return resp.text[:200]
        if isinstance(err, dict):
            return f"{err.get('status') or err.get('code')}: {err.get('message', '')}"[:300]
        return str(err)[:200]

    # -- fetching ---------------------------------------------------------------------
    def lag_for(self, app: str) -> float:
        cfg: GoogleWorkspaceConfig = self.config  # type: ignore[assignment]
        if isinstance(cfg.lag, dict):
            return cfg.lag.get(
                app, cfg.lag.get("default", DEFAULT_LAG.get(app, NEAR_REAL_TIME_LAG))
            )
        if cfg.lag is not None:
            return cfg.lag
        return DEFAULT_LAG.get(app, NEAR_REAL_TIME_LAG)

    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        cfg: GoogleWorkspaceConfig = self.config  # type: ignore[assignment]
        cursor = dict(cursor or {})
        for app in cfg.applications:
            for batch in self._application(app, cursor):
                cursor = batch.cursor
                yield batch

    def _application(self, app: str, cursor: dict[str, Any]) -> Iterator[Batch]:
        cfg: GoogleWorkspaceConfig = self.config  # type: ignore[assignment]
        url = f"{self.base}/admin/reports/v1/activity/users/all/applications/{app}"
        state = dict(cursor.get(app) or {})
        if not state.get("end"):
            floor = utcnow() - RETENTION + dt.timedelta(minutes=5)
            start = parse_time(state.get("start")) or self.backfill_from()
            start = max(start, floor)
            end = utcnow() - dt.timedelta(seconds=self.lag_for(app))
            if end <= start:
                return
            # the window is fixed until all its pages are read
            state = {"start": iso(start), "end": iso(end)}
        restarted = False
        for _ in range(cfg.max_pages):
            params: dict[str, Any] = {
                "startTime": state["start"],
                "endTime": state["end"],
                "maxResults": cfg.max_results,
            }
            if cfg.customer_id:
                params["customerId"] = cfg.customer_id
            if state.get("page"):
                params["pageToken"] = state["page"]
            try:
                body, _ = self.http.json("GET", url, params=params)
            except InputError as exc:
                if state.get("page") and "HTTP 400" in str(exc) and not restarted:
                    restarted = True
                    # a page token Google no longer honours: re-read the window (dedup)
                    state.pop("page")
                    continue
                raise
            if not isinstance(body, dict) or (
                "items" in body and not isinstance(body["items"], list)
            ):
                raise InputError(
                    f"google_workspace {app}: expected an admin#reports#activities object; "
                    "the checkpoint was not advanced"
                )
            items = body.get("items") or []
            if not all(isinstance(i, dict) for i in items):
                raise InputError(
                    f"google_workspace {app}: `items` holds non-objects; "
                    "the checkpoint was not advanced"
                )
            nxt = body.get("nextPageToken")
            new = dict(cursor)
            if nxt:
                new[app] = {**state, "page": nxt}
            else:
                new[app] = {"start": state["end"]}
            times = [parse_time((i.get("id") or {}).get("time")) for i in items]
            newest = max((t for t in times if t is not None), default=None)
            yield Batch(items, new, last_event_time=newest, name=f"{self.id}-{app}.json")
            cursor = new
            if not nxt:
                return
            state = new[app]
