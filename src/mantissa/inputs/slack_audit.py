"""Slack Audit Logs API (Enterprise Grid): ``GET /audit/v1/logs``.

https://api.slack.com/admins/audit-logs — ``Authorization: Bearer xoxp-...`` (a user
token of an org owner with the ``auditlogs:read`` scope), ``oldest`` (epoch seconds),
``limit`` ≤ 9999, ``cursor`` paging via ``response_metadata.next_cursor``. Entries come
newest first, so a cycle pages the whole range ``[oldest, now]`` keeping ``oldest``
fixed (the page cursor is checkpointed so a crash resumes mid-range) and only at the
end moves ``oldest`` to the newest ``date_create`` seen. The overlap of one second is
absorbed by the lake's dedup on ``id``. Tier 3 rate limit: 429 with ``Retry-After``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx

from mantissa.errors import InputAuthError, InputError
from mantissa.inputs.base import Batch, Input, InputConfig, parse_time

AUTH_ERRORS = {
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
    "missing_scope",
    "not_allowed_token_type",
    "feature_not_enabled",
}


class SlackAuditConfig(InputConfig):
    token: str | None = None
    limit: int = 1000
    action: str | None = None


class SlackAudit(Input):
    type = "slack_audit"
    source = "slack_audit"
    config_model = SlackAuditConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.url = self.base_url("https://api.slack.com") + "/audit/v1/logs"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.secret('token')}"}

    def error_detail(self, resp: httpx.Response) -> str:
        try:
            return str(resp.json().get("error"))
        except (ValueError, AttributeError):
            return resp.text[:200]

    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        cfg: SlackAuditConfig = self.config  # type: ignore[assignment]
        cursor = dict(cursor or {})
        oldest = cursor.get("oldest") or int(self.backfill_from().timestamp())
        newest = cursor.get("newest_seen", oldest)
        page_cursor = cursor.get("page")
        latest = cursor.get("latest") or int(time.time())
        while True:
            params: dict[str, Any] = {"oldest": oldest, "latest": latest, "limit": cfg.limit}
            if cfg.action:
                params["action"] = cfg.action
            if page_cursor:
                params["cursor"] = page_cursor
            body, _ = self.http.json("GET", self.url, params=params)
            if isinstance(body, dict) and body.get("ok") is False:
                err = str(body.get("error"))
                if err in AUTH_ERRORS:
                    raise InputAuthError(f"slack_audit refused the token: {err}")
                if page_cursor and err in ("invalid_cursor", "invalid_arguments"):
                    page_cursor = None  # an expired page cursor: redo the range (dedup absorbs it)
                    continue
                raise InputError(f"slack_audit: {err}")
            entries = body.get("entries") if isinstance(body, dict) else None
            if not isinstance(entries, list):
                raise InputError("slack_audit: no `entries` list in the response")
            for e in entries:
                newest = max(newest, int(e.get("date_create") or 0))
            page_cursor = ((body.get("response_metadata") or {}).get("next_cursor")) or None
            if page_cursor:
                new = {
                    "oldest": oldest,
                    "latest": latest,
                    "page": page_cursor,
                    "newest_seen": newest,
                }
            else:
                new = {"oldest": newest, "newest_seen": newest}
            yield Batch(
                entries,
                new,
                last_event_time=parse_time(newest) if entries else None,
                name=f"{self.id}.json",
            )
            if not page_cursor:
                return
