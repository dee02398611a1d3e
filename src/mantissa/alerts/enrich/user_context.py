"""User context: what the lake already knows about the alert's users, plus an optional
directory file.

From the ``events`` view (every source's common columns), per user, over
``lookback_days`` before the alert: first and last seen, event and failure counts, the
usual countries, source IPs and sources, as one grouped query per batch of alerts (not
one per alert). A directory file (CSV or JSON list with a ``user`` column, plus any of
``display_name``, ``email``, ``department``, ``title``, ``manager``, ``groups``,
``roles``) adds who the person is.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from mantissa.errors import MantissaError

log = logging.getLogger(__name__)


class UserContextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    lookback_days: int = 30
    #: CSV or JSON file of users (relative paths are under the data dir)
    directory: str | None = None


def _top(hist: Any, n: int = 5) -> list[str]:
    """The ``n`` most frequent keys of a DuckDB ``histogram()`` map."""
    if not hist:
        return []
    items = (
        hist.items() if isinstance(hist, dict) else zip(hist["key"], hist["value"], strict=False)
    )
    return [k for k, _ in sorted(items, key=lambda kv: -kv[1]) if k][:n]


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class UserContext:
    def __init__(self, config: UserContextConfig, runtime: Any = None) -> None:
        self.config = config
        self.runtime = runtime
        self._directory: dict[str, dict[str, Any]] | None = None

    def directory(self) -> dict[str, dict[str, Any]]:
        if self._directory is not None:
            return self._directory
        self._directory = {}
        path = self.config.directory
        if not path:
            return self._directory
        p = Path(path).expanduser()
        if not p.is_absolute() and self.runtime is not None:
            p = self.runtime.data_dir / p
        try:
            text = p.read_text()
        except OSError as exc:
            log.warning("user directory %s cannot be read: %s", p, exc.strerror)
            return self._directory
        rows: list[dict[str, Any]]
        if p.suffix.lower() == ".json":
            data = json.loads(text)
            rows = data if isinstance(data, list) else data.get("users", [])
        else:
            rows = list(csv.DictReader(text.splitlines()))
        for r in rows:
            user = str(r.get("user") or r.get("email") or r.get("username") or "").lower()
            if not user:
                continue
            rec = {k: v for k, v in r.items() if v not in (None, "")}
            for k in ("groups", "roles"):
                if isinstance(rec.get(k), str):
                    rec[k] = [x.strip() for x in rec[k].replace(";", ",").split(",") if x.strip()]
            self._directory[user] = rec
        return self._directory

    def lookup(self, users: dict[str, dt.datetime]) -> dict[str, dict[str, Any]]:
        """Context per user; ``users`` maps a user name to the time of its alert."""
        out: dict[str, dict[str, Any]] = {}
        if not self.config.enabled or not users:
            return out
        directory = self.directory()
        for u in users:
            d = directory.get(u.lower())
            if d:
                out.setdefault(u, {})["directory"] = d
        if self.runtime is None:
            return out
        until = max(users.values()) + dt.timedelta(minutes=1)
        since = min(users.values()) - dt.timedelta(days=self.config.lookback_days)
        names = ", ".join(_sql_str(u) for u in list(users)[:500])
        window = (
            f'"user" IN ({names}) AND event_time >= TIMESTAMPTZ {_sql_str(since.isoformat())} '
            f"AND event_time < TIMESTAMPTZ {_sql_str(until.isoformat())}"
        )
        # one grouped scan for the whole batch (each engine call opens a fresh sandbox)
        sql = (
            'SELECT "user", min(event_time) AS first_seen, max(event_time) AS last_seen, '
            "count(*) AS events, count(*) FILTER (WHERE outcome = 'failure') AS failures, "
            "list(DISTINCT source) AS sources, count(DISTINCT src_ip) AS distinct_ips, "
            "histogram(geo_country) AS usual_countries, histogram(src_ip) AS usual_ips "
            f'FROM events WHERE {window} GROUP BY "user"'
        )
        try:
            rows = self.runtime.engine.execute(sql).records()
        except MantissaError as exc:
            log.warning("user context query failed: %s", exc.message)
            return out
        except Exception as exc:  # best effort: a broken lake must not cost the alert
            log.warning("user context query failed: %s: %s", type(exc).__name__, exc)
            return out
        for r in rows:
            out.setdefault(r["user"], {})["lake"] = {
                "lookback_days": self.config.lookback_days,
                "first_seen": r["first_seen"],
                "last_seen": r["last_seen"],
                "events": r["events"],
                "failures": r["failures"],
                "sources": sorted(r["sources"] or []),
                "distinct_ips": r["distinct_ips"],
                "usual_countries": _top(r["usual_countries"]),
                "usual_ips": _top(r["usual_ips"]),
            }
        return out
