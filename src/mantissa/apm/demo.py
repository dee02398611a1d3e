"""Demo step "Traces": a small shop's microservices, with a planted incident.

Topology: ``frontend`` → ``checkout`` → ``cart`` (→ redis), ``payment`` (→ the
uninstrumented ``stripe`` peer), ``inventory`` (→ postgresql), and ``checkout`` →
kafka ``orders`` → ``shipping``; ``frontend`` → ``user-service`` (→ postgresql).

The incident, in the last 40 minutes: ``payment`` fails (card processor timeouts,
HTTP 503), ``inventory`` queries turn slow (a latency spike through checkout), a client
sprays ``/login`` with bad passwords (401s) and one request carries SQL injection into
a database statement. The spans go through the real OTLP decoder (protobuf requests
built with ``opentelemetry-proto``) into the ``traces`` table.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from mantissa.demo import DemoContext, step

SERVICES = ["frontend", "checkout", "cart", "payment", "inventory", "shipping", "user-service"]


class _Builder:
    """Builds an ``ExportTraceServiceRequest`` span by span, grouped by service."""

    def __init__(self, rng: random.Random) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        self.rng = rng
        self.req = ExportTraceServiceRequest()
        self.scopes: dict[str, Any] = {}
        self.spans = 0

    def _scope(self, service: str) -> Any:
        if service not in self.scopes:
            rs = self.req.resource_spans.add()
            for k, v in (
                ("service.name", service),
                ("service.version", "1.4.2"),
                ("deployment.environment.name", "prod"),
                ("host.name", f"{service}-7d9f{self.rng.randrange(16**4):04x}"),
            ):
                kv = rs.resource.attributes.add()
                kv.key = k
                kv.value.string_value = v
            ss = rs.scope_spans.add()
            ss.scope.name = "demo-instrumentation"
            self.scopes[service] = ss
        return self.scopes[service]

    def span(
        self,
        service: str,
        name: str,
        kind: int,
        trace_id: bytes,
        parent: bytes | None,
        start_ns: int,
        dur_ms: float,
        attrs: dict[str, Any] | None = None,
        error: str | None = None,
        exception: tuple[str, str] | None = None,
    ) -> bytes:
        sp = self._scope(service).spans.add()
        sid = self.rng.randbytes(8)
        sp.trace_id = trace_id
        sp.span_id = sid
        if parent:
            sp.parent_span_id = parent
        sp.name = name
        sp.kind = kind
        sp.start_time_unix_nano = start_ns
        sp.end_time_unix_nano = start_ns + int(dur_ms * 1e6)
        for k, v in (attrs or {}).items():
            kv = sp.attributes.add()
            kv.key = k
            if isinstance(v, int):
                kv.value.int_value = v
            else:
                kv.value.string_value = str(v)
        if error is not None:
            sp.status.code = 2
            sp.status.message = error
        if exception:
            ev = sp.events.add()
            ev.name = "exception"
            ev.time_unix_nano = sp.end_time_unix_nano
            for k, v in (("exception.type", exception[0]), ("exception.message", exception[1])):
                kv = ev.attributes.add()
                kv.key = k
                kv.value.string_value = v
        self.spans += 1
        return sid


SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = 2, 3, 4, 5, 1


def _ns(t: dt.datetime) -> int:
    return int(t.timestamp() * 1e6) * 1000


def generate(end: dt.datetime, seed: int = 7, hours: float = 3.0, rate_per_min: int = 20) -> Any:
    """Requests over the ``hours`` before ``end``: a list of protobuf export requests."""
    rng = random.Random(seed)
    start = end - dt.timedelta(hours=hours)
    incident = end - dt.timedelta(minutes=40)
    requests = []
    b = _Builder(rng)
    total_minutes = int(hours * 60)
    for minute in range(total_minutes):
        t0 = start + dt.timedelta(minutes=minute)
        in_incident = t0 >= incident
        for _ in range(rate_per_min):
            t = t0 + dt.timedelta(seconds=rng.uniform(0, 60))
            kind = rng.random()
            if kind < 0.55:
                _checkout(b, rng, t, in_incident)
            elif kind < 0.85:
                _browse(b, rng, t)
            else:
                _login(b, rng, t, attack=False)
        if in_incident and minute % 2 == 0:
            # a password spray: many /login 401s from one client
            for _ in range(15):
                _login(b, rng, t0 + dt.timedelta(seconds=rng.uniform(0, 60)), attack=True)
        if b.spans > 4000:
            requests.append(b.req)
            b = _Builder(rng)
    # one SQL injection riding a search query through to the database
    _browse(b, rng, end - dt.timedelta(minutes=12), inject=True)
    requests.append(b.req)
    return requests


def _http(method: str, route: str, status: int, **extra: Any) -> dict[str, Any]:
    return {
        "http.request.method": method,
        "http.route": route,
        "http.response.status_code": status,
        **extra,
    }


def _checkout(b: _Builder, rng: random.Random, t: dt.datetime, incident: bool) -> None:
    tid = rng.randbytes(16)
    ns = _ns(t)
    pay_fail = incident and rng.random() < 0.6
    slow_db = incident and rng.random() < 0.6
    db_ms = rng.uniform(400, 1400) if slow_db else rng.uniform(2, 12)
    cart_ms = rng.uniform(3, 15)
    pay_ms = rng.uniform(2500, 3000) if pay_fail else rng.uniform(60, 180)
    inv_ms = db_ms + rng.uniform(2, 6)
    co_ms = cart_ms + inv_ms + pay_ms + rng.uniform(5, 20)
    fe_ms = co_ms + rng.uniform(3, 10)
    client_ip = f"203.0.113.{rng.randrange(1, 250)}"
    status = 502 if pay_fail else 200
    root = b.span(
        "frontend",
        "POST /checkout",
        SERVER,
        tid,
        None,
        ns,
        fe_ms,
        _http("POST", "/checkout", status, **{"client.address": client_ip}),
        error="upstream payment failed" if pay_fail else None,
    )
    fc = b.span("frontend", "POST checkout", CLIENT, tid, root, ns + 1_000_000, co_ms + 1)
    co = b.span(
        "checkout",
        "POST /api/checkout",
        SERVER,
        tid,
        fc,
        ns + 1_500_000,
        co_ms,
        _http("POST", "/api/checkout", status),
        error="payment declined by processor" if pay_fail else None,
    )
    at = ns + 2_000_000
    c1 = b.span("checkout", "GET cart", CLIENT, tid, co, at, cart_ms)
    c2 = b.span(
        "cart",
        "GET /cart/{id}",
        SERVER,
        tid,
        c1,
        at + 200_000,
        cart_ms - 0.5,
        _http("GET", "/cart/{id}", 200),
    )
    b.span(
        "cart",
        "HGETALL",
        CLIENT,
        tid,
        c2,
        at + 400_000,
        cart_ms / 3,
        {"db.system": "redis", "db.operation.name": "HGETALL"},
    )
    at += int(cart_ms * 1e6)
    i1 = b.span("checkout", "POST inventory/reserve", CLIENT, tid, co, at, inv_ms)
    i2 = b.span(
        "inventory",
        "POST /reserve",
        SERVER,
        tid,
        i1,
        at + 300_000,
        inv_ms - 0.6,
        _http("POST", "/reserve", 200),
    )
    b.span(
        "inventory",
        "UPDATE stock",
        CLIENT,
        tid,
        i2,
        at + 600_000,
        db_ms,
        {
            "db.system": "postgresql",
            "db.namespace": "shop",
            "db.operation.name": "UPDATE",
            "db.query.text": "UPDATE stock SET reserved = reserved + $1 WHERE sku = $2",
        },
    )
    at += int(inv_ms * 1e6)
    p1 = b.span(
        "checkout",
        "POST payment/charge",
        CLIENT,
        tid,
        co,
        at,
        pay_ms,
        error="503" if pay_fail else None,
    )
    p2 = b.span(
        "payment",
        "POST /charge",
        SERVER,
        tid,
        p1,
        at + 300_000,
        pay_ms - 0.6,
        _http("POST", "/charge", 503 if pay_fail else 200),
        error="card processor timeout" if pay_fail else None,
        exception=("CardProcessorTimeout", "stripe did not answer within 2500 ms")
        if pay_fail
        else None,
    )
    b.span(
        "payment",
        "POST api.stripe.com/v1/charges",
        CLIENT,
        tid,
        p2,
        at + 600_000,
        pay_ms - 2,
        {
            "peer.service": "stripe",
            "server.address": "api.stripe.com",
            "http.request.method": "POST",
        },
        error="timeout" if pay_fail else None,
    )
    if not pay_fail:
        at += int(pay_ms * 1e6)
        pr = b.span(
            "checkout",
            "orders publish",
            PRODUCER,
            tid,
            co,
            at,
            2.0,
            {"messaging.system": "kafka", "messaging.destination.name": "orders"},
        )
        b.span(
            "shipping",
            "orders process",
            CONSUMER,
            tid,
            pr,
            at + 50_000_000,
            rng.uniform(20, 60),
            {"messaging.system": "kafka", "messaging.destination.name": "orders"},
        )


def _browse(b: _Builder, rng: random.Random, t: dt.datetime, inject: bool = False) -> None:
    tid = rng.randbytes(16)
    ns = _ns(t)
    db_ms = rng.uniform(1, 8)
    us_ms = db_ms + rng.uniform(2, 6)
    fe_ms = us_ms + rng.uniform(5, 25)
    q = "shoes' OR 1=1 UNION SELECT username, password FROM users--" if inject else "shoes"
    root = b.span(
        "frontend",
        "GET /search",
        SERVER,
        tid,
        None,
        ns,
        fe_ms,
        _http(
            "GET",
            "/search",
            200,
            **{
                "url.path": "/search",
                "client.address": "198.51.100.23"
                if inject
                else f"203.0.113.{rng.randrange(1, 250)}",
            },
        ),
    )
    c = b.span("frontend", "GET user-service", CLIENT, tid, root, ns + 1_000_000, us_ms + 1)
    s = b.span(
        "user-service",
        "GET /users/{id}",
        SERVER,
        tid,
        c,
        ns + 1_500_000,
        us_ms,
        _http("GET", "/users/{id}", 200),
    )
    stmt = (
        f"SELECT * FROM products WHERE name LIKE '%{q}%'"
        if inject
        else "SELECT id, name, email FROM users WHERE id = $1"
    )
    b.span(
        "user-service",
        "SELECT shop",
        CLIENT,
        tid,
        s,
        ns + 2_000_000,
        db_ms,
        {
            "db.system": "postgresql",
            "db.namespace": "shop",
            "db.operation.name": "SELECT",
            "db.query.text": stmt,
        },
    )


def _login(b: _Builder, rng: random.Random, t: dt.datetime, attack: bool) -> None:
    tid = rng.randbytes(16)
    ns = _ns(t)
    ok = not attack and rng.random() < 0.95
    ms = rng.uniform(30, 90)
    root = b.span(
        "frontend",
        "POST /login",
        SERVER,
        tid,
        None,
        ns,
        ms + 5,
        _http(
            "POST",
            "/login",
            200 if ok else 401,
            **{"client.address": "192.0.2.66" if attack else f"203.0.113.{rng.randrange(1, 250)}"},
        ),
    )
    c = b.span("frontend", "POST user-service/auth", CLIENT, tid, root, ns + 1_000_000, ms)
    b.span(
        "user-service",
        "POST /auth",
        SERVER,
        tid,
        c,
        ns + 1_500_000,
        ms - 1,
        _http(
            "POST",
            "/auth",
            200 if ok else 401,
            **{"enduser.id": f"user{rng.randrange(1, 400)}@example.com"},
        ),
    )


def load(runtime: Any, end: dt.datetime, seed: int = 7) -> dict[str, Any]:
    """Decode the generated requests with the OTLP decoder and write them to the lake."""
    import pyarrow as pa

    from mantissa.apm import lake, otlp

    limits = otlp.Limits(max_items=10**9, max_age_days=365)
    tables = []
    rejected = 0
    for req in generate(end, seed):
        dec = otlp.decode_traces(req.SerializeToString(), otlp.PROTOBUF, limits)
        tables.append(dec.table)
        rejected += len(dec.rejected)
    data = pa.concat_tables(tables)
    res = lake.write_table(runtime.storage, lake.TRACES, data)
    return {"spans": res.rows, "duplicates": res.duplicates, "rejected": rejected}


@step("Traces", 45)
def traces_step(ctx: DemoContext) -> None:
    """Send the shop's traces and show services, the service map and a failing trace."""
    from mantissa.apm import queries, service_map

    rt = ctx.runtime
    summary = load(rt, ctx.scenario.end, ctx.scenario.seed)
    ctx.results["apm"] = summary
    con = ctx.console
    con.print(f"  {summary['spans']} spans from {len(SERVICES)} services in the traces table")
    w = queries.Window(ctx.scenario.end - dt.timedelta(hours=1), None)
    rows = queries.services(rt.storage, w)
    for r in rows:
        style = "red" if r["error_rate"] > 0.05 else ("yellow" if (r["p99_ms"] or 0) > 1000 else "")
        line = (
            f"  {r['service']:<14} {r['spans']:>7} spans {r['errors']:>5} errors  "
            f"p50 {r['p50_ms'] or 0:>8.1f} ms  p99 {r['p99_ms'] or 0:>8.1f} ms"
        )
        con.print(f"[{style}]{line}[/{style}]" if style else line)
    smap = service_map.service_map(rt.storage, w, cache=False)
    con.print(f"  service map: {len(smap['nodes'])} nodes, {len(smap['edges'])} edges")
    bad = queries.search(rt.storage, w, service="payment", status="error", limit=1)
    if bad:
        tid = bad[0]["trace_id"]
        ctx.results["apm"]["failing_trace"] = tid
        con.print(f"  a failing checkout: [bold]mantissa apm trace {tid}[/bold]")
    alerts = run_apm_rules(rt, "4h")
    ctx.results["apm"]["alerts"] = [a.rule_title for a in alerts]
    for title in sorted({a.rule_title for a in alerts}):
        con.print(f"  [bold red]alert[/bold red] {title}")
    # the question an SRE asks first, answered offline from the same spans
    from mantissa.ask import answer

    why = answer(rt, "Why is checkout slow?", now=ctx.scenario.end)
    ctx.results["apm"]["why_slow"] = why.rows[:3] if why.answered else []
    con.print(f"  [bold]? Why is checkout slow?[/bold]  {why.summary}")
    con.print(
        "  try: mantissa apm services --since 1h · mantissa apm service-map · "
        'mantissa query "What services call payment?"'
    )


def run_apm_rules(runtime: Any, since: str) -> list[Any]:
    """Run the built-in APM rules (``rules/sigma/apm``) through the detection engine."""
    try:
        from mantissa.detect.engine import DetectionEngine
        from mantissa.detect.rules import RuleIndex
    except ModuleNotFoundError:
        return []
    index = RuleIndex.load(runtime)
    ids = [r.id for r in index.rules if "/sigma/apm/" in str(r.path).replace("\\", "/")]
    if not ids:
        return []
    return DetectionEngine(runtime).run(since=since, rule_ids=ids)
