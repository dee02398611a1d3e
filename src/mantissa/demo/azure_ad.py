"""Demo Entra ID sign-in and audit logs (Azure Monitor export), with planted attacks.

Planted: a password spray from an attacker IP (error 50126 across many users), a
successful sign-in from an unusual country for one victim, then an audit "Add member to
role" granting Global Administrator and a new app credential.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, ATTACKER_UA, Person, Scenario, iso

TENANT = "8f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b"
APPS = [
    ("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000"),
    ("Microsoft Teams", "1fec8e78-bce4-4aaf-ab1b-5451cc387264"),
    ("Azure Portal", "c44b4083-3bb0-49c1-b47d-974e53cbdf3c"),
    ("SharePoint Online", "00000003-0000-0ff1-ce00-000000000000"),
]
ERRORS = {
    0: None,
    50126: "Invalid username or password.",
    50074: "Strong authentication is required.",
}


def _signin(
    sc: Scenario,
    t: dt.datetime,
    p: Person,
    ip: str,
    ua: str,
    code: int,
    country: str | None = None,
    city: str | None = None,
) -> dict[str, Any]:
    rng = sc.rng
    app, app_id = rng.choice(APPS)
    sid = str(uuid.UUID(int=rng.getrandbits(128)))
    return {
        "time": iso(t),
        "resourceId": f"/tenants/{TENANT}/providers/Microsoft.aadiam",
        "operationName": "Sign-in activity",
        "operationVersion": "1.0",
        "category": "SignInLogs",
        "tenantId": TENANT,
        "resultType": str(code),
        "resultSignature": "None",
        "resultDescription": ERRORS.get(code),
        "durationMs": 0,
        "callerIpAddress": ip,
        "correlationId": sid,
        "identity": p.name.title(),
        "Level": 4,
        "location": country or p.country,
        "properties": {
            "id": sid,
            "createdDateTime": iso(t),
            "userDisplayName": p.name.title(),
            "userPrincipalName": p.email,
            "userId": str(uuid.uuid5(uuid.NAMESPACE_DNS, p.email)),
            "appId": app_id,
            "appDisplayName": app,
            "ipAddress": ip,
            "clientAppUsed": "Browser",
            "userAgent": ua,
            "isInteractive": True,
            "conditionalAccessStatus": "success" if code == 0 else "notApplied",
            "status": {"errorCode": code, "failureReason": ERRORS.get(code)},
            "deviceDetail": {"operatingSystem": "MacOs", "browser": "Chrome 125.0"},
            "location": {"city": city or p.city, "countryOrRegion": country or p.country},
            "riskLevelDuringSignIn": "none" if ip not in ATTACKER_IPS else "medium",
        },
    }


def _audit(
    sc: Scenario,
    t: dt.datetime,
    actor: str,
    ip: str,
    activity: str,
    target: str,
    props: list[dict[str, str]],
) -> dict[str, Any]:
    aid = f"Directory_{uuid.UUID(int=sc.rng.getrandbits(128)).hex[:20]}"
    return {
        "time": iso(t),
        "resourceId": f"/tenants/{TENANT}/providers/Microsoft.aadiam",
        "operationName": activity,
        "operationVersion": "1.0",
        "category": "AuditLogs",
        "tenantId": TENANT,
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": ip,
        "correlationId": str(uuid.uuid4()),
        "Level": 4,
        "properties": {
            "id": aid,
            "category": "RoleManagement",
            "activityDisplayName": activity,
            "activityDateTime": iso(t),
            "loggedByService": "Core Directory",
            "operationType": "Assign",
            "result": "success",
            "initiatedBy": {"user": {"userPrincipalName": actor, "ipAddress": ip}},
            "targetResources": [
                {"type": "User", "userPrincipalName": target, "modifiedProperties": props}
            ],
        },
    }


def records(sc: Scenario) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rng = sc.rng
    for _ in range(sc.days * 3):
        for p in sc.people:
            code = 0 if rng.random() > 0.05 else rng.choice([50126, 50074])
            out.append(_signin(sc, sc.work_time(), p, p.ip, p.user_agent, code))
    t0 = sc.recent(11)
    attacker = ATTACKER_IPS[2]
    for i, p in enumerate(sc.people):  # spray: one try per user
        out.append(
            _signin(
                sc,
                t0 + dt.timedelta(seconds=11 * i),
                p,
                attacker,
                ATTACKER_UA,
                50126,
                "RU",
                "Moscow",
            )
        )
    victim = sc.people[4]
    t1 = t0 + dt.timedelta(minutes=40)
    out.append(_signin(sc, t1, victim, attacker, ATTACKER_UA, 0, "RU", "Moscow"))
    out.append(
        _audit(
            sc,
            t1 + dt.timedelta(minutes=3),
            victim.email,
            attacker,
            "Add member to role",
            victim.email,
            [
                {
                    "displayName": "Role.DisplayName",
                    "oldValue": None,
                    "newValue": '"Global Administrator"',
                }
            ],
        )
    )
    out.append(
        _audit(
            sc,
            t1 + dt.timedelta(minutes=5),
            victim.email,
            attacker,
            "Update application - Certificates and secrets management",
            victim.email,
            [
                {
                    "displayName": "KeyDescription",
                    "oldValue": "[]",
                    "newValue": '["[KeyIdentifier=backup]"]',
                }
            ],
        )
    )
    return out


@generator("azure_ad")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """Azure Monitor storage-account export: one {"records": [...]} blob per hour."""
    base = out_dir / "azure_ad"
    base.mkdir(parents=True, exist_ok=True)
    hours: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(records(sc), key=lambda r: r["time"]):
        hours.setdefault(r["time"][:13], []).append(r)
    files = []
    for h, recs in hours.items():
        f = base / f"PT1H-{h.replace(':', '')}.json"
        f.write_text(json.dumps({"records": recs}))
        files.append(f)
    return files
