"""``mantissa identity run|show|risky|detections``: identity threat detection."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer

from mantissa.cli.app import Format, app, runtime
from mantissa.cli.output import console, print_csv, print_json, print_table
from mantissa.errors import NotFound

identity_app = typer.Typer(
    help="Identity threats: credential attacks, MFA fatigue, travel, privilege abuse, risk.",
    no_args_is_help=True,
)
app.add_typer(identity_app, name="identity")


@identity_app.command("run")
def run_cmd(
    ctx: typer.Context,
    since: str | None = typer.Option(
        None, "--since", help="Start (24h, 7d, ISO time); default: the watermark, else 24h."
    ),
    until: str | None = typer.Option(None, "--until", help="End (default now)."),
    only: str | None = typer.Option(None, "--detections", help="Comma-separated names."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Find, explain, raise no alert."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Run the identity detections (and update baselines) up to now, in daily chunks."""
    from mantissa.cli.alerts import parse_when
    from mantissa.identity.run import IdentityRun

    rt = runtime(ctx)
    runner = IdentityRun(rt)
    start, end = parse_when(since), parse_when(until)
    names = [n.strip() for n in only.split(",")] if only else None
    if names:
        from mantissa.identity.detections.base import registry

        unknown = sorted(set(names) - set(registry()))
        if unknown:
            raise typer.BadParameter(f"unknown detection(s): {', '.join(unknown)}")
        end = end or dt.datetime.now(dt.UTC)
        results = [
            runner.run(
                start or end - dt.timedelta(hours=24),
                end,
                raise_alerts=not dry_run,
                update_baselines=False if dry_run else None,
                only=names,
            )
        ]
    else:
        results = runner.catch_up(start, end, dry_run=dry_run)
    docs = [r.to_dict() for r in results]
    alerts = [a for d in docs for a in d["alerts"]]
    summary = {
        "start": docs[0]["start"] if docs else None,
        "end": docs[-1]["end"] if docs else None,
        "runs": len(docs),
        "events": sum(d["events"] for d in docs),
        "seconds": round(sum(d["seconds"] for d in docs), 3),
        "errors": {k: v for d in docs for k, v in d["errors"].items()},
        "alerts": alerts,
    }
    if fmt == Format.json:
        print_json(summary)
        return
    rows = [
        [a["severity"], a["rule_id"], a["entities"].get("user") or a["entities"].get("ip"),
         a.get("description")]
        for a in alerts
    ]  # fmt: skip
    if fmt == Format.csv:
        print_csv(["severity", "rule_id", "entity", "description"], rows)
        return
    console.print(
        f"{summary['runs']} run(s), {summary['events']} identity events, "
        f"{len(alerts)} alert(s) in {summary['seconds']} s"
    )
    for name, err in summary["errors"].items():
        console.print(f"[red]{name} failed: {err}")
    if rows:
        print_table(["severity", "rule", "entity", "why"], rows, max_width=100)


def _profile(rt: Any, user: str) -> dict[str, Any]:
    from mantissa.identity import baselines, risk
    from mantissa.identity.config import load
    from mantissa.identity.correlation import Resolver, accounts_of, identity_alerts

    cfg = load(rt)
    ident, kind = Resolver(rt, cfg).resolve(user)
    ident = ident or user.lower()
    links = accounts_of(rt, ident)
    accounts = sorted({ident, user.lower(), *(x["account"] for x in links)})
    stored = baselines.load(rt.state, accounts)
    now = dt.datetime.now(dt.UTC)
    alerts = [
        a
        for a in identity_alerts(rt, now - dt.timedelta(days=30))
        if (a["entities"] or {}).get("user", "").lower() in accounts
        or (a["entities"] or {}).get("user", "").lower() == ident
    ]
    if not stored and not alerts and not links:
        raise NotFound(
            f"no identity data for {user!r}", hint="mantissa identity risky lists identities"
        )
    prof = []
    for acct, b in stored.items():
        d = b["data"]
        learning = b["first_seen"] > now - dt.timedelta(days=cfg.learning_days)
        prof.append({
            "account": acct, "first_seen": b["first_seen"].isoformat(),
            "last_seen": b["last_seen"].isoformat(), "learning": learning,
            "logins": b["logins"], "failures": b["failures"],
            "countries": d.get("countries", {}), "networks": d.get("nets", {}),
            "devices": d.get("devices", {}), "ips": len(d.get("ips", {})),
            "apps": d.get("apps", {}), "hour_of_day": d.get("hod", {}),
            "department": d.get("department"),
        })  # fmt: skip
    return {
        "identity": ident,
        "resolved_by": kind,
        "accounts": [{"account": x["account"], "kind": x["kind"]} for x in links],
        "risk": risk.of(rt, ident) or {"identity": ident, "score": 0.0, "reasons": []},
        "baselines": prof,
        "alerts": [
            {"id": a["id"], "rule_id": a["rule_id"], "severity": a["severity"],
             "last_seen": a["last_seen"].isoformat(), "status": a["status"],
             "description": a["description"]}
            for a in sorted(alerts, key=lambda a: a["last_seen"], reverse=True)
        ],
    }  # fmt: skip


@identity_app.command("show")
def show_cmd(
    ctx: typer.Context,
    user: str = typer.Argument(..., help="User (e-mail, IAM user, any linked account)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """An identity: linked accounts, risk score with reasons, baselines, recent alerts."""
    p = _profile(runtime(ctx), user)
    if fmt == Format.json:
        print_json(p)
        return
    r = p["risk"]
    console.print(f"[bold]{p['identity']}[/] risk {r['score']:.0f}/100")
    for a in p["accounts"]:
        console.print(f"  linked account {a['account']} ({a['kind']})")
    for reason in r.get("reasons", [])[:10]:
        console.print(f"  +{reason['points']:.1f} {reason['rule_id']}: {reason['why']}")
    for b in p["baselines"]:
        console.print(
            f"  baseline {b['account']}: {b['logins']} sign-ins since {b['first_seen'][:10]}"
            f"{' (learning)' if b['learning'] else ''}; countries {list(b['countries'])}; "
            f"{len(b['devices'])} device(s); {b['ips']} IP(s)"
        )
    rows = [
        [a["last_seen"][:19], a["severity"], a["rule_id"], a["description"]] for a in p["alerts"]
    ]
    if rows:
        print_table(["last_seen", "severity", "rule", "why"], rows, max_width=100)


@identity_app.command("risky")
def risky_cmd(
    ctx: typer.Context,
    top: int = typer.Option(20, "--top", min=1),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """The identities with the highest risk scores, with their top reasons."""
    from mantissa.identity import risk

    rows = risk.top(runtime(ctx), top)
    if fmt == Format.json:
        print_json({"identities": rows})
        return
    table = [
        [r["identity"], f"{r['score']:.0f}", r["alerts"],
         "; ".join(x["rule_id"].removeprefix("identity.") for x in r["reasons"][:4])]
        for r in rows
    ]  # fmt: skip
    if fmt == Format.csv:
        print_csv(["identity", "score", "alerts", "reasons"], table)
        return
    print_table(["identity", "risk", "alerts", "top reasons"], table)


@identity_app.command("detections")
def detections_cmd(
    ctx: typer.Context, fmt: Format = typer.Option(Format.table, "--format", "-f")
) -> None:
    """Every identity detection with its kill-chain stage and current thresholds."""
    from mantissa.identity.config import load
    from mantissa.identity.detections.base import registry

    cfg = load(runtime(ctx))
    rows = []
    for name, cls in sorted(registry().items()):
        settings = getattr(cfg, name, None)
        rows.append({"id": f"identity.{name}", "title": cls.title, "stage": cls.stage,
                     "settings": settings.model_dump() if settings is not None else {}})  # fmt: skip
    if fmt == Format.json:
        print_json({"detections": rows})
        return
    print_table(
        ["id", "stage", "title", "settings"],
        [[r["id"], r["stage"], r["title"], r["settings"]] for r in rows],
        max_width=80,
    )
