"""``mantissa apm services|operations|service-map|trace|search``: APM from the terminal.

They read the lake directly (also while ``mantissa serve`` writes to it).
"""

from __future__ import annotations

from typing import Any

import typer
from rich.text import Text

from mantissa.cli.app import Format, app, runtime
from mantissa.cli.output import console, print_csv, print_json, print_table

apm_app = typer.Typer(
    help="APM: services, operations, service map, traces (OpenTelemetry).",
    no_args_is_help=True,
)
app.add_typer(apm_app, name="apm")

SINCE = typer.Option("1h", "--since", help="Window: a duration (15m, 1h, 7d) or ISO time.")
UNTIL = typer.Option(None, "--until", help="End of the window (duration ago or ISO time).")
FMT = typer.Option(Format.table, "--format", "-f", help="table, json or csv.")

RED_COLUMNS = ["spans", "errors", "error_rate", "p50_ms", "p95_ms", "p99_ms", "rate_per_min"]


def _emit(rows: list[dict[str, Any]], cols: list[str], fmt: Format, title: str) -> None:
    if fmt == Format.json:
        print_json(rows)
    elif fmt == Format.csv:
        print_csv(cols, [[r.get(c) for c in cols] for r in rows])
    else:
        est = any(r.get("estimate") for r in rows)
        print_table(
            cols,
            [[r.get(c) for c in cols] for r in rows],
            title=title + (" (sampled: counts are estimates)" if est else ""),
        )


@apm_app.command("services")
def services_cmd(
    ctx: typer.Context, since: str = SINCE, until: str | None = UNTIL, fmt: Format = FMT
) -> None:
    """RED per service: spans, errors, p50/p99 of entry spans."""
    from mantissa.apm import queries

    w = queries.Window.parse(since, until)
    rows = queries.services(runtime(ctx).storage, w)
    _emit(rows, ["service", *RED_COLUMNS], fmt, f"Services since {w.to_dict()['since']}")


@apm_app.command("operations")
def operations_cmd(
    ctx: typer.Context,
    service: str = typer.Argument(..., help="Service name."),
    since: str = SINCE,
    until: str | None = UNTIL,
    fmt: Format = FMT,
) -> None:
    """RED per operation (span name) of one service."""
    from mantissa.apm import queries

    w = queries.Window.parse(since, until)
    rows = queries.operations(runtime(ctx).storage, w, service)
    _emit(rows, ["service", "operation", *RED_COLUMNS], fmt, f"Operations of {service}")


@apm_app.command("service-map")
def service_map_cmd(
    ctx: typer.Context,
    since: str = SINCE,
    until: str | None = UNTIL,
    service: str | None = typer.Option(None, "--service", help="Only edges touching this."),
    fmt: Format = FMT,
) -> None:
    """Who calls whom: edges with calls, errors and p99; databases/queues as virtual nodes."""
    from mantissa.apm import queries, service_map

    w = queries.Window.parse(since, until)
    result = service_map.service_map(runtime(ctx).storage, w, service, cache=False)
    if fmt == Format.json:
        print_json(result)
        return
    cols = ["source", "target", "target_type", "calls", "errors", "error_rate", "p99_ms"]
    rows = [[e.get(c) for c in cols] for e in result["edges"]]
    if fmt == Format.csv:
        print_csv(cols, rows)
        return
    print_table(cols, rows, title="Service map")
    ncols = ["id", "type", "request_count", "error_rate", "avg_latency_ms", "p99_ms"]
    print_table(ncols, [[n.get(c) for c in ncols] for n in result["nodes"]], title="Nodes")


@apm_app.command("trace")
def trace_cmd(
    ctx: typer.Context,
    trace_id: str = typer.Argument(..., help="32 hex characters."),
    fmt: Format = FMT,
    logs: bool = typer.Option(True, "--logs/--no-logs", help="List the trace's log lines."),
) -> None:
    """One trace as a waterfall (tree, bars to scale, errors, exceptions)."""
    from mantissa.apm import queries

    rt = runtime(ctx)
    tree = queries.trace(rt.storage, trace_id)
    if logs:
        tree["logs"] = trace_logs(rt, tree)
    if fmt == Format.json:
        print_json(tree)
        return
    spans = queries.flatten(tree)
    if fmt == Format.csv:
        cols = ["depth", "span_id", "parent_span_id", "service_name", "name", "kind"]
        cols += ["offset_ms", "duration_ms", "status_code", "exception_type"]
        print_csv(cols, [[s.get(c) for c in cols] for s in spans])
        return
    render_waterfall(tree, spans)


def trace_logs(rt: Any, tree: dict[str, Any], limit: int = 200) -> list[dict[str, Any]]:
    """Log lines carrying this trace id (see :func:`mantissa.apm.queries.trace_logs`)."""
    from mantissa.apm import queries

    return queries.trace_logs(rt, tree, limit)


def render_waterfall(tree: dict[str, Any], spans: list[dict[str, Any]]) -> None:
    """One line per span: tree indent, service, duration and a bar to scale on the
    trace's timeline; errors get a second line with the exception or status message."""
    total = max(tree["duration_ms"], 1e-6)
    title = (
        f"trace {tree['trace_id']}  {tree['span_count']} spans  "
        f"{len(tree['services'])} services  {tree['duration_ms']:.1f} ms"
        + (f"  [red]{tree['errors']} errors[/red]" if tree["errors"] else "")
        + (f"  [yellow]{tree['orphans']} orphan(s)[/yellow]" if tree["orphans"] else "")
    )
    console.print(title)
    name_w, svc_w, ms_w = 36, 14, 9
    width = max(10, min(80, console.width - name_w - svc_w - ms_w - 5))
    palette = ["cyan", "magenta", "green", "blue", "yellow", "bright_cyan", "bright_magenta"]
    colour = {s: palette[i % len(palette)] for i, s in enumerate(tree["services"])}
    header = Text(f"{'span':<{name_w}} {'service':<{svc_w}} {'ms':>{ms_w}} ", style="bold cyan")
    header.append("0" + " " * (width - 1 - len(f"{total:.0f}ms")) + f"{total:.0f}ms")
    console.print(header)
    for s in spans:
        start = min(int(s["offset_ms"] / total * width), width - 1)
        length = min(max(1, round(s["duration_ms"] / total * width)), width - start)
        err = s["status_code"] == "ERROR"
        indent = "  " * s["depth"]
        label = indent + s["name"] + (" (parent missing)" if s.get("orphan") else "")
        if len(label) > name_w:
            label = label[: name_w - 1] + "…"
        line = Text(f"{label:<{name_w}} ", style="yellow" if s.get("orphan") else "")
        svc = s["service_name"][:svc_w]
        line.append(f"{svc:<{svc_w}} ", style=colour[s["service_name"]])
        line.append(f"{s['duration_ms']:>{ms_w}.1f} ")
        line.append("·" * start, style="dim")
        line.append("█" * length, style="red" if err else colour[s["service_name"]])
        line.append("·" * (width - start - length), style="dim")
        console.print(line, no_wrap=True, overflow="ellipsis")
        if err:
            detail = s.get("exception_type") or "ERROR"
            msg = s.get("exception_message") or s.get("status_message")
            console.print(
                Text(f"{indent}  ✗ {detail}" + (f": {msg}" if msg else ""), style="red"),
                no_wrap=True,
                overflow="ellipsis",
            )
    logs = tree.get("logs") or []
    if logs:
        cols = ["event_time", "source", "host", "event_type", "outcome", "message"]
        print_table(
            cols,
            [[r.get(c) for c in cols] for r in logs],
            title=f"Log lines of this trace ({len(logs)})",
            max_width=80,
        )


@apm_app.command("search")
def search_cmd(
    ctx: typer.Context,
    service: str | None = typer.Option(None, "--service", help="Service name."),
    operation: str | None = typer.Option(None, "--operation", help="Span name."),
    status: str | None = typer.Option(None, "--status", help="error, ok or unset."),
    kind: str | None = typer.Option(None, "--kind", help="server, client, internal ..."),
    min_duration: str | None = typer.Option(None, "--min-duration", help="e.g. 500ms, 2s."),
    max_duration: str | None = typer.Option(None, "--max-duration"),
    attr: list[str] = typer.Option(
        [], "--attr", help="key=value on an attribute (repeatable; * wildcards)."
    ),
    roots: bool = typer.Option(False, "--roots", help="Only root spans (whole traces)."),
    sort: str = typer.Option("-duration_ms", "--sort", help="-duration_ms or -start_time."),
    limit: int = typer.Option(50, "--limit", min=1, max=10000),
    since: str = SINCE,
    until: str | None = UNTIL,
    fmt: Format = FMT,
) -> None:
    """Find spans by service, status, duration and attributes."""
    from mantissa.apm import queries

    pairs = []
    for a in attr:
        k, sep, v = a.partition("=")
        if not sep or not k:
            raise queries.ApmQueryError(f"--attr must be key=value, got {a!r}")
        pairs.append((k, v))
    w = queries.Window.parse(since, until)
    rows = queries.search(
        runtime(ctx).storage,
        w,
        service=service,
        operation=operation,
        status=status,
        kind=kind,
        min_duration_ms=queries.parse_seconds(min_duration, "ms") * 1000 if min_duration else None,
        max_duration_ms=queries.parse_seconds(max_duration, "ms") * 1000 if max_duration else None,
        attrs=pairs,
        roots_only=roots,
        sort=sort,
        limit=limit,
    )
    cols = ["trace_id", "service_name", "name", "kind", "start_time", "duration_ms"]
    cols += ["status_code", "http.route", "exception_type"]
    if fmt == Format.json:
        print_json(rows)
    elif fmt == Format.csv:
        print_csv(cols, [[r.get(c) for c in cols] for r in rows])
    else:
        print_table(cols, [[r.get(c) for c in cols] for r in rows], title=f"{len(rows)} spans")
