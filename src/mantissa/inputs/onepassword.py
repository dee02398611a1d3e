"""1Password Events API: sign-in attempts, item usages and audit events.

https://developer.1password.com/docs/events-api/reference — ``POST`` with
``Authorization: Bearer <events token>`` to ``/api/v1/signinattempts``,
``/api/v1/itemusages`` and ``/api/v2/auditevents``. The first request sends a
*ResetCursor* (``{"limit": N, "start_time": RFC3339}``); the answer's ``cursor`` is sent
back alone (``{"cursor": "..."}``) while ``has_more`` is true and on every later poll.
Base URL per region: ``https://events.1password.com`` (``.ca``, ``.eu``,
``events.ent.1password.com``). Rate limit: 600 requests/minute; 429 otherwise.
Needs: an Events Reporting integration token with the feeds you list in ``feeds``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mantissa.errors import InputError
from mantissa.inputs.base import Batch, Input, InputConfig, iso, parse_time

FEEDS = {
    "signinattempts": "/api/v1/signinattempts",
    "itemusages": "/api/v1/itemusages",
    "auditevents": "/api/v2/auditevents",
}


class OnePasswordConfig(InputConfig):
    token: str | None = None
    feeds: list[str] = list(FEEDS)
    limit: int = 1000


class OnePassword(Input):
    type = "onepassword"
    source = "onepassword"
    config_model = OnePasswordConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg: OnePasswordConfig = self.config  # type: ignore[assignment]
        unknown = set(cfg.feeds) - set(FEEDS)
        if unknown:
            raise InputError(f"onepassword: unknown feeds {sorted(unknown)}; use {sorted(FEEDS)}")
        self.base = self.base_url("https://events.1password.com")

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.secret('token')}"}

    def error_detail(self, resp: Any) -> str:
        """The Events API's ``{"Error": {"Message": ...}}`` error body."""
        try:
            return str(resp.json()["Error"]["Message"])
        except (ValueError, KeyError, TypeError):
            return super().error_detail(resp)

    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        cfg: OnePasswordConfig = self.config  # type: ignore[assignment]
        cursor = dict(cursor or {})
        for feed in cfg.feeds:
            for _ in range(100_000):
                saved = cursor.get(feed)
                body: dict[str, Any] = (
                    {"cursor": saved}
                    if saved
                    else {"limit": cfg.limit, "start_time": iso(self.backfill_from())}
                )
                page, _ = self.http.json("POST", self.base + FEEDS[feed], json=body)
                if not isinstance(page, dict) or "cursor" not in page:
                    raise InputError(f"onepassword {feed}: no cursor in the response")
                items = page.get("items") or []
                cursor = {**cursor, feed: page["cursor"]}
                last = max(
                    (t for t in (parse_time(i.get("timestamp")) for i in items) if t), default=None
                )
                yield Batch(items, cursor, last_event_time=last, name=f"{self.id}-{feed}.json")
                if not page.get("has_more"):
                    break
