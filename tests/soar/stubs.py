"""Stub identity providers on 127.0.0.1 enforcing each vendor's documented request and auth.

Every stub keeps a journal (``StubServer.journal``) and the resulting state, so a test can
count side effects (a user suspended once, sessions revoked once ...)."""

from __future__ import annotations

import json
from typing import Any

from tests.alerts.stubs import Reply, Request, reply_json

OKTA_TOKEN = "00aOktaT0ken-SEEDED-SECRET-1234567890"
GRAPH_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOi-graph-SECRET"
GOOGLE_TOKEN = "ya29.google-SECRET-token"


def _okta_err(status: int, code: str, summary: str) -> Reply:
    # https://developer.okta.com/docs/reference/error-codes/
    return reply_json(
        status,
        {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oae1",
            "errorCauses": [],
        },
    )


class OktaStub:
    """Okta Management API: users lifecycle, sessions, api-tokens; SSWS auth."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {
            "bob@example.com": {
                "id": "00ub0b",
                "status": "ACTIVE",
                "profile": {"login": "bob@example.com"},
            },
        }
        self.effects: list[tuple[str, str]] = []

    def _user(self, key: str) -> dict[str, Any] | None:
        for login, u in self.users.items():
            if key in (login, u["id"]):
                return u
        return None

    def __call__(self, req: Request) -> Reply:
        if req.headers.get("authorization") != f"SSWS {OKTA_TOKEN}":
            return _okta_err(401, "E0000011", "Invalid token provided")
        if req.headers.get("accept") not in ("application/json", None):
            return _okta_err(406, "E0000001", "Not acceptable")
        parts = req.path.strip("/").split("/")
        if parts[:3] != ["api", "v1", "users"] or len(parts) < 4:
            if parts[:3] == ["api", "v1", "api-tokens"] and req.method == "GET":
                return reply_json(200, [])
            return _okta_err(
                404, "E0000022", "The endpoint does not support the provided HTTP method"
            )
        from urllib.parse import unquote

        user = self._user(unquote(parts[3]))
        if user is None:
            return _okta_err(404, "E0000007", f"Not found: Resource not found: {parts[3]} (User)")
        rest = parts[4:]
        if req.method == "GET" and not rest:
            return reply_json(200, user)
        if req.method == "POST" and rest[:1] == ["lifecycle"] and len(rest) == 2:
            op = rest[1]
            if op == "suspend":
                if user["status"] != "ACTIVE":
                    return _okta_err(400, "E0000001", "Api validation failed: cannot suspend")
                user["status"] = "SUSPENDED"
            elif op == "unsuspend":
                if user["status"] != "SUSPENDED":
                    return _okta_err(400, "E0000001", "Api validation failed: not suspended")
                user["status"] = "ACTIVE"
            elif op == "reset_password":
                if req.query.get("sendEmail") not in (["true"], ["false"]):
                    return _okta_err(400, "E0000001", "sendEmail must be true or false")
            else:
                return _okta_err(404, "E0000022", "unknown lifecycle operation")
            self.effects.append((op, user["id"]))
            return reply_json(200, {} if op != "reset_password" else {"summary": "ok"})
        if req.method == "DELETE" and rest == ["sessions"]:
            if req.query.get("oauthTokens") not in (["true"], ["false"], None):
                return _okta_err(400, "E0000001", "oauthTokens must be a boolean")
            self.effects.append(("revoke_sessions", user["id"]))
            return 204, {}, b""
        return _okta_err(405, "E0000022", "The endpoint does not support the provided HTTP method")


class GraphStub:
    """Microsoft Graph v1.0 users: PATCH accountEnabled, revokeSignInSessions; Bearer auth;
    client-credentials token endpoint."""

    def __init__(self) -> None:
        self.enabled: dict[str, bool] = {"bob@example.com": True}
        self.effects: list[tuple[str, str]] = []

    def __call__(self, req: Request) -> Reply:
        if req.path.endswith("/oauth2/v2.0/token"):
            body = dict(x.split("=", 1) for x in req.body.decode().split("&"))
            if (
                body.get("grant_type") != "client_credentials"
                or body.get("client_secret") != "cs-SECRET"
            ):
                return reply_json(401, {"error": "invalid_client"})
            return reply_json(
                200, {"access_token": GRAPH_TOKEN, "expires_in": 3599, "token_type": "Bearer"}
            )
        if req.headers.get("authorization") != f"Bearer {GRAPH_TOKEN}":
            return reply_json(
                401,
                {
                    "error": {
                        "code": "InvalidAuthenticationToken",
                        "message": "Access token is empty.",
                    }
                },
            )
        from urllib.parse import unquote

        parts = [unquote(p) for p in req.path.strip("/").split("/")]
        if parts[:2] != ["v1.0", "users"] or len(parts) < 3 or parts[2] not in self.enabled:
            return reply_json(404, {"error": {"code": "Request_ResourceNotFound", "message": "x"}})
        uid = parts[2]
        if req.method == "PATCH" and len(parts) == 3:
            if not req.headers.get("content-type", "").startswith("application/json"):
                return reply_json(415, {"error": {"code": "BadRequest", "message": "ct"}})
            body = json.loads(req.body)
            if "accountEnabled" in body:
                self.enabled[uid] = bool(body["accountEnabled"])
                self.effects.append(("accountEnabled", f"{uid}={body['accountEnabled']}"))
            return 204, {}, b""
        if req.method == "POST" and parts[3:] == ["revokeSignInSessions"]:
            self.effects.append(("revokeSignInSessions", uid))
            return reply_json(200, {"@odata.context": "x", "value": True})
        return reply_json(405, {"error": {"code": "BadRequest", "message": "method"}})


class GoogleStub:
    """Admin SDK Directory API users: PATCH suspended, signOut; Bearer auth."""

    def __init__(self) -> None:
        self.suspended: dict[str, bool] = {"bob@example.com": False}
        self.effects: list[tuple[str, str]] = []

    def __call__(self, req: Request) -> Reply:
        if req.headers.get("authorization") != f"Bearer {GOOGLE_TOKEN}":
            return reply_json(401, {"error": {"code": 401, "message": "Invalid Credentials"}})
        from urllib.parse import unquote

        parts = [unquote(p) for p in req.path.strip("/").split("/")]
        if parts[:4] != ["admin", "directory", "v1", "users"] or parts[4] not in self.suspended:
            return reply_json(404, {"error": {"code": 404, "message": "Resource Not Found"}})
        uk = parts[4]
        if req.method == "PATCH" and len(parts) == 5:
            body = json.loads(req.body)
            if "suspended" in body:
                self.suspended[uk] = bool(body["suspended"])
                self.effects.append(("suspended", f"{uk}={body['suspended']}"))
            return reply_json(200, {"primaryEmail": uk, "suspended": self.suspended[uk]})
        if req.method == "POST" and parts[5:] == ["signOut"]:
            self.effects.append(("signOut", uk))
            return 204, {}, b""
        return reply_json(405, {"error": {"code": 405, "message": "method"}})


class HookStub:
    """A webhook receiver that deduplicates on Idempotency-Key (as Stripe-style APIs do)."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.effects: list[str] = []

    def __call__(self, req: Request) -> Reply:
        key = req.headers.get("idempotency-key")
        if not key:
            return reply_json(400, {"error": "Idempotency-Key required"})
        if key in self.seen:
            return reply_json(200, {"id": self.seen[key], "replayed": True})
        self.seen[key] = len(self.seen) + 1
        self.effects.append(key)
        return reply_json(201, {"id": self.seen[key]})


CF_TOKEN = "cf-api-token-SECRET-abcdef"
FALCON_ID, FALCON_SECRET = "falcon-client-id", "falcon-SECRET-xyz"


class CloudflareStub:
    """Cloudflare API v4 zone IP Access rules; Bearer API token; v4 envelope."""

    def __init__(self) -> None:
        self.rules: dict[str, dict[str, Any]] = {}
        self.effects: list[tuple[str, str]] = []

    def _env(self, status: int, result: Any, errors: list[Any] | None = None) -> Reply:
        return reply_json(
            status,
            {"success": not errors, "errors": errors or [], "messages": [], "result": result},
        )

    def __call__(self, req: Request) -> Reply:
        if req.headers.get("authorization") != f"Bearer {CF_TOKEN}":
            return self._env(403, None, [{"code": 10000, "message": "Authentication error"}])
        parts = req.path.strip("/").split("/")
        if parts[:3] != ["client", "v4", "zones"] or parts[4:7] != [
            "firewall",
            "access_rules",
            "rules",
        ]:
            return self._env(404, None, [{"code": 7003, "message": "No route"}])
        zone = parts[3]
        if req.method == "GET":
            v = (req.query.get("configuration.value") or [""])[0]
            return self._env(
                200,
                [
                    r
                    for r in self.rules.values()
                    if r["zone"] == zone and r["configuration"]["value"] == v
                ],
            )
        if req.method == "POST":
            body = json.loads(req.body)
            if body.get("mode") not in (
                "block",
                "challenge",
                "whitelist",
                "js_challenge",
                "managed_challenge",
            ):
                return self._env(400, None, [{"code": 10001, "message": "invalid mode"}])
            cfg = body.get("configuration") or {}
            if cfg.get("target") not in ("ip", "ip_range", "ip6", "asn", "country"):
                return self._env(400, None, [{"code": 10001, "message": "invalid target"}])
            rid = f"r{len(self.rules) + 1}"
            self.rules[rid] = {
                "id": rid,
                "zone": zone,
                "mode": body["mode"],
                "configuration": cfg,
                "notes": body.get("notes", ""),
            }
            self.effects.append(("block", cfg["value"]))
            return self._env(200, self.rules[rid])
        if req.method == "DELETE" and len(parts) == 8:
            rule = self.rules.pop(parts[7], None)
            if rule is None:
                return self._env(404, None, [{"code": 10001, "message": "not found"}])
            self.effects.append(("unblock", rule["configuration"]["value"]))
            return self._env(200, {"id": parts[7]})
        return self._env(405, None, [{"code": 10000, "message": "method"}])


class FalconStub:
    """CrowdStrike Falcon: OAuth2 client credentials, device actions, RTR sessions/commands."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {"hostabc": "normal"}
        self.effects: list[tuple[str, str]] = []
        self.token = "falcon-access-SECRET-token"

    def __call__(self, req: Request) -> Reply:
        if req.path == "/oauth2/token":
            from urllib.parse import parse_qs

            form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
            if form.get("client_id") != FALCON_ID or form.get("client_secret") != FALCON_SECRET:
                return reply_json(401, {"errors": [{"code": 401, "message": "access denied"}]})
            return reply_json(
                201, {"access_token": self.token, "expires_in": 1799, "token_type": "bearer"}
            )
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return reply_json(401, {"errors": [{"code": 401, "message": "access denied"}]})
        if req.path == "/devices/entities/devices/v2" and req.method == "GET":
            hid = req.query["ids"][0]
            return reply_json(
                200,
                {"resources": [{"device_id": hid, "status": self.status.get(hid)}], "errors": []},
            )
        if req.path == "/devices/entities/devices-actions/v2" and req.method == "POST":
            action = req.query.get("action_name", [""])[0]
            ids = json.loads(req.body).get("ids") or []
            if action not in ("contain", "lift_containment") or len(ids) != 1:
                return reply_json(400, {"errors": [{"code": 400, "message": "bad request"}]})
            hid = ids[0]
            self.status[hid] = "contained" if action == "contain" else "normal"
            self.effects.append((action, hid))
            return reply_json(202, {"resources": [{"id": hid}], "errors": []})
        if req.path == "/real-time-response/entities/sessions/v1":
            if req.method == "POST":
                self.effects.append(("rtr_session", json.loads(req.body)["device_id"]))
                return reply_json(201, {"resources": [{"session_id": "s-1"}], "errors": []})
            return reply_json(204, {})
        if req.path == "/real-time-response/entities/command/v1":
            body = json.loads(req.body)
            self.effects.append(("rtr", body["base_command"]))
            return reply_json(
                201,
                {
                    "resources": [
                        {"stdout": f"{body['base_command']} output", "stderr": "", "complete": True}
                    ],
                    "errors": [],
                },
            )
        return reply_json(404, {"errors": [{"code": 404, "message": "not found"}]})
