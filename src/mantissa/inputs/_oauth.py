"""OAuth token endpoints shared by the Google and Microsoft inputs.

* :func:`token_request` POSTs a form to a token endpoint with the framework's policy:
  5xx, 408, timeouts and refused connections back off and retry (``max_retries``), 429
  waits as told by ``Retry-After``; a 400/401/403 answer (``invalid_client``,
  ``invalid_grant``, ``unauthorized_client``, ``invalid_scope``) is an
  :class:`InputAuthError` carrying the endpoint's ``error`` and ``error_description``,
  never the request's secrets, so the input stops instead of looping.
* :class:`EntraToken` is the Microsoft identity platform's client-credentials grant
  (``POST {login}/{tenant}/oauth2/v2.0/token`` with ``client_id``, ``client_secret``,
  ``scope={resource}/.default``, ``grant_type=client_credentials``), cached and renewed
  60 s before ``expires_in`` runs out.
* :func:`ms_error_detail` reads Microsoft's ``{"error": {"code", "message"}}`` bodies.

msal is not used: it only accepts ``https`` authorities (so no proxy-less stub, no
``base_url`` over plain HTTP), and the grant is one documented form POST.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import orjson

from mantissa.errors import InputAuthError, InputError
from mantissa.inputs.base import TokenCache, _backoff_secs, _safe_url, retry_after

if TYPE_CHECKING:
    from mantissa.inputs.base import Input

LOGIN_URL = "https://login.microsoftonline.com"


def token_request(inp: Input, url: str, data: dict[str, str]) -> dict[str, Any]:
    """POST ``data`` (form-encoded) to the token endpoint ``url``; the JSON answer."""
    cfg = inp.config
    failures = throttles = 0
    while True:
        try:
            resp = inp.http.client.post(url, data=data, headers={"Accept": "application/json"})
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            failures += 1
            if failures > cfg.max_retries:
                raise InputError(
                    f"{inp.type} token endpoint {_safe_url(url)}: {type(exc).__name__}: {exc}"
                ) from None
            inp.sleep(_backoff_secs(failures, cfg.max_backoff))
            continue
        status = resp.status_code
        if status == 429:
            throttles += 1
            if throttles > max(20, cfg.max_retries * 4):
                raise InputError(f"{inp.type} token endpoint: still rate limited")
            wait = retry_after(resp)
            inp.sleep(min(wait if wait is not None else _backoff_secs(throttles, 60), 60))
            continue
        if status >= 500 or status == 408:
            failures += 1
            if failures > cfg.max_retries:
                raise InputError(
                    f"{inp.type} token endpoint {_safe_url(url)}: HTTP {status} after "
                    f"{failures} attempts"
                )
            inp.sleep(_backoff_secs(failures, cfg.max_backoff))
            continue
        if status in (400, 401, 403):
            raise InputAuthError(
                f"{inp.type}: the token endpoint refused the credentials ({status}): "
                f"{oauth_error(resp)}",
                hint="check the credentials, their permissions/consent and the tenant",
            )
        if status >= 300:
            raise InputError(f"{inp.type} token endpoint {_safe_url(url)}: HTTP {status}")
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise InputError(f"{inp.type} token endpoint: malformed JSON") from None
        if not isinstance(body, dict) or not body.get("access_token"):
            raise InputError(f"{inp.type} token endpoint: no access_token in the answer")
        return body


def oauth_error(resp: httpx.Response) -> str:
    """``error: error_description`` of an RFC 6749 §5.2 error body (first line only)."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict) and body.get("error"):
        desc = str(body.get("error_description") or "").splitlines()
        return f"{body['error']}: {desc[0] if desc else ''}".strip(": ")
    return str(body)[:200]


def ms_error_detail(resp: httpx.Response) -> str:
    """``code: message`` of a Microsoft API error body (Graph, Management Activity API)."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return f"{err.get('code', '?')}: {err.get('message', '')}"[:300]
    if isinstance(body, dict) and body.get("error"):
        return oauth_error(resp)
    return str(body)[:200]


class EntraToken:
    """Client-credentials access tokens for ``resource`` from Microsoft Entra ID."""

    def __init__(self, inp: Input, login_url: str, tenant: str, resource: str) -> None:
        self.inp = inp
        self.url = f"{login_url.rstrip('/')}/{tenant}/oauth2/v2.0/token"
        self.scope = f"{resource.rstrip('/')}/.default"
        self.cache = TokenCache(self._fetch)

    def _fetch(self) -> tuple[str, float]:
        cfg = self.inp.config
        body = token_request(
            self.inp,
            self.url,
            {
                "grant_type": "client_credentials",
                "client_id": cfg.secret("client_id"),
                "client_secret": cfg.secret("client_secret"),
                "scope": self.scope,
            },
        )
        return str(body["access_token"]), float(body.get("expires_in", 3599))

    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.cache.get()}", "Accept": "application/json"}
