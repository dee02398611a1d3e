"""The Source plugin: raw bytes of one vendor's log format → normalized rows.

A source is data plus SQL. :class:`JsonSource` describes the vendor's native fields
as a DuckDB ``json_transform`` structure and the common columns as SQL expressions
over them; :class:`LineSource` does the same for text lines with a regex. The
framework (``mantissa.lake.ingest``) frames input into ``(line, raw)`` rows, runs
the source's SELECT in DuckDB over a whole batch at once (no Python per record),
dead-letters rows whose ``_error`` is set and writes the rest to the lake.

Defining a subclass with a ``name`` registers it: ``sources/okta.py`` ⇔ ``--source okta``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

COMMON_COLUMNS: dict[str, str] = {
    "event_time": "TIMESTAMPTZ",
    "source": "VARCHAR",
    "event_id": "VARCHAR",
    "event_type": "VARCHAR",
    "outcome": "VARCHAR",
    "user": "VARCHAR",
    "src_ip": "VARCHAR",
    "dst_ip": "VARCHAR",
    "user_agent": "VARCHAR",
    "geo_country": "VARCHAR",
    "geo_city": "VARCHAR",
    "host": "VARCHAR",
    "message": "VARCHAR",
    "trace_id": "VARCHAR",
    "raw": "VARCHAR",
    "ingested_at": "TIMESTAMPTZ",
}
"""Columns every table has, in this order; ``events`` unions them across tables."""

# Expressions a source fills; the framework fills source, raw and ingested_at.
SOURCE_FILLED = [c for c in COMMON_COLUMNS if c not in ("source", "raw", "ingested_at")]

TIMESTAMP_MACRO = r"""
CREATE OR REPLACE MACRO mantissa_ts(x) AS (
  CASE
    WHEN x IS NULL OR trim(CAST(x AS VARCHAR)) = '' THEN NULL
    WHEN regexp_full_match(trim(CAST(x AS VARCHAR)), '-?[0-9]+(\.[0-9]+)?') THEN
      try(CASE
        WHEN abs(CAST(trim(CAST(x AS VARCHAR)) AS DOUBLE)) < 1e11
          THEN to_timestamp(CAST(trim(CAST(x AS VARCHAR)) AS DOUBLE))
        WHEN abs(CAST(trim(CAST(x AS VARCHAR)) AS DOUBLE)) < 1e14
          THEN to_timestamp(CAST(trim(CAST(x AS VARCHAR)) AS DOUBLE) / 1e3)
        WHEN abs(CAST(trim(CAST(x AS VARCHAR)) AS DOUBLE)) < 1e17
          THEN to_timestamp(CAST(trim(CAST(x AS VARCHAR)) AS DOUBLE) / 1e6)
        ELSE to_timestamp(CAST(trim(CAST(x AS VARCHAR)) AS DOUBLE) / 1e9) END)
    ELSE coalesce(
      try_cast(trim(CAST(x AS VARCHAR)) AS TIMESTAMPTZ),
      try_cast(replace(trim(CAST(x AS VARCHAR)), ' UTC', '+00:00') AS TIMESTAMPTZ),
      try_strptime(trim(CAST(x AS VARCHAR), '[] '), '%d/%b/%Y:%H:%M:%S %z'),
      try_strptime(trim(CAST(x AS VARCHAR)), '%a, %d %b %Y %H:%M:%S %Z'),
      try_strptime(trim(CAST(x AS VARCHAR)), '%b %d %Y %H:%M:%S'),
      try_strptime(trim(CAST(x AS VARCHAR)), '%m/%d/%Y %H:%M:%S'),
      try_strptime(trim(CAST(x AS VARCHAR)), '%m/%d/%Y %I:%M:%S %p'),
      try_strptime(trim(CAST(x AS VARCHAR)), '%d %b %Y %H:%M:%S'),
      mantissa_ts_noyear(trim(CAST(x AS VARCHAR)))
    )
  END
);
"""

# Syslog-style "Nov 29 06:31:40" has no year: take this year, or last year when that
# would put the event more than a day in the future (RFC 3164 §4.3.2 leaves it open).
NOYEAR_MACRO = r"""
CREATE OR REPLACE MACRO mantissa_ts_noyear(x) AS (
  CASE WHEN regexp_full_match(x, '[A-Z][a-z]{2} +[0-9]{1,2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?')
  THEN (
    CASE WHEN try_strptime(CAST(year(current_date) AS VARCHAR) || ' ' || regexp_replace(x, ' +', ' ', 'g'), ['%Y %b %d %H:%M:%S', '%Y %b %d %H:%M:%S.%f'])
              > current_timestamp::TIMESTAMP + INTERVAL 1 DAY
         THEN try_strptime(CAST(year(current_date) - 1 AS VARCHAR) || ' ' || regexp_replace(x, ' +', ' ', 'g'), ['%Y %b %d %H:%M:%S', '%Y %b %d %H:%M:%S.%f'])
         ELSE try_strptime(CAST(year(current_date) AS VARCHAR) || ' ' || regexp_replace(x, ' +', ' ', 'g'), ['%Y %b %d %H:%M:%S', '%Y %b %d %H:%M:%S.%f'])
    END)::TIMESTAMPTZ
  ELSE NULL END
);
"""

OUTCOME_VALUES = ("success", "failure", "unknown")

_REGISTRY: dict[str, type[Source]] = {}


class Source(ABC):
    """One log format. Subclasses set class constants and, if needed, override one method."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    category: ClassVar[str] = "generic"
    variants: ClassVar[tuple[str, ...]] = ()
    framing: ClassVar[str] = "json"  # "json" (objects) or "lines" (text)
    #: SQL boolean over ``raw`` and ``ctx``: lines that are framing, not events (headers).
    skip_sql: ClassVar[str | None] = None
    #: SQL expressions for the common columns, over the native columns (and ``raw``).
    common: ClassVar[dict[str, str]] = {}
    #: True when ``common["event_time"]`` already yields a TIMESTAMPTZ (e.g. a coalesce of
    #: ``mantissa_ts(...)`` over several fields): it is then not wrapped in ``mantissa_ts``
    #: again, whose expansion would repeat the whole expression many times per row.
    event_time_parsed: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            _REGISTRY[cls.name] = cls

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = options or {}

    # -- framing ------------------------------------------------------------
    def start_file(self, first_line: str) -> str | None:
        """Called with the first line of each input file; returns the file's ``ctx``.

        Header-driven formats (VPC flow custom formats) return the header here; it is
        available to the SQL as column ``ctx`` of every row of that file.
        """
        return None

    def skip_line(self, line: str) -> bool:
        """True for lines that are framing, not events (headers, comments)."""
        return False

    # -- transform ----------------------------------------------------------
    @abstractmethod
    def native_sql(self) -> str:
        """``SELECT line, raw, file, ctx, <native columns> FROM input``; the framework wraps it."""

    def select_sql(self) -> str:
        """The full transform: common columns, then native ones, then ``_error``/``_skip``."""
        commons = []
        for col in SOURCE_FILLED:
            expr = self.common.get(col, "NULL")
            if col == "event_time" and not self.event_time_parsed:
                expr = f"mantissa_ts({expr})"
            commons.append(f'CAST({expr} AS {COMMON_COLUMNS[col]}) AS "{col}"')
        error = self.common.get("_error", "NULL")
        skip = self.common.get("_skip", "NULL")
        return (
            # native columns: all but framing and working columns (``_name``, helpers of the SQL)
            f"SELECT line, raw, file, {', '.join(commons)}, "
            "COLUMNS(lambda c: c NOT IN ('line', 'raw', 'file', 'ctx') AND NOT starts_with(c, '_')), "
            f"CAST({error} AS VARCHAR) AS _error, CAST({skip} AS VARCHAR) AS _skip "
            f"FROM ({self.native_sql()}) AS n"
        )

    def sniff(self, sample: list[str]) -> float:
        """Confidence in [0, 1] that ``sample`` (first lines of a file) is this format."""
        return 0.0


class JsonSource(Source):
    """A source whose events are JSON objects (NDJSON, arrays, or wrapped documents)."""

    framing = "json"
    #: Keys under which a document nests its events (``Records``, ``records``, ``items``).
    wrapper_keys: ClassVar[tuple[str, ...]] = ()
    #: DuckDB ``json_transform`` structure of the native fields kept as columns.
    structure: ClassVar[dict[str, Any]] = {}
    #: Keys whose presence in a JSON object marks this source (for auto-detection).
    signature: ClassVar[tuple[str, ...]] = ()

    #: Match top-level keys case-insensitively too (tools that lower-case vendor keys,
    #: e.g. Panther's Microsoft 365 tables); the canonical spelling wins when both exist.
    case_insensitive_keys: ClassVar[bool] = False
    #: Also accept CSV files with a header row (each row becomes an object keyed by the
    #: header, all values strings): Snowflake / Salesforce exports.
    csv: ClassVar[bool] = False

    def native_sql(self) -> str:
        struct = json.dumps(self.structure).replace("'", "''")
        if not self.case_insensitive_keys:
            return (
                f"SELECT line, raw, file, ctx, UNNEST(json_transform(raw, '{struct}')) FROM input"
            )
        lower: dict[str, Any] = {}
        for k, v in self.structure.items():
            lower.setdefault(k.lower(), v)
        lstruct = json.dumps(lower).replace("'", "''")
        cols = ", ".join(f'coalesce(_a."{k}", _b."{k.lower()}") AS "{k}"' for k in self.structure)
        return (
            f"SELECT line, raw, file, ctx, {cols} FROM (SELECT line, raw, file, ctx, "
            f"json_transform(raw, '{struct}') AS _a, json_transform(raw, '{lstruct}') AS _b "
            f"FROM input) AS _ci"
        )

    def sniff(self, sample: list[str]) -> float:
        if not self.signature:
            return 0.0
        hits = 0
        seen = 0
        for line in sample:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            objs = _unwrap(obj, self.wrapper_keys)
            for o in objs[:5]:
                if isinstance(o, dict):
                    seen += 1
                    if all(k in o for k in self.signature):
                        hits += 1
        return hits / seen if seen else 0.0


def _unwrap(obj: Any, keys: tuple[str, ...]) -> list[Any]:
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict):
        for k in keys:
            if isinstance(obj.get(k), list):
                return list(obj[k])
    return [obj]


class LineSource(Source):
    """A source whose events are text lines parsed by one regex with named groups."""

    framing = "lines"
    #: A RE2 pattern; ``groups`` names its capture groups in order.
    pattern: ClassVar[str] = ""
    groups: ClassVar[tuple[str, ...]] = ()

    def native_sql(self) -> str:
        pat = self.pattern.replace("'", "''")
        names = ", ".join(f"'{g}'" for g in self.groups)
        return (
            f"SELECT line, raw, file, ctx, UNNEST(regexp_extract(raw, '{pat}', [{names}])), "
            f"regexp_matches(raw, '{pat}') AS _matched FROM input"
        )


def registry() -> dict[str, type[Source]]:
    """All sources by name (imports every module of this package once)."""
    from mantissa import sources as pkg

    pkg.load_all()
    return dict(sorted(_REGISTRY.items()))


def get_source(name: str, options: dict[str, Any] | None = None) -> Source:
    from mantissa.errors import SourceError

    reg = registry()
    if name not in reg:
        raise SourceError(
            f"unknown source {name!r}",
            hint="known sources: " + ", ".join(reg),
        )
    return reg[name](options)
