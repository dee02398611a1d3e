"""``mantissa detect``: run the rules over a window, or on schedule."""

from __future__ import annotations

import signal
import threading

import typer

from mantissa.cli.app import Format, app, runtime
from mantissa.cli.output import console, err_console, print_json, print_table

detect_app = typer.Typer(
    help="Run detections: once over a window, or on schedule.", no_args_is_help=True
)
app.add_typer(detect_app, name="detect")


@detect_app.command("run")
def run(
    ctx: typer.Context,
    since: str | None = typer.Option(
        None, "--since", help="Window back from now, e.g. 24h (default)."
    ),
    start: str | None = typer.Option(None, "--from", help="Window start (ISO-8601)."),
    end: str | None = typer.Option(None, "--to", help="Window end (ISO-8601, default now)."),
    rules: list[str] = typer.Option(
        None, "--rules", help="Rule ids (repeatable, or comma-separated)."
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Run the enabled rules over a window; prints the alerts created or updated."""
    from mantissa.detect.engine import DetectionEngine

    rt = runtime(ctx)
    ids = [x.strip() for r in rules or [] for x in r.split(",") if x.strip()] or None
    if since is None and start is None:
        since = "24h"
    alerts, ev = DetectionEngine(rt).run_window(since, start, end, ids)
    if fmt == Format.json:
        print_json(
            [a.to_dict() if hasattr(a, "to_dict") else a.model_dump(mode="json") for a in alerts]
        )
        return
    print_table(
        ["severity", "rule", "entities", "count", "first_seen", "last_seen"],
        [
            [
                a.severity,
                a.rule_title,
                ", ".join(f"{k}={v}" for k, v in a.entities.items()),
                a.count,
                a.first_seen,
                a.last_seen,
            ]
            for a in alerts
        ],
        title=f"alerts {ev.start:%Y-%m-%d %H:%M} → {ev.end:%Y-%m-%d %H:%M} UTC",
    )
    ms = sum(u.elapsed_ms for u in ev.units)
    console.print(
        f"[dim]{len(set(ev.rules_run))} rules in {len(ev.units)} queries, {ms:.0f} ms of engine time; "
        f"{len(alerts)} alerts[/]"
    )
    for rid, err in sorted(ev.errors.items()):
        err_console.print(f"[yellow]rule {rid}:[/] {err}", highlight=False)


@detect_app.command("schedule")
def schedule(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="Run the due windows once and exit."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Run every rule at its interval, with persisted watermarks (Ctrl-C to stop)."""
    from mantissa.detect.scheduler import Scheduler

    rt = runtime(ctx)
    sched = Scheduler(rt)
    if once:
        report = sched.tick()
        if fmt == Format.json:
            print_json(report)
        else:
            console.print(
                f"ran {len(report['windows'])} windows, {report['alerts']} alerts, "
                f"{len(report['skipped_leased'])} skipped (leased elsewhere)"
            )
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(f"scheduler {sched.owner} running; Ctrl-C to stop")
    try:
        sched.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()
