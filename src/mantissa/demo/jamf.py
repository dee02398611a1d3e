"""Demo Jamf Pro: webhook events from the Mac fleet.

Everyday: check-ins, inventory updates and policy runs on each person's Mac. Planted: via
the API, mallory's stolen credentials upload a script that disables Gatekeeper and scope
it to the finance smart group; the policy then fails on a laptop.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import Person, Scenario


def _computer(sc: Scenario, p: Person) -> dict[str, Any]:
    i = sc.people.index(p)
    return {
        "deviceName": f"{p.name}-mbp",
        "serialNumber": f"C02X{i:08d}",
        "udid": f"5A1B2C3D-{i:04d}",
        "username": p.name,
        "realName": p.name.title(),
        "emailAddress": p.email,
        "ipAddress": f"10.20.{i}.40",
        "reportedIpAddress": p.ip,
        "department": p.department,
        "model": "MacBookPro18,3",
        "osVersion": "14.5",
        "osBuild": "23F79",
        "jssID": 100 + i,
    }


def _hook(t: dt.datetime, i: int, kind: str, event: dict[str, Any]) -> dict[str, Any]:
    return {
        "webhook": {
            "id": i,
            "name": kind,
            "webhookEvent": kind,
            "eventTimestamp": int(t.timestamp() * 1000),
        },
        "event": event,
    }


def events(sc: Scenario) -> list[dict[str, Any]]:
    rng = sc.rng
    out: list[dict[str, Any]] = []
    for i in range(sc.days * len(sc.people) * 3):
        p = sc.person()
        kind = rng.choice(
            [
                "ComputerCheckIn",
                "ComputerCheckIn",
                "ComputerInventoryCompleted",
                "ComputerPolicyFinished",
            ]
        )
        ev: dict[str, Any] = {"computer": _computer(sc, p)}
        if kind == "ComputerCheckIn":
            ev.update({"trigger": "CLIENT_CHECKIN", "username": p.name})
        elif kind == "ComputerPolicyFinished":
            ev.update({"policyId": rng.randrange(1, 30), "successful": rng.random() > 0.05})
        out.append(_hook(sc.work_time(), i, kind, ev))
    t0 = sc.recent(3.5)
    out.append(
        _hook(
            t0,
            9001,
            "RestAPIOperation",
            {
                "authorizedUsername": sc.people[10].name,
                "objectID": 88,
                "objectName": "Disable Gatekeeper",
                "objectTypeName": "Script",
                "operationSuccessful": True,
                "restAPIOperationType": "POST",
            },
        )
    )
    out.append(
        _hook(
            t0 + dt.timedelta(minutes=2),
            9002,
            "RestAPIOperation",
            {
                "authorizedUsername": sc.people[10].name,
                "objectID": 31,
                "objectName": "Finance laptops",
                "objectTypeName": "Policy",
                "operationSuccessful": True,
                "restAPIOperationType": "PUT",
            },
        )
    )
    victim = next(p for p in sc.people if p.department == "finance")
    out.append(
        _hook(
            t0 + dt.timedelta(minutes=20),
            9003,
            "ComputerPolicyFinished",
            {"computer": _computer(sc, victim), "policyId": 31, "successful": False},
        )
    )
    return out


@generator("jamf")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """Webhook POST bodies as a receiver appends them, one JSON object per line."""
    base = out_dir / "jamf"
    base.mkdir(parents=True, exist_ok=True)
    f = base / "webhooks.ndjson"
    evs = sorted(events(sc), key=lambda e: e["webhook"]["eventTimestamp"])
    f.write_text("".join(json.dumps(e) + "\n" for e in evs))
    return [f]
