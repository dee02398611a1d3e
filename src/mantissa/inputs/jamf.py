"""Jamf Pro API object history (audit notes), with bearer tokens renewed before expiry.

Auth, either (developer.jamf.com, "Jamf Pro API Overview"):

* ``auth: client_credentials`` (Jamf Pro ≥ 10.49, API roles and clients): ``POST
  /api/oauth/token`` form ``grant_type=client_credentials``, ``client_id``,
  ``client_secret`` → ``{"access_token", "expires_in"}``; a new token 60 s before expiry.
* ``auth: basic`` (a Jamf Pro user account): ``POST /api/v1/auth/token`` with
  ``Authorization: Basic`` → ``{"token", "expires"}`` (ISO time); 60 s before it expires
  the token is exchanged at ``POST /api/v1/auth/keep-alive`` (bearer), which invalidates
  the old one; a fresh Basic login only when the token is gone.

History: the Jamf Pro API ``.../history`` collections (``GET`` with ``page``,
``page-size``, ``sort=date:asc``, RSQL ``filter=date=ge="..."``) answer ``{"totalCount",
"results": [{id, username, date, note, details}]}``. By default the server-wide ones
(``/api/v1/jamf-pro-server-url/history``, ``/api/v1/device-communication-settings/history``);
add the per-object collections you care about (e.g. ``/api/v1/buildings/{id}/history``,
``/api/v2/computer-prestages/{id}/history``; ``/api/doc`` on your server lists them) in
``history_paths``. The cursor is the newest ``date`` per path (``ge``: the boundary second
is read again and deduplicated in the lake).

Webhooks arrive through ``POST /ingest/webhooks/jamf`` (JSON, or the XML form
``<JSSEvent><webhook/><event/></JSSEvent>``, converted by :func:`webhook_from_xml`).
Needs: an API client / account whose role has *Read* on the objects whose history you
collect (e.g. *Read Jamf Pro Server URL*, *Read Automatically renew MDM profile settings*).
"""

from __future__ import annotations

import datetime as dt
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import orjson

from mantissa.errors import IngestError, InputAuthError, InputError
from mantissa.inputs.base import Batch, Input, InputConfig, TokenCache, parse_time

DEFAULT_HISTORY = [
    "/api/v1/jamf-pro-server-url/history",
    "/api/v1/device-communication-settings/history",
]


class JamfConfig(InputConfig):
    url: str | None = None  # https://acme.jamfcloud.com
    #: default: client_credentials when client_id is set, else basic
    auth: Literal["client_credentials", "basic"] | None = None
    client_id: str | None = None
    client_secret: str | None = None
    username: str | None = None
    password: str | None = None
    history_paths: list[str] = DEFAULT_HISTORY
    page_size: int = 100


class Jamf(Input):
    type = "jamf"
    source = "jamf"
    config_model = JamfConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg: JamfConfig = self.config  # type: ignore[assignment]
        if not (cfg.base_url or cfg.url):
            raise InputError(f"input {self.id}: jamf needs `url` (https://acme.jamfcloud.com)")
        if not cfg.history_paths:
            raise InputError(f"input {self.id}: jamf needs `history_paths` to collect")
        self.auth = cfg.auth or ("client_credentials" if cfg.client_id else "basic")
        if self.auth == "basic" and not cfg.username:
            raise InputError(f"input {self.id}: jamf needs client_id/client_secret or username")
        self.base = self.base_url(cfg.url or "")
        self.tokens = TokenCache(self._fetch_token)
        self.keep_alives = 0

    def _token_call(self, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.client.post(self.base + path, **kwargs)
        except httpx.HTTPError as exc:
            raise InputError(f"jamf {path}: {type(exc).__name__}: {exc}") from None

    def _fetch_token(self) -> tuple[str, float]:
        cfg: JamfConfig = self.config  # type: ignore[assignment]
        if self.auth == "client_credentials":
            cc = self._token_call(
                "/api/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": cfg.secret("client_id"),
                    "client_secret": cfg.secret("client_secret"),
                },
            )
            if cc.status_code in (400, 401, 403):
                raise InputAuthError(f"jamf refused the client credentials ({cc.status_code})")
            if cc.status_code >= 300:
                raise InputError(f"jamf /api/oauth/token: HTTP {cc.status_code}")
            body = self._body(cc, "/api/oauth/token")
            return str(body["access_token"]), float(body.get("expires_in", 300))
        # bearer token from a user account: renew the live one, log in only without one
        resp: httpx.Response | None = None
        if self.tokens.token is not None and time.time() < self.tokens.expires_at:
            resp = self._token_call(
                "/api/v1/auth/keep-alive",
                headers={"Authorization": f"Bearer {self.tokens.token}"},
            )
            if resp.status_code == 200:
                self.keep_alives += 1
            else:
                resp = None  # invalidated meanwhile: log in again
        if resp is None:
            resp = self._token_call(
                "/api/v1/auth/token",
                auth=(cfg.username or "", cfg.secret("password")),
            )
            if resp.status_code in (400, 401, 403):
                raise InputAuthError(
                    f"jamf refused the account {cfg.username!r} ({resp.status_code})",
                    hint="check username/password and that the account may use the API",
                )
            if resp.status_code >= 300:
                raise InputError(f"jamf /api/v1/auth/token: HTTP {resp.status_code}")
        body = self._body(resp, "/api/v1/auth")
        expires = parse_time(body.get("expires"))
        ttl = (expires.timestamp() - time.time()) if expires else 1200.0
        return str(body["token"]), max(ttl, 1.0)

    @staticmethod
    def _body(resp: httpx.Response, path: str) -> dict[str, Any]:
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise InputError(f"jamf {path}: malformed JSON in the token answer") from None
        if not isinstance(body, dict) or not (body.get("access_token") or body.get("token")):
            raise InputError(f"jamf {path}: no token in the answer")
        return body

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.get()}", "Accept": "application/json"}

    def refresh_auth(self) -> bool:
        self.tokens.invalidate()
        return True

    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        cfg: JamfConfig = self.config  # type: ignore[assignment]
        cursor = dict(cursor or {})
        for path in cfg.history_paths:
            since = cursor.get(path) or self.backfill_from().strftime("%Y-%m-%dT%H:%M:%S.000Z")
            page = 0
            newest = since
            while True:
                params = {
                    "page": page,
                    "page-size": cfg.page_size,
                    "sort": "date:asc",
                    "filter": f'date=ge="{since}"',
                }
                body, _ = self.http.json("GET", self.base + path, params=params)
                results = body.get("results") if isinstance(body, dict) else None
                if not isinstance(results, list):
                    raise InputError(f"jamf {path}: no `results` list in the response")
                for r in results:
                    t = parse_time(r.get("date"))
                    if t is not None:
                        newest = max(
                            newest, t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
                        )
                done = len(results) < cfg.page_size
                # mid-range pages keep `since` (a resumed cycle re-reads the range; dedup)
                new = {**cursor, path: newest if done else since}
                yield Batch(
                    results,
                    new,
                    last_event_time=parse_time(newest) if results else None,
                    name=f"{self.id}-history.json",
                )
                cursor = new
                if done:
                    break
                page += 1


# -- webhooks (XML form) --------------------------------------------------------------


def _value(el: ET.Element) -> Any:
    children = list(el)
    if not children:
        text = (el.text or "").strip()
        if text == "":
            return None
        if text in ("true", "false"):
            return text == "true"
        if text.lstrip("-").isdigit() and not (len(text) > 1 and text.startswith("0")):
            return int(text)
        return text
    out: dict[str, Any] = {}
    for c in children:
        v = _value(c)
        if c.tag in out:  # repeated elements become a list, as in the JSON form
            prev = out[c.tag]
            out[c.tag] = [*prev, v] if isinstance(prev, list) else [prev, v]
        else:
            out[c.tag] = v
    return out


def webhook_from_xml(body: bytes) -> dict[str, Any]:
    """A Jamf Pro webhook sent as XML (``<JSSEvent><webhook/><event/></JSSEvent>``, the
    webhook's content type ``text/xml``) → the same dict as its JSON form."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise IngestError("XML with a DOCTYPE or entities is not accepted")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise IngestError(f"the body is not well-formed XML: {exc}") from None
    doc = _value(root)
    if not isinstance(doc, dict) or not isinstance(doc.get("webhook"), dict):
        raise IngestError("expected a Jamf webhook <JSSEvent> with <webhook> and <event>")
    return {"webhook": doc["webhook"], "event": doc.get("event") or {}}
