"""``mantissa collect`` and ``mantissa inputs status``: run the configured inputs."""

from __future__ import annotations

import logging
import signal
import threading

import typer

from mantissa.cli.app import Format, app, runtime
from mantissa.cli.output import err_console, print_json, print_table
from mantissa.errors import ConfigError
from mantissa.inputs.base import Runner, configured_inputs, statuses

inputs_app = typer.Typer(help="Collector inputs: status of each configured input.")
app.add_typer(inputs_app, name="inputs")


@app.command()
def collect(
    ctx: typer.Context,
    once: str | None = typer.Option(
        None, "--once", help="Run one poll cycle of this input id and exit."
    ),
    only: list[str] = typer.Option([], "--input", "-i", help="Run only these input ids."),
    from_bucket: bool = typer.Option(
        False,
        "--from-bucket",
        help="With --once on an s3 input: list the bucket and ingest every object (backfill).",
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
) -> None:
    """Run the inputs of mantissa.yaml: fetch vendor logs into the lake, with checkpoints."""
    rt = runtime(ctx)
    inputs = configured_inputs(rt)
    runner = Runner(rt)
    if once is not None:
        if once not in inputs:
            raise ConfigError(
                f"no input {once!r} in the config",
                hint="configured: " + (", ".join(inputs) or "none"),
            )
        cls, cfg = inputs[once]
        if from_bucket:
            if not hasattr(cfg, "from_bucket"):
                raise ConfigError(f"--from-bucket applies to s3 inputs, not {cfg.type}")
            cfg = cfg.model_copy(update={"from_bucket": True})
        result = runner.cycle(once, cls, cfg)
        out = result.to_dict()
        if fmt == Format.json:
            print_json(out)
        else:
            print_table(["", "value"], [[k, v] for k, v in out.items()], title=f"collect {once}")
        if not result.ok:
            raise typer.Exit(1)
        return
    if not inputs:
        raise ConfigError(
            "no inputs in the config", hint="add an `inputs:` section (docs/collect.md)"
        )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()

    def on_signal(_sig: int, _frame: object) -> None:
        err_console.print("stopping after the current batch ...")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    names = [i for i, (_c, cfg) in inputs.items() if cfg.enabled and (not only or i in only)]
    err_console.print(f"collecting: {', '.join(names)}")
    runner.run_forever(stop, only=only or None)


@inputs_app.command("status")
def inputs_status(
    ctx: typer.Context,
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
) -> None:
    """Each input: last cursor, last event time, lag, events/errors in the last hour, next run."""
    rows = statuses(runtime(ctx))
    if fmt == Format.json:
        print_json({"inputs": rows})
        return
    print_table(
        [
            "id",
            "type",
            "state",
            "last event",
            "lag s",
            "events 1h",
            "errors 1h",
            "next run",
            "error",
        ],
        [
            [
                r["id"],
                r["type"],
                r["state"],
                r["last_event_time"],
                r["lag_secs"],
                r["events_last_hour"],
                r["errors_last_hour"],
                r["next_run"],
                (r["last_error"] or {}).get("message", "")[:80] if r["last_error"] else "",
            ]
            for r in rows
        ],
        title="inputs",
    )
