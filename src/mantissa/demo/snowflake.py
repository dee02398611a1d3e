"""Demo Snowflake: LOGIN_HISTORY as a CSV export, QUERY_HISTORY and ACCESS_HISTORY as JSON.

Everyday: analysts and the ETL service log in (a few typos) and run SELECTs and loads.
Planted: a password spray against service users from the attacker's address, a
successful key-less login as SVC_ETL, and an unload of the customer table to a user
stage followed by GET (data exfiltration).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, Scenario

LOGIN_COLUMNS = [
    "EVENT_ID", "EVENT_TIMESTAMP", "EVENT_TYPE", "USER_NAME", "CLIENT_IP",
    "REPORTED_CLIENT_TYPE", "REPORTED_CLIENT_VERSION", "FIRST_AUTHENTICATION_FACTOR",
    "SECOND_AUTHENTICATION_FACTOR", "IS_SUCCESS", "ERROR_CODE", "ERROR_MESSAGE",
    "RELATED_EVENT_ID", "CONNECTION",
]  # fmt: skip
TABLES = ["PROD.CRM.CUSTOMERS", "PROD.SALES.ORDERS", "PROD.HR.EMPLOYEES", "PROD.WEB.SESSIONS"]


def _ts(t: dt.datetime) -> str:
    # the views' TIMESTAMP_LTZ as exported: local offset with a space before it
    return (
        t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d} +0000"
    )


def data(sc: Scenario) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    rng = sc.rng
    logins: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []
    access: list[dict[str, Any]] = []
    users = [
        (p.name.upper(), p.ip, "SNOWFLAKE_UI")
        for p in sc.people
        if p.department in ("finance", "sales")
    ] + [("SVC_ETL", "10.20.0.5", "PYTHON_DRIVER")]

    def login(
        t: dt.datetime, user: str, ip: str, client: str, ok: bool, factor: str = "PASSWORD"
    ) -> None:
        logins.append(
            {
                "EVENT_ID": str(rng.randrange(10**14, 10**15)),
                "EVENT_TIMESTAMP": _ts(t),
                "EVENT_TYPE": "LOGIN",
                "USER_NAME": user,
                "CLIENT_IP": ip,
                "REPORTED_CLIENT_TYPE": client,
                "REPORTED_CLIENT_VERSION": "3.7.0",
                "FIRST_AUTHENTICATION_FACTOR": factor,
                "SECOND_AUTHENTICATION_FACTOR": "MFA_TOKEN" if client == "SNOWFLAKE_UI" else "",
                "IS_SUCCESS": "YES" if ok else "NO",
                "ERROR_CODE": "" if ok else "390100",
                "ERROR_MESSAGE": "" if ok else "Incorrect username or password was specified.",
                "RELATED_EVENT_ID": "0",
                "CONNECTION": "",
            }
        )

    def query(
        t: dt.datetime,
        user: str,
        role: str,
        qtype: str,
        text: str,
        tables: list[str],
        status: str = "SUCCESS",
        rows_unloaded: int = 0,
    ) -> None:
        qid = str(uuid.UUID(int=rng.getrandbits(128)))
        queries.append(
            {
                "QUERY_ID": qid,
                "QUERY_TEXT": text,
                "QUERY_TYPE": qtype,
                "USER_NAME": user,
                "ROLE_NAME": role,
                "WAREHOUSE_NAME": "ETL_WH" if user == "SVC_ETL" else "BI_WH",
                "EXECUTION_STATUS": status,
                "START_TIME": _ts(t),
                "END_TIME": _ts(t + dt.timedelta(seconds=3)),
                "TOTAL_ELAPSED_TIME": 3000,
                "BYTES_SCANNED": rng.randrange(10**6, 10**9),
                "ROWS_UNLOADED": rows_unloaded,
            }
        )
        if status == "SUCCESS" and tables:
            objs = [
                {
                    "objectDomain": "Table",
                    "objectId": 1000 + TABLES.index(x),
                    "objectName": x,
                    "columns": [{"columnId": 1, "columnName": "ID"}],
                }
                for x in tables
            ]
            access.append(
                {
                    "QUERY_ID": qid,
                    "QUERY_START_TIME": _ts(t),
                    "USER_NAME": user,
                    "DIRECT_OBJECTS_ACCESSED": objs,
                    "BASE_OBJECTS_ACCESSED": objs,
                    "OBJECTS_MODIFIED": [],
                }
            )

    for _ in range(sc.days * len(users) * 2):
        user, ip, client = rng.choice(users)
        t = sc.work_time()
        login(
            t,
            user,
            ip,
            client,
            rng.random() > 0.05,
            "RSA_KEYPAIR" if user == "SVC_ETL" else "PASSWORD",
        )
        table = rng.choice(TABLES)
        query(
            t + dt.timedelta(minutes=1),
            user,
            "ANALYST",
            "SELECT",
            f"SELECT * FROM {table} LIMIT 100",
            [table],
        )
    ip = ATTACKER_IPS[3]
    t0 = sc.recent(4)
    for i, user in enumerate(["SVC_ETL", "SVC_BI", "SVC_DBT", "ADMIN", "SVC_ETL", "SVC_BI"]):
        login(t0 + dt.timedelta(seconds=20 * i), user, ip, "PYTHON_DRIVER", False)
    login(t0 + dt.timedelta(minutes=3), "SVC_ETL", ip, "PYTHON_DRIVER", True)
    query(
        t0 + dt.timedelta(minutes=5),
        "SVC_ETL",
        "SYSADMIN",
        "UNLOAD",
        "COPY INTO @~/x/customers.csv.gz FROM (SELECT * FROM PROD.CRM.CUSTOMERS) "
        "FILE_FORMAT = (TYPE = CSV COMPRESSION = GZIP) HEADER = TRUE",
        ["PROD.CRM.CUSTOMERS"],
        rows_unloaded=2_500_000,
    )
    query(
        t0 + dt.timedelta(minutes=7),
        "SVC_ETL",
        "SYSADMIN",
        "GET_FILES",
        "GET @~/x/ file:///tmp/",
        [],
    )
    return logins, queries, access


@generator("snowflake")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    base = out_dir / "snowflake"
    base.mkdir(parents=True, exist_ok=True)
    logins, queries, access = data(sc)
    f1 = base / "login_history.csv"
    with open(f1, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=LOGIN_COLUMNS)
        w.writeheader()
        w.writerows(sorted(logins, key=lambda r: r["EVENT_TIMESTAMP"]))
    f2 = base / "query_history.json"
    f2.write_text("".join(json.dumps(q) + "\n" for q in queries))
    f3 = base / "access_history.json"
    f3.write_text("".join(json.dumps(a) + "\n" for a in access))
    return [f1, f2, f3]
