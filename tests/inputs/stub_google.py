"""Google stubs: the OAuth token endpoint (JWT bearer grant) and the Admin SDK Reports API.

The token endpoint verifies the service account's RS256 assertion with its public key
and the claims Google checks (``iss``, ``sub``, ``scope``, ``aud``, ``iat``/``exp`` ≤ 1 h),
answering RFC 6749 errors (``invalid_grant``, ``unauthorized_client``) like Google.
``activities.list`` enforces the path, the ``applicationName`` enum, a valid bearer
token, RFC 3339 ``startTime``/``endTime`` (start before end, not in the future, within
180 days), ``maxResults`` 1..1000 and page tokens bound to their window; items come newest
first like the real API. Knobs: 429 storms, 5xx outages, truncated pages, token TTL.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.inputs.stubs import Stub, ts

SCOPE = "https://www.googleapis.com/auth/admin.reports.audit.readonly"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
APPLICATIONS = {
    "access_transparency", "admin", "calendar", "chat", "drive", "gcp", "gplus", "groups",
    "groups_enterprise", "jamboard", "login", "meet", "mobile", "rules", "saml", "token",
    "user_accounts", "context_aware_access", "chrome", "data_studio", "keep", "vault",
}  # fmt: skip
PATH = "/admin/reports/v1/activity/users/all/applications/"


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def service_account(token_uri: str) -> tuple[dict[str, Any], rsa.RSAPublicKey]:
    """A fresh service account JSON key (as Google issues it) and its public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    kid = uuid.uuid4().hex
    info = {
        "type": "service_account",
        "project_id": "acme-siem",
        "private_key_id": kid,
        "private_key": pem,
        "client_email": "mantissa@acme-siem.iam.gserviceaccount.com",
        "client_id": "104242424242424242424",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    return info, key.public_key()


class GoogleStub(Stub):
    """``POST /token`` and ``GET /admin/reports/v1/activity/users/all/applications/{app}``."""

    def __init__(self, subject: str = "admin@acme.example", ttl: int = 3600) -> None:
        self.subject = subject
        self.ttl = ttl
        self.tokens: dict[str, float] = {}
        self.issued = 0
        self.token_requests = 0
        self.expired_used = 0
        self.throttled = 0
        self.quota403_next = 0  # answer the next N requests 403 userRateLimitExceeded
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.delay = 0.0
        self.seq = 0
        super().__init__()
        self.token_uri = f"{self.url}/token"
        self.key_info, self.public_key = service_account(self.token_uri)
        self.trusted: dict[str, Any] = {self.key_info["private_key_id"]: self.public_key}
        self.email = self.key_info["client_email"]
        self._lock = threading.Lock()

    # -- data -------------------------------------------------------------------------
    def add(self, app: str, n: int, start: dt.datetime, step: dt.timedelta) -> list[str]:
        """``n`` activities of ``app`` from ``start``; returns their uniqueQualifiers."""
        ids = []
        for i in range(n):
            self.seq += 1
            uq = str(-(10**17) - self.seq)
            ids.append(uq)
            t = start + i * step
            self.items.setdefault(app, []).append(
                {
                    "kind": "admin#reports#activity",
                    "id": {
                        "time": ts(t),
                        "uniqueQualifier": uq,
                        "applicationName": app,
                        "customerId": "C03az79cb",
                    },
                    "etag": f'"{uuid.uuid4().hex}"',
                    "actor": {
                        "callerType": "USER",
                        "email": f"user{i % 5}@acme.example",
                        "profileId": str(100000 + i % 5),
                    },
                    "ipAddress": "203.0.113.9",
                    "events": [
                        {
                            "type": "login" if app == "login" else "SETTINGS",
                            "name": "login_success" if app == "login" else "CHANGE_SETTING",
                            "parameters": [
                                {"name": "login_type", "value": "google_password"},
                                {"name": "is_suspicious", "boolValue": False},
                            ],
                        }
                    ],
                }
            )
        return ids

    # -- HTTP -------------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        url = urlparse(h.path)
        if url.path == "/token" and h.command == "POST":
            return self._token(h, body)
        if url.path.startswith(PATH) and h.command == "GET":
            return self._activities(h, url.path.removeprefix(PATH), url.query)
        return self._error(404, "NOT_FOUND", "Not Found")

    @staticmethod
    def _json(status: int, doc: Any) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(doc).encode()

    def _error(
        self, code: int, status: str, message: str, reason: str = "invalid"
    ) -> tuple[int, dict[str, str], bytes]:
        return self._json(
            code,
            {
                "error": {
                    "code": code,
                    "message": message,
                    "errors": [{"message": message, "domain": "global", "reason": reason}],
                    "status": status,
                }
            },
        )

    def _token(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.token_requests += 1
        if h.headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            return self._json(400, {"error": "invalid_request", "error_description": "form body"})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != JWT_GRANT or not form.get("assertion"):
            return self._json(
                400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}
            )
        parts = form["assertion"].split(".")
        if len(parts) != 3:
            return self._json(400, {"error": "invalid_grant", "error_description": "Bad JWT"})
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except ValueError:
            return self._json(400, {"error": "invalid_grant", "error_description": "Bad JWT"})
        key = self.trusted.get(header.get("kid", ""))
        if header.get("alg") != "RS256" or key is None:
            return self._json(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            )
        try:
            key.verify(sig, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return self._json(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            )
        now = time.time()
        if claims.get("iss") != self.email:
            return self._json(
                400, {"error": "invalid_grant", "error_description": "Invalid issuer"}
            )
        if claims.get("aud") != self.token_uri:
            return self._json(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT: audience"}
            )
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (iat - 300 <= now <= exp) or exp - iat > 3600:
            return self._json(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "Invalid JWT: Token must be a short-lived token "
                    "(60 minutes) and in a reasonable timeframe.",
                },
            )
        if claims.get("sub") != self.subject:
            return self._json(
                400,
                {"error": "invalid_grant", "error_description": "Not a valid email or user ID."},
            )
        if SCOPE not in str(claims.get("scope", "")).split():
            return self._json(
                401,
                {
                    "error": "unauthorized_client",
                    "error_description": "Client is unauthorized to retrieve access tokens "
                    "using this method, or client not authorized for any of the scopes requested.",
                },
            )
        tok = "ya29." + uuid.uuid4().hex
        with self._lock:
            self.tokens[tok] = now + self.ttl
            self.issued += 1
        return self._json(
            200, {"access_token": tok, "expires_in": self.ttl, "token_type": "Bearer"}
        )

    def _activities(
        self, h: BaseHTTPRequestHandler, app: str, query: str
    ) -> tuple[int, dict[str, str], bytes]:
        if app not in APPLICATIONS:
            return self._error(400, "INVALID_ARGUMENT", f"Invalid value '{app}'")
        tok = h.headers.get("Authorization", "").removeprefix("Bearer ")
        if tok not in self.tokens:
            return self._error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
                "authError",
            )
        if self.tokens[tok] < time.time():
            self.expired_used += 1
            return self._error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
                "authError",
            )
        if self.throttle_next > 0:
            self.throttle_next -= 1
            self.throttled += 1
            return self._error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'",
                "rateLimitExceeded",
            )
        if self.quota403_next > 0:
            self.quota403_next -= 1
            self.throttled += 1
            return self._error(
                403, "PERMISSION_DENIED", "User Rate Limit Exceeded", "userRateLimitExceeded"
            )
        if self.fail_next > 0:
            self.fail_next -= 1
            return self._error(
                503, "UNAVAILABLE", "The service is currently unavailable.", "backendError"
            )
        time.sleep(self.delay)
        q = {k: v[0] for k, v in parse_qs(query).items()}
        try:
            start = dt.datetime.fromisoformat(q["startTime"].replace("Z", "+00:00"))
            end = dt.datetime.fromisoformat(
                q.get("endTime", ts(dt.datetime.now(dt.UTC))).replace("Z", "+00:00")
            )
            size = int(q.get("maxResults", 1000))
        except (KeyError, ValueError):
            return self._error(
                400, "INVALID_ARGUMENT", "Invalid value for startTime/endTime/maxResults"
            )
        now = dt.datetime.now(dt.UTC)
        if start >= end or start > now or end > now + dt.timedelta(seconds=5):
            return self._error(
                400,
                "INVALID_ARGUMENT",
                "Start time must be less than end time and not in the future",
            )
        if start < now - dt.timedelta(days=180):
            return self._error(
                400, "INVALID_ARGUMENT", "Start date can not be earlier than 180 days"
            )
        if not 1 <= size <= 1000:
            return self._error(400, "INVALID_ARGUMENT", "Invalid value for maxResults")
        lo, hi = ts(start), ts(end)
        rows = sorted(
            (i for i in self.items.get(app, []) if lo <= i["id"]["time"] < hi),
            key=lambda i: i["id"]["time"],
            reverse=True,
        )
        pos = 0
        if "pageToken" in q:
            try:
                w_lo, w_hi, p = json.loads(b64url_decode(q["pageToken"]))
            except ValueError:
                return self._error(400, "INVALID_ARGUMENT", "Invalid pageToken")
            if (w_lo, w_hi) != (lo, hi):
                return self._error(400, "INVALID_ARGUMENT", "pageToken does not match the request")
            pos = int(p)
        page = rows[pos : pos + size]
        doc: dict[str, Any] = {"kind": "admin#reports#activities", "etag": '"e"'}
        if page:
            doc["items"] = page
        if pos + size < len(rows):
            doc["nextPageToken"] = (
                base64.urlsafe_b64encode(json.dumps([lo, hi, pos + size]).encode())
                .decode()
                .rstrip("=")
            )
        status, headers, payload = self._json(200, doc)
        if self.malformed_next > 0:
            self.malformed_next -= 1
            payload = payload[: len(payload) // 2]
        return status, headers, payload
