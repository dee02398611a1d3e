"""GitHub organization / enterprise audit log (REST).

``GET /orgs/{org}/audit-log`` or ``GET /enterprises/{enterprise}/audit-log``
(docs.github.com/en/rest/orgs/orgs#get-the-audit-log-for-an-organization):
``phrase`` (search syntax, e.g. ``action:repo created:>=2026-11-01``), ``include``
(``web``, ``git``, ``all``), ``order`` (``asc``), ``per_page`` ≤ 100; cursor paging
with ``after`` taken from the ``Link: <...>; rel="next"`` header.

Polling: pages are read oldest first (``order=asc``); when the last page has no next
link, the cursor keeps the newest ``@timestamp`` and the next cycle asks for
``created:>=`` that instant (the overlap is absorbed by the lake's dedup on
``_document_id``). Auth: ``Authorization: Bearer <token>``, a classic PAT (scope
``read:audit_log``) or a fine-grained / GitHub App installation token ("Administration"
org read). Rate limits: ``x-ratelimit-remaining`` / ``x-ratelimit-reset`` (epoch
seconds); quota exhaustion and secondary limits answer 403 or 429 with those headers
or ``retry-after``, which are waits, not auth failures.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from mantissa.errors import InputError
from mantissa.inputs.base import Batch, Input, InputConfig, parse_time


class GithubConfig(InputConfig):
    org: str | None = None
    enterprise: str | None = None
    token: str | None = None
    phrase: str | None = None
    include: str = "all"
    per_page: int = 100
    max_pages: int = 10_000


class Github(Input):
    type = "github"
    source = "github"
    config_model = GithubConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg: GithubConfig = self.config  # type: ignore[assignment]
        if bool(cfg.org) == bool(cfg.enterprise):
            raise InputError(f"input {self.id}: github needs exactly one of `org` or `enterprise`")
        scope = f"/orgs/{cfg.org}" if cfg.org else f"/enterprises/{cfg.enterprise}"
        self.url = self.base_url("https://api.github.com") + scope + "/audit-log"

    def auth_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.config.secret('token')}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }

    def is_rate_limited(self, resp: httpx.Response) -> bool:
        return resp.status_code == 403 and (
            resp.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in resp.headers
        )

    def rate_limit_wait(self, resp: httpx.Response) -> float | None:
        ra = resp.headers.get("retry-after")
        if ra and ra.strip().isdigit():
            return float(ra)
        if resp.headers.get("x-ratelimit-remaining") == "0":
            reset = resp.headers.get("x-ratelimit-reset", "")
            if reset.isdigit():
                return max(0.0, int(reset) - time.time()) + 0.1
            return 60.0
        return None

    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        cfg: GithubConfig = self.config  # type: ignore[assignment]
        cursor = dict(cursor or {})
        if not cursor.get("since"):
            cursor["since"] = _gh_time(self.backfill_from())
        for _ in range(cfg.max_pages):
            params: dict[str, Any] = {
                "phrase": " ".join(p for p in (cfg.phrase, f"created:>={cursor['since']}") if p),
                "include": cfg.include,
                "order": "asc",
                "per_page": cfg.per_page,
            }
            if cursor.get("after"):
                params["after"] = cursor["after"]
            page, resp = self.http.json("GET", self.url, params=params)
            if not isinstance(page, list):
                raise InputError(
                    f"github: expected a JSON array of events, got {type(page).__name__}"
                )
            nxt = resp.links.get("next", {}).get("url")
            after = parse_qs(urlparse(nxt).query).get("after", [None])[0] if nxt else None
            times = [parse_time(e.get("@timestamp") or e.get("created_at")) for e in page]
            last = max((t for t in times if t), default=None)
            new_cursor = dict(cursor)
            if after:
                new_cursor["after"] = after
            else:
                # end of the listing: the next cycle searches from the newest event seen
                new_cursor.pop("after", None)
                if last is not None:
                    new_cursor["since"] = _gh_time(last)
            if page or new_cursor != cursor:
                yield Batch(page, new_cursor, last_event_time=last, name=f"{self.id}.json")
            cursor = new_cursor
            if not after:
                return


def _gh_time(t: dt.datetime) -> str:
    # the search syntax takes ISO-8601 to the second
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
