"""Microsoft stubs: the Entra ID token endpoint, the Office 365 Management Activity API
and Microsoft Graph ``auditLogs``.

* ``POST /{tenant}/oauth2/v2.0/token``: the client-credentials grant (form body,
  ``client_id``, ``client_secret``, ``scope`` = ``{resource}/.default``), AADSTS errors.
* Management Activity API: ``subscriptions/start`` (400 ``AF20024`` when already
  enabled), ``subscriptions/content`` (needs an enabled subscription, both times or
  neither, ≤ 24 h apart, start ≤ 7 days back; ``NextPageUri`` paging), content blobs.
* Graph: ``/v1.0/auditLogs/signIns`` and ``/directoryAudits`` with a ``$filter`` on the
  right time property (``ge``/``lt``), ``$top`` ≤ 999/1000, ``@odata.nextLink`` paging
  (``$skiptoken``), newest first, 429 + ``Retry-After``.

Every API call needs a bearer token this stub issued for that resource and that has
not expired. Knobs: 429 storms, 5xx outages, truncated bodies, token TTL.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlparse

from tests.inputs.stubs import Stub, ts

TENANT = "7d3c2f4e-1b2a-4c5d-8e9f-0a1b2c3d4e5f"
CLIENT_ID = "0b8e3c1a-5d6f-4a7b-9c8d-1e2f3a4b5c6d"
CLIENT_SECRET = "s3cr3t~VALUE.not-in-logs"
MANAGE = "https://manage.office.com"
GRAPH = "https://graph.microsoft.com"
CONTENT_TYPES = {
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
    "DLP.All",
}


class EntraStub(Stub):
    """Token endpoint + bearer checks shared by the API stubs below."""

    resource = ""

    def __init__(self, ttl: int = 3599) -> None:
        self.ttl = ttl
        self.tokens: dict[str, float] = {}
        self.issued = 0
        self.token_requests = 0
        self.expired_used = 0
        self.throttled = 0
        self.delay = 0.0
        super().__init__()

    @staticmethod
    def _json(
        status: int, doc: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        return (
            status,
            {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
            json.dumps(doc).encode(),
        )

    def _token(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return self._json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "AADSTS70003: The app requested an unsupported grant type.",
                },
            )
        if form.get("client_id") != CLIENT_ID:
            return self._json(
                400,
                {
                    "error": "unauthorized_client",
                    "error_description": f"AADSTS700016: Application with identifier "
                    f"'{form.get('client_id')}' was not found in the directory.",
                },
            )
        if form.get("client_secret") != CLIENT_SECRET:
            return self._json(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. Ensure "
                    "the secret being sent in the request is the client secret value, not the "
                    "client secret ID.\r\nTrace ID: 1\r\nTimestamp: 2026-01-01",
                    "error_codes": [7000215],
                },
            )
        if form.get("scope") != f"{self.resource}/.default":
            return self._json(
                400,
                {
                    "error": "invalid_scope",
                    "error_description": f"AADSTS1002012: The provided value for scope "
                    f"{form.get('scope')} is not valid.",
                },
            )
        tok = "eyJ0eXAiOiJKV1Qi." + uuid.uuid4().hex
        with self.lock:
            self.tokens[tok] = time.time() + self.ttl
            self.issued += 1
        return self._json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.ttl,
                "ext_expires_in": self.ttl,
                "access_token": tok,
            },
        )

    def _bearer_ok(self, h: BaseHTTPRequestHandler) -> bool | None:
        """True: valid; False: unknown token; None: expired."""
        tok = h.headers.get("Authorization", "").removeprefix("Bearer ")
        if tok not in self.tokens:
            return False
        if self.tokens[tok] < time.time():
            self.expired_used += 1
            return None
        return True

    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        url = urlparse(h.path)
        if url.path == f"/{TENANT}/oauth2/v2.0/token" and h.command == "POST":
            return self._token(body)
        return self.api(h, url.path, {k: v[0] for k, v in parse_qs(url.query).items()})

    def api(
        self, h: BaseHTTPRequestHandler, path: str, q: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError  # each API stub below implements its own


def _api_time(value: str) -> dt.datetime:
    """Management Activity API times: YYYY-MM-DD, YYYY-MM-DDTHH:MM(:SS), UTC."""
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    raise ValueError(value)


class ManagementActivityStub(EntraStub):
    """Office 365 Management Activity API for tenant :data:`TENANT`."""

    resource = MANAGE

    def __init__(self, page_size: int = 3, **kwargs: Any) -> None:
        self.page_size = page_size
        self.enabled: set[str] = set()
        self.start_calls = 0
        #: content type → blobs [{contentId, contentCreated (datetime), records}]
        self.blobs: dict[str, list[dict[str, Any]]] = {}
        self.blob_gets = 0
        self.expired: set[str] = set()  # contentIds listed but gone (404 AF20051)
        super().__init__(**kwargs)

    def add_blob(self, ct: str, created: dt.datetime, n: int) -> list[str]:
        """A blob of ``n`` records of ``ct`` made available at ``created``; record Ids."""
        cid = f"20260101{uuid.uuid4().hex}$ct{len(self.blobs.get(ct, []))}"
        records = []
        for i in range(n):
            rid = str(uuid.uuid4())
            records.append(
                {
                    "CreationTime": (created - dt.timedelta(minutes=30, seconds=i)).strftime(
                        "%Y-%m-%dT%H:%M:%S"
                    ),
                    "Id": rid,
                    "Operation": "UserLoggedIn" if "Azure" in ct else "FileAccessed",
                    "OrganizationId": TENANT,
                    "RecordType": 15 if "Azure" in ct else 6,
                    "ResultStatus": "Success",
                    "UserKey": "10032001A2B3C4D5",
                    "UserType": 0,
                    "Version": 1,
                    "Workload": "AzureActiveDirectory" if "Azure" in ct else "SharePoint",
                    "ClientIP": "203.0.113.77",
                    "ObjectId": "00000003-0000-0ff1-ce00-000000000000",
                    "UserId": f"user{i % 4}@acme.example",
                }
            )
        self.blobs.setdefault(ct, []).append(
            {"contentId": cid, "contentCreated": created, "records": records}
        )
        self.blobs[ct].sort(key=lambda b: b["contentCreated"])
        return [r["Id"] for r in records]

    def _err(self, status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
        return self._json(status, {"error": {"code": code, "message": message}})

    def api(
        self, h: BaseHTTPRequestHandler, path: str, q: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        feed = f"/api/v1.0/{TENANT}/activity/feed"
        if not path.startswith(feed):
            return self._err(404, "AF10001", "Not found")
        ok = self._bearer_ok(h)
        if not ok:
            return self._err(
                401,
                "AF10001",
                "Authorization has been denied for this request."
                if ok is False
                else "The token has expired.",
            )
        if q.get("PublisherIdentifier") != TENANT:
            return self._err(400, "AF20010", "PublisherIdentifier is missing or invalid")
        if self.throttle_next > 0:
            self.throttle_next -= 1
            self.throttled += 1
            return self._json(
                429,
                {
                    "error": {
                        "code": "AF429",
                        "message": "Too many requests. Method=GetBlob, PublisherId=" + TENANT,
                    }
                },
                {"Retry-After": "1"},
            )
        if self.fail_next > 0:
            self.fail_next -= 1
            return self._err(503, "AF50000", "An internal error occurred. Retry the request.")
        time.sleep(self.delay)
        rest = path.removeprefix(feed)
        if rest == "/subscriptions/start" and h.command == "POST":
            ct = q.get("contentType", "")
            self.start_calls += 1
            if ct not in CONTENT_TYPES:
                return self._err(400, "AF20011", f"Specified content type is not valid: {ct}")
            if ct in self.enabled:
                return self._err(
                    400, "AF20024", "The subscription is already enabled. No property change."
                )
            self.enabled.add(ct)
            return self._json(200, {"contentType": ct, "status": "enabled", "webhook": None})
        if rest == "/subscriptions/content" and h.command == "GET":
            return self._content(q)
        if rest.startswith("/audit/") and h.command == "GET":
            self.blob_gets += 1
            cid = rest.removeprefix("/audit/")
            if cid in self.expired:
                return self._err(
                    404, "AF20051", f"Content requested with the key {cid} has already expired."
                )
            for blobs in self.blobs.values():
                for b in blobs:
                    if b["contentId"] == cid:
                        status, headers, payload = self._json(200, b["records"])
                        if self.malformed_next > 0:
                            self.malformed_next -= 1
                            payload = payload[: len(payload) // 2]
                        return status, headers, payload
            return self._err(404, "AF20051", f"Content requested with the key {cid} has expired")
        return self._err(404, "AF10001", "Not found")

    def _content(self, q: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        ct = q.get("contentType", "")
        if ct not in CONTENT_TYPES:
            return self._err(400, "AF20011", f"Specified content type is not valid: {ct}")
        if ct not in self.enabled:
            return self._err(400, "AF20022", "No subscription found for the specified content type")
        if ("startTime" in q) != ("endTime" in q):
            return self._err(
                400, "AF20055", "Start time and end time must both be specified (or both omitted)."
            )
        now = dt.datetime.now(dt.UTC)
        try:
            start = _api_time(q["startTime"]) if "startTime" in q else now - dt.timedelta(hours=24)
            end = _api_time(q["endTime"]) if "endTime" in q else now
        except ValueError:
            return self._err(400, "AF20053", "Invalid startTime or endTime")
        if not start < end or end - start > dt.timedelta(hours=24):
            return self._err(
                400,
                "AF20055",
                "Start time and end time must be less than or equal to 24 hours apart.",
            )
        if start < now - dt.timedelta(days=7):
            return self._err(400, "AF20055", "Start time cannot be more than 7 days in the past.")
        rows = [b for b in self.blobs.get(ct, []) if start <= b["contentCreated"] < end]
        pos = int(q.get("nextPage", "0"))
        page = rows[pos : pos + self.page_size]
        out = [
            {
                "contentType": ct,
                "contentId": b["contentId"],
                "contentUri": f"{self.url}/api/v1.0/{TENANT}/activity/feed/audit/{b['contentId']}",
                "contentCreated": b["contentCreated"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "contentExpiration": (b["contentCreated"] + dt.timedelta(days=7)).strftime(
                    "%Y-%m-%dT%H:%M:%S.%fZ"
                ),
            }
            for b in page
        ]
        headers = {}
        if pos + self.page_size < len(rows):
            nq = {**q, "nextPage": str(pos + self.page_size)}
            headers["NextPageUri"] = (
                f"{self.url}/api/v1.0/{TENANT}/activity/feed/subscriptions/content?{urlencode(nq)}"
            )
        status, h2, payload = self._json(200, out, headers)
        return status, h2, payload


_FILTER = re.compile(
    r"^(?P<f1>\w+) ge (?P<lo>\S+) and (?P<f2>\w+) lt (?P<hi>\S+)$",
)


class GraphStub(EntraStub):
    """Microsoft Graph v1.0 ``auditLogs/signIns`` and ``auditLogs/directoryAudits``."""

    resource = GRAPH
    FIELDS = {"signIns": "createdDateTime", "directoryAudits": "activityDateTime"}

    def __init__(self, **kwargs: Any) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {"signIns": [], "directoryAudits": []}
        self.expired_skiptokens: set[str] = set()
        self.deny = False  # 403 Authorization_RequestDenied (no admin consent)
        super().__init__(**kwargs)

    def add_signins(self, n: int, start: dt.datetime, step: dt.timedelta) -> list[str]:
        ids = []
        for i in range(n):
            rid = str(uuid.uuid4())
            ids.append(rid)
            self.rows["signIns"].append(
                {
                    "id": rid,
                    "createdDateTime": (start + i * step).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "userDisplayName": "Ann Lee",
                    "userPrincipalName": f"user{i % 6}@acme.example",
                    "userId": "d3b07384-d9a0-4c3b-9f5e-1a2b3c4d5e6f",
                    "appId": "de8bc8b5-d9f9-48b1-a8ad-b748da725064",
                    "appDisplayName": "Graph Explorer",
                    "ipAddress": "198.51.100.23",
                    "clientAppUsed": "Browser",
                    "correlationId": str(uuid.uuid4()),
                    "conditionalAccessStatus": "notApplied",
                    "isInteractive": True,
                    "riskLevelDuringSignIn": "none",
                    "status": {
                        "errorCode": 0 if i % 4 else 50126,
                        "failureReason": None if i % 4 else "Invalid username or password.",
                    },
                    "deviceDetail": {"operatingSystem": "Windows 10", "browser": "Edge 120"},
                    "location": {"city": "Oslo", "countryOrRegion": "NO"},
                }
            )
        return ids

    def add_audits(self, n: int, start: dt.datetime, step: dt.timedelta) -> list[str]:
        ids = []
        for i in range(n):
            rid = f"Directory_{uuid.uuid4()}"
            ids.append(rid)
            self.rows["directoryAudits"].append(
                {
                    "id": rid,
                    "category": "UserManagement",
                    "correlationId": str(uuid.uuid4()),
                    "result": "success",
                    "resultReason": "",
                    "activityDisplayName": "Update user",
                    "activityDateTime": (start + i * step).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "loggedByService": "Core Directory",
                    "operationType": "Update",
                    "initiatedBy": {
                        "user": {"userPrincipalName": "admin@acme.example", "ipAddress": None},
                        "app": None,
                    },
                    "targetResources": [{"id": "u1", "type": "User"}],
                    "additionalDetails": [],
                }
            )
        return ids

    def _err(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        return self._json(
            status,
            {
                "error": {
                    "code": code,
                    "message": message,
                    "innerError": {"date": ts(dt.datetime.now(dt.UTC)), "request-id": "r1"},
                }
            },
            headers,
        )

    def api(
        self, h: BaseHTTPRequestHandler, path: str, q: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        name = path.removeprefix("/v1.0/auditLogs/")
        if h.command != "GET" or name not in self.FIELDS:
            return self._err(400, "BadRequest", f"Resource not found for the segment '{name}'.")
        ok = self._bearer_ok(h)
        if ok is None:
            return self._err(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )
        if not ok:
            return self._err(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            )
        if self.deny:
            return self._err(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        if self.throttle_next > 0:
            self.throttle_next -= 1
            self.throttled += 1
            return self._err(429, "TooManyRequests", "Too many requests", {"Retry-After": "1"})
        if self.fail_next > 0:
            self.fail_next -= 1
            return self._err(503, "ServiceUnavailable", "Service is unavailable, retry later.")
        time.sleep(self.delay)
        field = self.FIELDS[name]
        if "$skiptoken" in q:
            tok = q["$skiptoken"]
            if tok in self.expired_skiptokens:
                return self._err(400, "BadRequest", "Invalid or expired skip token")
            try:
                lo_s, hi_s, pos_s, top_s, _nonce = json.loads(
                    base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
                )
            except ValueError:
                return self._err(400, "BadRequest", "Invalid skip token")
            pos, top = int(pos_s), int(top_s)
            lo, hi = dt.datetime.fromisoformat(lo_s), dt.datetime.fromisoformat(hi_s)
        else:
            m = _FILTER.match(q.get("$filter", ""))
            if not m or m["f1"] != field or m["f2"] != field:
                return self._err(
                    400, "BadRequest", f"Invalid filter clause: filter on {field} with ge/lt"
                )
            try:
                lo = dt.datetime.fromisoformat(m["lo"].replace("Z", "+00:00"))
                hi = dt.datetime.fromisoformat(m["hi"].replace("Z", "+00:00"))
            except ValueError:
                return self._err(400, "BadRequest", "Invalid DateTimeOffset in the filter")
            top = int(q.get("$top", "100"))
            if not 1 <= top <= 999:
                return self._err(400, "BadRequest", "Invalid page size specified: $top")
            pos = 0
        rows = sorted(
            (
                r
                for r in self.rows[name]
                if lo <= dt.datetime.fromisoformat(r[field].replace("Z", "+00:00")) < hi
            ),
            key=lambda r: r[field],
            reverse=True,
        )
        page = rows[pos : pos + top]
        doc: dict[str, Any] = {
            "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#auditLogs/{name}",
            "value": page,
        }
        if pos + top < len(rows):
            tok = (
                base64.urlsafe_b64encode(
                    json.dumps(
                        [lo.isoformat(), hi.isoformat(), pos + top, top, uuid.uuid4().hex[:8]]
                    ).encode()
                )
                .decode()
                .rstrip("=")
            )
            doc["@odata.nextLink"] = f"{self.url}/v1.0/auditLogs/{name}?$skiptoken={quote(tok)}"
        status, headers, payload = self._json(200, doc)
        if self.malformed_next > 0:
            self.malformed_next -= 1
            payload = payload[: len(payload) // 2]
        return status, headers, payload
