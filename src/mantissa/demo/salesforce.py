"""Demo Salesforce: EventLogFile CSV bodies (Login, ReportExport) and Setup Audit Trail.

Everyday: sales people log in and export a report now and then; an admin changes a
profile. Planted: a burst of failed logins on mallory's account from the attacker,
a success, a permission set granting Modify All Data, and a dozen report exports.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, ATTACKER_UA, Person, Scenario

ORG = "00D5j000000VI3n"
LOGIN_COLS = [
    "EVENT_TYPE", "TIMESTAMP", "REQUEST_ID", "ORGANIZATION_ID", "USER_ID", "RUN_TIME",
    "CPU_TIME", "URI", "SESSION_KEY", "LOGIN_KEY", "USER_TYPE", "REQUEST_STATUS",
    "DB_TOTAL_TIME", "LOGIN_STATUS", "BROWSER_TYPE", "API_TYPE", "API_VERSION", "USER_NAME",
    "TLS_PROTOCOL", "CIPHER_SUITE", "TIMESTAMP_DERIVED", "USER_ID_DERIVED", "CLIENT_IP",
    "SOURCE_IP",
]  # fmt: skip
EXPORT_COLS = [
    "EVENT_TYPE", "TIMESTAMP", "REQUEST_ID", "ORGANIZATION_ID", "USER_ID", "URI",
    "CLIENT_IP", "REQUEST_STATUS", "ROWS_PROCESSED", "TIMESTAMP_DERIVED", "USER_ID_DERIVED",
]  # fmt: skip


def _uid(p: Person, sc: Scenario) -> str:
    return f"0055j{sc.people.index(p):010d}"


def _base(sc: Scenario, t: dt.datetime, p: Person, kind: str, ip: str) -> dict[str, Any]:
    return {
        "EVENT_TYPE": kind,
        "TIMESTAMP": t.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S.")
        + f"{t.microsecond // 1000:03d}",
        "REQUEST_ID": f"4ex{sc.rng.getrandbits(60):015x}",
        "ORGANIZATION_ID": ORG,
        "USER_ID": _uid(p, sc),
        "CLIENT_IP": ip,
        "TIMESTAMP_DERIVED": t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{t.microsecond // 1000:03d}Z",
        "USER_ID_DERIVED": _uid(p, sc) + "AAQ",
    }


def data(sc: Scenario) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    rng = sc.rng
    logins: list[dict[str, Any]] = []
    exports: list[dict[str, Any]] = []
    audit: list[dict[str, Any]] = []

    def login(t: dt.datetime, p: Person, ip: str, ua: str, ok: bool) -> None:
        r = _base(sc, t, p, "Login", ip)
        r.update(
            {
                "RUN_TIME": "150",
                "CPU_TIME": "60",
                "URI": "/index.jsp",
                "SESSION_KEY": "",
                "LOGIN_KEY": f"{rng.getrandbits(64):016x}",
                "USER_TYPE": "Standard",
                "REQUEST_STATUS": "",
                "DB_TOTAL_TIME": "90000000",
                "LOGIN_STATUS": "LOGIN_NO_ERROR" if ok else "LOGIN_ERROR_INVALID_PASSWORD",
                "BROWSER_TYPE": ua,
                "API_TYPE": "",
                "API_VERSION": "9998.0",
                "USER_NAME": p.email,
                "TLS_PROTOCOL": "TLSv1.3",
                "CIPHER_SUITE": "TLS_AES_256_GCM_SHA384",
                "SOURCE_IP": ip,
            }
        )
        logins.append(r)

    def export(t: dt.datetime, p: Person, ip: str) -> None:
        r = _base(sc, t, p, "ReportExport", ip)
        r.update(
            {
                "URI": f"/00O5j00000{rng.randrange(10**5):05d}",
                "REQUEST_STATUS": "S",
                "ROWS_PROCESSED": str(rng.randrange(100, 50000)),
            }
        )
        exports.append(r)

    sales = [p for p in sc.people if p.department in ("sales", "finance")]
    for _ in range(sc.days * len(sales) * 2):
        p = rng.choice(sales)
        login(sc.work_time(), p, p.ip, p.user_agent, rng.random() > 0.04)
    for _ in range(sc.days * 3):
        p = rng.choice(sales)
        export(sc.work_time(), p, p.ip)
    admin = next(p for p in sc.people if p.admin)
    for i in range(sc.days):
        t = sc.work_time()
        audit.append(
            {
                "attributes": {
                    "type": "SetupAuditTrail",
                    "url": f"/services/data/v59.0/sobjects/SetupAuditTrail/0Ym{i}",
                },
                "Id": f"0Ym5j0000{i:08d}",
                "Action": "profileFlsChangedLocalized",
                "Section": "Manage Users",
                "CreatedDate": t.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                "CreatedById": _uid(admin, sc) + "AAQ",
                "CreatedBy": {"Username": admin.email},
                "Display": "Changed field-level security for Opportunity: Amount",
            }
        )
    mallory = sc.people[10]
    ip = ATTACKER_IPS[1]
    t0 = sc.recent(3.8)
    for i in range(8):
        login(t0 + dt.timedelta(seconds=10 * i), mallory, ip, ATTACKER_UA, False)
    login(t0 + dt.timedelta(minutes=2), mallory, ip, ATTACKER_UA, True)
    t1 = t0 + dt.timedelta(minutes=4)
    audit.append(
        {
            "attributes": {
                "type": "SetupAuditTrail",
                "url": "/services/data/v59.0/sobjects/SetupAuditTrail/0YmX",
            },
            "Id": "0Ym5j000019nwonCAA",
            "Action": "PermSetAssign",
            "Section": "Manage Users",
            "CreatedDate": t1.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "CreatedById": _uid(mallory, sc) + "AAQ",
            "CreatedBy": {"Username": mallory.email},
            "Display": f"Permission set Modify All Data: assigned to user {mallory.email}",
        }
    )
    for i in range(12):
        export(t1 + dt.timedelta(minutes=1, seconds=20 * i), mallory, ip)
    return logins, exports, audit


def _csv(rows: list[dict[str, Any]], cols: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, quoting=csv.QUOTE_ALL, extrasaction="ignore")
    w.writeheader()
    w.writerows(sorted(rows, key=lambda r: r["TIMESTAMP"]))
    return buf.getvalue()


@generator("salesforce")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """EventLogFile bodies (one CSV per event type, as the LogFile endpoint returns them)
    and a Setup Audit Trail SOQL response."""
    base = out_dir / "salesforce"
    base.mkdir(parents=True, exist_ok=True)
    logins, exports, audit = data(sc)
    f1 = base / "Login.csv"
    f1.write_text(_csv(logins, LOGIN_COLS))
    f2 = base / "ReportExport.csv"
    f2.write_text(_csv(exports, EXPORT_COLS))
    f3 = base / "setupaudittrail.json"
    f3.write_text(json.dumps({"totalSize": len(audit), "done": True, "records": audit}, indent=1))
    return [f1, f2, f3]
