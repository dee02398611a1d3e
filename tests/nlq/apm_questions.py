"""The APM evaluation set: questions about traces and metrics, answers computed in plain
Python from the spans as the demo generated them (the protobuf export requests, walked
field by field) — never from the lake, never from the planner's SQL.

The lake holds the demo shop (``mantissa.apm.demo.generate``: three hours before
``END`` with an incident in the last 40 minutes) and a gauge per service per minute.
Kinds (besides those of :mod:`tests.nlq.questions`):

    edges     {service: calls} of a callers / callees answer
    slow      [(dependency, calls, p99_ms)] ordered by p99, slowest first
    traces    trace ids, newest first (first matching span), at most 100
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.nlq.questions import Case, quantile

END = dt.datetime(2026, 11, 20, 15, 0, 0, tzinfo=dt.UTC)
TODAY = END.replace(hour=0, minute=0)
H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)
WINDOWS = {
    "today": (TODAY, END),
    "this_week": (TODAY - dt.timedelta(days=TODAY.weekday()), END),
    "7d": (END - 7 * dt.timedelta(days=1), END),
    "1h": (END - H, END),
    "3h": (END - 3 * H, END),
    "30m": (END - 30 * M, END),
    "15m": (END - 15 * M, END),
}
KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}
SERVICES = ("frontend", "checkout", "cart", "payment", "inventory", "shipping", "user-service")


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent: str | None
    service: str
    name: str
    kind: str
    start_ns: int
    duration_ms: float
    status: str
    attrs: dict[str, Any]
    exception: str | None

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.start_ns / 1e9, dt.UTC)


@dataclass
class Point:
    service: str
    name: str
    time: dt.datetime
    value: float


@dataclass
class ApmData:
    spans: list[Span]
    points: list[Point]
    by_id: dict[tuple[str, str], Span] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {(s.trace_id, s.span_id): s for s in self.spans}


def _value(v: Any) -> Any:
    which = v.WhichOneof("value")
    return getattr(v, which) if which else None


def spans_of(requests: list[Any]) -> list[Span]:
    """The spans of OTLP export requests, field by field (no decoder involved)."""
    out = []
    for req in requests:
        for rs in req.resource_spans:
            res = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    exc = None
                    for ev in sp.events:
                        if ev.name == "exception":
                            exc = next(
                                (
                                    _value(kv.value)
                                    for kv in ev.attributes
                                    if kv.key == "exception.type"
                                ),
                                None,
                            )
                            break
                    out.append(
                        Span(
                            trace_id=sp.trace_id.hex(),
                            span_id=sp.span_id.hex(),
                            parent=sp.parent_span_id.hex() or None,
                            service=res["service.name"],
                            name=sp.name,
                            kind=KINDS[sp.kind],
                            start_ns=sp.start_time_unix_nano,
                            duration_ms=(sp.end_time_unix_nano - sp.start_time_unix_nano) / 1e6,
                            status=STATUS[sp.status.code],
                            attrs={kv.key: _value(kv.value) for kv in sp.attributes},
                            exception=exc,
                        )
                    )
    return out


def points_of(request: Any) -> list[Point]:
    out = []
    for rm in request.resource_metrics:
        svc = next(_value(kv.value) for kv in rm.resource.attributes if kv.key == "service.name")
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for dp in m.gauge.data_points:
                    t = dt.datetime.fromtimestamp(dp.time_unix_nano / 1e9, dt.UTC)
                    out.append(Point(svc, m.name, t, dp.as_double))
    return out


# -- helpers over the raw spans ---------------------------------------------------------


def within(d: ApmData, window: str, pred: Callable[[Span], bool] = lambda s: True) -> list[Span]:
    lo, hi = WINDOWS[window]
    lo_ns, hi_ns = int(lo.timestamp()) * 10**9, int(hi.timestamp()) * 10**9
    return [s for s in d.spans if lo_ns <= s.start_ns < hi_ns and pred(s)]


def _in(window: str, s: Span) -> bool:
    lo, hi = WINDOWS[window]
    return int(lo.timestamp()) * 10**9 <= s.start_ns < int(hi.timestamp()) * 10**9


def pairs(d: ApmData, window: str) -> list[tuple[Span, Span]]:
    """(parent, child) of one trace, services differ, both started in the window."""
    out = []
    for c in within(d, window):
        p = d.by_id.get((c.trace_id, c.parent)) if c.parent else None
        if p is not None and p.service != c.service and _in(window, p):
            out.append((p, c))
    return out


def callers(d: ApmData, window: str, svc: str) -> dict[str, int]:
    return dict(Counter(p.service for p, c in pairs(d, window) if c.service == svc))


def callees(d: ApmData, window: str, svc: str) -> dict[str, int]:
    return dict(Counter(c.service for p, c in pairs(d, window) if p.service == svc))


def _virtual(s: Span) -> str | None:
    a = s.attrs
    if s.kind not in ("CLIENT", "PRODUCER"):
        return None
    if a.get("peer.service"):
        return str(a["peer.service"])
    if a.get("db.system"):
        ns = a.get("db.namespace") or a.get("db.name")
        return f"{a['db.system']}/{ns}" if ns else str(a["db.system"])
    if a.get("messaging.system"):
        dest = a.get("messaging.destination.name") or a.get("messaging.destination")
        return f"{a['messaging.system']}/{dest}" if dest else str(a["messaging.system"])
    return None


def slow(d: ApmData, window: str, svc: str) -> list[tuple[str, int, float]]:
    """Where ``svc`` waits: each call to another service (the callee's span) or to an
    uninstrumented database/queue/peer (the client span), by p99 latency."""
    children: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for c in within(d, window):
        if c.parent:
            children[(c.trace_id, c.parent)].append(c)
    lat: dict[str, list[float]] = defaultdict(list)
    for s in within(d, window, lambda s: s.service == svc):
        kids = [c for c in children.get((s.trace_id, s.span_id), []) if c.service != s.service]
        if kids:
            for c in kids:
                lat[c.service].append(c.duration_ms)
        elif (v := _virtual(s)) is not None:
            lat[v].append(s.duration_ms)
    rows = [(dep, len(xs), quantile(xs, 0.99)) for dep, xs in lat.items()]
    return sorted(rows, key=lambda r: (-r[2], r[0]))


def is_entry(d: ApmData, s: Span, window: str) -> bool:
    if s.kind in ("SERVER", "CONSUMER") or s.parent is None:
        return True
    p = d.by_id.get((s.trace_id, s.parent))
    return p is None or not _in(window, p) or p.service != s.service


def latency(d: ApmData, window: str, svc: str, q: float) -> float:
    entry = [
        s.duration_ms
        for s in within(d, window, lambda s: s.service == svc and is_entry(d, s, window))
    ]
    return quantile(entry, q)


def traces(d: ApmData, window: str, pred: Callable[[Span], bool]) -> list[str]:
    first: dict[str, int] = {}
    for s in within(d, window, pred):
        first[s.trace_id] = min(first.get(s.trace_id, s.start_ns), s.start_ns)
    # the lake keeps microseconds: order as it does
    ordered = sorted(first, key=lambda t: (-(first[t] // 1000), t))
    return ordered[:100]


def err(s: Span) -> bool:
    return s.status == "ERROR"


def svc(name: str) -> Callable[[Span], bool]:
    return lambda s: s.service == name


def metric_points(d: ApmData, window: str, pred: Callable[[Point], bool]) -> list[Point]:
    lo, hi = WINDOWS[window]
    return [p for p in d.points if lo <= p.time < hi and pred(p)]


CPU = "process.cpu.utilization"

APM_CASES: list[Case] = [
    # ---- who calls a service ----------------------------------------------------------
    Case(
        "callers",
        "edges",
        [
            "What services call payment?",
            "who calls payment",
            "which services are calling payment this week",
            "callers of payment",
            "upstream services of payment",
        ],
        lambda d: callers(d, "7d", "payment"),
    ),
    Case(
        "callers",
        "edges",
        ["what calls inventory today", "which services call inventory today"],
        lambda d: callers(d, "today", "inventory"),
    ),
    Case(
        "callers",
        "edges",
        ["who calls shipping in the last hour", "what services call shipping in the past hour"],
        lambda d: callers(d, "1h", "shipping"),
    ),
    # ---- what a service calls ---------------------------------------------------------
    Case(
        "callees",
        "edges",
        [
            "what does checkout call",
            "which services does checkout call",
            "dependencies of checkout",
            "downstream services of checkout",
            "checkout dependencies",
        ],
        lambda d: callees(d, "7d", "checkout"),
    ),
    Case(
        "callees",
        "edges",
        [
            "what does frontend call in the last hour",
            "which services does frontend depend on in the last hour",
        ],
        lambda d: callees(d, "1h", "frontend"),
    ),
    # ---- why is it slow ---------------------------------------------------------------
    Case(
        "slow",
        "slow",
        [
            "Why is checkout slow?",
            "why is checkout so slow",
            "what makes checkout slow?",
            "where does checkout spend its time",
        ],
        lambda d: slow(d, "1h", "checkout"),
    ),
    Case(
        "slow",
        "slow",
        ["why was checkout slow in the last 30 minutes"],
        lambda d: slow(d, "30m", "checkout"),
    ),
    Case("slow", "slow", ["Why is inventory slow?"], lambda d: slow(d, "1h", "inventory")),
    Case("slow", "slow", ["why is frontend slow today"], lambda d: slow(d, "today", "frontend")),
    # ---- latency percentiles ----------------------------------------------------------
    Case(
        "percentile",
        "pct",
        ["P99 latency for user-service", "99th percentile latency of user-service"],
        lambda d: latency(d, "7d", "user-service", 0.99),
    ),
    Case(
        "percentile",
        "pct",
        ["p99 latency of checkout in the last hour"],
        lambda d: latency(d, "1h", "checkout", 0.99),
    ),
    Case(
        "percentile",
        "pct",
        ["median latency for payment today", "p50 response time of payment today"],
        lambda d: latency(d, "today", "payment", 0.5),
    ),
    Case(
        "percentile",
        "pct",
        ["p95 response time for cart in the last 3 hours"],
        lambda d: latency(d, "3h", "cart", 0.95),
    ),
    # ---- traces -----------------------------------------------------------------------
    Case(
        "traces",
        "traces",
        ["Show error traces today", "list traces with errors today", "failed traces today"],
        lambda d: traces(d, "today", err),
    ),
    Case(
        "traces",
        "traces",
        ["error traces in the last 15 minutes"],
        lambda d: traces(d, "15m", err),
    ),
    Case(
        "traces",
        "traces",
        ["slow traces for checkout in the last hour"],
        lambda d: traces(d, "1h", lambda s: s.service == "checkout" and s.duration_ms >= 1000),
    ),
    Case(
        "traces",
        "traces",
        ["show traces for payment in the last 15 minutes"],
        lambda d: traces(d, "15m", svc("payment")),
    ),
    # ---- counts, tops and breakdowns over spans ------------------------------------------
    Case(
        "count",
        "count",
        ["how many error traces today", "number of traces with errors today"],
        lambda d: len({s.trace_id for s in within(d, "today", err)}),
    ),
    Case(
        "count",
        "count",
        ["how many error spans in payment today"],
        lambda d: len(within(d, "today", lambda s: err(s) and s.service == "payment")),
    ),
    Case(
        "count",
        "count",
        ["how many checkout spans in the last hour"],
        lambda d: len(within(d, "1h", svc("checkout"))),
    ),
    Case(
        "breakdown",
        "groups",
        ["errors per service today", "error spans by service today"],
        lambda d: dict(Counter(s.service for s in within(d, "today", err))),
    ),
    Case(
        "breakdown",
        "groups",
        ["error spans by operation for payment today"],
        lambda d: dict(
            Counter(s.name for s in within(d, "today", lambda s: err(s) and s.service == "payment"))
        ),
    ),
    Case(
        "top_k",
        "top",
        ["top exceptions today", "most common exceptions today"],
        lambda d: sorted(
            Counter(s.exception for s in within(d, "today") if s.exception).items(),
            key=lambda kv: (-kv[1], kv[0]),
        )[:10],
    ),
    Case(
        "top_k",
        "top",
        ["which services have the most errors today"],
        lambda d: sorted(
            Counter(s.service for s in within(d, "today", err)).items(),
            key=lambda kv: (-kv[1], kv[0]),
        )[:10],
    ),
    # ---- metrics (time column `time`) ----------------------------------------------------
    Case(
        "metrics",
        "pct",
        ["p95 process.cpu.utilization for checkout today"],
        lambda d: quantile(
            [
                p.value
                for p in metric_points(
                    d, "today", lambda p: p.service == "checkout" and p.name == CPU
                )
            ],
            0.95,
        ),
    ),
    Case(
        "metrics",
        "pct",
        ["median cpu utilization of payment in the last hour"],
        lambda d: quantile(
            [
                p.value
                for p in metric_points(d, "1h", lambda p: p.service == "payment" and p.name == CPU)
            ],
            0.5,
        ),
    ),
    Case(
        "metrics",
        "groups",
        ["metric data points per service today"],
        lambda d: dict(Counter(p.service for p in metric_points(d, "today", lambda p: True))),
    ),
    Case(
        "metrics",
        "count",
        ["how many metric points in the last hour"],
        lambda d: len(metric_points(d, "1h", lambda p: True)),
    ),
    # ---- declined -----------------------------------------------------------------------
    Case(
        "decline",
        "decline",
        [
            "why is the coffee machine slow?",
            "what services call the billing mainframe",
            "p99 latency of the printer queue today",
        ],
        lambda d: None,
    ),
]
