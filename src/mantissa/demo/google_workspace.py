"""Demo Google Workspace: Reports API activities (login, drive, token, admin), with a mass
download from Drive.

Everyday: logins, documents viewed, edited, shared and downloaded, an OAuth grant now and
then, a few admin changes. Planted: after the Duo push bombing, mallory's account signs in
from the attacker's address and downloads 120 documents in a quarter of an hour, then
shares a folder with an outside address.
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, Person, Scenario, iso_ms

DOCS = [
    ("Q3 board deck", "presentation"),
    ("Payroll 2024", "spreadsheet"),
    ("Customer list", "spreadsheet"),
    ("Roadmap", "document"),
    ("Onboarding guide", "document"),
    ("Incident runbook", "document"),
    ("Pricing model", "spreadsheet"),
    ("Offer letter template", "document"),
]


def _param(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"name": name, "boolValue": value}
    if isinstance(value, int):
        return {"name": name, "intValue": str(value)}
    if isinstance(value, list):
        return {"name": name, "multiValue": value}
    return {"name": name, "value": value}


def _activity(
    sc: Scenario,
    t: dt.datetime,
    app: str,
    p: Person,
    ip: str,
    events: list[dict[str, Any]],
    region: str | None = None,
) -> dict[str, Any]:
    act: dict[str, Any] = {
        "kind": "admin#reports#activity",
        "id": {
            "time": iso_ms(t),
            "uniqueQualifier": str(sc.rng.randrange(-(2**63), 2**63)),
            "applicationName": app,
            "customerId": "C01abcd2e",
        },
        "etag": f'"demo/{sc.rng.getrandbits(64):x}"',
        "actor": {
            "callerType": "USER",
            "email": p.email,
            "profileId": str(104000000000000000000 + sc.people.index(p)),
        },
        "ipAddress": ip,
        "networkInfo": {"regionCode": region or p.country},
        "events": events,
    }
    if app == "drive":
        act["ownerDomain"] = sc.domain
    return act


def _event(typ: str, name: str, **params: Any) -> dict[str, Any]:
    return {"type": typ, "name": name, "parameters": [_param(k, v) for k, v in params.items()]}


def _doc(sc: Scenario, i: int | None = None) -> tuple[str, str, str]:
    title, kind = DOCS[i % len(DOCS)] if i is not None else sc.rng.choice(DOCS)
    # a stable id per document (str hash() is salted per process)
    doc_id = f"1{zlib.crc32(f'{title}/{i}'.encode()):010d}"
    return doc_id, title if i is None else f"{title} ({i})", kind


def activities(sc: Scenario) -> list[dict[str, Any]]:
    rng = sc.rng
    out: list[dict[str, Any]] = []
    for _ in range(sc.days * len(sc.people)):
        p = sc.person()
        ok = rng.random() > 0.03
        out.append(
            _activity(
                sc,
                sc.work_time(),
                "login",
                p,
                p.ip,
                [
                    _event(
                        "login",
                        "login_success" if ok else "login_failure",
                        login_type="google_password",
                        login_challenge_method=["password", "google_authenticator"],
                        is_suspicious=False,
                    )
                ],
            )
        )
    for _ in range(sc.days * len(sc.people) * 6):
        p = sc.person()
        doc_id, title, kind = _doc(sc)
        name = rng.choice(["view", "view", "view", "edit", "download", "create"])
        out.append(
            _activity(
                sc,
                sc.work_time(),
                "drive",
                p,
                p.ip,
                [
                    _event(
                        "access",
                        name,
                        doc_id=doc_id,
                        doc_title=title,
                        doc_type=kind,
                        owner=p.email,
                        visibility="shared_internally",
                        primary_event=True,
                        billable=True,
                    )
                ],
            )
        )
    for _ in range(sc.days * 2):
        p = sc.person()
        out.append(
            _activity(
                sc,
                sc.work_time(),
                "token",
                p,
                p.ip,
                [
                    _event(
                        "auth",
                        "authorize",
                        app_name=rng.choice(["Zoom", "Slack", "Miro"]),
                        client_id=f"{rng.randrange(10**11)}-demo.apps.googleusercontent.com",
                        client_type="WEB",
                        scope=["https://www.googleapis.com/auth/calendar.readonly"],
                    )
                ],
            )
        )
    admin = next(p for p in sc.people if p.admin)
    for _ in range(sc.days):
        target = sc.person()
        out.append(
            _activity(
                sc,
                sc.work_time(),
                "admin",
                admin,
                admin.ip,
                [
                    _event(
                        "USER_SETTINGS",
                        "CHANGE_USER_ORGANIZATION",
                        USER_EMAIL=target.email,
                        ORG_UNIT_NAME=f"/{target.department}",
                    )
                ],
            )
        )
    # --- planted: account takeover then mass download ------------------------------
    mallory = sc.people[10]
    ip = ATTACKER_IPS[1]
    t0 = sc.recent(5.5)
    out.append(
        _activity(
            sc,
            t0,
            "login",
            mallory,
            ip,
            [
                _event(
                    "login",
                    "login_success",
                    login_type="google_password",
                    login_challenge_method=["password", "duo"],
                    is_suspicious=True,
                )
            ],
            region="NL",
        )
    )
    for i in range(120):
        doc_id, title, kind = _doc(sc, i)
        t = t0 + dt.timedelta(seconds=60 + 7 * i)
        out.append(
            _activity(
                sc,
                t,
                "drive",
                mallory,
                ip,
                [
                    _event(
                        "access",
                        "download",
                        doc_id=doc_id,
                        doc_title=title,
                        doc_type=kind,
                        owner=sc.people[i % len(sc.people)].email,
                        visibility="shared_internally",
                        primary_event=True,
                        billable=True,
                    )
                ],
                region="NL",
            )
        )
    out.append(
        _activity(
            sc,
            t0 + dt.timedelta(minutes=17),
            "drive",
            mallory,
            ip,
            [
                _event(
                    "acl_change",
                    "change_user_access",
                    doc_id="1FinanceFolder",
                    doc_title="Finance",
                    doc_type="folder",
                    target_user="drop.box.7731@gmail.com",
                    new_value=["can_view"],
                    old_value=["none"],
                    visibility="shared_externally",
                    primary_event=True,
                ),
                _event(
                    "acl_change",
                    "change_document_visibility",
                    doc_id="1FinanceFolder",
                    doc_title="Finance",
                    doc_type="folder",
                    new_value=["people_with_link"],
                    old_value=["private"],
                    visibility="people_with_link",
                    primary_event=False,
                ),
            ],
            region="NL",
        )
    )
    return out


@generator("google_workspace")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """``activities.list`` responses, one per application and day, newest first (as the API)."""
    base = out_dir / "google_workspace"
    base.mkdir(parents=True, exist_ok=True)
    pages: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for a in activities(sc):
        pages.setdefault((a["id"]["applicationName"], a["id"]["time"][:10]), []).append(a)
    files: list[Path] = []
    for (app, day), items in sorted(pages.items()):
        items.sort(key=lambda a: a["id"]["time"], reverse=True)
        f = base / f"activities-{app}-{day}.json"
        f.write_text(json.dumps({"kind": "admin#reports#activities", "items": items}, indent=1))
        files.append(f)
    return files
