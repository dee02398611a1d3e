"""The engine interface shared by DuckDB, Athena, BigQuery, Synapse and Spark.

Callers hand an engine SQL written in the DuckDB dialect (the lake's lingua franca);
each engine transpiles with sqlglot to its own dialect, so dialect specifics never
leak into callers.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

_ENGINES: dict[str, type[QueryEngine]] = {}


@dataclass
class CostEstimate:
    """What a query will scan after partition pruning, and what that costs on this engine."""

    engine: str
    bytes_scanned: int
    files: int
    partitions: int
    price_usd: float
    tables: list[str] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "bytes_scanned": self.bytes_scanned,
            "files": self.files,
            "partitions": self.partitions,
            "price_usd": round(self.price_usd, 6),
            "tables": self.tables,
            "note": self.note,
        }


@dataclass
class QueryResult:
    sql: str
    columns: list[str]
    rows: list[list[Any]]
    elapsed_ms: float
    truncated: bool = False
    column_types: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sql": self.sql,
            "columns": self.columns,
            "rows": [[to_jsonable(v) for v in row] for row in self.rows],
            "elapsed_ms": round(self.elapsed_ms, 3),
            "truncated": self.truncated,
        }

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def to_jsonable(v: Any) -> Any:
    """One value of a result as JSON would carry it (UTC ISO-8601 for timestamps)."""
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC)
            return v.isoformat().replace("+00:00", "Z")
        return v.isoformat()
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dict):
        return {str(k): to_jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [to_jsonable(x) for x in v]
    return v


class QueryEngine(ABC):
    """Runs read-only SQL over the lake. Defining a subclass with ``type`` registers it."""

    type: ClassVar[str] = ""
    dialect: ClassVar[str] = "duckdb"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("type"):
            _ENGINES[cls.type] = cls

    @abstractmethod
    def execute(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        """Guard, prune and run ``sql`` (DuckDB dialect); at most ``max_rows`` rows back."""

    @abstractmethod
    def estimate_cost(self, sql: str) -> CostEstimate:
        """Bytes and files the query would scan after partition pruning, with a price."""

    @abstractmethod
    def tables(self) -> list[str]:
        """Tables this engine can query."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def engine_types() -> dict[str, type[QueryEngine]]:
    return dict(_ENGINES)
