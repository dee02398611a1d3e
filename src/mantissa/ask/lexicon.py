"""The lexicon: what the lake holds, in words a question uses.

Built from the lake's schema catalog (:func:`mantissa.lake.catalog.source_schema` and
registered tables), the per-source hints in ``sources.yaml``, the shared vocabulary in
``vocabulary.yaml`` and the low-cardinality values harvested from the data itself
(event types, users, countries, services ...). Harvesting runs once per data
watermark (the files and bytes in the lake) and is kept in the state store.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from mantissa.errors import QueryError
from mantissa.lake.catalog import EVENTS_VIEW, table_files, tables
from mantissa.sources.base import COMMON_COLUMNS

HARVEST_COLUMNS = (
    "event_type", "outcome", "user", "geo_country", "host", "source", "src_ip", "dst_ip",
)  # fmt: skip
HARVEST_LIMIT = 2000
NUMERIC_TYPES = ("INT", "BIGINT", "DOUBLE", "FLOAT", "DECIMAL", "HUGEINT", "SMALLINT", "UBIGINT")


@cache
def vocabulary() -> dict[str, Any]:
    """The shared vocabulary (``vocabulary.yaml``)."""
    return yaml.safe_load(resources.files("mantissa.ask").joinpath("vocabulary.yaml").read_text())


@cache
def source_hints() -> dict[str, dict[str, Any]]:
    """Per-source hints (``sources.yaml``)."""
    return yaml.safe_load(resources.files("mantissa.ask").joinpath("sources.yaml").read_text())


def split_words(value: str) -> str:
    """``CreateUser`` → ``create user``; ``user.session.start`` → ``user session start``."""
    v = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", value)
    v = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", v)
    v = re.sub(r"[._:/\-]+", " ", v)
    return re.sub(r"\s+", " ", v).strip().lower()


@dataclass
class TableInfo:
    """One table as questions see it."""

    name: str
    columns: dict[str, str]
    hints: dict[str, Any]
    rows: int = 0
    time_column: str = "event_time"
    #: column → {value: count}, for the harvested low-cardinality columns.
    values: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def has_data(self) -> bool:
        return self.rows > 0

    @property
    def category(self) -> str:
        return str(self.hints.get("category", "generic"))

    def has_column(self, col: str) -> bool:
        root = re.split(r"[.$]", col, maxsplit=1)[0]
        return root in self.columns

    def numeric_columns(self) -> list[str]:
        return [c for c, t in self.columns.items() if t.upper().split("(")[0] in NUMERIC_TYPES]

    def event_types(self) -> dict[str, int]:
        return self.values.get("event_type", {})


@dataclass
class Lexicon:
    """All tables with their columns, hints and harvested values."""

    tables: dict[str, TableInfo]
    watermark: str

    def with_data(self) -> list[TableInfo]:
        return [t for t in self.tables.values() if t.has_data and t.name != EVENTS_VIEW]

    def concept_filter(self, concept: str, table: str) -> dict[str, Any] | None:
        """The concept's definition in ``table``: hints first, then patterns over its data."""
        info = self.tables.get(table)
        if info is None:
            return None
        spec = (info.hints.get("concepts") or {}).get(concept)
        if spec is not None:
            return dict(spec)
        pattern = (vocabulary().get("concept_patterns") or {}).get(concept)
        if pattern and info.event_types():
            rx = re.compile(pattern)
            hits = sorted(v for v in info.event_types() if rx.search(v))
            if hits:
                return {"event_type": hits}
        return None


_HARVEST_LOCK = threading.Lock()
_MEMO: dict[str, Lexicon] = {}


WATERMARK_TTL_SECS = 5.0
_WM_MEMO: dict[str, tuple[float, str]] = {}


def watermark(runtime: Any) -> str:
    """A fingerprint of the lake's committed files (changes whenever data lands).

    Listing a large lake takes a while, so the fingerprint is reused for a few
    seconds: data ingested in that moment is seen by the next question after it."""
    key = runtime.storage.uri()
    now = time.monotonic()
    hit = _WM_MEMO.get(key)
    if hit and now - hit[0] < WATERMARK_TTL_SECS:
        return hit[1]
    wm = _watermark(runtime)
    _WM_MEMO[key] = (now, wm)
    return wm


def _watermark(runtime: Any) -> str:
    h = hashlib.sha256()
    for name, spec in sorted(tables().items()):
        n = size = 0
        for obj in table_files(runtime.storage, spec):
            n += 1
            size += obj.size
        h.update(f"{name}:{n}:{size};".encode())
    return h.hexdigest()[:24]


def _schema(spec: Any) -> dict[str, str]:
    try:
        return {c: t for c, t in spec.schema()}
    except Exception:
        return dict(COMMON_COLUMNS)


def load_lexicon(runtime: Any, refresh: bool = False) -> Lexicon:
    """The lexicon for the runtime's lake, harvested once per watermark."""
    wm = watermark(runtime)
    memo_key = f"{runtime.storage.uri()}|{wm}"
    if not refresh and memo_key in _MEMO:
        return _MEMO[memo_key]
    with _HARVEST_LOCK:
        if not refresh and memo_key in _MEMO:
            return _MEMO[memo_key]
        hints = source_hints()
        specs = tables()
        state_key = hashlib.sha256(runtime.storage.uri().encode()).hexdigest()[:24]
        stored = None
        try:
            stored = runtime.state.get("ask.harvest", state_key)
        except Exception:
            stored = None
        harvested: dict[str, Any]
        if (
            not refresh
            and stored
            and stored.get("watermark") == wm
            and stored.get("columns") == list(HARVEST_COLUMNS)
        ):
            harvested = stored["tables"]
        else:
            harvested = _harvest(runtime, specs, hints)
            try:
                runtime.state.put(
                    "ask.harvest",
                    state_key,
                    {"watermark": wm, "columns": list(HARVEST_COLUMNS), "tables": harvested},
                )
            except Exception:
                pass  # the state store is a cache here; answering must not depend on it
        infos: dict[str, TableInfo] = {}
        for name, spec in specs.items():
            h = harvested.get(name, {})
            infos[name] = TableInfo(
                name=name,
                columns=_schema(spec),
                hints=hints.get(name, {}),
                rows=int(h.get("rows", 0)),
                time_column=spec.time_column,
                values=h.get("values", {}),
            )
        ev_values: dict[str, dict[str, int]] = {}
        for info in infos.values():
            if specs[info.name].kind != "logs":
                continue
            for col, vals in info.values.items():
                if col in COMMON_COLUMNS:
                    bucket = ev_values.setdefault(col, {})
                    for v, c in vals.items():
                        bucket[v] = bucket.get(v, 0) + c
        infos[EVENTS_VIEW] = TableInfo(
            name=EVENTS_VIEW,
            columns=dict(COMMON_COLUMNS),
            hints={"category": "all", "words": ["events", "all sources", "every source"]},
            rows=sum(i.rows for n, i in infos.items() if specs[n].kind == "logs"),
            values=ev_values,
        )
        lex = Lexicon(tables=infos, watermark=wm)
        _MEMO.clear()
        _MEMO[memo_key] = lex
        return lex


def _harvest(runtime: Any, specs: dict[str, Any], hints: dict[str, Any]) -> dict[str, Any]:
    """Row counts and the most frequent values of a few columns per table (one scan each)."""
    out: dict[str, Any] = {}
    engine = runtime.engine
    for name, spec in specs.items():
        if not any(True for _ in table_files(runtime.storage, spec)):
            continue
        cols = _schema(spec)
        wanted = [c for c in HARVEST_COLUMNS if c in cols]
        wanted += [
            c for c in (hints.get(name, {}).get("harvest") or []) if c in cols and c not in wanted
        ]
        if spec.kind != "logs":
            wanted += [c for c in ("service_name", "name", "status_code") if c in cols]
        selects = [f"SELECT '__rows' AS c, NULL AS v, count(*) AS n FROM \"{name}\""]
        for c in wanted:
            selects.append(
                f'(SELECT \'{c}\' AS c, CAST("{c}" AS VARCHAR) AS v, count(*) AS n FROM "{name}" '
                f'WHERE "{c}" IS NOT NULL GROUP BY 2 ORDER BY 3 DESC LIMIT {HARVEST_LIMIT})'
            )
        try:
            result_rows = engine.execute(" UNION ALL ".join(selects)).rows
        except QueryError:
            # files written by an older parser may lack a native column: harvest what is there
            result_rows = []
            for sql in selects:
                try:
                    result_rows.extend(engine.execute(sql).rows)
                except QueryError:
                    continue
        values: dict[str, dict[str, int]] = {}
        rows = 0
        for c, v, n in result_rows:
            if c == "__rows":
                rows = int(n)
            else:
                values.setdefault(c, {})[str(v)] = int(n)
        out[name] = {"rows": rows, "values": values}
    return out
