"""The typed query plan: what a question asks, independent of any SQL dialect.

Both tiers produce a :class:`QueryPlan` — the rules tier from the parsed question, an
LLM as schema-constrained JSON (:func:`QueryPlan.model_json_schema`) — and only
:mod:`mantissa.ask.render` turns it into SQL. An LLM therefore never writes SQL: it
fills these fields, which are validated against the catalog before anything runs.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from mantissa.ask.timerange import TimeRange

Intent = Literal[
    "search", "count", "top_k", "last_seen", "first_seen", "compare", "percentile", "breakdown",
    "callers", "callees", "slow", "traces",
]  # fmt: skip
INTENTS: tuple[str, ...] = (
    "search", "count", "top_k", "last_seen", "first_seen", "compare", "percentile", "breakdown",
    "callers", "callees", "slow", "traces",
)  # fmt: skip
#: Intents over the ``traces`` table's parent → child spans (see :mod:`mantissa.ask.render`):
#: ``callers``/``callees`` of a service, ``slow`` (a service's dependencies by p99
#: latency: why it is slow), ``traces`` (matching spans rolled up to one row per trace).
APM_INTENTS: tuple[str, ...] = ("callers", "callees", "slow", "traces")

Op = Literal[
    "eq", "ne", "in", "not_in", "contains", "starts_with", "cidr", "not_cidr",
    "gt", "gte", "lt", "lte", "is_null", "not_null",
]  # fmt: skip


class Filter(BaseModel):
    """One predicate. ``column`` is a column name, a struct path (``userIdentity.type``)
    or a JSON path into a JSON column (``requestParameters$.bucketName``).
    String comparisons are case-insensitive."""

    model_config = ConfigDict(extra="forbid")
    column: str
    op: Op = "eq"
    value: Any = None
    #: Restrict the predicate to rows of one source (used on the ``events`` view).
    source: str | None = None
    #: Filters sharing a group are OR-ed together; groups are AND-ed.
    group: str | None = None
    label: str | None = None


class Metric(BaseModel):
    model_config = ConfigDict(extra="forbid")
    func: Literal["count", "count_distinct", "percentile", "avg", "max", "min", "sum"] = "count"
    column: str | None = None
    #: Quantile in (0, 1) for ``percentile``.
    q: float | None = None


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str
    desc: bool = True


class QueryPlan(BaseModel):
    """A question as a query: intent, table, filters, window, grouping, metric, order."""

    model_config = ConfigDict(extra="forbid")
    intent: Intent = "search"
    table: str
    filters: list[Filter] = Field(default_factory=list)
    time_range: TimeRange
    #: The table's time column (``event_time`` for logs, ``start_time`` for traces).
    time_column: str = "event_time"
    compare_to: TimeRange | None = None
    group_by: list[str] = Field(default_factory=list)
    #: Time bucket for breakdowns over time ("per hour", "by day").
    bucket: Literal["minute", "hour", "day", "week"] | None = None
    metric: Metric = Field(default_factory=Metric)
    columns: list[str] = Field(default_factory=list)
    order: list[Order] = Field(default_factory=list)
    limit: int = 100
    #: What the planner understood, in words (shown with --explain and when declining).
    notes: list[str] = Field(default_factory=list)

    def normalized(self) -> str:
        """A canonical text of the plan (for cache keys): notes and labels dropped."""
        data = self.model_dump(mode="json", exclude={"notes"})
        for f in data["filters"]:
            f.pop("label", None)
        for tr in ("time_range", "compare_to"):
            if data.get(tr):
                data[tr].pop("label", None)
                data[tr].pop("explicit", None)
        data["filters"] = sorted(data["filters"], key=lambda f: orjson.dumps(f))
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()

    def key(self) -> str:
        return hashlib.sha256(self.normalized().encode()).hexdigest()[:32]


class LLMPlan(BaseModel):
    """The JSON an LLM returns: a plan, or a refusal with what it understood."""

    model_config = ConfigDict(extra="forbid")
    answerable: bool = True
    intent: Intent = "search"
    table: str = "events"
    filters: list[Filter] = Field(default_factory=list)
    group_by: list[str] = Field(default_factory=list)
    bucket: Literal["minute", "hour", "day", "week"] | None = None
    metric: Metric = Field(default_factory=Metric)
    limit: int = 100
    #: Time window as ISO-8601 UTC strings; empty means "as the question's words say".
    start: str | None = None
    end: str | None = None
    reason: str | None = None
