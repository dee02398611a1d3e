"""``http_request``: one HTTP call to any URL (or a connection's ``base_url`` + path)."""

from __future__ import annotations

from typing import Any

from mantissa.soar.actions import ActionContext, ActionError, action


@action("http_request", idempotency="keyed")
def http_request(
    ctx: ActionContext,
    url: str,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    body: dict[str, Any] | list[Any] | str | None = None,
    expect_status: list[int] | int | None = None,
    connection: str | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Send one request; an object ``body`` goes as JSON; ``Idempotency-Key`` is set."""
    method = method.upper()
    if method not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
        raise ActionError(f"http_request: unsupported method {method!r}")
    hdrs = dict(headers or {})
    if connection:
        conn = ctx.connection(connection, ())
        if not url.startswith(("http://", "https://")):
            url = conn.base_url.rstrip("/") + "/" + url.lstrip("/")
        token = conn.secret("token")
        if token:
            scheme = conn.option("auth_scheme", "Bearer")
            hdrs.setdefault("Authorization", f"{scheme} {token}")
    if not url.startswith(("http://", "https://")):
        raise ActionError(f"http_request: url must be http(s): {url[:100]!r}")
    hdrs.setdefault("Idempotency-Key", ctx.idempotency_key)
    expected = (
        None
        if expect_status is None
        else tuple([expect_status] if isinstance(expect_status, int) else expect_status)
    )
    kw: dict[str, Any] = {}
    if isinstance(body, dict | list):
        kw["json"] = body
    elif body is not None:
        kw["content"] = body
    resp = ctx.http(method, url, headers=hdrs, params=query, ok=expected, **kw)
    try:
        data: Any = resp.json()
    except ValueError:
        data = resp.text[:65536]
    return {"status": resp.status_code, "body": ctx.mask(data)}
