"""Salesforce stub: OAuth 2.0 token endpoint, REST query with paging, EventLogFile CSVs.

Enforces the documented shapes: ``/services/oauth2/token`` with the client-credentials
grant (client id/secret) or the JWT bearer grant (RS256 assertion with ``iss``, ``sub``,
``aud``, ``exp`` ≤ 3 min, verified with the connected app's certificate key);
``Authorization: Bearer`` on data calls (401 ``INVALID_SESSION_ID`` once a session
is expired); SOQL of the shape the input must send (``>=`` dateTime literal, ORDER BY);
``Sforce-Query-Options: batchSize`` 200-2000 and ``nextRecordsUrl`` paging; 403
``REQUEST_LIMIT_EXCEEDED`` with ``Sforce-Limit-Info``.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import re
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.inputs.stubs import Stub

VER = "v60.0"


def sf_time(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class SalesforceStub(Stub):
    def __init__(
        self,
        client_id: str = "3MVG9-consumer-key",
        secret: str = "sf-secret",
        username: str = "integration@acme.example",
        public_key: Any = None,
        audience: str = "https://login.salesforce.com",
    ) -> None:
        self.client_id, self.secret, self.username = client_id, secret, username
        self.public_key, self.audience = public_key, audience
        self.tokens: dict[str, float] = {}
        self.session_secs = 3600.0
        self.issued = 0
        self.expired_used = 0
        self.files: list[dict[str, Any]] = []
        self.csv: dict[str, bytes] = {}
        self.audit: list[dict[str, Any]] = []
        self.cursors: dict[str, tuple[list[dict[str, Any]], int]] = {}
        self.queries: list[str] = []
        self.downloads: list[str] = []
        self.truncate_next = 0
        self.expire_at_request = 0  # expire every session when data request N arrives
        self.data_requests = 0
        self.limit_info = "api-usage=120/15000"
        super().__init__()

    # -- data ---------------------------------------------------------------------------
    def add_file(self, event_type: str, log_date: dt.datetime, rows: int) -> list[str]:
        fid = "0AT" + uuid.uuid4().hex[:15].upper()
        buf = io.StringIO()
        w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
        w.writerow(["EVENT_TYPE", "TIMESTAMP", "REQUEST_ID", "ORGANIZATION_ID", "USER_ID",
                    "USER_NAME", "CLIENT_IP", "URI", "LOGIN_STATUS", "TIMESTAMP_DERIVED"])  # fmt: skip
        ids = []
        for i in range(rows):
            t = log_date + dt.timedelta(seconds=i)
            req = f"4{uuid.uuid4().hex[:14]}"
            stamp = t.strftime("%Y%m%d%H%M%S.000")
            w.writerow([event_type, stamp, req, "00D000000000001", "005000000000001",
                        f"user{i % 3}@acme.example", "203.0.113.9", "/home/home.jsp",
                        "LOGIN_NO_ERROR", t.strftime("%Y-%m-%dT%H:%M:%S.000Z")])  # fmt: skip
            ids.append(f"{event_type}:{req}:{stamp}")
        data = buf.getvalue().encode()
        self.csv[fid] = data
        self.files.append(
            {
                "attributes": {
                    "type": "EventLogFile",
                    "url": f"/services/data/{VER}/sobjects/EventLogFile/{fid}",
                },
                "Id": fid,
                "EventType": event_type,
                "LogDate": sf_time(log_date),
                "LogFile": f"/services/data/{VER}/sobjects/EventLogFile/{fid}/LogFile",
                "LogFileLength": float(len(data)),
                "Interval": "Daily",
            }
        )
        return ids

    def add_audit(self, n: int, start: dt.datetime, step: dt.timedelta) -> list[str]:
        ids = []
        for i in range(n):
            rid = "0Ym" + uuid.uuid4().hex[:15].upper()
            ids.append(rid)
            self.audit.append(
                {
                    "attributes": {
                        "type": "SetupAuditTrail",
                        "url": f"/services/data/{VER}/sobjects/SetupAuditTrail/{rid}",
                    },
                    "Id": rid,
                    "Action": "changedPassword",
                    "Section": "Manage Users",
                    "CreatedDate": sf_time(start + i * step),
                    "CreatedById": "005000000000001",
                    "CreatedBy": {
                        "attributes": {"type": "User"},
                        "Username": "admin@acme.example",
                    },
                    "Display": f"Changed password for user {i}",
                    "DelegateUser": None,
                    "ResponsibleNamespacePrefix": None,
                    "CreatedByContext": None,
                    "CreatedByIssuer": None,
                }
            )
        return ids

    # -- HTTP ---------------------------------------------------------------------------
    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None):
        h = {"Content-Type": "application/json;charset=UTF-8", **(headers or {})}
        return status, h, json.dumps(body).encode()

    def _err(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        return self._json(status, [{"message": message, "errorCode": code}], headers)

    def _token(self, body: bytes):
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if form.get("client_id") != self.client_id or form.get("client_secret") != self.secret:
                return self._json(
                    400,
                    {"error": "invalid_client", "error_description": "invalid client credentials"},
                )
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            if not self._jwt_ok(form.get("assertion", "")):
                return self._json(
                    400, {"error": "invalid_grant", "error_description": "invalid assertion"}
                )
        else:
            return self._json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
            )
        tok = "00D000000000001!" + uuid.uuid4().hex
        self.tokens[tok] = time.time() + self.session_secs
        self.issued += 1
        return self._json(
            200,
            {
                "access_token": tok,
                "instance_url": self.url,
                "id": f"{self.url}/id/00D000000000001/005000000000001",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": "c2lnbmF0dXJl",
            },
        )

    def _jwt_ok(self, assertion: str) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            head, claims, sig = assertion.split(".")
            if json.loads(_b64d(head)).get("alg") != "RS256":
                return False
            self.public_key.verify(
                _b64d(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            c = json.loads(_b64d(claims))
        except (ValueError, InvalidSignature, AttributeError):
            return False
        return (
            c.get("iss") == self.client_id
            and c.get("sub") == self.username
            and c.get("aud") == self.audience
            and time.time() < c.get("exp", 0) <= time.time() + 180
        )

    def handle(self, h: BaseHTTPRequestHandler, body: bytes):
        url = urlparse(h.path)
        if url.path == "/services/oauth2/token" and h.command == "POST":
            return self._token(body)
        with self.lock:
            if self.throttle_next > 0:
                self.throttle_next -= 1
                return self._err(
                    403,
                    "REQUEST_LIMIT_EXCEEDED",
                    "ConcurrentPerOrgLongTxn Limit exceeded."
                    if self.limit_info.endswith("15000") and "15000/" not in self.limit_info
                    else "TotalRequests Limit exceeded.",
                    {"Sforce-Limit-Info": self.limit_info},
                )
            self.data_requests += 1
            if self.data_requests == self.expire_at_request:
                self.tokens = dict.fromkeys(self.tokens, 0.0)
        tok = h.headers.get("Authorization", "").removeprefix("Bearer ")
        if tok not in self.tokens or self.tokens[tok] < time.time():
            if tok in self.tokens:
                self.expired_used += 1
            return self._err(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self.fail_next > 0:
            self.fail_next -= 1
            return self._err(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
        limit = {"Sforce-Limit-Info": "api-usage=120/15000"}
        m = re.fullmatch(rf"/services/data/{VER}/sobjects/EventLogFile/(\w+)/LogFile", url.path)
        if m:
            data = self.csv.get(m.group(1))
            if data is None:
                return self._err(404, "NOT_FOUND", "The requested resource does not exist")
            self.downloads.append(m.group(1))
            if self.truncate_next > 0:
                self.truncate_next -= 1
                data = data[: len(data) // 2]
            return 200, {"Content-Type": "text/csv", **limit}, data
        if url.path == f"/services/data/{VER}/query":
            q = parse_qs(url.query).get("q", [""])[0]
            opts = h.headers.get("Sforce-Query-Options", "batchSize=2000")
            size = int(opts.split("=", 1)[1])
            if not 200 <= size <= 2000:
                return self._err(400, "INVALID_QUERY_LOCATOR", "batchSize must be 200-2000")
            self.queries.append(q)
            try:
                rows = self._soql(q)
            except ValueError as exc:
                return self._err(400, "MALFORMED_QUERY", str(exc))
            return self._page(rows, size, limit)
        m = re.fullmatch(rf"/services/data/{VER}/query/([\w-]+)", url.path)
        if m:
            key = m.group(1)
            loc, _, pos = key.rpartition("-")
            found = self.cursors.get(loc)
            if found is None or not pos.isdigit():
                return self._err(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return self._page(found[0], found[1], limit, loc, int(pos))
        return self._err(404, "NOT_FOUND", "The requested resource does not exist")

    def _page(self, rows, size, headers, loc: str | None = None, start: int = 0):
        if self.malformed_next > 0:
            self.malformed_next -= 1
            return 200, {"Content-Type": "application/json"}, b'{"totalSize": 5, "done": fal'
        loc = loc or "01g" + uuid.uuid4().hex[:12]
        self.cursors[loc] = (rows, size)
        page = rows[start : start + size]
        done = start + size >= len(rows)
        body: dict[str, Any] = {"totalSize": len(rows), "done": done, "records": page}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/{VER}/query/{loc}-{start + size}"
        return self._json(200, body, headers)

    _DT = r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)"

    def _soql(self, q: str) -> list[dict[str, Any]]:
        m = re.fullmatch(
            r"SELECT Id, EventType, LogDate, LogFile, LogFileLength, Interval FROM EventLogFile "
            rf"WHERE LogDate >= {self._DT}(?: AND EventType IN \(([^)]*)\))?"
            r"(?: AND Interval = '(Hourly|Daily)')? ORDER BY LogDate, Id",
            q,
        )
        if m:
            since = m.group(1)
            types = {t.strip().strip("'") for t in m.group(2).split(",")} if m.group(2) else None
            rows = [
                f
                for f in self.files
                if _norm(f["LogDate"]) >= since and (types is None or f["EventType"] in types)
            ]
            return sorted(rows, key=lambda f: (f["LogDate"], f["Id"]))
        m = re.fullmatch(
            r"SELECT Id, Action, Section, CreatedDate, CreatedById, CreatedBy\.Username, Display, "
            r"DelegateUser, ResponsibleNamespacePrefix, CreatedByContext, CreatedByIssuer "
            rf"FROM SetupAuditTrail WHERE CreatedDate >= {self._DT} ORDER BY CreatedDate, Id",
            q,
        )
        if m:
            rows = [r for r in self.audit if _norm(r["CreatedDate"]) >= m.group(1)]
            return sorted(rows, key=lambda r: (r["CreatedDate"], r["Id"]))
        raise ValueError(f"unexpected SOQL: {q[:120]}")


def _norm(sf: str) -> str:
    """``2024-01-01T10:00:00.000+0000`` → ``2024-01-01T10:00:00Z`` (comparable strings)."""
    return sf[:19] + "Z"
