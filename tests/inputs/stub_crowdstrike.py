"""CrowdStrike Falcon Event Streams API stub: OAuth2 token, discovery, streams, refresh.

Enforces what the Falcon "Event streams APIs" guide and FalconPy document: form
client credentials at ``/oauth2/token``; bearer on discovery (``appId`` ≤ 32
alphanumerics, ``format=json``) and on the refresh action
(``action_name=refresh_active_stream_session``, ``appId``); ``Authorization: Token
<sessionToken>`` on the stream, whose session dies unless refreshed in time; ``offset``
inclusive; 429 with ``X-RateLimit-RetryAfter`` (epoch seconds).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.inputs.stubs import Stub, ts

CID = "0123456789abcdef0123456789abcdef"


class CrowdStrikeStub(Stub):
    def __init__(
        self,
        client_id: str = "cs-client",
        secret: str = "cs-secret",
        partitions: int = 1,
        session_ttl: float = 1800.0,
        refresh_interval: int = 1800,
    ) -> None:
        self.client_id, self.secret = client_id, secret
        self.partitions = partitions
        self.session_ttl = session_ttl
        self.refresh_interval = refresh_interval
        self.bearers: dict[str, float] = {}
        self.sessions: dict[str, tuple[int, float]] = {}  # token -> (partition, expires)
        self.events: dict[int, list[dict[str, Any]]] = {p: [] for p in range(partitions)}
        self.refreshes = 0
        self.discoveries = 0
        self.opened: list[dict[str, Any]] = []
        self.chunk_events = 100
        self.chunk_delay = 0.0
        self.hold_secs = 0.0  # keep the stream open (quiet) this long after the backlog
        self.truncate_next = 0  # end the next stream inside an event
        self.revoke_sessions = False  # refuse every existing session token once
        self.dead_session_cuts = 0
        super().__init__()

    # -- data ---------------------------------------------------------------------------
    def add(self, n: int, start: dt.datetime, step: dt.timedelta, partition: int = 0) -> list[str]:
        ids = []
        evs = self.events[partition]
        for i in range(n):
            off = len(evs) + 1000  # offsets need not start at 0
            t = start + i * step
            ms = int(t.timestamp() * 1000)
            evs.append(
                {
                    "metadata": {
                        "customerIDString": CID,
                        "offset": off,
                        "eventType": "AuthActivityAuditEvent",
                        "eventCreationTime": ms,
                        "version": "1.0",
                    },
                    "event": {
                        "UserId": f"analyst{i % 5}@example.com",
                        "UserIp": "198.51.100.20",
                        "OperationName": "userAuthenticate",
                        "ServiceName": "CrowdStrike Authentication",
                        "Success": True,
                        "UTCTimestamp": ms // 1000,
                        "AuditKeyValues": [{"Key": "time", "ValueString": ts(t)}],
                    },
                }
            )
            ids.append(f"{CID}:{off}")
        return ids

    def add_raw(self, line: bytes, partition: int = 0) -> None:
        """A line that is not an event (sent as is), after the partition's last event."""
        evs = self.events[partition]
        prev = evs[-1]["metadata"]["offset"] if evs else -1
        evs.append({"_raw": line, "metadata": {"offset": prev}})

    # -- HTTP ---------------------------------------------------------------------------
    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None):
        return (
            status,
            {"Content-Type": "application/json", **(headers or {})},
            json.dumps(body).encode(),
        )

    def _err(self, status: int, message: str, headers: dict[str, str] | None = None):
        return self._json(
            status,
            {
                "meta": {"query_time": 0.001, "trace_id": str(uuid.uuid4())},
                "errors": [{"code": status, "message": message}],
                "resources": [],
            },
            headers,
        )

    def _limits(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": "6000", "X-RateLimit-Remaining": "5999"}

    def _bearer_ok(self, h: BaseHTTPRequestHandler) -> bool:
        tok = h.headers.get("Authorization", "")
        if not tok.startswith("Bearer "):
            return False
        exp = self.bearers.get(tok.removeprefix("Bearer "))
        return exp is not None and exp > time.time()

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        if h.command == "GET" and url.path.startswith("/sensors/entities/datafeed/v1/"):
            with self.lock:
                self.requests.append({"path": h.path, "headers": dict(h.headers), "body": b""})
            self._stream(h, url)
            return
        super()._dispatch(h)

    def handle(self, h: BaseHTTPRequestHandler, body: bytes):
        url = urlparse(h.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/oauth2/token" and h.command == "POST":
            if h.headers.get("Content-Type", "").split(";")[0] != (
                "application/x-www-form-urlencoded"
            ):
                return self._err(400, "form body required")
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if form.get("client_id") != self.client_id or form.get("client_secret") != self.secret:
                return self._err(403, "access denied, invalid credentials")
            tok = uuid.uuid4().hex
            self.bearers[tok] = time.time() + 1799
            return self._json(
                201, {"access_token": tok, "token_type": "bearer", "expires_in": 1799}
            )
        with self.lock:
            if self.throttle_next > 0:
                self.throttle_next -= 1
                return self._err(
                    429,
                    "API rate limit exceeded.",
                    {
                        "X-RateLimit-Limit": "6000",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-RetryAfter": str(int(time.time()) + 1),
                    },
                )
        if not self._bearer_ok(h):
            return self._err(401, "access denied, authorization failed")
        if self.fail_next > 0:
            self.fail_next -= 1
            return self._err(500, "internal server error")
        if url.path == "/sensors/entities/datafeed/v2" and h.command == "GET":
            app = q.get("appId", "")
            if not re.fullmatch(r"[A-Za-z0-9]{1,32}", app):
                return self._err(400, "appId must be 1-32 alphanumeric characters")
            if q.get("format", "json") not in ("json", "flatjson"):
                return self._err(400, "invalid format")
            if self.malformed_next > 0:
                self.malformed_next -= 1
                return 200, {"Content-Type": "application/json"}, b'{"meta": {"query_ti'
            self.discoveries += 1
            resources = []
            for p in range(self.partitions):
                tok = uuid.uuid4().hex
                exp = time.time() + self.session_ttl
                self.sessions[tok] = (p, exp)
                resources.append(
                    {
                        "dataFeedURL": f"{self.url}/sensors/entities/datafeed/v1/{p}?appId={app}",
                        "sessionToken": {
                            "token": tok,
                            "expiration": dt.datetime.fromtimestamp(exp, dt.UTC).isoformat(),
                        },
                        "refreshActiveSessionURL": (
                            f"{self.url}/sensors/entities/datafeed-actions/v1/{p}?appId={app}"
                        ),
                        "refreshActiveSessionInterval": self.refresh_interval,
                    }
                )
            return self._json(
                200,
                {
                    "meta": {"query_time": 0.01, "trace_id": str(uuid.uuid4())},
                    "resources": resources,
                    "errors": [],
                },
                self._limits(),
            )
        m = re.fullmatch(r"/sensors/entities/datafeed-actions/v1/(\d+)", url.path)
        if m and h.command == "POST":
            if q.get("action_name") != "refresh_active_stream_session" or not q.get("appId"):
                return self._err(400, "action_name=refresh_active_stream_session required")
            p = int(m.group(1))
            now = time.time()
            live = [t for t, (pp, exp) in self.sessions.items() if pp == p and exp > now]
            if not live:
                return self._err(404, "no active stream session for this partition")
            for t in live:
                self.sessions[t] = (p, now + self.session_ttl)
            self.refreshes += 1
            return self._json(200, {"meta": {"query_time": 0.001}, "resources": [], "errors": []})
        return self._err(404, "not found")

    def _session_ok(self, token: str, partition: int) -> bool:
        s = self.sessions.get(token)
        return s is not None and s[0] == partition and s[1] > time.time()

    def _stream(self, h: BaseHTTPRequestHandler, url: Any) -> None:
        p = int(url.path.rsplit("/", 1)[-1])
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        token = h.headers.get("Authorization", "").removeprefix("Token ")
        if self.revoke_sessions:
            self.revoke_sessions = False
            self.sessions.clear()
        status, headers, payload = 200, {}, b""
        with self.lock:
            throttled = self.throttle_next > 0
            if throttled:
                self.throttle_next -= 1
        if throttled:
            status, headers, payload = self._err(
                429,
                "API rate limit exceeded.",
                {"X-RateLimit-Remaining": "0", "X-RateLimit-RetryAfter": str(int(time.time()) + 1)},
            )
        elif not h.headers.get("Authorization", "").startswith("Token ") or not self._session_ok(
            token, p
        ):
            status, headers, payload = self._err(401, "access denied, invalid session token")
        elif not q.get("appId"):
            status, headers, payload = self._err(400, "appId required")
        elif self.fail_next > 0:
            self.fail_next -= 1
            status, headers, payload = self._err(503, "service unavailable")
        if status != 200:
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            return
        start = int(q["offset"]) if "offset" in q else None
        self.opened.append({"partition": p, "offset": start})
        evs = [e for e in self.events[p] if start is None or e["metadata"]["offset"] >= start]
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def chunk(data: bytes) -> None:
            h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            h.wfile.flush()

        try:
            for i in range(0, len(evs), self.chunk_events):
                if not self._session_ok(token, p):
                    self.dead_session_cuts += 1
                    h.close_connection = True
                    return  # the session expired: the server drops the stream
                part = evs[i : i + self.chunk_events]
                chunk(
                    b"".join(
                        (e["_raw"] if "_raw" in e else json.dumps(e).encode()) + b"\n" for e in part
                    )
                )
                if self.chunk_delay:
                    time.sleep(self.chunk_delay)
            if self.truncate_next > 0:
                self.truncate_next -= 1
                chunk(b'{"metadata": {"customerIDString": "' + CID.encode() + b'", "offs')
                h.wfile.write(b"0\r\n\r\n")
                return
            if self.hold_secs:
                time.sleep(self.hold_secs)
            h.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
