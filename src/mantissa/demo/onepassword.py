"""Demo 1Password: Events API sign-in attempts and item usages.

Everyday: sign-ins from each person's usual place, item fills and the odd reveal.
Planted: two sign-ins to mallory's account blocked by the firewall rules (Russia), then a
successful one from the attacker's Amsterdam address and 25 item reveals in the shared
infrastructure vault within five minutes.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, Person, Scenario

_CLIENT = {
    "app_name": "1Password Browser Extension",
    "app_version": "20240",
    "platform_name": "Chrome",
    "platform_version": "124.0",
    "os_name": "MacOSX",
    "os_version": "14.5",
}
VAULTS = ["Engineering", "Finance", "Shared Infra", "Private"]


def _uuid(sc: Scenario) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "".join(sc.rng.choice(alphabet) for _ in range(26))


def _ts(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _who(p: Person) -> dict[str, str]:
    return {"uuid": p.name.upper().ljust(26, "X")[:26], "name": p.name.title(), "email": p.email}


def _signin(
    sc: Scenario,
    t: dt.datetime,
    p: Person,
    ip: str,
    category: str,
    typ: str,
    country: str,
    city: str,
) -> dict[str, Any]:
    return {
        "uuid": _uuid(sc),
        "session_uuid": _uuid(sc),
        "timestamp": _ts(t),
        "category": category,
        "type": typ,
        "country": country,
        "details": None,
        "target_user": _who(p),
        "client": {**_CLIENT, "ip_address": ip},
        "location": {"country": country, "city": city},
    }


def _usage(
    sc: Scenario,
    t: dt.datetime,
    p: Person,
    ip: str,
    action: str,
    vault: str,
    country: str,
    city: str,
) -> dict[str, Any]:
    return {
        "uuid": _uuid(sc),
        "timestamp": _ts(t),
        "used_version": sc.rng.randrange(1, 9),
        "vault_uuid": vault.upper().replace(" ", "").ljust(26, "V")[:26],
        "item_uuid": _uuid(sc),
        "action": action,
        "user": _who(p),
        "client": {**_CLIENT, "ip_address": ip},
        "location": {"country": country, "city": city},
    }


def events(sc: Scenario) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = sc.rng
    signins: list[dict[str, Any]] = []
    usages: list[dict[str, Any]] = []
    for _ in range(sc.days * len(sc.people)):
        p = sc.person()
        ok = rng.random() > 0.05
        signins.append(
            _signin(
                sc,
                sc.work_time(),
                p,
                p.ip,
                "success" if ok else "credentials_failed",
                "credentials_ok" if ok else "password_secret_bad",
                p.country,
                p.city,
            )
        )
    for _ in range(sc.days * len(sc.people) * 3):
        p = sc.person()
        usages.append(
            _usage(
                sc,
                sc.work_time(),
                p,
                p.ip,
                rng.choice(["fill", "fill", "reveal"]),
                rng.choice(VAULTS),
                p.country,
                p.city,
            )
        )
    mallory = sc.people[10]
    ip = ATTACKER_IPS[2]
    t0 = sc.recent(4.5)
    for i in range(2):
        signins.append(
            _signin(
                sc,
                t0 + dt.timedelta(minutes=i),
                mallory,
                ip,
                "firewall_failed",
                "continent_blocked",
                "RU",
                "Moscow",
            )
        )
    signins.append(
        _signin(
            sc,
            t0 + dt.timedelta(minutes=4),
            mallory,
            ATTACKER_IPS[1],
            "success",
            "credentials_ok",
            "NL",
            "Amsterdam",
        )
    )
    for i in range(25):
        usages.append(
            _usage(
                sc,
                t0 + dt.timedelta(minutes=5, seconds=12 * i),
                mallory,
                ATTACKER_IPS[1],
                "reveal",
                "Shared Infra",
                "NL",
                "Amsterdam",
            )
        )
    return signins, usages


@generator("onepassword")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """Events API pages: ``{"cursor", "has_more", "items"}`` per endpoint."""
    base = out_dir / "onepassword"
    base.mkdir(parents=True, exist_ok=True)
    signins, usages = events(sc)
    files = []
    for name, items in (("signinattempts", signins), ("itemusages", usages)):
        f = base / f"{name}.json"
        items.sort(key=lambda r: r["timestamp"])
        f.write_text(json.dumps({"cursor": "ZGVtby1jdXJzb3I", "has_more": False, "items": items}))
        files.append(f)
    return files
