"""``mantissa playbooks import|list|show|activate|run|codegen|from-plan|schema``,
``mantissa approvals list|approve|deny``, ``mantissa executions list|show|resume|cancel``."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import typer

from mantissa.cli.app import Format, app, runtime
from mantissa.cli.output import console, print_json, print_table
from mantissa.errors import ConfigError

playbooks_app = typer.Typer(help="SOAR playbooks: import, list, run.", no_args_is_help=True)
approvals_app = typer.Typer(help="Approvals of gated playbook steps.", no_args_is_help=True)
executions_app = typer.Typer(
    help="Playbook executions: inspect, resume, cancel.", no_args_is_help=True
)
app.add_typer(playbooks_app, name="playbooks")
app.add_typer(approvals_app, name="approvals")
app.add_typer(executions_app, name="executions")

FORMAT = typer.Option(Format.table, "--format", "-f", help="table|json")


def _actor(name: str | None) -> str:
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:
        return "cli"


# -- playbooks -------------------------------------------------------------------------
@playbooks_app.command("import")
def import_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A playbook YAML file or a folder of them."),
    fmt: Format = FORMAT,
) -> None:
    """Validate and import playbooks (a changed file becomes a new version)."""
    from mantissa.soar.store import PlaybookStore

    if not path.exists():
        raise ConfigError(f"{path} does not exist")
    out = PlaybookStore(runtime(ctx)).import_path(path, _actor(None))
    if fmt == Format.json:
        print_json(
            out[0].to_dict() if len(out) == 1 and path.is_file() else [o.to_dict() for o in out]
        )
        return
    for o in out:
        verb = "imported" if o.created else "unchanged"
        console.print(f"{verb} {o.id}@{o.version} ({o.status}) from {o.source}")


@playbooks_app.command("list")
def list_cmd(ctx: typer.Context, fmt: Format = FORMAT) -> None:
    """Playbooks with their versions, status and trigger."""
    from mantissa.soar.store import PlaybookStore

    rows = PlaybookStore(runtime(ctx)).list()
    if fmt == Format.json:
        print_json(rows)
        return
    print_table(
        ["id", "name", "versions", "status", "trigger"],
        [
            [r["id"], r["name"], ", ".join(r["versions"]), r["status"], r["trigger"]["type"]]
            for r in rows
        ],
    )


@playbooks_app.command("show")
def show_cmd(ctx: typer.Context, ref: str = typer.Argument(..., help="ID or ID@VERSION")) -> None:
    """Print a playbook version's YAML."""
    from mantissa.soar.store import PlaybookStore

    store = PlaybookStore(runtime(ctx))
    pid, version = store.resolve(ref)
    typer.echo(store.text(pid, version), nl=False)


@playbooks_app.command("activate")
def activate_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="ID or ID@VERSION"),
    status: str = typer.Option("active", "--status", help="active|inactive|draft"),
    fmt: Format = FORMAT,
) -> None:
    """Set a version's status (a draft from `from-plan` runs on alerts once active)."""
    from mantissa.soar.store import PlaybookStore

    if status not in ("active", "inactive", "draft"):
        raise ConfigError(f"unknown status {status!r}", hint="active|inactive|draft")
    store = PlaybookStore(runtime(ctx))
    pid, version = store.resolve(ref)
    store.set_status(pid, version, status, _actor(None))
    if fmt == Format.json:
        print_json({"id": pid, "version": version, "status": status})
    else:
        console.print(f"{pid}@{version} is {status}")


@playbooks_app.command("schema")
def schema_cmd() -> None:
    """Print the playbook JSON Schema."""
    from mantissa.soar.model import json_schema

    print_json(json_schema())


@playbooks_app.command("run")
def run_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="ID or ID@VERSION"),
    alert: str | None = typer.Option(None, "--alert", help="Run on this alert id."),
    input_json: str | None = typer.Option(None, "--input", help="Input as a JSON object."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Send nothing; record requests."),
    fmt: Format = FORMAT,
) -> None:
    """Run a playbook in the foreground until it ends or waits for a person."""
    from mantissa.soar.executor import Executor

    rt = runtime(ctx)
    if bool(alert) == bool(input_json):
        raise ConfigError("give exactly one of --alert ALERT_ID or --input JSON")
    data: dict[str, Any] | None = None
    alert_doc = None
    if input_json:
        try:
            data = json.loads(input_json)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--input is not JSON: {exc.msg} at position {exc.pos}") from None
        if not isinstance(data, dict):
            raise ConfigError("--input must be a JSON object")
    else:
        from mantissa.alerts.store import AlertStore

        alert_doc = AlertStore(rt.state).get(str(alert)).model_dump(mode="json")
    ex = Executor(rt)
    eid = ex.start(
        ref, input=data, alert=alert_doc, dry_run=dry_run, trigger="manual", actor=_actor(None)
    )
    assert eid is not None
    status = ex.run(eid)
    out: dict[str, Any] = {"execution_id": eid, "status": status}
    if fmt == Format.json:
        print_json(out)
        return
    console.print(f"execution {eid}: [bold]{status}[/]")
    if status == "waiting_approval":
        from mantissa.soar.approvals import list_approvals

        for ap in list_approvals(rt, execution_id=eid):
            console.print(
                f"waiting for approval {ap['id']} (step {ap['step']}) until {ap['expires_at']}:"
                f" mantissa approvals approve {ap['id']}"
            )
    elif status == "failed":
        console.print(f"[red]{ex.get(eid)['error']}[/]")


@playbooks_app.command("codegen")
def codegen_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="ID or ID@VERSION"),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write here (default stdout)."),
) -> None:
    """Generate the reference's standalone Python handler for a playbook (AST-checked)."""
    from mantissa.soar.codegen import generate
    from mantissa.soar.store import PlaybookStore

    store = PlaybookStore(runtime(ctx))
    pid, version = store.resolve(ref)
    code = generate(store.load(pid, version))
    if output:
        output.write_text(code)
        console.print(f"wrote {output}")
    else:
        typer.echo(code, nl=False)


@playbooks_app.command("from-plan")
def from_plan_cmd(
    ctx: typer.Context,
    plan: Path = typer.Argument(..., help="An IR plan: .md, .txt, .yaml"),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write here (default stdout)."),
    llm: bool = typer.Option(False, "--llm", help="Let the configured LLM provider map prose."),
) -> None:
    """Turn an incident response plan into playbook YAML (status: draft)."""
    from mantissa.soar.ir_parser import parse_plan

    if not plan.exists():
        raise ConfigError(f"{plan} does not exist")
    text = parse_plan(plan, runtime(ctx) if llm else None)
    if output:
        output.write_text(text)
        console.print(f"wrote {output} (status: draft; review, then `mantissa playbooks import`)")
    else:
        typer.echo(text, nl=False)


# -- approvals -------------------------------------------------------------------------
@approvals_app.command("list")
def approvals_list(
    ctx: typer.Context,
    all_: bool = typer.Option(False, "--all", help="Also decided and expired ones."),
    fmt: Format = FORMAT,
) -> None:
    """Pending approvals."""
    from mantissa.soar.approvals import list_approvals

    rows = list_approvals(runtime(ctx), None if all_ else "pending")
    if fmt == Format.json:
        print_json(rows)
        return
    print_table(
        ["id", "execution_id", "step", "action", "status", "requested_at", "expires_at"],
        [
            [
                r["id"],
                r["execution_id"],
                r["step"],
                r["action"],
                r["status"],
                r["requested_at"],
                r["expires_at"],
            ]
            for r in rows
        ],
    )


def _decide(
    ctx: typer.Context, aid: str, decision: str, who: str | None, reason: str | None, fmt: Format
) -> None:
    from mantissa.soar.approvals import decide

    out = decide(runtime(ctx), aid, decision, _actor(who), "cli", reason)
    if fmt == Format.json:
        print_json(out)
    else:
        console.print(
            f"{out['status']} by {out['decided_by']}; execution {out['execution_id']} is "
            f"{out['execution_status']}"
        )


@approvals_app.command("approve")
def approve_cmd(
    ctx: typer.Context,
    aid: str = typer.Argument(...),
    as_: str | None = typer.Option(None, "--as", help="Who approves (default: login name)."),
    fmt: Format = FORMAT,
) -> None:
    """Approve a pending step; the execution continues."""
    _decide(ctx, aid, "approve", as_, None, fmt)


@approvals_app.command("deny")
def deny_cmd(
    ctx: typer.Context,
    aid: str = typer.Argument(...),
    as_: str | None = typer.Option(None, "--as", help="Who denies (default: login name)."),
    reason: str | None = typer.Option(None, "--reason"),
    fmt: Format = FORMAT,
) -> None:
    """Deny a pending step; the execution ends denied (or skips it with on_deny: skip)."""
    _decide(ctx, aid, "deny", as_, reason, fmt)


# -- executions ------------------------------------------------------------------------
@executions_app.command("list")
def executions_list(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status"),
    playbook: str | None = typer.Option(None, "--playbook"),
    limit: int = typer.Option(50, "--limit"),
    fmt: Format = FORMAT,
) -> None:
    """Recent executions."""
    from mantissa.soar.approvals import sweep
    from mantissa.soar.executor import Executor

    rt = runtime(ctx)
    sweep(rt)
    rows, total = Executor(rt).list(status, playbook, limit)
    if fmt == Format.json:
        print_json(rows)
        return
    print_table(
        ["id", "playbook", "status", "trigger", "created_at", "error"],
        [
            [
                r["id"],
                f"{r['playbook_id']}@{r['version']}",
                r["status"],
                r["trigger"],
                r["created_at"],
                r["error"] or "",
            ]
            for r in rows
        ],
        title=f"{len(rows)} of {total}",
    )


@executions_app.command("show")
def executions_show(
    ctx: typer.Context,
    eid: str = typer.Argument(...),
    fmt: Format = FORMAT,
    audit: bool = typer.Option(False, "--audit", help="Include the audit trail."),
) -> None:
    """One execution with its steps."""
    from mantissa.soar.approvals import sweep
    from mantissa.soar.executor import Executor

    rt = runtime(ctx)
    sweep(rt)
    ex = Executor(rt)
    out = ex.get(eid)
    if audit:
        out["audit"] = ex.audit_log(eid)
    if fmt == Format.json:
        print_json(out)
        return
    console.print(
        f"{out['id']} {out['playbook_id']}@{out['version']}: [bold]{out['status']}[/]"
        + (f" ({out['error']})" if out["error"] else "")
    )
    print_table(
        ["step", "action", "status", "attempt", "error"],
        [[s["id"], s["action"], s["status"], s["attempt"], s["error"] or ""] for s in out["steps"]],
    )


@executions_app.command("resume")
def executions_resume(
    ctx: typer.Context,
    eid: str = typer.Argument(...),
    retry: str | None = typer.Option(None, "--retry", help="Run this step again."),
    fmt: Format = FORMAT,
) -> None:
    """Continue an execution (after a crash, or retry a failed/in-doubt step)."""
    from mantissa.soar.executor import Executor

    status = Executor(runtime(ctx)).resume(eid, retry, _actor(None))
    if fmt == Format.json:
        print_json({"execution_id": eid, "status": status})
    else:
        console.print(f"execution {eid}: [bold]{status}[/]")


@executions_app.command("cancel")
def executions_cancel(
    ctx: typer.Context, eid: str = typer.Argument(...), fmt: Format = FORMAT
) -> None:
    """Cancel an execution (the step in flight finishes; no later step starts)."""
    from mantissa.soar.executor import Executor

    status = Executor(runtime(ctx)).cancel(eid, _actor(None))
    if fmt == Format.json:
        print_json({"execution_id": eid, "status": status})
    else:
        console.print(f"execution {eid}: [bold]{status}[/]")
