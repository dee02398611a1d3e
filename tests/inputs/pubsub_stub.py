"""A Pub/Sub REST v1 stub (pull subscription) plus Google's OAuth token endpoint.

Enforces what cloud.google.com/pubsub/docs/reference/rest documents for
``projects.subscriptions.pull`` / ``acknowledge`` / ``modifyAckDeadline``: the path
``/v1/projects/P/subscriptions/S:verb``, a JSON body with only the documented fields
(``maxMessages`` a positive integer, ``ackIds`` a non-empty list of issued ids,
``ackDeadlineSeconds`` 0-600), ``Authorization: Bearer`` with a token from the token
endpoint, and google.rpc.Status error bodies. The token endpoint checks the RS256
JWT-bearer assertion of a service account (signature, ``aud``, ``scope``, lifetime),
per developers.google.com/identity/protocols/oauth2/service-account#httprest.

Delivery follows Pub/Sub's at-least-once model: a pulled message is leased until its
ack deadline; unacknowledged when the deadline passes, it is delivered again with a new
ackId; ``modifyAckDeadline`` moves the deadline (0 = give it back now).
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.inputs.stubs import Stub


def rsa_key() -> tuple[dict[str, Any], Any]:
    """A fresh service-account key file (dict) and its public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = pk.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key = {
        "type": "service_account",
        "project_id": "proj-1",
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": "mantissa@proj-1.iam.gserviceaccount.com",
        "client_id": "1234567890",
    }
    return key, pk.public_key()


def _b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


@dataclass
class _Msg:
    mid: str
    data: str  # base64 as on the wire
    attributes: dict[str, str]
    publish_time: str
    acked: bool = False
    lease_until: float = 0.0
    deliveries: int = 0
    ack_id: str = ""


class PubSubStub(Stub):
    """One subscription ``projects/proj-1/subscriptions/sub-1`` (more can be added)."""

    SUB = "projects/proj-1/subscriptions/sub-1"

    def __init__(self, public_key: Any, client_email: str, ack_deadline: float = 10.0) -> None:
        self.public_key = public_key
        self.client_email = client_email
        self.ack_deadline = ack_deadline
        self.msgs: dict[str, dict[str, _Msg]] = {self.SUB: {}}
        self.by_ack: dict[str, tuple[str, str]] = {}
        self.tokens: dict[str, float] = {}  # token → expiry (epoch)
        self.token_ttl = 3600
        self.token_grants = 0
        self.unavailable_next = 0
        self.calls: dict[str, int] = {"pull": 0, "acknowledge": 0, "modifyAckDeadline": 0}
        self.modacks: list[tuple[int, int]] = []  # (number of ids, seconds)
        self.pull_delay = 0.0
        self._ids = itertools.count(1)
        self.mlock = threading.Lock()
        super().__init__()

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    # -- test helpers ------------------------------------------------------------
    def publish(self, payloads: list[bytes], sub: str = SUB) -> list[str]:
        out = []
        with self.mlock:
            for p in payloads:
                mid = str(next(self._ids))
                self.msgs.setdefault(sub, {})[mid] = _Msg(
                    mid,
                    base64.b64encode(p).decode(),
                    {"logging.googleapis.com/timestamp": "2026-11-29T06:00:00Z"},
                    time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                )
                out.append(mid)
        return out

    def publish_raw(self, data: str, sub: str = SUB) -> str:
        """A message whose ``data`` is sent as given (to test undecodable payloads)."""
        with self.mlock:
            mid = str(next(self._ids))
            self.msgs.setdefault(sub, {})[mid] = _Msg(mid, data, {}, "2026-11-29T06:00:00.000Z")
        return mid

    def backlog(self, sub: str = SUB) -> int:
        with self.mlock:
            return sum(1 for m in self.msgs[sub].values() if not m.acked)

    def deliveries(self, sub: str = SUB) -> dict[str, int]:
        with self.mlock:
            return {m.mid: m.deliveries for m in self.msgs[sub].values()}

    def revoke_tokens(self) -> None:
        """Every issued access token becomes invalid (expired early, clock skew)."""
        with self.mlock:
            self.tokens.clear()

    # -- HTTP --------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if h.command == "POST" and h.path == "/token":
            return self._token(h, body)
        if h.command != "POST" or not h.path.startswith("/v1/"):
            return self._err(404, "NOT_FOUND", f"no route {h.command} {h.path}")
        auth = h.headers.get("Authorization", "")
        with self.mlock:
            valid = auth.startswith("Bearer ") and self.tokens.get(auth[7:], 0) > time.time()
        if not valid:
            return self._err(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token",
            )
        with self.lock:
            if self.throttle_next > 0:
                self.throttle_next -= 1
                return self._err(429, "RESOURCE_EXHAUSTED", "Quota exceeded for subscriber")
            if self.unavailable_next > 0:
                self.unavailable_next -= 1
                return self._err(503, "UNAVAILABLE", "The service is currently unavailable.")
        if (h.headers.get("Content-Type") or "").split(";")[0] != "application/json":
            return self._err(400, "INVALID_ARGUMENT", "Content-Type must be application/json")
        name, _, verb = h.path[4:].partition(":")
        if name not in self.msgs:
            return self._err(404, "NOT_FOUND", f"Resource not found (resource={name}).")
        try:
            req = json.loads(body)
        except ValueError:
            return self._err(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if not isinstance(req, dict):
            return self._err(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        allowed = {
            "pull": {"maxMessages", "returnImmediately"},
            "acknowledge": {"ackIds"},
            "modifyAckDeadline": {"ackIds", "ackDeadlineSeconds"},
        }.get(verb)
        if allowed is None:
            return self._err(404, "NOT_FOUND", f"unknown method {verb}")
        unknown = set(req) - allowed
        if unknown:
            return self._err(
                400,
                "INVALID_ARGUMENT",
                f'Invalid JSON payload received. Unknown name "{unknown.pop()}"',
            )
        with self.lock:
            self.calls[verb] += 1
        return getattr(self, "_" + verb)(name, req)

    def _pull(self, sub: str, req: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        n = req.get("maxMessages")
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            return self._err(400, "INVALID_ARGUMENT", "maxMessages must be a positive integer")
        if self.pull_delay:
            time.sleep(self.pull_delay)
        now = time.time()
        out = []
        with self.mlock:
            for m in self.msgs[sub].values():
                if len(out) >= min(n, 1000):
                    break
                if m.acked or m.lease_until > now:
                    continue
                m.deliveries += 1
                m.lease_until = now + self.ack_deadline
                m.ack_id = f"{sub}:{m.mid}:{m.deliveries}:{secrets.token_hex(4)}"
                self.by_ack[m.ack_id] = (sub, m.mid)
                out.append(
                    {
                        "ackId": m.ack_id,
                        "message": {
                            "data": m.data,
                            "attributes": m.attributes,
                            "messageId": m.mid,
                            "publishTime": m.publish_time,
                        },
                    }
                )
        return self._ok({"receivedMessages": out} if out else {})

    def _ack_ids(self, req: dict[str, Any]) -> list[tuple[str, str]] | str:
        ids = req.get("ackIds")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return "ackIds must be a non-empty list of strings"
        out = []
        for i in ids:
            if i not in self.by_ack:
                return f"Invalid ack id (ack_id={i})"
            out.append(self.by_ack[i])
        return out

    def _acknowledge(self, sub: str, req: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        with self.mlock:
            refs = self._ack_ids(req)
            if isinstance(refs, str):
                return self._err(400, "INVALID_ARGUMENT", refs)
            for s, mid in refs:
                self.msgs[s][mid].acked = True
        return self._ok({})

    def _modifyAckDeadline(
        self, sub: str, req: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        secs = req.get("ackDeadlineSeconds")
        if not isinstance(secs, int) or isinstance(secs, bool) or not 0 <= secs <= 600:
            return self._err(400, "INVALID_ARGUMENT", "ackDeadlineSeconds must be 0-600")
        with self.mlock:
            refs = self._ack_ids(req)
            if isinstance(refs, str):
                return self._err(400, "INVALID_ARGUMENT", refs)
            now = time.time()
            for s, mid in refs:
                m = self.msgs[s][mid]
                if not m.acked:
                    m.lease_until = now + secs
            self.modacks.append((len(refs), secs))
        return self._ok({})

    def _token(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}

        def bad(desc: str) -> tuple[int, dict[str, str], bytes]:
            doc = {"error": "invalid_grant", "error_description": desc}
            return 400, {"Content-Type": "application/json"}, json.dumps(doc).encode()

        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return bad("Invalid grant_type")
        try:
            head_b, claims_b, sig_b = form["assertion"].split(".")
            header = json.loads(_b64url_decode(head_b))
            claims = json.loads(_b64url_decode(claims_b))
            self.public_key.verify(
                _b64url_decode(sig_b),
                f"{head_b}.{claims_b}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (KeyError, ValueError, InvalidSignature):
            return bad("Invalid JWT Signature.")
        now = time.time()
        if header.get("alg") != "RS256":
            return bad("Invalid JWT: alg must be RS256")
        if claims.get("iss") != self.client_email:
            return bad("Invalid JWT: unknown issuer")
        if claims.get("aud") != self.token_uri:
            return bad("Invalid JWT: Failed audience check.")
        if "https://www.googleapis.com/auth/pubsub" not in str(claims.get("scope", "")).split():
            return bad("Invalid JWT: scope")
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if exp - iat > 3600 or abs(iat - now) > 300 or exp < now:
            return bad("Invalid JWT: Token must be a short-lived token (60 minutes)")
        token = "ya29." + secrets.token_urlsafe(24)
        with self.mlock:
            self.tokens[token] = now + self.token_ttl
            self.token_grants += 1
        doc = {"access_token": token, "expires_in": self.token_ttl, "token_type": "Bearer"}
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()

    @staticmethod
    def _ok(doc: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()

    @staticmethod
    def _err(code: int, status: str, message: str) -> tuple[int, dict[str, str], bytes]:
        doc = {"error": {"code": code, "message": message, "status": status}}
        return code, {"Content-Type": "application/json"}, json.dumps(doc).encode()
