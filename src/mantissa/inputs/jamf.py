"""Jamf Pro API object history (audit notes), with OAuth client-credentials tokens.

Token: ``POST /api/oauth/token`` (form ``grant_type=client_credentials``, ``client_id``,
``client_secret``) → ``{"access_token", "expires_in"}`` (developer.jamf.com, "Client
Credentials", Jamf Pro ≥ 10.49). Tokens live minutes; the input renews one 60 s before
it expires (and once more on a 401), so long backfills never run on a stale token.

History: Jamf Pro API ``.../history`` collections (``GET`` with ``page``, ``page-size``,
``sort=date:asc``, RSQL ``filter=date=ge=...``) answer ``{"totalCount", "results": [{id,
username, date, note, details}]}``. List the collections to follow in ``history_paths``
(e.g. the history of the prestages or the Jamf Pro server settings your instance
exposes; see ``/api/doc`` on it). Webhooks arrive through ``POST /ingest/webhooks/jamf``.
Needs: an API client whose role has *Read* on the objects whose history you collect.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from mantissa.errors import InputAuthError, InputError
from mantissa.inputs.base import Batch, Input, InputConfig, TokenCache, parse_time


class JamfConfig(InputConfig):
    url: str | None = None  # https://acme.jamfcloud.com
    client_id: str | None = None
    client_secret: str | None = None
    history_paths: list[str] = []
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
        self.base = self.base_url(cfg.url or "")
        self.tokens = TokenCache(self._fetch_token)

    def _fetch_token(self) -> tuple[str, float]:
        cfg: JamfConfig = self.config  # type: ignore[assignment]
        resp = self.http.client.post(
            self.base + "/api/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": cfg.secret("client_id"),
                "client_secret": cfg.secret("client_secret"),
            },
        )
        if resp.status_code in (400, 401, 403):
            raise InputAuthError(f"jamf refused the client credentials ({resp.status_code})")
        if resp.status_code >= 300:
            raise InputError(f"jamf /api/oauth/token: HTTP {resp.status_code}")
        body = resp.json()
        return body["access_token"], float(body.get("expires_in", 300))

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
