"""Duo Admin API: authentication log (v2) and administrator log (v1).

https://duo.com/docs/adminapi — every request is signed: the canonical string is
``Date`` (RFC 2822), the upper-case method, the lower-case host, the path and the
sorted, ``%``-encoded parameters, joined by newlines; ``Authorization: Basic
base64(ikey:hex(HMAC-SHA1(skey, canonical)))``.

* ``GET /admin/v2/logs/authentication``: ``mintime``/``maxtime`` in milliseconds
  (both required), ``limit`` ≤ 1000, ``sort=ts:asc``, paging with
  ``metadata.next_offset`` (a ``[timestamp, txid]`` pair sent back comma-joined).
  Duo holds new events back for two minutes ("querying for results more recent than
  two minutes will return as empty"), so ``maxtime`` is always ``now - 2 min``.
* ``GET /admin/v1/logs/administrator``: ``mintime`` in seconds; up to 1000 events
  oldest first; the next request starts at the newest timestamp + 1.

Rate limit: 429 (Duo asks for no more than one log request per minute per endpoint in
steady state; the framework backs off on 429 and ``interval`` defaults to 5 minutes).
Needs: an Admin API application with the "Grant read log" permission.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlparse

from mantissa.errors import InputError
from mantissa.inputs.base import Batch, Input, InputConfig, parse_time

DUO_DELAY_MS = 120_000


class DuoConfig(InputConfig):
    host: str | None = None  # api-XXXXXXXX.duosecurity.com
    ikey: str | None = None
    skey: str | None = None
    interval: float = 300.0
    limit: int = 1000
    logs: list[str] = ["authentication", "administrator"]


def canon_params(params: dict[str, Any]) -> str:
    return "&".join(f"{quote(str(k), '~')}={quote(str(v), '~')}" for k, v in sorted(params.items()))


def sign(
    method: str, host: str, path: str, params: dict[str, Any], ikey: str, skey: str, date: str
) -> str:
    """The ``Authorization`` header value for a Duo Admin API request."""
    canon = "\n".join([date, method.upper(), host.lower(), path, canon_params(params)])
    sig = hmac.new(skey.encode(), canon.encode(), hashlib.sha1).hexdigest()
    return "Basic " + base64.b64encode(f"{ikey}:{sig}".encode()).decode()


class Duo(Input):
    type = "duo"
    source = "duo"
    config_model = DuoConfig
    settle_secs = DUO_DELAY_MS / 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg: DuoConfig = self.config  # type: ignore[assignment]
        if not cfg.host and not cfg.base_url:
            raise InputError(f"input {self.id}: duo needs `host` (api-XXXXXXXX.duosecurity.com)")
        self.base = self.base_url(f"https://{cfg.host}")
        self.host = urlparse(self.base).netloc

    def get(self, path: str, params: dict[str, Any]) -> Any:
        cfg: DuoConfig = self.config  # type: ignore[assignment]
        ikey, skey = cfg.secret("ikey"), cfg.secret("skey")

        # the Date header is part of the signature: sign again on every retry
        def send() -> Any:
            date = email.utils.formatdate(usegmt=False)
            headers = {
                "Date": date,
                "Authorization": sign("GET", self.host, path, params, ikey, skey, date),
            }
            return self.http.json("GET", self.base + path, params=params, headers=headers)

        body, _resp = send()
        if not isinstance(body, dict) or body.get("stat") != "OK":
            raise InputError(
                f"duo {path}: unexpected answer (stat={body.get('stat') if isinstance(body, dict) else '?'})"
            )
        return body["response"]

    def error_detail(self, resp: Any) -> str:
        try:
            b = resp.json()
            return f"{b.get('code')}: {b.get('message')} {b.get('message_detail', '')}".strip()
        except ValueError:
            return resp.text[:200]

    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        cfg: DuoConfig = self.config  # type: ignore[assignment]
        cursor = dict(cursor or {})
        if "authentication" in cfg.logs:
            for batch in self._auth(cursor):
                cursor = batch.cursor
                yield batch
        if "administrator" in cfg.logs:
            yield from self._admin(cursor)

    def _auth(self, cursor: dict[str, Any]) -> Iterator[Batch]:
        cfg: DuoConfig = self.config  # type: ignore[assignment]
        window = cursor.get("auth_window")
        if not window:
            start = cursor.get("auth_mintime") or int(self.backfill_from().timestamp() * 1000)
            end = int(time.time() * 1000) - DUO_DELAY_MS
            if end <= start:
                return
            # a window is fixed until fully read, so a resumed cycle pages the same set
            window = {"mintime": start, "maxtime": end, "next_offset": None}
        while True:
            params: dict[str, Any] = {
                "mintime": window["mintime"],
                "maxtime": window["maxtime"],
                "limit": cfg.limit,
                "sort": "ts:asc",
            }
            if window.get("next_offset"):
                params["next_offset"] = window["next_offset"]
            resp = self.get("/admin/v2/logs/authentication", params)
            logs = resp.get("authlogs")
            if not isinstance(logs, list):
                raise InputError("duo authentication log: no `authlogs` list in the response")
            nxt = (resp.get("metadata") or {}).get("next_offset")
            new = dict(cursor)
            last = max(
                (parse_time(e.get("timestamp")) for e in logs),
                default=None,
                key=lambda t: t.timestamp() if t else 0,
            )
            if nxt and logs:
                window = {**window, "next_offset": ",".join(str(x) for x in nxt)}
                new["auth_window"] = window
            else:
                new.pop("auth_window", None)
                new["auth_mintime"] = window["maxtime"] + 1
            yield Batch(logs, new, last_event_time=last, name=f"{self.id}-auth.json")
            cursor = new
            if "auth_window" not in new:
                return

    def _admin(self, cursor: dict[str, Any]) -> Iterator[Batch]:
        mintime = cursor.get("admin_mintime") or int(self.backfill_from().timestamp())
        for _ in range(10_000):
            logs = self.get("/admin/v1/logs/administrator", {"mintime": mintime})
            if not isinstance(logs, list):
                raise InputError("duo administrator log: expected a list")
            if not logs:
                return
            newest = max(int(e.get("timestamp", 0)) for e in logs)
            new = {**cursor, "admin_mintime": newest + 1}
            yield Batch(logs, new, last_event_time=parse_time(newest), name=f"{self.id}-admin.json")
            cursor, mintime = new, newest + 1
            if len(logs) < 1000:
                return
