"""What a query scans, what that costs, and the budgets that refuse it: shared by cloud engines.

Every engine estimates the same way: the SQL guard names the tables, the time bounds on
``event_time`` give the hour partitions (the same pruning the engines do), and the
committed files in those partitions give bytes and files. Engines then price the bytes
at their own list price (``usd_per_tb``) or, where the service can tell better (a
BigQuery dry run), replace the figure.

Budgets: ``max_query_usd`` / ``max_query_bytes`` refuse one query; ``max_day_usd`` refuses
once today's spend (UTC day, kept in the lake under ``_spend/``) plus this query's
estimate would pass it. Both errors carry the estimate.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from mantissa.engines.base import CostEstimate
from mantissa.engines.guard import GuardedQuery
from mantissa.engines.pruning import bounds_for_table, hours_in_range
from mantissa.errors import BudgetExceeded, StorageError
from mantissa.lake.catalog import EVENTS_VIEW, TableSpec, parse_partition, tables
from mantissa.lake.storage import ObjectInfo, Storage

TB = 1e12
SPEND_PREFIX = "_spend"


@dataclass
class Scan:
    """The committed files a query would read, per table, after partition pruning."""

    tables: list[str]
    files: dict[str, list[ObjectInfo]] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(o.size for fs in self.files.values() for o in fs)

    @property
    def file_count(self) -> int:
        return sum(len(fs) for fs in self.files.values())

    @property
    def partitions(self) -> int:
        return len({(t, o.key.rsplit("/", 1)[0]) for t, fs in self.files.items() for o in fs})


def plan_scan(storage: Storage, guarded: GuardedQuery, now: dt.datetime | None = None) -> Scan:
    """Tables a guarded query reads and their files within its time bounds."""
    now = now or dt.datetime.now(dt.UTC)
    specs = tables()
    names = [t for t in guarded.tables if t in specs]
    if EVENTS_VIEW in guarded.tables:
        names += [n for n, s in specs.items() if s.kind == "logs" and n not in names]
    scan = Scan(tables=names)
    for name in names:
        lo, hi = bounds_for_table(guarded.expression, name, now)
        if lo is None and hi is None and EVENTS_VIEW in guarded.tables:
            lo, hi = bounds_for_table(guarded.expression, EVENTS_VIEW, now)
        files = []
        for obj in storage.list(specs[name].prefix, ".parquet"):
            p = parse_partition(obj.key)
            if p is not None and hours_in_range(lo, hi, p):
                files.append(obj)
        scan.files[name] = files
    return scan


def all_table_files(storage: Storage, specs: dict[str, TableSpec]) -> dict[str, list[str]]:
    """URIs of every table's committed files (for engines handed explicit file lists)."""
    out: dict[str, list[str]] = {}
    for name, spec in specs.items():
        uris = [
            storage.uri(o.key)
            for o in storage.list(spec.prefix, ".parquet")
            if parse_partition(o.key)
        ]
        if uris:
            out[name] = uris
    return out


class Budget:
    """Per-query and per-day spending limits for one engine."""

    _lock = threading.Lock()

    def __init__(
        self,
        storage: Storage,
        engine: str,
        max_query_usd: float | None = None,
        max_day_usd: float | None = None,
        max_query_bytes: int | None = None,
    ) -> None:
        self.storage = storage
        self.engine = engine
        self.max_query_usd = max_query_usd
        self.max_day_usd = max_day_usd
        self.max_query_bytes = max_query_bytes

    def _key(self, day: dt.date) -> str:
        return f"{SPEND_PREFIX}/{self.engine}/{day.isoformat()}.json"

    def spent_today(self) -> float:
        key = self._key(dt.datetime.now(dt.UTC).date())
        try:
            if not self.storage.exists(key):
                return 0.0
            return float(json.loads(self.storage.read_bytes(key)).get("usd", 0.0))
        except (StorageError, ValueError, OSError):
            return 0.0

    def check(self, est: CostEstimate) -> None:
        """Raise :class:`BudgetExceeded` (with the estimate) if the query may not run."""
        figure = f"{est.bytes_scanned:,} bytes in {est.files} files, ${est.price_usd:.6f}"
        if self.max_query_bytes is not None and est.bytes_scanned > self.max_query_bytes:
            raise BudgetExceeded(
                f"query would scan {figure}: over engine.max_query_bytes "
                f"({self.max_query_bytes:,})",
                hint="narrow the time range or the tables, or raise the budget",
            )
        if self.max_query_usd is not None and est.price_usd > self.max_query_usd:
            raise BudgetExceeded(
                f"query would scan {figure}: over engine.max_query_usd (${self.max_query_usd})",
                hint="narrow the time range or the tables, or raise the budget",
            )
        if self.max_day_usd is not None:
            spent = self.spent_today()
            if spent + est.price_usd > self.max_day_usd:
                raise BudgetExceeded(
                    f"query would scan {figure}; ${spent:.4f} already spent today on "
                    f"{self.engine}: over engine.max_day_usd (${self.max_day_usd})",
                    hint="wait for the next UTC day or raise engine.max_day_usd",
                )

    def record(self, usd: float, nbytes: int) -> None:
        """Add a finished query's cost to today's spend."""
        if usd <= 0 and nbytes <= 0:
            return
        day = dt.datetime.now(dt.UTC).date()
        key = self._key(day)
        with self._lock:
            doc: dict[str, Any] = {"usd": 0.0, "bytes": 0, "queries": 0}
            try:
                if self.storage.exists(key):
                    doc.update(json.loads(self.storage.read_bytes(key)))
            except (StorageError, ValueError, OSError):
                pass
            doc["usd"] = float(doc["usd"]) + usd
            doc["bytes"] = int(doc["bytes"]) + nbytes
            doc["queries"] = int(doc["queries"]) + 1
            self.storage.write_bytes(key, json.dumps(doc).encode())


def budget_options(options: dict[str, Any]) -> dict[str, Any]:
    """Pick the budget keys out of an engine's config section."""
    return {
        k: options.get(k)
        for k in ("max_query_usd", "max_day_usd", "max_query_bytes")
        if options.get(k) is not None
    }


def bind_parameters(tree: Any, parameters: dict[str, Any]) -> Any:
    """Inline ``$name`` / ``:name`` parameters as typed literals (engines without binds)."""
    from sqlglot import exp

    from mantissa.errors import QueryError

    def lit(v: Any) -> exp.Expression:
        if v is None:
            return exp.null()
        if isinstance(v, bool):
            return exp.Boolean(this=v)
        if isinstance(v, int | float):
            return exp.Literal.number(v)
        if isinstance(v, dt.datetime):
            v = v.astimezone(dt.UTC) if v.tzinfo else v
            return exp.cast(exp.Literal.string(v.strftime("%Y-%m-%d %H:%M:%S.%f")), "timestamp")
        return exp.Literal.string(str(v))

    def repl(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder | exp.Parameter):
            name = node.name
            if name in parameters:
                return lit(parameters[name])
            raise QueryError(f"no value for query parameter {name!r}")
        return node

    return tree.transform(repl)
