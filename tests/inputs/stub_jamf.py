"""Jamf Pro stub with the user-account bearer flow and the default history collections.

Extends the shared :class:`JamfStub` (client credentials, history paging) with what
developer.jamf.com documents for accounts: ``POST /api/v1/auth/token`` with Basic auth
→ ``{"token", "expires"}``; ``POST /api/v1/auth/keep-alive`` with a live bearer →
a new token, the old one invalidated; 429/5xx/malformed injection on history calls.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlparse

from tests.inputs.stubs import JamfStub

HISTORY = ("/api/v1/jamf-pro-server-url/history", "/api/v1/device-communication-settings/history")


class JamfAccountStub(JamfStub):
    def __init__(self, user: str = "auditor", password: str = "pw-jamf", ttl: int = 3) -> None:
        self.user, self.password = user, password
        self.logins = 0
        self.keep_alives = 0
        self.paths_seen: list[str] = []
        super().__init__(ttl=ttl)

    def _issue(self) -> dict[str, Any]:
        tok = uuid.uuid4().hex
        exp = time.time() + self.ttl
        self.tokens[tok] = exp
        self.issued += 1
        return {"token": tok, "expires": dt.datetime.fromtimestamp(exp, dt.UTC).isoformat()}

    def _json(self, status: int, body: Any):
        return status, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def handle(self, h: BaseHTTPRequestHandler, body: bytes):
        url = urlparse(h.path)
        auth = h.headers.get("Authorization", "")
        if url.path == "/api/v1/auth/token" and h.command == "POST":
            try:
                user, _, pw = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
            except ValueError:
                user = pw = ""
            if not auth.startswith("Basic ") or (user, pw) != (self.user, self.password):
                return self._json(
                    401, {"httpStatus": 401, "errors": [{"code": "INVALID_CREDENTIALS"}]}
                )
            self.logins += 1
            return self._json(200, self._issue())
        if url.path == "/api/v1/auth/keep-alive" and h.command == "POST":
            tok = auth.removeprefix("Bearer ")
            if not auth.startswith("Bearer ") or self.tokens.get(tok, 0) < time.time():
                return self._json(401, {"httpStatus": 401, "errors": [{"code": "INVALID_TOKEN"}]})
            del self.tokens[tok]  # keep-alive invalidates the token it renews
            self.keep_alives += 1
            return self._json(200, self._issue())
        if url.path in HISTORY:
            self.paths_seen.append(url.path)
            with self.lock:
                if self.throttle_next > 0:
                    self.throttle_next -= 1
                    return (
                        429,
                        {"Retry-After": "1", "Content-Type": "application/json"},
                        (b'{"httpStatus":429,"errors":[{"code":"TOO_MANY_REQUESTS"}]}'),
                    )
            if self.fail_next > 0:
                self.fail_next -= 1
                return self._json(503, {"httpStatus": 503, "errors": []})
            if self.malformed_next > 0:
                self.malformed_next -= 1
                return 200, {"Content-Type": "application/json"}, b'{"totalCount": 3, "resu'
            if url.path == HISTORY[1]:
                h.path = "/api/v1/history-test?" + url.query
                status, headers, payload = super().handle(h, body)
                doc = json.loads(payload) if status == 200 else None
                if doc is not None:  # this collection is empty in the stub
                    payload = json.dumps({"totalCount": 0, "results": []}).encode()
                return status, headers, payload
            h.path = "/api/v1/history-test?" + url.query
        return super().handle(h, body)
