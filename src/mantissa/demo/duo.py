"""Demo Duo: Admin API authentication log pages and administrator log, with MFA push bombing.

Everyday: each person authenticates a few times a day (Duo Push, sometimes a passcode),
with the odd denial. Planted: the attacker, holding mallory's password, sends a burst of
pushes from a Tor exit until mallory, worn down, approves one (MFA fatigue); then an
admin creates a bypass code for mallory.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, Person, Scenario, iso

APPS = [
    ("DIY231J8BR23QK4UKBY8", "Microsoft Azure Active Directory"),
    ("DIVPN0000000000000001", "Corporate VPN"),
    ("DIGITHUB000000000001", "GitHub Enterprise"),
    ("DIAWS00000000000001", "AWS Console"),
]
_GEO = {
    "San Francisco": ("California", "United States"),
    "New York": ("New York", "United States"),
    "London": ("England", "United Kingdom"),
    "Berlin": ("Berlin", "Germany"),
}


def _auth(
    sc: Scenario,
    t: dt.datetime,
    p: Person,
    result: str,
    reason: str,
    ip: str,
    factor: str = "duo_push",
    city: str | None = None,
    country: str | None = None,
    app: tuple[str, str] | None = None,
    browser: str = "Chrome",
) -> dict[str, Any]:
    state, ctry = _GEO.get(p.city, ("", p.country))
    key, name = app or sc.rng.choice(APPS)
    return {
        "access_device": {
            "browser": browser,
            "browser_version": "124.0.6367.91",
            "hostname": None,
            "ip": ip,
            "location": {"city": city or p.city, "country": country or ctry, "state": state},
            "os": "Mac OS X" if "Mac" in p.user_agent else "Windows",
            "os_version": "14.5" if "Mac" in p.user_agent else "10",
        },
        "alias": "",
        "application": {"key": key, "name": name},
        "auth_device": {
            "ip": p.ip if factor == "duo_push" else None,
            "location": {"city": p.city, "country": ctry, "state": state},
            "name": f"iPhone ({p.name})",
        },
        "email": p.email,
        "event_type": "authentication",
        "factor": factor,
        "isotimestamp": t.isoformat(),
        "reason": reason,
        "result": result,
        "timestamp": int(t.timestamp()),
        "trusted_endpoint_status": "not trusted",
        "txid": str(uuid.UUID(int=sc.rng.getrandbits(128))),
        "user": {
            "groups": ["Duo Users", p.department],
            "key": f"DU{p.name.upper():0<18}"[:20],
            "name": p.name,
        },
    }


def events(sc: Scenario) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = sc.rng
    auths: list[dict[str, Any]] = []
    for _ in range(sc.days * len(sc.people) * 4):
        p = sc.person()
        t = sc.work_time()
        roll = rng.random()
        if roll < 0.9:
            auths.append(_auth(sc, t, p, "success", "user_approved", p.ip))
        elif roll < 0.96:
            auths.append(_auth(sc, t, p, "success", "valid_passcode", p.ip, factor="passcode"))
        elif roll < 0.99:
            auths.append(_auth(sc, t, p, "denied", "no_response", p.ip))
        else:
            auths.append(_auth(sc, t, p, "denied", "user_mistake", p.ip))
    # --- planted: MFA push bombing against mallory ---------------------------------
    mallory = sc.people[10]
    t0 = sc.recent(6)
    for i in range(18):
        reason = "no_response" if i % 3 else "user_mistake"
        auths.append(
            _auth(
                sc,
                t0 + dt.timedelta(seconds=35 * i),
                mallory,
                "denied",
                reason,
                ATTACKER_IPS[1],
                city="Amsterdam",
                country="Netherlands",
                app=APPS[0],
                browser="Firefox",
            )
        )
    auths.append(
        _auth(
            sc,
            t0 + dt.timedelta(seconds=35 * 18 + 20),
            mallory,
            "success",
            "user_approved",
            ATTACKER_IPS[1],
            city="Amsterdam",
            country="Netherlands",
            app=APPS[0],
            browser="Firefox",
        )
    )
    admins = [p for p in sc.people if p.admin]
    admin_log: list[dict[str, Any]] = []
    for _ in range(sc.days * 3):
        a = rng.choice(admins)
        target = sc.person()
        t = sc.work_time()
        admin_log.append(
            {
                "action": rng.choice(
                    ["user_update", "phone_update", "group_update", "user_create"]
                ),
                "description": json.dumps({"realname": target.name.title(), "email": target.email}),
                "isotimestamp": t.isoformat(),
                "object": target.name,
                "timestamp": int(t.timestamp()),
                "username": a.name.title(),
            }
        )
    t1 = t0 + dt.timedelta(minutes=25)
    admin_log.append(
        {
            "action": "bypass_create",
            "description": json.dumps(
                {
                    "bypass": "",
                    "count": 1,
                    "valid_secs": 86400,
                    "remaining_uses": 10,
                    "user_id": "DUMALLORY",
                }
            ),
            "isotimestamp": t1.isoformat(),
            "object": mallory.name,
            "timestamp": int(t1.timestamp()),
            "username": admins[0].name.title(),
        }
    )
    return auths, admin_log


@generator("duo")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """Authentication log as Admin API v2 pages (one per day) + administrator log NDJSON."""
    auths, admin_log = events(sc)
    base = out_dir / "duo"
    base.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    days: dict[str, list[dict[str, Any]]] = {}
    for a in sorted(auths, key=lambda a: a["timestamp"]):
        days.setdefault(iso(dt.datetime.fromtimestamp(a["timestamp"], dt.UTC))[:10], []).append(a)
    for day, recs in days.items():
        f = base / f"authlogs-{day}.json"
        last = recs[-1]
        f.write_text(
            json.dumps(
                {
                    "stat": "OK",
                    "response": {
                        "authlogs": recs,
                        "metadata": {
                            "next_offset": [str(last["timestamp"] * 1000), last["txid"]],
                            "total_objects": len(recs),
                        },
                    },
                },
                indent=2,
            )
        )
        files.append(f)
    f = base / "administrator.ndjson"
    f.write_text(
        "".join(json.dumps(r) + "\n" for r in sorted(admin_log, key=lambda r: r["timestamp"]))
    )
    files.append(f)
    return files
