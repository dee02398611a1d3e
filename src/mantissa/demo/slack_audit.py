"""Demo Slack: Audit Logs API entries, with an exporting app and bulk file downloads.

Everyday: logins, channels created, files downloaded, the odd app approved. Planted:
from the attacker's address mallory installs an app with history and files scopes and
downloads 40 files in ten minutes.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, ATTACKER_UA, Person, Scenario

WORKSPACE = {"type": "workspace", "id": "T01234N56GB", "name": "Example", "domain": "example"}


def _user(p: Person) -> dict[str, str]:
    return {
        "id": f"W{p.name.upper()[:8]}",
        "name": p.name.title(),
        "email": p.email,
        "team": WORKSPACE["id"],
    }


def _entry(
    sc: Scenario,
    t: dt.datetime,
    p: Person,
    action: str,
    entity: dict[str, Any],
    ip: str,
    ua: str,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    e: dict[str, Any] = {
        "id": str(uuid.UUID(int=sc.rng.getrandbits(128))),
        "date_create": int(t.timestamp()),
        "action": action,
        "actor": {"type": "user", "user": _user(p)},
        "entity": entity,
        "context": {
            "location": WORKSPACE,
            "ua": ua,
            "ip_address": ip,
            "session_id": sc.rng.randrange(10**12),
        },
    }
    if details:
        e["details"] = details
    return e


def entries(sc: Scenario) -> list[dict[str, Any]]:
    rng = sc.rng
    out: list[dict[str, Any]] = []
    for _ in range(sc.days * len(sc.people)):
        p = sc.person()
        out.append(
            _entry(
                sc,
                sc.work_time(),
                p,
                "user_login",
                {"type": "user", "user": _user(p)},
                p.ip,
                p.user_agent,
            )
        )
    for i in range(sc.days * len(sc.people) * 3):
        p = sc.person()
        f = {
            "id": f"F0{i:08d}",
            "name": rng.choice(["notes.pdf", "q3.xlsx", "diagram.png"]),
            "filetype": "pdf",
            "title": "shared file",
        }
        out.append(
            _entry(
                sc,
                sc.work_time(),
                p,
                "file_downloaded",
                {"type": "file", "file": f},
                p.ip,
                "Slack/4.38.125",
            )
        )
    for _ in range(sc.days):
        p = sc.person()
        ch = {
            "id": f"C0{rng.randrange(10**6)}",
            "name": f"proj-{rng.randrange(99)}",
            "privacy": "public",
            "is_shared": False,
            "is_org_shared": False,
        }
        out.append(
            _entry(
                sc,
                sc.work_time(),
                p,
                "public_channel_created",
                {"type": "channel", "channel": ch},
                p.ip,
                "Slack/4.38.125",
            )
        )
    mallory = sc.people[10]
    ip = ATTACKER_IPS[1]
    t0 = sc.recent(5.2)
    app = {
        "id": "A0EXPORT01",
        "name": "Export All",
        "is_distributed": False,
        "is_directory_approved": False,
        "scopes": ["channels:history", "groups:history", "files:read", "users:read.email"],
    }
    out.append(
        _entry(
            sc,
            t0,
            mallory,
            "app_installed",
            {"type": "app", "app": app},
            ip,
            ATTACKER_UA,
            {"name": app["name"], "scopes": app["scopes"]},
        )
    )
    for i in range(40):
        f = {
            "id": f"F9{i:08d}",
            "name": f"finance-{i}.xlsx",
            "filetype": "xlsx",
            "title": f"finance-{i}.xlsx",
        }
        out.append(
            _entry(
                sc,
                t0 + dt.timedelta(seconds=60 + 15 * i),
                mallory,
                "file_downloaded",
                {"type": "file", "file": f},
                ip,
                ATTACKER_UA,
            )
        )
    return out


@generator("slack_audit")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """Audit Logs API responses (``{"entries": [...]}``), newest first, one per day."""
    base = out_dir / "slack_audit"
    base.mkdir(parents=True, exist_ok=True)
    days: dict[str, list[dict[str, Any]]] = {}
    for e in entries(sc):
        day = dt.datetime.fromtimestamp(e["date_create"], dt.UTC).strftime("%Y-%m-%d")
        days.setdefault(day, []).append(e)
    files = []
    for day, es in sorted(days.items()):
        es.sort(key=lambda e: e["date_create"], reverse=True)
        f = base / f"audit-logs-{day}.json"
        f.write_text(json.dumps({"entries": es, "response_metadata": {"next_cursor": ""}}))
        files.append(f)
    return files
