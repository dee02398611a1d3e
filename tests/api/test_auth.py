"""Every endpoint checks its role: 401 without valid auth, 403 with the wrong role.

The matrix walks the app's routes, so routers other modules register later (APM, SOAR)
are covered too; the roles of the core endpoints are pinned in ``EXPECTED``.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from mantissa.api.auth import TokenStore, role_allows
from tests.api.conftest import ROLES, bearer

# (method, path) → the role it needs; None = open to everyone
EXPECTED = {
    ("GET", "/health"): None,
    ("POST", "/auth/login"): None,
    ("GET", "/auth/me"): "viewer",
    ("POST", "/auth/logout"): "viewer",
    ("GET", "/config"): "viewer",
    ("GET", "/metrics"): "viewer",
    ("POST", "/query"): "analyst",
    ("GET", "/alerts"): "viewer",
    ("GET", "/alerts/{alert_id}"): "viewer",
    ("PATCH", "/alerts/{alert_id}"): "analyst",
    ("GET", "/overview"): "viewer",
    ("GET", "/tables"): "viewer",
    ("GET", "/tokens"): "admin",
    ("POST", "/tokens"): "admin",
    ("DELETE", "/tokens/{token_id}"): "admin",
    ("GET", "/audit"): "admin",
    ("GET", "/rules"): "viewer",
    ("GET", "/rules/{rule_id}"): "viewer",
    ("PUT", "/rules/{rule_id}"): "engineer",
    ("PATCH", "/rules/{rule_id}"): "engineer",
    ("DELETE", "/rules/{rule_id}"): "engineer",
    ("POST", "/rules/{rule_id}/run"): "engineer",
}
PUBLIC = {k for k, v in EXPECTED.items() if v is None}
# Endpoints that speak another product's auth protocol (Splunk HEC `Authorization: Splunk`,
# Jamf's Basic auth, the Kubernetes webhook backend) with that protocol's error shapes; their
# 401/403 answers for no, bad and wrong-role tokens are tested in tests/inputs/test_http_receiver.py.
FOREIGN_AUTH = {
    ("POST", "/ingest/webhooks/jamf"),
    ("POST", "/ingest/webhooks/kubernetes"),
    ("GET", "/services/collector/health"),
    ("POST", "/services/collector/event"),
    ("POST", "/services/collector/event/1.0"),
    ("POST", "/services/collector"),
    # HEC raw: its 401/403 answers are tested in tests/inputs/test_hec_delivery.py
    ("POST", "/services/collector/raw"),
    ("POST", "/services/collector/raw/1.0"),
}
PUBLIC |= FOREIGN_AUTH


def declared_role(route: APIRoute) -> str | None:
    """The role the route's ``require(...)`` dependency asks for (None when it has none)."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        role = getattr(dep.call, "required_role", None)
        if role is not None:
            return str(role)
        stack.extend(dep.dependencies)
    return None


def api_routes(app) -> list[tuple[str, str, APIRoute]]:
    """Every endpoint of the app; checked against the published spec so none is missed."""
    routes = list(app.state.api_routes)
    spec = {
        (m.upper(), p)
        for p, ops in app.openapi()["paths"].items()
        for m in ops
        if m != "parameters"
    }
    assert spec == {(m, p) for m, p, _ in routes}
    return routes


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_core_endpoints_declare_the_expected_roles(app):
    found = {(m, p): declared_role(r) for m, p, r in api_routes(app)}
    for key, role in EXPECTED.items():
        if key[1].startswith("/rules") and key not in found:
            continue  # the rules router needs the detection module
        assert key in found, f"{key} is not served"
        assert found[key] == role, f"{key} needs {found[key]}, expected {role}"


def test_every_non_public_endpoint_has_a_role(app):
    for method, path, route in api_routes(app):
        if (method, path) in PUBLIC:
            continue
        assert declared_role(route) is not None, f"{method} {path} has no require(role)"


def test_no_token_and_bad_tokens_get_401_everywhere(client, tokens, runtime):
    store = TokenStore(runtime.state)
    info, revoked = store.create("admin", name="gone")
    store.revoke(info.id)
    bad_headers = [
        {},
        {"Authorization": "Bearer mnt_not-a-real-token"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer "},
        bearer(revoked),
    ]
    for method, path, _ in api_routes(client.app):
        if (method, path) in PUBLIC:
            continue
        for headers in bad_headers:
            r = client.request(method, concrete(path), headers=headers)
            assert r.status_code == 401, (method, path, headers, r.text)
            body = r.json()
            assert body["error"]["code"] == "unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_allowed_or_403(client, tokens, role):
    checked = 0
    for method, path, route in api_routes(client.app):
        need = declared_role(route)
        if need is None:
            continue
        r = client.request(method, concrete(path), headers=bearer(tokens[role]), json={})
        if role_allows(role, need):
            assert r.status_code not in (401, 403), (role, method, path, r.text)
        else:
            assert r.status_code == 403, (role, method, path, r.text)
            assert r.json()["error"]["code"] == "forbidden"
            assert need in r.json()["error"]["message"]
        checked += 1
    assert checked >= 14


def test_role_order_and_ingest():
    assert role_allows("admin", "ingest")
    assert role_allows("responder", "engineer")
    assert not role_allows("analyst", "engineer")
    assert not role_allows("ingest", "viewer")
    assert not role_allows("viewer", "ingest")
    assert not role_allows("responder", "ingest")
    assert role_allows("ingest", "ingest")


def test_tokens_are_stored_hashed(runtime, tokens):
    raw = (runtime.data_dir / "state.db").read_bytes()
    wal = runtime.data_dir / "state.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    for secret in tokens.values():
        assert secret.encode() not in raw


def test_expired_token_is_refused(client, runtime):
    import datetime as dt

    from mantissa.state.store import utcnow

    _, secret = TokenStore(runtime.state).create(
        "viewer", expires_at=utcnow() - dt.timedelta(seconds=1)
    )
    r = client.get("/config", headers=bearer(secret))
    assert r.status_code == 401
    assert "expired" in r.json()["error"]["message"]


# -- console sessions ---------------------------------------------------------------


def _login(client, token: str) -> str:
    r = client.post("/auth/login", json={"token": token})
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    return r.json()["csrf_token"]


def test_session_cookie_needs_csrf_for_writes(client, tokens):
    csrf = _login(client, tokens["analyst"])
    assert client.get("/auth/me").json()["role"] == "analyst"
    assert client.get("/alerts").status_code == 200
    body = {"status": "acknowledged"}
    r = client.patch("/alerts/al_none", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
    r = client.patch("/alerts/al_none", json=body, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    r = client.patch("/alerts/al_none", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 404  # past auth and CSRF: the alert does not exist


def test_session_role_is_enforced_and_logout_ends_it(client, tokens):
    csrf = _login(client, tokens["viewer"])
    r = client.post("/query", json={"sql": "SELECT 1"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    assert client.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/auth/me").status_code == 401


def test_secure_cookie_over_https(runtime, tokens):
    from fastapi.testclient import TestClient

    from mantissa.api.app import create_app

    with TestClient(create_app(runtime), base_url="https://mantissa.test") as c:
        r = c.post("/auth/login", json={"token": tokens["viewer"]})
        assert "Secure" in r.headers["set-cookie"]
        assert r.headers["strict-transport-security"]


def test_revoking_a_token_ends_its_sessions(client, tokens):
    store = client.app.state.tokens  # the server's own store: revocation applies at once
    info, secret = store.create("analyst", name="short-lived")
    _login(client, secret)
    assert client.get("/auth/me").status_code == 200
    assert client.get("/auth/me", headers=bearer(secret)).status_code == 200
    store.revoke(info.id)
    assert client.get("/auth/me").status_code == 401
    assert client.get("/auth/me", headers=bearer(secret)).status_code == 401


def test_revocation_from_another_process_applies_within_the_cache_time(
    client, runtime, monkeypatch
):
    import mantissa.api.auth as auth

    info, secret = TokenStore(runtime.state).create("viewer", name="elsewhere")
    assert client.get("/auth/me", headers=bearer(secret)).status_code == 200
    TokenStore(runtime.state).revoke(info.id)  # as `mantissa tokens revoke` would
    assert auth.CACHE_SECS <= 5
    monkeypatch.setattr(auth, "CACHE_SECS", 0.0)  # ... once the cache time has passed
    assert client.get("/auth/me", headers=bearer(secret)).status_code == 401


def test_ingest_tokens_cannot_sign_in(client, tokens):
    r = client.post("/auth/login", json={"token": tokens["ingest"]})
    assert r.status_code == 403


def test_bad_login_is_401(client):
    r = client.post("/auth/login", json={"token": "mnt_nope"})
    assert r.status_code == 401
    assert "set-cookie" not in r.headers


def test_console_pages_redirect_to_sign_in(client, tokens):
    r = client.get("/console/alerts", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/login?next=")
    _login(client, tokens["viewer"])
    r = client.get("/console/alerts")
    assert r.status_code == 200 and 'name="csrf-token"' in r.text


def test_login_next_cannot_leave_the_console(client):
    r = client.get("/console/login", params={"next": "//evil.example/x"})
    assert 'data-next="/console/alerts"' in r.text


# -- audit ------------------------------------------------------------------------


def test_every_mutating_call_is_audited(client, tokens):
    admin = bearer(tokens["admin"])
    r = client.post("/tokens", json={"role": "viewer", "name": "audited"}, headers=admin)
    assert r.status_code == 201
    new_id = r.json()["id"]
    client.delete(f"/tokens/{new_id}", headers=admin)
    client.patch("/alerts/al_x", json={"status": "closed"}, headers=bearer(tokens["analyst"]))
    client.patch("/alerts/al_x", json={"status": "closed"})  # anonymous, refused
    entries = client.get("/audit", params={"sort": "at"}, headers=admin).json()["items"]
    seen = [(e["method"], e["route"], e["status"], e["actor"].split(" ")[0]) for e in entries]
    assert ("POST", "/tokens", 201, "test-admin") in seen
    assert ("DELETE", "/tokens/{token_id}", 200, "test-admin") in seen
    assert ("PATCH", "/alerts/{alert_id}", 404, "test-analyst") in seen
    assert ("PATCH", "/alerts/{alert_id}", 401, "anonymous") in seen
    create = next(e for e in entries if e["route"] == "/tokens")
    assert create["detail"]["token_id"] == new_id
    assert "token" not in create["detail"]  # never the secret
    assert all(e["at"] and e["request_id"] for e in entries)
    # reads are not audited
    client.get("/alerts", headers=admin)
    total = client.get("/audit", headers=admin).json()["total"]
    assert total == len(entries)
