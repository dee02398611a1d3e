"""Identity providers behind the identity actions: Okta, Entra ID (Graph), Google
Directory, AWS IAM. Each function makes the documented call(s) for one operation."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any
from urllib.parse import quote

from mantissa.soar.actions import ActionContext, ActionError, DryRunStop

VENDORS = ("okta", "entra_id", "google", "aws_iam")


def _base(conn: Any) -> str:
    return str(conn.base_url).rstrip("/")


# -- Okta (developer.okta.com/docs/api/openapi/okta-management/management/tag/UserLifecycle)
def _okta_headers(conn: Any) -> dict[str, str]:
    # Okta API tokens use the SSWS scheme, not Bearer
    return {"Authorization": f"SSWS {conn.secret('token')}", "Accept": "application/json"}


def _okta_user(ctx: ActionContext, conn: Any, user_id: str) -> dict[str, Any]:
    r = ctx.http(
        "GET", f"{_base(conn)}/api/v1/users/{quote(user_id, safe='@')}", headers=_okta_headers(conn)
    )
    return dict(r.json())


# -- Entra ID via Microsoft Graph (learn.microsoft.com/graph/api/user-update)
_GRAPH_TOKENS: dict[str, tuple[str, float]] = {}


def _graph_headers(ctx: ActionContext, conn: Any) -> dict[str, str]:
    token = conn.secret("token")
    if not token:
        key = f"{conn.option('tenant_id')}/{conn.option('client_id')}"
        hit = _GRAPH_TOKENS.get(key)
        if hit and hit[1] > time.time() + 60:
            token = hit[0]
        else:
            url = conn.option("token_url") or (
                f"https://login.microsoftonline.com/{conn.option('tenant_id')}/oauth2/v2.0/token"
            )
            secret = conn.secret("client_secret") or ""
            ctx.secrets.append(secret)
            r = ctx.http(
                "POST",
                url,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                content=(
                    "grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
                    f"&client_id={quote(str(conn.option('client_id')))}"
                    f"&client_secret={quote(secret)}"
                ),
            )
            body = r.json()
            token = body["access_token"]
            _GRAPH_TOKENS[key] = (token, time.time() + float(body.get("expires_in", 3599)))
        ctx.secrets.append(token)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


# -- Google Directory (developers.google.com/admin-sdk/directory/reference/rest/v1/users)
def _google_headers(conn: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {conn.secret('token')}"}


# -- AWS IAM (docs.aws.amazon.com/IAM/latest/APIReference/API_UpdateAccessKey.html)
def _iam(ctx: ActionContext, conn: Any) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    kid = conn.secret("access_key_id")
    secret = conn.secret("secret_access_key")
    if kid:
        ctx.secrets.extend([kid, secret or ""])
    return boto3.client(
        "iam",
        endpoint_url=conn.base_url,
        region_name=conn.option("region", "us-east-1"),
        aws_access_key_id=kid,
        aws_secret_access_key=secret,
        config=BotoConfig(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=min(10, ctx.remaining()),
            read_timeout=min(60, ctx.remaining()),
        ),
    )


def _aws_call(ctx: ActionContext, client: Any, op: str, **kw: Any) -> Any:
    if ctx.dry_run:
        ctx.requests.append({"service": "iam", "operation": op, "params": ctx.mask(kw)})
        raise DryRunStop()
    t0 = time.monotonic()
    status: int | None = None
    try:
        out = getattr(client, op)(**kw)
        status = out.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return out
    except Exception as exc:
        status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise ActionError(f"aws iam {op}: {code}") from None
    finally:
        ctx.audit(
            {
                "event": "call",
                "method": "POST",
                "host": client.meta.endpoint_url,
                "path": f"iam:{op}",
                "status": status,
                "latency_ms": round((time.monotonic() - t0) * 1000, 1),
            }
        )


def _iam_keys(ctx: ActionContext, conn: Any, user: str, status: str) -> dict[str, Any]:
    iam = _iam(ctx, conn)
    keys = _aws_call(ctx, iam, "list_access_keys", UserName=user)["AccessKeyMetadata"]
    changed = []
    for k in keys:
        if k["Status"] != status:  # verify-first: only keys not already in that state
            _aws_call(
                ctx,
                iam,
                "update_access_key",
                UserName=user,
                AccessKeyId=k["AccessKeyId"],
                Status=status,
            )
            changed.append(k["AccessKeyId"])
    return {"provider": "aws_iam", "user_id": user, "keys_changed": changed, "status": status}


# -- operations ----------------------------------------------------------------------
def set_enabled(ctx: ActionContext, conn: Any, user_id: str, enabled: bool) -> dict[str, Any]:
    uid = quote(user_id, safe="@")
    if conn.type == "okta":
        user = _okta_user(ctx, conn, user_id)
        state = user.get("status")
        if enabled and state != "SUSPENDED":
            return {"provider": "okta", "user_id": user_id, "status": state, "changed": False}
        if not enabled and state == "SUSPENDED":
            return {"provider": "okta", "user_id": user_id, "status": state, "changed": False}
        op = "unsuspend" if enabled else "suspend"
        ctx.http(
            "POST",
            f"{_base(conn)}/api/v1/users/{uid}/lifecycle/{op}",
            headers=_okta_headers(conn),
            ok=(200,),
        )
        return {
            "provider": "okta",
            "user_id": user_id,
            "status": "ACTIVE" if enabled else "SUSPENDED",
            "changed": True,
        }
    if conn.type == "entra_id":
        ctx.http(
            "PATCH",
            f"{_base(conn)}/v1.0/users/{uid}",
            headers=_graph_headers(ctx, conn),
            json={"accountEnabled": enabled},
            ok=(204, 200),
        )
        return {"provider": "entra_id", "user_id": user_id, "account_enabled": enabled}
    if conn.type == "google":
        r = ctx.http(
            "PATCH",
            f"{_base(conn)}/admin/directory/v1/users/{uid}",
            headers={**_google_headers(conn), "Content-Type": "application/json"},
            json={"suspended": not enabled},
            ok=(200,),
        )
        return {"provider": "google", "user_id": user_id, "suspended": r.json().get("suspended")}
    if conn.type == "aws_iam":
        return _iam_keys(ctx, conn, user_id, "Active" if enabled else "Inactive")
    raise ActionError(f"connection type {conn.type!r} cannot disable users")


def revoke_sessions(
    ctx: ActionContext, conn: Any, user_id: str, include_refresh_tokens: bool
) -> dict[str, Any]:
    uid = quote(user_id, safe="@")
    if conn.type == "okta":
        ctx.http(
            "DELETE",
            f"{_base(conn)}/api/v1/users/{uid}/sessions",
            params={"oauthTokens": "true" if include_refresh_tokens else "false"},
            headers=_okta_headers(conn),
            ok=(204,),
        )
        return {"provider": "okta", "user_id": user_id, "revoked": True}
    if conn.type == "entra_id":
        # revokeSignInSessions invalidates refresh tokens and session cookies
        ctx.http(
            "POST",
            f"{_base(conn)}/v1.0/users/{uid}/revokeSignInSessions",
            headers=_graph_headers(ctx, conn),
            ok=(200, 204),
        )
        return {"provider": "entra_id", "user_id": user_id, "revoked": True}
    if conn.type == "google":
        ctx.http(
            "POST",
            f"{_base(conn)}/admin/directory/v1/users/{uid}/signOut",
            headers=_google_headers(conn),
            ok=(204, 200),
        )
        return {"provider": "google", "user_id": user_id, "revoked": True}
    if conn.type == "aws_iam":
        # docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_revoke-sessions.html
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"DateLessThan": {"aws:TokenIssueTime": now}},
                }
            ],
        }
        iam = _iam(ctx, conn)
        _aws_call(
            ctx,
            iam,
            "put_user_policy",
            UserName=user_id,
            PolicyName="AWSRevokeOlderSessions",
            PolicyDocument=json.dumps(policy),
        )
        return {"provider": "aws_iam", "user_id": user_id, "revoked_before": now}
    raise ActionError(f"connection type {conn.type!r} cannot revoke sessions")


def reset_password(
    ctx: ActionContext, conn: Any, user_id: str, send_notification: bool
) -> dict[str, Any]:
    uid = quote(user_id, safe="@")
    if conn.type == "okta":
        r = ctx.http(
            "POST",
            f"{_base(conn)}/api/v1/users/{uid}/lifecycle/reset_password",
            params={"sendEmail": "true" if send_notification else "false"},
            headers=_okta_headers(conn),
            ok=(200,),
        )
        # with sendEmail=false Okta returns a one-time reset URL: never store it
        return {
            "provider": "okta",
            "user_id": user_id,
            "email_sent": send_notification,
            "reset_url_issued": "resetPasswordUrl" in (r.json() or {}),
        }
    if conn.type == "entra_id":
        ctx.http(
            "PATCH",
            f"{_base(conn)}/v1.0/users/{uid}",
            headers=_graph_headers(ctx, conn),
            json={"passwordProfile": {"forceChangePasswordNextSignIn": True}},
            ok=(204, 200),
        )
        return {"provider": "entra_id", "user_id": user_id, "force_change": True}
    if conn.type == "google":
        ctx.http(
            "PATCH",
            f"{_base(conn)}/admin/directory/v1/users/{uid}",
            headers={**_google_headers(conn), "Content-Type": "application/json"},
            json={"changePasswordAtNextLogin": True},
            ok=(200,),
        )
        return {"provider": "google", "user_id": user_id, "force_change": True}
    if conn.type == "aws_iam":
        iam = _iam(ctx, conn)
        _aws_call(ctx, iam, "update_login_profile", UserName=user_id, PasswordResetRequired=True)
        return {"provider": "aws_iam", "user_id": user_id, "password_reset_required": True}
    raise ActionError(f"connection type {conn.type!r} cannot reset passwords")


def revoke_api_keys(ctx: ActionContext, conn: Any, user_id: str, scope: str) -> dict[str, Any]:
    if conn.type == "aws_iam":
        return _iam_keys(ctx, conn, user_id, "Inactive")
    if conn.type == "okta":
        # Okta API tokens: GET /api/v1/api-tokens, DELETE /api/v1/api-tokens/{id}
        r = ctx.http("GET", f"{_base(conn)}/api/v1/api-tokens", headers=_okta_headers(conn))
        revoked = []
        for t in r.json():
            if t.get("userId") == user_id:
                ctx.http(
                    "DELETE",
                    f"{_base(conn)}/api/v1/api-tokens/{quote(t['id'])}",
                    headers=_okta_headers(conn),
                    ok=(204, 404),
                )
                revoked.append(t["id"])
        return {"provider": "okta", "user_id": user_id, "revoked": revoked}
    if conn.type == "google":
        # OAuth tokens a user granted: GET/DELETE /admin/directory/v1/users/{u}/tokens
        uid = quote(user_id, safe="@")
        r = ctx.http(
            "GET",
            f"{_base(conn)}/admin/directory/v1/users/{uid}/tokens",
            headers=_google_headers(conn),
        )
        revoked = []
        for t in r.json().get("items", []):
            ctx.http(
                "DELETE",
                f"{_base(conn)}/admin/directory/v1/users/{uid}/tokens/{quote(t['clientId'])}",
                headers=_google_headers(conn),
                ok=(204, 200, 404),
            )
            revoked.append(t["clientId"])
        return {"provider": "google", "user_id": user_id, "revoked": revoked}
    raise ActionError(f"connection type {conn.type!r} cannot revoke API keys")
