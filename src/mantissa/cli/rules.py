"""``mantissa rules``: import, list, convert, validate, test, tune and health of Sigma rules."""

from __future__ import annotations

import getpass
import shutil
from pathlib import Path
from typing import Any

import typer

from mantissa.cli.app import Format, app, runtime
from mantissa.cli.output import console, print_json, print_table
from mantissa.errors import ConfigError, MantissaError

rules_app = typer.Typer(
    help="Sigma rules: import, list, convert, validate, test, tune, health.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")


def _index(ctx: typer.Context, paths: list[str] | None = None) -> Any:
    from mantissa.detect.rules import RuleIndex

    rt = runtime(ctx)
    if paths:
        for p in paths:
            if not Path(p).exists():
                raise ConfigError(f"{p} does not exist")
        return RuleIndex.load(rt, paths=[Path(p) for p in paths])
    return RuleIndex.load(rt)


@rules_app.command("list")
def list_rules(
    ctx: typer.Context,
    tag: list[str] = typer.Option(None, "--tag", help="Only rules with this tag (repeatable)."),
    level: str | None = typer.Option(None, "--level"),
    status: str | None = typer.Option(None, "--status"),
    table: str | None = typer.Option(None, "--table"),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """List the rules (built-in and yours) with level, table and whether they are enabled."""
    idx = _index(ctx)
    rules = idx.select(tags=tag or None, level=level, status=status, table=table)
    if fmt == Format.json:
        print_json([r.summary() for r in rules])
        return
    print_table(
        ["id", "title", "level", "table", "enabled", "interval"],
        [
            [
                r.id,
                r.title,
                r.level,
                r.table or "-",
                "yes" if r.enabled else "no",
                f"{r.interval_secs}s",
            ]
            for r in rules
        ],
    )
    console.print(
        f"[dim]{len(rules)} rules, {len(idx.issues)} problems (see `mantissa rules validate`)[/]"
    )


@rules_app.command("import")
def import_rules(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="Rule files or folders (Sigma YAML)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Copy valid rules into <data-dir>/rules/sigma/<table>/ (and their samples files)."""
    from mantissa.detect.samples import samples_path

    rt = runtime(ctx)
    idx = _index(ctx, paths)
    dest_root = Path(rt.data_dir) / "rules" / "sigma"
    imported = []
    bad_paths = {i.path for i in idx.issues if i.kind == "invalid"}
    for r in idx.rules:
        if r.path in bad_paths:
            continue
        sub = (r.table or "other").split(",")[0]
        dest = dest_root / sub / Path(r.path).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if Path(r.path).resolve() != dest.resolve():
            shutil.copyfile(r.path, dest)
            sp = samples_path(r)
            if sp.exists():
                shutil.copyfile(sp, dest.parent / sp.name)
        imported.append({"rule_id": r.id, "title": r.title, "path": str(dest), "table": r.table})
    out = {
        "imported": imported,
        "invalid": [i.to_dict() for i in idx.issues if i.kind == "invalid"],
        "unsupported": [i.to_dict() for i in idx.issues if i.kind == "unsupported"],
    }
    if fmt == Format.json:
        print_json(out)
        return
    console.print(f"imported {len(imported)} rules into {dest_root}")
    for i in idx.issues:
        console.print(f"[yellow]{i.kind}[/] {i.path}:{i.line or '?'}: {i.message}", highlight=False)


@rules_app.command("convert")
def convert(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(
        None, help="Rule files or folders (default: the rule library)."
    ),
    dialect: str = typer.Option(
        "duckdb", "--dialect", "-d", help="duckdb|athena|bigquery|synapse|spark"
    ),
    since: str | None = typer.Option(None, "--since", help="Add a time window, e.g. 24h."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Print each rule's SQL in a dialect."""
    from mantissa.detect.dialects import DIALECTS
    from mantissa.detect.engine import parse_time

    if dialect not in DIALECTS:
        raise ConfigError(f"unknown dialect {dialect!r}", hint="one of: " + ", ".join(DIALECTS))
    idx = _index(ctx, paths)
    start = parse_time(since) if since else None
    end = parse_time("0s") if since else None
    out = []
    for r in idx.rules:
        item: dict[str, Any] = {
            "rule_id": r.id,
            "path": r.path,
            "dialect": dialect,
            "sql": None,
            "error": None,
        }
        try:
            item["sql"] = idx.compiled(r).sql(dialect, start, end, pretty=fmt != Format.json)
        except MantissaError as exc:
            item["error"] = exc.message
        out.append(item)
    for i in idx.issues:
        out.append(
            {
                "rule_id": i.rule_id,
                "path": i.path,
                "dialect": dialect,
                "sql": None,
                "error": f"line {i.line}: {i.message}",
            }
        )
    if fmt == Format.json:
        print_json(out)
        return
    for item in out:
        console.print(f"[bold]-- {item['rule_id']} ({item['path']})[/]", highlight=False)
        if item["error"]:
            console.print(f"-- error: {item['error']}", highlight=False)
        else:
            print(item["sql"] + ";")


def validation(idx: Any) -> dict[str, Any]:
    """``{"total", "valid", "unsupported", "invalid"}`` for an index (valid = converted)."""
    unsupported = [i.to_dict() for i in idx.issues if i.kind == "unsupported"]
    invalid = [i.to_dict() for i in idx.issues if i.kind == "invalid"]
    unsupported_ids = {u["rule_id"] for u in unsupported}
    valid = 0
    for r in idx.rules:
        if r.id in unsupported_ids:
            continue
        try:
            c = idx.compiled(r)
            for d in ("duckdb",):
                c.sql(d)
            valid += 1
        except MantissaError as exc:
            unsupported.append(
                {"path": r.path, "line": r.line, "rule_id": r.id, "error": exc.message}
            )
    from mantissa.detect.rules import lint

    total = len(idx.rules) + len([i for i in idx.issues if i.kind == "invalid"])
    return {
        "total": total,
        "valid": valid,
        "unsupported": unsupported,
        "invalid": invalid,
        "warnings": [w.to_dict() for w in lint(idx)],
    }


@rules_app.command("validate")
def validate(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(
        None, help="Rule files or folders (default: the rule library)."
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Parse, map and convert rules; report what is invalid or unsupported, with file:line."""
    out = validation(_index(ctx, paths))
    if fmt == Format.json:
        print_json(out)
    else:
        console.print(f"{out['valid']} of {out['total']} rules valid")
        for kind in ("invalid", "unsupported", "warnings"):
            for i in out[kind]:
                console.print(
                    f"[yellow]{kind}[/] {i['path']}:{i['line'] or '?'}: {i['error']}",
                    highlight=False,
                )
    if out["invalid"]:
        raise typer.Exit(1)


@rules_app.command("test")
def test(
    ctx: typer.Context,
    rule: str | None = typer.Argument(None, help="A rule id (default: every rule with samples)."),
    paths: list[str] = typer.Option(None, "--path", help="Test the rules under this path instead."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Run rules' sample events through the real parser, lake and SQL."""
    from mantissa.detect.samples import run_samples, samples_path

    idx = _index(ctx, paths)
    rules = [idx.get(rule)] if rule else [r for r in idx.rules if samples_path(r).exists()]
    results = run_samples(idx, rules)
    failed = [r for r in results if not r.passed]
    if fmt == Format.json:
        print_json(
            {
                "total": len(results),
                "passed": len(results) - len(failed),
                "failed": len(failed),
                "results": [r.to_dict() for r in results],
            }
        )
    else:
        for r in results:
            mark = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
            why = r.error or "; ".join(c.get("reason", "") for c in r.checks if not c.get("passed"))
            console.print(
                f"{mark} {r.rule_id}  {r.title}" + (f"  — {why}" if why else ""), highlight=False
            )
        console.print(f"{len(results) - len(failed)} of {len(results)} passed")
    if failed:
        raise typer.Exit(1)


@rules_app.command("tune")
def tune(
    ctx: typer.Context,
    rule: str = typer.Argument(..., help="Rule id."),
    exclude: list[str] = typer.Option(
        None, "--exclude", help="field=value (wildcards *, or a CIDR); repeatable."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why these events are benign."),
    expires: str | None = typer.Option(None, "--expires", help="A duration (30d) or a date."),
    who: str | None = typer.Option(None, "--who", help="Who decided (default: your login)."),
    remove: str | None = typer.Option(None, "--remove", help="Remove the filter with this id."),
    from_alert: str | None = typer.Option(
        None, "--from-alert", help="Propose filters from a false-positive alert."
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Add, list or remove false-positive filters of a rule (applied in its SQL)."""
    from mantissa.detect import tuning

    rt = runtime(ctx)
    idx = _index(ctx)
    r = idx.get(rule)
    out: dict[str, Any] = {"rule_id": r.id}
    if remove:
        tuning.remove_filter(rt, r.id, remove)
        out["removed"] = remove
    if from_alert:
        from mantissa.alerts.store import AlertStore

        out["proposed"] = tuning.propose(AlertStore(rt.state).get(from_alert))
    if exclude:
        if not reason:
            raise ConfigError("--reason is required with --exclude")
        out["added"] = [
            tuning.add_filter(
                rt,
                r.id,
                *tuning.parse_exclude(e),
                reason=reason,
                who=who or _login(),
                expires=expires,
            )
            for e in exclude
        ]
    out["filters"] = tuning.filters(rt, r.id)
    if fmt == Format.json:
        print_json(out)
        return
    for p in out.get("proposed", []):
        console.print(f"proposed: {p['command']}", highlight=False)
    print_table(
        ["id", "field", "value", "reason", "who", "expires_at"],
        [
            [f["id"], f["field"], f["value"], f["reason"], f["who"], f.get("expires_at") or "never"]
            for f in out["filters"]
        ],
        title=f"filters of {r.id}",
    )


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


@rules_app.command("health")
def health(
    ctx: typer.Context,
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Flag rules that went silent, fire abnormally often, or fail to run."""
    from mantissa.detect import tuning

    rt = runtime(ctx)
    idx = _index(ctx)
    out = tuning.health(rt, idx)
    proposals: list[dict[str, Any]] = []
    try:
        from mantissa.alerts.model import AlertStatus
        from mantissa.alerts.store import AlertStore

        fps, _ = AlertStore(rt.state).list(status=AlertStatus.false_positive, limit=200)
        for a in fps:
            proposals += tuning.propose(a)
    except (ImportError, MantissaError):
        pass
    if fmt == Format.json:
        print_json({"rules": out, "proposed_filters": proposals})
        return
    flagged = [h for h in out if h["status"] != "ok"]
    print_table(
        ["rule_id", "title", "status", "reason", "last_match"],
        [
            [h["rule_id"], h["title"], h["status"], h["reason"], h["last_match"] or "-"]
            for h in flagged
        ],
        title="rules needing attention",
    )
    console.print(f"{len(out) - len(flagged)} of {len(out)} enabled rules healthy")
    for p in proposals:
        console.print(f"proposed filter: {p['command']}", highlight=False)


@rules_app.command("enable")
def enable(ctx: typer.Context, rule: str = typer.Argument(...)) -> None:
    """Enable a rule."""
    _index(ctx).set_enabled(rule, True)
    console.print(f"enabled {rule}")


@rules_app.command("disable")
def disable(ctx: typer.Context, rule: str = typer.Argument(...)) -> None:
    """Disable a rule."""
    _index(ctx).set_enabled(rule, False)
    console.print(f"disabled {rule}")
