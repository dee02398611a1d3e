"""Stub vendor servers on 127.0.0.1 that enforce each API's documented request shape.

Every stub records a journal of the requests it received and rejects anything the real
service would reject (wrong method, path, auth, content type or body shape) with the
vendor's error format, so a destination that drifts from the documented contract fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, dict[str, str], bytes]


def reply_json(status: int, obj: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(obj).encode()


def reply_text(status: int, text: str, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "text/plain", **(headers or {})}, text.encode()


@dataclass
class StubServer:
    """A threaded HTTP server calling ``handle(request) -> (status, headers, body)``."""

    handle: Callable[[Request], Reply]
    journal: list[Request] = field(default_factory=list)
    #: replies forced before the real handler runs, e.g. [(429, {"Retry-After": "1"}, b"")]
    queued_failures: list[Reply] = field(default_factory=list)
    delay_secs: float = 0.0
    port: int = 0
    request_times: list[float] = field(default_factory=list)

    @classmethod
    def on_port(cls, handle: Callable[[Request], Reply], port: int) -> StubServer:
        return cls(handle, port=port)

    def __post_init__(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _do(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with stub.lock:
                    stub.journal.append(req)
                    stub.request_times.append(time.monotonic())
                    forced = stub.queued_failures.pop(0) if stub.queued_failures else None
                if stub.delay_secs:
                    time.sleep(stub.delay_secs)
                status, headers, out = forced or stub.handle(req)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _do

            def log_message(self, *a: Any) -> None:  # keep test output clean
                pass

        self.lock = threading.Lock()
        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def bad(msg: str) -> Reply:
    return reply_json(400, {"error": msg})


# -- Slack -------------------------------------------------------------------------------
SLACK_HOOK_PATH = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
SLACK_TOKEN = "xoxb-1234-5678-abcdefghijkl"
_BLOCK_TYPES = {"header", "section", "context", "actions", "divider", "image", "rich_text"}


def _check_blocks(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("text"), str) or not body["text"]:
        return "missing text fallback"
    blocks = body.get("blocks")
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return "invalid_blocks"
    for b in blocks:
        if b.get("type") not in _BLOCK_TYPES:
            return "invalid_blocks"
        if b["type"] == "header":
            t = b.get("text") or {}
            if t.get("type") != "plain_text" or len(t.get("text", "")) > 150:
                return "invalid_blocks"
        if b["type"] == "section":
            if "fields" in b and len(b["fields"]) > 10:
                return "invalid_blocks"
            for f in b.get("fields", []) + ([b["text"]] if "text" in b else []):
                if f.get("type") not in ("mrkdwn", "plain_text") or len(f.get("text", "")) > 3000:
                    return "invalid_blocks"
    return None


def slack_webhook(req: Request) -> Reply:
    # https://api.slack.com/messaging/webhooks#handling_errors
    if req.method != "POST" or req.path != SLACK_HOOK_PATH:
        return reply_text(404, "no_service")
    if not req.headers.get("content-type", "").startswith("application/json"):
        return reply_text(400, "invalid_payload")
    try:
        body = req.json()
    except ValueError:
        return reply_text(400, "invalid_payload")
    err = _check_blocks(body)
    if err:
        return reply_text(400, err)
    return reply_text(200, "ok")


def slack_api(req: Request) -> Reply:
    # https://api.slack.com/methods/chat.postMessage: errors are HTTP 200 {"ok": false}
    if req.method != "POST" or req.path != "/api/chat.postMessage":
        return reply_json(404, {"ok": False, "error": "unknown_method"})
    if req.headers.get("authorization") != f"Bearer {SLACK_TOKEN}":
        return reply_json(200, {"ok": False, "error": "invalid_auth"})
    if not req.headers.get("content-type", "").startswith("application/json"):
        return reply_json(200, {"ok": False, "error": "invalid_form_data"})
    body = req.json()
    if body.get("channel") != "C0SECOPS":
        return reply_json(200, {"ok": False, "error": "channel_not_found"})
    err = _check_blocks(body)
    if err:
        return reply_json(200, {"ok": False, "error": err})
    ts = f"{time.time():.6f}"
    return reply_json(
        200,
        {
            "ok": True,
            "channel": "C0SECOPS",
            "ts": ts,
            "message": {"text": body["text"], "thread_ts": body.get("thread_ts")},
        },
    )


# -- PagerDuty ---------------------------------------------------------------------------
PD_ROUTING_KEY = "R0UT1NGKEY0000000000000000000001"


class PagerDutyStub:
    """Events API v2 semantics: one incident per open dedup_key."""

    def __init__(self) -> None:
        self.incidents: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []

    def __call__(self, req: Request) -> Reply:
        if req.method != "POST" or req.path != "/v2/enqueue":
            return reply_json(404, {"status": "not found"})
        if not req.headers.get("content-type", "").startswith("application/json"):
            return reply_json(400, {"status": "invalid event", "message": "Content-Type"})
        try:
            ev = req.json()
        except ValueError:
            return reply_json(400, {"status": "invalid event", "message": "Invalid JSON"})
        errors = []
        if ev.get("routing_key") != PD_ROUTING_KEY:
            errors.append("'routing_key' is invalid")
        if ev.get("event_action") not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        dk = ev.get("dedup_key")
        if ev.get("event_action") in ("acknowledge", "resolve") and not dk:
            errors.append("'dedup_key' is required")
        if dk is not None and (not isinstance(dk, str) or len(dk) > 255):
            errors.append("'dedup_key' is invalid")
        if ev.get("event_action") == "trigger":
            p = ev.get("payload") or {}
            if not p.get("summary") or len(p["summary"]) > 1024:
                errors.append("'payload.summary' is missing or too long")
            if not p.get("source"):
                errors.append("'payload.source' is missing")
            if p.get("severity") not in ("critical", "error", "warning", "info"):
                errors.append("'payload.severity' is invalid")
        if errors:
            return reply_json(
                400,
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
            )
        self.events.append(ev)
        inc = self.incidents.get(dk)
        if ev["event_action"] == "trigger":
            if inc is None or inc["status"] == "resolved":
                self.incidents[dk] = {
                    "status": "triggered",
                    "summary": ev["payload"]["summary"],
                    "opened": (inc or {}).get("opened", 0) + 1,
                }
        elif inc is not None:
            inc["status"] = "acknowledged" if ev["event_action"] == "acknowledge" else "resolved"
        return reply_json(202, {"status": "success", "message": "Event processed", "dedup_key": dk})


# -- Teams ---------------------------------------------------------------------------------
TEAMS_PATH = "/workflows/0123456789abcdef/triggers/manual/paths/invoke"
TEAMS_SIG = "sIgNaTuRe0123456789"


def teams(req: Request) -> Reply:
    if req.method != "POST" or req.path != TEAMS_PATH:
        return reply_json(404, {"error": {"code": "TriggerNotFound"}})
    q = req.query
    if q.get("sig") != [TEAMS_SIG] or q.get("api-version") != ["2016-06-01"]:
        return reply_json(401, {"error": {"code": "DirectApiAuthorizationRequired"}})
    try:
        msg = req.json()
    except ValueError:
        return reply_json(400, {"error": {"code": "InvalidRequestContent"}})
    atts = msg.get("attachments")
    if msg.get("type") != "message" or not isinstance(atts, list) or not atts:
        return reply_json(400, {"error": {"code": "InvalidRequestContent", "message": "message"}})
    for a in atts:
        card = a.get("content") or {}
        if a.get("contentType") != "application/vnd.microsoft.card.adaptive":
            return reply_json(
                400, {"error": {"code": "InvalidRequestContent", "message": "contentType"}}
            )
        if (
            card.get("type") != "AdaptiveCard"
            or not card.get("version")
            or not isinstance(card.get("body"), list)
        ):
            return reply_json(400, {"error": {"code": "InvalidRequestContent", "message": "card"}})
        for el in card["body"]:
            if el.get("type") not in ("TextBlock", "FactSet", "ColumnSet", "Container", "Image"):
                return reply_json(
                    400, {"error": {"code": "InvalidRequestContent", "message": el.get("type")}}
                )
            if el["type"] == "FactSet" and not all(
                isinstance(f.get("title"), str) and isinstance(f.get("value"), str)
                for f in el.get("facts", [])
            ):
                return reply_json(
                    400, {"error": {"code": "InvalidRequestContent", "message": "facts"}}
                )
    return reply_text(202, "")


# -- Jira ------------------------------------------------------------------------------------
JIRA_EMAIL = "secops@example.test"
JIRA_TOKEN = "ATATT3xFfGF0jiratoken"


def _adf_ok(node: Any) -> bool:
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        return False
    if node["type"] == "text":
        return isinstance(node.get("text"), str) and node["text"] != ""
    return all(_adf_ok(c) for c in node.get("content", []))


class JiraStub:
    def __init__(self) -> None:
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[Any]] = {}
        self.transitions: dict[str, list[str]] = {}
        self.index_lag = False  # the search index of Jira Cloud is eventually consistent
        #: create the issue but answer 504 once, as a proxy timing out after Jira committed
        self.lose_next_create_response = False

    def __call__(self, req: Request) -> Reply:
        expect = "Basic " + base64.b64encode(f"{JIRA_EMAIL}:{JIRA_TOKEN}".encode()).decode()
        if req.headers.get("authorization") != expect:
            return reply_json(401, {"errorMessages": ["Client must be authenticated"]})
        p = req.path
        if req.method == "GET" and p == "/rest/api/3/search/jql":
            jql = (req.query.get("jql") or [""])[0]
            import re

            m = re.search(r'labels\s*=\s*"([^"]+)"', jql)
            if not m:
                return reply_json(400, {"errorMessages": ["unsupported jql in stub"]})
            hits = (
                []
                if self.index_lag
                else [
                    {"id": i["id"], "key": k, "fields": {"status": {"name": i["status"]}}}
                    for k, i in self.issues.items()
                    if m.group(1) in i["fields"]["labels"]
                ]
            )
            return reply_json(
                200,
                {"issues": hits[: int((req.query.get("maxResults") or ["50"])[0])], "isLast": True},
            )
        if req.method == "POST" and p == "/rest/api/3/issue":
            body = req.json()
            f = body.get("fields") or {}
            errors = {}
            if (f.get("project") or {}).get("key") != "SEC":
                errors["project"] = "valid project is required"
            if not (f.get("issuetype") or {}).get("name"):
                errors["issuetype"] = "valid issue type is required"
            s = f.get("summary")
            if not s or len(s) > 255 or "\n" in s:
                errors["summary"] = "Summary must be less than 255 characters and one line."
            d = f.get("description")
            if not (
                isinstance(d, dict)
                and d.get("type") == "doc"
                and d.get("version") == 1
                and _adf_ok(d)
            ):
                errors["description"] = "Operation value must be an Atlassian Document."
            if any(" " in lab for lab in f.get("labels", [])):
                errors["labels"] = "The label can't contain spaces."
            if errors:
                return reply_json(400, {"errorMessages": [], "errors": errors})
            n = len(self.issues) + 1
            key = f"SEC-{n}"
            self.issues[key] = {"id": str(10000 + n), "fields": f, "status": "To Do"}
            if self.lose_next_create_response:
                self.lose_next_create_response = False
                return reply_text(504, "Gateway Timeout")
            return reply_json(
                201, {"id": str(10000 + n), "key": key, "self": f"/rest/api/3/issue/{10000 + n}"}
            )
        parts = p.split("/")
        if len(parts) >= 6 and p.startswith("/rest/api/3/issue/"):
            key = parts[5]
            if key not in self.issues:
                return reply_json(404, {"errorMessages": ["Issue does not exist"]})
            sub = parts[6] if len(parts) > 6 else ""
            if sub == "comment" and req.method == "POST":
                b = req.json().get("body")
                if not (isinstance(b, dict) and b.get("type") == "doc" and _adf_ok(b)):
                    return reply_json(400, {"errors": {"comment": "must be ADF"}})
                self.comments.setdefault(key, []).append(b)
                return reply_json(201, {"id": "1"})
            if sub == "transitions" and req.method == "GET":
                return reply_json(
                    200,
                    {
                        "transitions": [
                            {"id": "11", "name": "To Do", "to": {"name": "To Do"}},
                            {"id": "21", "name": "In Progress", "to": {"name": "In Progress"}},
                            {"id": "31", "name": "Done", "to": {"name": "Done"}},
                        ]
                    },
                )
            if sub == "transitions" and req.method == "POST":
                tid = (req.json().get("transition") or {}).get("id")
                if tid not in ("11", "21", "31"):
                    return reply_json(400, {"errorMessages": ["invalid transition"]})
                self.issues[key]["status"] = {"11": "To Do", "21": "In Progress", "31": "Done"}[tid]
                self.transitions.setdefault(key, []).append(tid)
                return reply_text(204, "")
        return reply_json(404, {"errorMessages": ["no such endpoint"]})


# -- ServiceNow --------------------------------------------------------------------------------
SNOW_USER, SNOW_PASSWORD = "mantissa.integration", "sn0w-Pa55!"


class ServiceNowStub:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.lose_next_create_response = False

    def __call__(self, req: Request) -> Reply:
        expect = "Basic " + base64.b64encode(f"{SNOW_USER}:{SNOW_PASSWORD}".encode()).decode()
        if req.headers.get("authorization") != expect:
            return reply_json(
                401, {"error": {"message": "User Not Authenticated"}, "status": "failure"}
            )
        if req.headers.get("accept") != "application/json":
            return reply_json(406, {"error": {"message": "Accept"}, "status": "failure"})
        base = "/api/now/table/incident"
        if req.method == "GET" and req.path == base:
            q = (req.query.get("sysparm_query") or [""])[0]
            if not q.startswith("correlation_id="):
                return reply_json(400, {"error": {"message": "stub: unsupported query"}})
            cid = q.split("=", 1)[1]
            res = [
                {"sys_id": s, "number": r["number"], "state": r["state"]}
                for s, r in self.records.items()
                if r.get("correlation_id") == cid
            ]
            return reply_json(
                200, {"result": res[: int((req.query.get("sysparm_limit") or ["100"])[0])]}
            )
        if req.method == "POST" and req.path == base:
            if not req.headers.get("content-type", "").startswith("application/json"):
                return reply_json(415, {"error": {"message": "Content-Type"}})
            rec = req.json()
            if not rec.get("short_description") or not rec.get("correlation_id"):
                return reply_json(
                    400, {"error": {"message": "missing fields"}, "status": "failure"}
                )
            if len(rec["short_description"]) > 160:
                return reply_json(400, {"error": {"message": "short_description too long"}})
            unknown = set(rec) - {
                "short_description",
                "description",
                "correlation_id",
                "correlation_display",
                "urgency",
                "impact",
                "category",
                "assignment_group",
                "caller_id",
            }
            if unknown:
                return reply_json(400, {"error": {"message": f"unknown fields {sorted(unknown)}"}})
            sys_id = hashlib.md5(
                rec["correlation_id"].encode() + str(len(self.records)).encode()
            ).hexdigest()
            num = f"INC{len(self.records) + 1:07d}"
            self.records[sys_id] = {**rec, "sys_id": sys_id, "number": num, "state": "1"}
            if self.lose_next_create_response:
                self.lose_next_create_response = False
                return reply_text(502, "Bad Gateway")
            return reply_json(201, {"result": self.records[sys_id]})
        if req.method == "PATCH" and req.path.startswith(base + "/"):
            sys_id = req.path.rsplit("/", 1)[1]
            if sys_id not in self.records:
                return reply_json(
                    404, {"error": {"message": "No Record found"}, "status": "failure"}
                )
            patch = req.json()
            if patch.get("state") == "6" and not (
                patch.get("close_code") and patch.get("close_notes")
            ):
                return reply_json(
                    403, {"error": {"message": "close_code and close_notes are mandatory"}}
                )
            self.records[sys_id].update(patch)
            return reply_json(200, {"result": self.records[sys_id]})
        return reply_json(400, {"error": {"message": "Invalid method"}})


# -- signed webhook receiver ----------------------------------------------------------------------
WEBHOOK_SECRET = "whsec-test-0123456789"


class WebhookReceiver:
    """Verifies X-Mantissa-Signature and drops retried duplicates by Idempotency-Key."""

    def __init__(self, secret: str = WEBHOOK_SECRET, max_skew_secs: int = 300) -> None:
        self.secret = secret
        self.max_skew_secs = max_skew_secs
        self.accepted: dict[str, dict[str, Any]] = {}
        self.duplicates = 0

    def __call__(self, req: Request) -> Reply:
        if req.method != "POST" or req.path != "/hook":
            return reply_text(404, "not found")
        ts = req.headers.get("x-mantissa-timestamp", "")
        sig = req.headers.get("x-mantissa-signature", "")
        if not ts.isdigit() or abs(time.time() - int(ts)) > self.max_skew_secs:
            return reply_text(401, "stale or missing timestamp")
        want = (
            "sha256="
            + hmac.new(
                self.secret.encode(), f"{ts}.".encode() + req.body, hashlib.sha256
            ).hexdigest()
        )
        if not hmac.compare_digest(sig, want):
            return reply_text(401, "bad signature")
        if req.headers.get("content-type") != "application/json":
            return reply_text(415, "json only")
        key = req.headers.get("idempotency-key", "")
        if key in self.accepted:
            self.duplicates += 1
        else:
            self.accepted[key] = req.json()
        return reply_json(200, {"received": True})
