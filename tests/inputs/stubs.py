"""Vendor API stubs on 127.0.0.1 that enforce the documented request shape and auth.

Each stub is a real HTTP server in a thread; tests change its knobs (events, token,
injected 429s / 5xx / malformed bodies) and read its counters.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse


def ts(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class Stub:
    """Base: a threaded HTTP server; subclasses implement ``handle(handler)``."""

    def __init__(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                stub._dispatch(self)

            def do_POST(self) -> None:
                stub._dispatch(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.fail_next = 0  # answer the next N requests with 500
        self.throttle_next = 0  # answer the next N requests with 429
        self.malformed_next = 0  # answer the next N requests with a truncated body
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self.lock:
            self.requests.append({"path": h.path, "headers": dict(h.headers), "body": body})
        try:
            status, headers, payload = self.handle(h, body)
        except Exception as exc:  # a stub bug must show, not hang the client
            status, headers, payload = 599, {}, str(exc).encode()
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError  # each stub below implements its vendor's API

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class OktaStub(Stub):
    """``GET /api/v1/logs`` per developer.okta.com/docs/reference/api/system-log/."""

    def __init__(self, token: str = "00okta-test-token", rate_limit: int = 1000) -> None:
        self.token = token
        self.events: list[dict[str, Any]] = []
        self.rate_limit = rate_limit  # requests per 1 s window (X-Rate-Limit-Limit)
        self.window = (0, 0)  # (window start second, used)
        self.throttled = 0
        super().__init__()

    def add_events(self, n: int, start: dt.datetime, step: dt.timedelta) -> list[str]:
        ids = []
        for i in range(n):
            eid = str(uuid.uuid4())
            ids.append(eid)
            self.events.append(
                {
                    "uuid": eid,
                    "published": ts(start + i * step),
                    "eventType": "user.session.start",
                    "version": "0",
                    "severity": "INFO",
                    "displayMessage": "User login to Okta",
                    "actor": {
                        "id": "00u1",
                        "type": "User",
                        "alternateId": f"user{i % 7}@example.com",
                        "displayName": "User",
                    },
                    "client": {"ipAddress": "198.51.100.7"},
                    "outcome": {"result": "SUCCESS"},
                }
            )
        self.events.sort(key=lambda e: e["published"])
        return ids

    def _limits(self) -> dict[str, str]:
        now = int(time.time())
        start, used = self.window
        if start != now:
            start, used = now, 0
        used += 1
        self.window = (start, used)
        return {
            "X-Rate-Limit-Limit": str(self.rate_limit),
            "X-Rate-Limit-Remaining": str(max(0, self.rate_limit - used)),
            "X-Rate-Limit-Reset": str(start + 1),
        }, used > self.rate_limit  # type: ignore[return-value]

    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        url = urlparse(h.path)
        if url.path != "/api/v1/logs" or h.command != "GET":
            return (
                404,
                {},
                b'{"errorCode":"E0000022","errorSummary":"The endpoint does not support the provided HTTP method"}',
            )
        with self.lock:
            limits, over = self._limits()  # type: ignore[misc]
            if self.throttle_next > 0 or over:
                self.throttle_next = max(0, self.throttle_next - 1)
                self.throttled += 1
                limits["X-Rate-Limit-Remaining"] = "0"
                return (
                    429,
                    {**limits, "Content-Type": "application/json"},
                    json.dumps(
                        {
                            "errorCode": "E0000047",
                            "errorSummary": "API call exceeded rate limit due to too many requests.",
                        }
                    ).encode(),
                )
        if h.headers.get("Authorization") != f"SSWS {self.token}":
            return (
                401,
                {"Content-Type": "application/json"},
                json.dumps(
                    {
                        "errorCode": "E0000011",
                        "errorSummary": "Invalid token provided",
                        "errorCauses": [],
                    }
                ).encode(),
            )
        if self.fail_next > 0:
            self.fail_next -= 1
            return (
                500,
                {"Content-Type": "application/json"},
                b'{"errorCode":"E0000009","errorSummary":"Internal Server Error"}',
            )
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if q.get("sortOrder") != "ASCENDING":
            return (
                400,
                {},
                b'{"errorCode":"E0000001","errorSummary":"polling needs sortOrder=ASCENDING"}',
            )
        limit = min(int(q.get("limit", 100)), 1000)
        if "after" in q:
            try:
                pos = int(q["after"].removeprefix("c"))
            except ValueError:
                return (
                    400,
                    {},
                    b'{"errorCode":"E0000031","errorSummary":"Invalid search criteria."}',
                )
        elif "since" in q:
            since = q["since"]
            pos = next(
                (i for i, e in enumerate(self.events) if e["published"] >= since), len(self.events)
            )
        else:
            return 400, {}, b'{"errorCode":"E0000001","errorSummary":"since or after required"}'
        page = self.events[pos : pos + limit]
        nxt = {k: v for k, v in q.items() if k not in ("since", "after")}
        nxt["after"] = f"c{pos + len(page)}"
        link = f'<{self.url}/api/v1/logs?{urlencode(nxt)}>; rel="next"'
        payload = json.dumps(page).encode()
        if self.malformed_next > 0:
            self.malformed_next -= 1
            payload = payload[: len(payload) // 2]
        return 200, {**limits, "Content-Type": "application/json", "Link": link}, payload


class GithubStub(Stub):
    """``GET /orgs/{org}/audit-log`` per docs.github.com/en/rest/orgs/orgs."""

    def __init__(self, token: str = "ghp_test", org: str = "acme") -> None:
        self.token = token
        self.org = org
        self.events: list[dict[str, Any]] = []
        self.quota_exhausted_next = 0  # 403 + x-ratelimit-remaining: 0
        super().__init__()

    def add_events(self, n: int, start: dt.datetime, step: dt.timedelta) -> list[str]:
        ids = []
        for i in range(n):
            t = start + i * step
            doc = uuid.uuid4().hex
            ids.append(doc)
            self.events.append(
                {
                    "@timestamp": int(t.timestamp() * 1000),
                    "_document_id": doc,
                    "action": "repo.create" if i % 2 else "org.update_member",
                    "actor": "octocat",
                    "actor_ip": "192.0.2.10",
                    "org": self.org,
                    "repo": f"{self.org}/r{i}",
                    "created_at": int(t.timestamp() * 1000),
                    "operation_type": "create",
                }
            )
        self.events.sort(key=lambda e: e["@timestamp"])
        return ids

    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        url = urlparse(h.path)
        if url.path != f"/orgs/{self.org}/audit-log":
            return 404, {}, b'{"message":"Not Found"}'
        reset = str(int(time.time()) + 1)
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return (
                401,
                {"Content-Type": "application/json"},
                b'{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}',
            )
        if self.quota_exhausted_next > 0:
            self.quota_exhausted_next -= 1
            return (
                403,
                {
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": reset,
                    "x-ratelimit-limit": "5000",
                },
                (b'{"message":"API rate limit exceeded for user."}'),
            )
        if self.fail_next > 0:
            self.fail_next -= 1
            return 502, {}, b'{"message":"Server Error"}'
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return (
                429,
                {"retry-after": "1"},
                b'{"message":"You have exceeded a secondary rate limit."}',
            )
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if q.get("order") != "asc" or int(q.get("per_page", 30)) > 100:
            return 422, {}, b'{"message":"Validation Failed"}'
        since_ms = 0
        for term in q.get("phrase", "").split():
            if term.startswith("created:>="):
                t = dt.datetime.fromisoformat(
                    term.removeprefix("created:>=").replace("Z", "+00:00")
                )
                since_ms = int(t.timestamp() * 1000)
        rows = [e for e in self.events if e["@timestamp"] >= since_ms]
        pos = int(q["after"].removeprefix("MS4")) if "after" in q else 0
        per = int(q.get("per_page", 30))
        page = rows[pos : pos + per]
        headers = {
            "Content-Type": "application/json",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": reset,
        }
        if pos + per < len(rows):
            nxt = {**q, "after": f"MS4{pos + per}"}
            headers["Link"] = f'<{self.url}{url.path}?{urlencode(nxt)}>; rel="next"'
        return 200, headers, json.dumps(page).encode()


class DuoStub(Stub):
    """Duo Admin API with HMAC-SHA1 request signing (duo.com/docs/adminapi#authentication)."""

    def __init__(self, ikey: str = "DIXXXXXXXXXXXXXXXXXX", skey: str = "duo-secret-key") -> None:
        self.ikey, self.skey = ikey, skey
        self.auth: list[dict[str, Any]] = []
        self.admin: list[dict[str, Any]] = []
        super().__init__()

    def add_auth(self, n: int, start: dt.datetime, step: dt.timedelta) -> list[str]:
        ids = []
        for i in range(n):
            t = start + i * step
            txid = str(uuid.uuid4())
            ids.append(txid)
            self.auth.append(
                {
                    "txid": txid,
                    "timestamp": int(t.timestamp()),
                    "isotimestamp": t.isoformat(),
                    "event_type": "authentication",
                    "result": "success" if i % 5 else "denied",
                    "reason": "user_approved",
                    "factor": "duo_push",
                    "user": {"name": f"user{i % 9}", "key": "DU1"},
                    "access_device": {"ip": "198.51.100.9"},
                    "application": {"name": "VPN", "key": "DI1"},
                    "_ms": int(t.timestamp() * 1000),
                }
            )
        self.auth.sort(key=lambda e: (e["_ms"], e["txid"]))
        return ids

    def add_admin(self, n: int, start: dt.datetime) -> None:
        for i in range(n):
            self.admin.append(
                {
                    "timestamp": int(start.timestamp()) + i,
                    "username": "admin",
                    "action": "user_update",
                    "object": f"u{i}",
                    "description": "{}",
                }
            )

    def _verify(self, h: BaseHTTPRequestHandler, path: str, params: dict[str, str]) -> bool:
        from mantissa.inputs.duo import sign  # the documented algorithm, shared by both sides

        date = h.headers.get("Date", "")
        try:
            sent = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return False
        if abs(sent.timestamp() - time.time()) > 300:
            return False
        want = sign("GET", h.headers.get("Host", ""), path, params, self.ikey, self.skey, date)
        return hmac.compare_digest(want, h.headers.get("Authorization", ""))

    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        url = urlparse(h.path)
        params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if not self._verify(h, url.path, params):
            return (
                401,
                {},
                json.dumps(
                    {
                        "code": 40103,
                        "message": "Invalid signature in request credentials",
                        "stat": "FAIL",
                    }
                ).encode(),
            )
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return (
                429,
                {},
                json.dumps(
                    {"code": 42901, "message": "Too Many Requests", "stat": "FAIL"}
                ).encode(),
            )
        if self.fail_next > 0:
            self.fail_next -= 1
            return 503, {}, b'{"stat":"FAIL","code":50301,"message":"Service unavailable"}'
        if url.path == "/admin/v2/logs/authentication":
            if "mintime" not in params or "maxtime" not in params:
                return (
                    400,
                    {},
                    b'{"stat":"FAIL","code":40002,"message":"Missing required request parameters"}',
                )
            lo, hi, limit = (
                int(params["mintime"]),
                int(params["maxtime"]),
                min(int(params.get("limit", 100)), 1000),
            )
            if hi > time.time() * 1000 - 120_000 + 5000:
                # Duo: results newer than two minutes are not yet consistent; refuse them here
                return (
                    400,
                    {},
                    b'{"stat":"FAIL","code":40002,"message":"maxtime is within the last two minutes"}',
                )
            rows = [e for e in self.auth if lo <= e["_ms"] <= hi]
            pos = 0
            if params.get("next_offset"):
                ts, txid = params["next_offset"].split(",")
                pos = (
                    next(i for i, e in enumerate(rows) if (e["_ms"], e["txid"]) == (int(ts), txid))
                    + 1
                )
            page = rows[pos : pos + limit]
            more = pos + limit < len(rows)
            meta = {
                "total_objects": len(rows),
                "next_offset": [str(page[-1]["_ms"]), page[-1]["txid"]] if more else None,
            }
            out = [{k: v for k, v in e.items() if k != "_ms"} for e in page]
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps(
                    {"stat": "OK", "response": {"authlogs": out, "metadata": meta}}
                ).encode(),
            )
        if url.path == "/admin/v1/logs/administrator":
            lo = int(params.get("mintime", 0))
            rows = sorted(
                (e for e in self.admin if e["timestamp"] >= lo), key=lambda e: e["timestamp"]
            )[:1000]
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps({"stat": "OK", "response": rows}).encode(),
            )
        return 404, {}, b'{"stat":"FAIL","code":40401,"message":"Resource not found"}'


class SlackAuditStub(Stub):
    """``GET /audit/v1/logs``: newest first, cursor paging, ok:false errors, 429 Retry-After."""

    def __init__(self, token: str = "xoxp-test") -> None:
        self.token = token
        self.entries: list[dict[str, Any]] = []
        super().__init__()

    def add(self, n: int, start: dt.datetime, step: dt.timedelta) -> list[str]:
        ids = []
        for i in range(n):
            eid = str(uuid.uuid4())
            ids.append(eid)
            self.entries.append(
                {
                    "id": eid,
                    "date_create": int((start + i * step).timestamp()),
                    "action": "user_login",
                    "actor": {
                        "type": "user",
                        "user": {"id": "W1", "name": "ann", "email": "ann@example.com"},
                    },
                    "entity": {"type": "workspace", "workspace": {"id": "T1", "name": "acme"}},
                    "context": {"ip_address": "192.0.2.1", "ua": "Mozilla"},
                }
            )
        self.entries.sort(key=lambda e: -e["date_create"])
        return ids

    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        url = urlparse(h.path)
        if url.path != "/audit/v1/logs":
            return 404, {}, b'{"ok":false,"error":"unknown_method"}'
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return 200, {"Content-Type": "application/json"}, b'{"ok":false,"error":"invalid_auth"}'
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return 429, {"Retry-After": "1"}, b'{"ok":false,"error":"ratelimited"}'
        if self.fail_next > 0:
            self.fail_next -= 1
            return 503, {}, b'{"ok":false,"error":"service_unavailable"}'
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        lo, hi = int(q.get("oldest", 0)), int(q.get("latest", 2**40))
        rows = [e for e in self.entries if lo <= e["date_create"] <= hi]
        pos = int(q["cursor"].removeprefix("dXNl")) if q.get("cursor") else 0
        limit = int(q.get("limit", 100))
        page = rows[pos : pos + limit]
        nxt = f"dXNl{pos + limit}" if pos + limit < len(rows) else ""
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps({"entries": page, "response_metadata": {"next_cursor": nxt}}).encode(),
        )


class OnePasswordStub(Stub):
    """Events API: POST ResetCursor then cursor, has_more; Bearer token."""

    PATHS = {
        "/api/v1/signinattempts": "signin",
        "/api/v1/itemusages": "item",
        "/api/v2/auditevents": "audit",
    }

    def __init__(self, token: str = "eyJ-test") -> None:
        self.token = token
        self.items: dict[str, list[dict[str, Any]]] = {v: [] for v in self.PATHS.values()}
        super().__init__()

    def add(self, feed: str, n: int, start: dt.datetime) -> list[str]:
        ids = []
        for i in range(n):
            u = str(uuid.uuid4())
            ids.append(u)
            self.items[feed].append(
                {
                    "uuid": u,
                    "timestamp": ts(start + dt.timedelta(seconds=i)),
                    "category": "success",
                    "type": "credentials_ok",
                    "target_user": {"uuid": "U1", "name": "Ann", "email": "ann@example.com"},
                    "client": {"ip_address": "192.0.2.3"},
                }
            )
        return ids

    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        feed = self.PATHS.get(urlparse(h.path).path)
        if feed is None or h.command != "POST":
            return 404, {}, b'{"Error":{"Message":"Not Found"}}'
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {}, b'{"Error":{"Message":"Unauthorized"}}'
        with self.lock:
            if self.throttle_next > 0:  # 600/min, 30,000/h: 429, wait for the window reset
                self.throttle_next -= 1
                return 429, {}, b'{"Error":{"Message":"Too Many Requests"}}'
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, {}, b'{"Error":{"Message":"Internal Server Error"}}'
        req = json.loads(body or b"{}")
        if "cursor" in req:
            pos, limit = (int(x) for x in req["cursor"].split(":"))
        elif "start_time" in req:
            limit = int(req.get("limit", 100))
            pos = sum(1 for e in self.items[feed] if e["timestamp"] < req["start_time"])
        else:
            return 400, {}, b'{"Error":{"Message":"cursor or ResetCursor required"}}'
        page = self.items[feed][pos : pos + limit]
        end = pos + len(page)
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps(
                {"cursor": f"{end}:{limit}", "has_more": end < len(self.items[feed]), "items": page}
            ).encode(),
        )


class JamfStub(Stub):
    """Jamf Pro: /api/oauth/token (client credentials, short-lived) and a history list."""

    def __init__(self, client_id: str = "cid", secret: str = "csecret", ttl: int = 3) -> None:
        self.client_id, self.secret, self.ttl = client_id, secret, ttl
        self.tokens: dict[str, float] = {}
        self.expired_used = 0
        self.issued = 0
        self.history: list[dict[str, Any]] = []
        self.delay = 0.0
        super().__init__()

    def add(self, n: int, start: dt.datetime) -> None:
        for i in range(n):
            self.history.append(
                {
                    "id": str(len(self.history) + 1),
                    "username": "admin",
                    "date": ts(start + dt.timedelta(seconds=i)),
                    "note": f"changed setting {i}",
                    "details": None,
                }
            )

    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        url = urlparse(h.path)
        if url.path == "/api/oauth/token":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if (
                form.get("grant_type") != "client_credentials"
                or form.get("client_id") != self.client_id
                or form.get("client_secret") != self.secret
            ):
                return 401, {}, b'{"error":"invalid_client"}'
            tok = uuid.uuid4().hex
            self.tokens[tok] = time.time() + self.ttl
            self.issued += 1
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps(
                    {"access_token": tok, "token_type": "Bearer", "expires_in": self.ttl}
                ).encode(),
            )
        if url.path != "/api/v1/history-test":
            return 404, {}, b"{}"
        tok = h.headers.get("Authorization", "").removeprefix("Bearer ")
        if tok not in self.tokens or self.tokens[tok] < time.time():
            self.expired_used += 1
            return (
                401,
                {},
                b'{"httpStatus":401,"errors":[{"code":"INVALID_TOKEN","description":"Unauthorized"}]}',
            )
        time.sleep(self.delay)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        since = q["filter"].split('"')[1]
        rows = sorted((r for r in self.history if r["date"] >= since), key=lambda r: r["date"])
        page, size = int(q["page"]), int(q["page-size"])
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps(
                {"totalCount": len(rows), "results": rows[page * size : (page + 1) * size]}
            ).encode(),
        )


class SqsStub(Stub):
    """Amazon SQS over its JSON protocol (``POST /``, ``X-Amz-Target: AmazonSQS.<Action>``,
    ``application/x-amz-json-1.0``, SigV4) with the documented common errors: 403
    ``ExpiredTokenException``, 400 ``ThrottlingException``, 500 ``InternalFailure``
    (docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html)."""

    def __init__(self, access_key: str = "testing") -> None:
        self.access_key = access_key
        self.expired = False
        self.actions: list[str] = []
        super().__init__()

    @staticmethod
    def _error(status: int, kind: str, message: str) -> tuple[int, dict[str, str], bytes]:
        body = {"__type": f"com.amazon.coral.service#{kind}", "message": message}
        return status, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(body).encode()

    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        target = h.headers.get("X-Amz-Target", "")
        if h.command != "POST" or not target.startswith("AmazonSQS."):
            return self._error(400, "UnknownOperationException", "no X-Amz-Target")
        auth = h.headers.get("Authorization", "")
        if not auth.startswith(f"AWS4-HMAC-SHA256 Credential={self.access_key}/") or (
            "/sqs/aws4_request" not in auth
        ):
            return self._error(403, "IncompleteSignature", "missing SigV4 signature")
        action = target.removeprefix("AmazonSQS.")
        with self.lock:
            self.actions.append(action)
            if self.expired:
                return self._error(
                    403,
                    "ExpiredTokenException",
                    "The security token included in the request is expired",
                )
            if self.throttle_next > 0:
                self.throttle_next -= 1
                return self._error(
                    400, "ThrottlingException", "Rate exceeded for the request, try again"
                )
            if self.fail_next > 0:
                self.fail_next -= 1
                return self._error(500, "InternalFailure", "The request processing has failed")
        req = json.loads(body or b"{}")
        if action == "ReceiveMessage" and "QueueUrl" in req:
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, b"{}"
        return self._error(400, "InvalidAction", f"{action} is not supported by this stub")
