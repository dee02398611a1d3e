"""Snowflake REST stub for ``snowflake-connector-python`` pointed at ``http://127.0.0.1``.

Answers what the connector sends (observed on the wire and in its response structs):
``POST /session/v1/login-request`` (``LOGIN_NAME`` + ``PASSWORD``, or ``AUTHENTICATOR:
SNOWFLAKE_JWT`` + ``TOKEN``: an RS256 JWT whose ``iss`` is ``ACCOUNT.USER.SHA256:<public
key fingerprint>`` and ``sub`` ``ACCOUNT.USER``, checked against the registered key),
``POST /queries/v1/query-request`` with ``Authorization: Snowflake Token="..."`` (JSON
``rowtype`` / ``rowset`` results), ``POST /session/token-request`` (RENEW with the master
token after ``390112`` session expired), ``/telemetry/send`` and ``/session?delete=true``.
The SQL must be the input's watermark query on ``SNOWFLAKE.ACCOUNT_USAGE``; its bounds are
recorded so tests can check the latency rule.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import re
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlparse

from tests.inputs.stubs import Stub

COLUMNS: dict[str, list[tuple[str, str]]] = {
    "LOGIN_HISTORY": [
        ("EVENT_ID", "fixed"),
        ("EVENT_TIMESTAMP", "timestamp_ltz"),
        ("EVENT_TYPE", "text"),
        ("USER_NAME", "text"),
        ("CLIENT_IP", "text"),
        ("REPORTED_CLIENT_TYPE", "text"),
        ("REPORTED_CLIENT_VERSION", "text"),
        ("FIRST_AUTHENTICATION_FACTOR", "text"),
        ("SECOND_AUTHENTICATION_FACTOR", "text"),
        ("IS_SUCCESS", "text"),
        ("ERROR_CODE", "fixed"),
        ("ERROR_MESSAGE", "text"),
    ],
    "QUERY_HISTORY": [
        ("QUERY_ID", "text"),
        ("QUERY_TEXT", "text"),
        ("QUERY_TYPE", "text"),
        ("USER_NAME", "text"),
        ("ROLE_NAME", "text"),
        ("WAREHOUSE_NAME", "text"),
        ("EXECUTION_STATUS", "text"),
        ("START_TIME", "timestamp_ltz"),
        ("END_TIME", "timestamp_ltz"),
        ("TOTAL_ELAPSED_TIME", "fixed"),
        ("ROWS_PRODUCED", "fixed"),
    ],
    "ACCESS_HISTORY": [
        ("QUERY_ID", "text"),
        ("QUERY_START_TIME", "timestamp_ltz"),
        ("USER_NAME", "text"),
        ("DIRECT_OBJECTS_ACCESSED", "array"),
        ("BASE_OBJECTS_ACCESSED", "array"),
        ("OBJECTS_MODIFIED", "array"),
        ("PARENT_QUERY_ID", "text"),
        ("ROOT_QUERY_ID", "text"),
    ],
}
TIME_COL = {"LOGIN_HISTORY": "EVENT_TIMESTAMP", "QUERY_HISTORY": "START_TIME",
            "ACCESS_HISTORY": "QUERY_START_TIME"}  # fmt: skip
ID_COL = {"LOGIN_HISTORY": "EVENT_ID", "QUERY_HISTORY": "QUERY_ID", "ACCESS_HISTORY": "QUERY_ID"}
EVENT_PREFIX = {"LOGIN_HISTORY": "login:", "QUERY_HISTORY": "query:", "ACCESS_HISTORY": "access:"}

_SQL = re.compile(
    r"SELECT \* FROM SNOWFLAKE\.ACCOUNT_USAGE\.(\w+) "
    r"WHERE (\w+) > '([^']+)'::TIMESTAMP_LTZ AND (\w+) <= '([^']+)'::TIMESTAMP_LTZ "
    r"ORDER BY (\w+), (\w+)"
)


def _epoch(t: dt.datetime) -> str:
    return f"{t.timestamp():.9f}"


def _parse(lit: str) -> dt.datetime:
    return dt.datetime.strptime(lit, "%Y-%m-%d %H:%M:%S.%f %z")


class SnowflakeStub(Stub):
    def __init__(
        self, account: str = "ACME-TEST", user: str = "MANTISSA", password: str = "sf-pass"
    ) -> None:
        self.account, self.user, self.password = account.upper(), user.upper(), password
        self.public_key: Any = None
        self.sessions: dict[str, float] = {}  # session token → expiry
        self.masters: dict[str, str] = {}  # master token → session token
        self.logins = 0
        self.renewals = 0
        self.expired_used = 0
        self.expire_at_query = 0  # expire every session token when query N arrives
        self.query_count = 0
        self.throttled = 0
        self.rows: dict[str, list[dict[str, Any]]] = {v: [] for v in COLUMNS}
        self.windows: list[tuple[str, dt.datetime, dt.datetime]] = []
        super().__init__()

    # -- data ---------------------------------------------------------------------------
    def add(self, view: str, n: int, start: dt.datetime, step: dt.timedelta) -> list[str]:
        ids = []
        for i in range(n):
            t = start + i * step
            k = len(self.rows[view]) + 1
            if view == "LOGIN_HISTORY":
                row = {"EVENT_ID": str(100000 + k), "EVENT_TIMESTAMP": t, "EVENT_TYPE": "LOGIN",
                       "USER_NAME": f"USER{i % 4}", "CLIENT_IP": "192.0.2.44",
                       "REPORTED_CLIENT_TYPE": "PYTHON_DRIVER", "REPORTED_CLIENT_VERSION": "3.12.0",
                       "FIRST_AUTHENTICATION_FACTOR": "PASSWORD",
                       "SECOND_AUTHENTICATION_FACTOR": None,
                       "IS_SUCCESS": "NO" if i % 10 == 0 else "YES",
                       "ERROR_CODE": "390100" if i % 10 == 0 else None,
                       "ERROR_MESSAGE": "INCORRECT_USERNAME_PASSWORD" if i % 10 == 0 else None}  # fmt: skip
            elif view == "QUERY_HISTORY":
                row = {"QUERY_ID": f"01b{k:05d}-0000-0000-0000", "QUERY_TEXT": f"select {i}",
                       "QUERY_TYPE": "SELECT", "USER_NAME": "ANALYST", "ROLE_NAME": "SYSADMIN",
                       "WAREHOUSE_NAME": "COMPUTE_WH", "EXECUTION_STATUS": "SUCCESS",
                       "START_TIME": t, "END_TIME": t + dt.timedelta(seconds=1),
                       "TOTAL_ELAPSED_TIME": "1000", "ROWS_PRODUCED": "1"}  # fmt: skip
            else:
                objs = [{"objectDomain": "Table", "objectName": "DB.S.T", "objectId": 7,
                         "columns": [{"columnName": "EMAIL", "columnId": 1}]}]  # fmt: skip
                row = {"QUERY_ID": f"01b{k:05d}-0000-0000-0000", "QUERY_START_TIME": t,
                       "USER_NAME": "ANALYST", "DIRECT_OBJECTS_ACCESSED": json.dumps(objs),
                       "BASE_OBJECTS_ACCESSED": json.dumps(objs), "OBJECTS_MODIFIED": "[]",
                       "PARENT_QUERY_ID": None, "ROOT_QUERY_ID": None}  # fmt: skip
            self.rows[view].append(row)
            ids.append(EVENT_PREFIX[view] + row[ID_COL[view]])
        return ids

    # -- HTTP ---------------------------------------------------------------------------
    def _ok(self, data: Any):
        body = {"data": data, "code": None, "message": None, "success": True}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _fail(self, code: str, message: str, data: Any = None):
        body = {"data": data, "code": code, "message": message, "success": False}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _session(self, h: BaseHTTPRequestHandler) -> str | None:
        m = re.fullmatch(r'Snowflake Token="([^"]*)"', h.headers.get("Authorization", ""))
        return m.group(1) if m else None

    def _new_session(self) -> dict[str, Any]:
        tok, master = "ST-" + uuid.uuid4().hex, "MT-" + uuid.uuid4().hex
        self.sessions[tok] = time.time() + 3600
        self.masters[master] = tok
        return {"token": tok, "masterToken": master, "validityInSeconds": 3600,
                "masterValidityInSeconds": 14400}  # fmt: skip

    def _login(self, body: bytes):
        d = json.loads(body).get("data", {})
        if str(d.get("ACCOUNT_NAME", "")).upper() != self.account:
            return self._fail("390201", "The requested account does not exist.")
        if str(d.get("LOGIN_NAME", "")).upper() != self.user:
            return self._fail("390100", "Incorrect username or password was specified.")
        if d.get("AUTHENTICATOR") == "SNOWFLAKE_JWT":
            if not self._jwt_ok(d.get("TOKEN", "")):
                return self._fail("390144", "JWT token is invalid.")
        elif d.get("PASSWORD") != self.password:
            return self._fail("390100", "Incorrect username or password was specified.")
        self.logins += 1
        return self._ok(
            {
                **self._new_session(),
                "displayUserName": self.user,
                "serverVersion": "9.1.0",
                "firstLogin": False,
                "remMeToken": None,
                "remMeValidityInSeconds": 0,
                "healthCheckInterval": 45,
                "newClientForUpgrade": None,
                "sessionId": 1172562260498,
                "parameters": [{"name": "TIMEZONE", "value": "UTC"}],
                "sessionInfo": {
                    "databaseName": None,
                    "schemaName": None,
                    "warehouseName": "COMPUTE_WH",
                    "roleName": "SECURITY_AUDIT",
                },
                "idToken": None,
                "idTokenValidityInSeconds": 0,
                "responseData": None,
                "mfaToken": None,
                "mfaTokenValidityInSeconds": 0,
            }
        )

    def _jwt_ok(self, token: str) -> bool:
        import jwt
        from cryptography.hazmat.primitives import serialization

        if self.public_key is None:
            return False
        der = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        fp = "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"])
        except jwt.PyJWTError:
            return False
        acct = self.account.split(".")[0]
        return (
            claims.get("iss") == f"{acct}.{self.user}.{fp}"
            and claims.get("sub") == f"{acct}.{self.user}"
        )

    def handle(self, h: BaseHTTPRequestHandler, body: bytes):
        url = urlparse(h.path)
        if h.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if url.path == "/session/v1/login-request":
            return self._login(body)
        if url.path == "/session/token-request":
            req = json.loads(body)
            old = self.masters.get(self._session(h) or "")
            if req.get("requestType") != "RENEW" or old is None:
                return self._fail("390114", "Authentication token has expired.")
            self.renewals += 1
            new = "ST-" + uuid.uuid4().hex
            self.sessions[new] = time.time() + 3600
            self.masters[self._session(h) or ""] = new
            return self._ok({"sessionToken": new, "validityInSecondsST": 3600,
                             "masterToken": self._session(h), "validityInSecondsMT": 14400,
                             "sessionId": 1172562260498})  # fmt: skip
        if url.path in ("/telemetry/send", "/session"):
            return self._ok(None)
        if url.path != "/queries/v1/query-request":
            return 404, {}, b"not found"
        with self.lock:
            self.query_count += 1
            if self.query_count == self.expire_at_query:
                self.sessions = dict.fromkeys(self.sessions, 0.0)
            if self.throttle_next > 0:
                self.throttle_next -= 1
                self.throttled += 1
                return 429, {"Content-Type": "text/plain"}, b"Too many requests"
        tok = self._session(h)
        if tok not in self.sessions:
            return self._fail("390104", "Session no longer exists.  New login required.")
        if self.sessions[tok] < time.time():
            self.expired_used += 1
            return self._fail("390112", "Your session has expired. Please login again.")
        if self.fail_next > 0:
            self.fail_next -= 1
            return 503, {"Content-Type": "text/plain"}, b"Service Unavailable"
        sql = json.loads(body).get("sqlText", "")
        m = _SQL.fullmatch(sql.strip())
        if not m:
            return self._fail("001003", f"SQL compilation error: unexpected statement {sql[:80]!r}")
        view, c1, lo, c2, hi, o1, o2 = m.groups()
        if view not in COLUMNS or not (c1 == c2 == o1 == TIME_COL[view]) or o2 != ID_COL[view]:
            return self._fail("002003", f"SQL compilation error: bad column or view in {view}")
        since, until = _parse(lo), _parse(hi)
        self.windows.append((view, since, until))
        rows = sorted(
            (r for r in self.rows[view] if since < r[TIME_COL[view]] <= until),
            key=lambda r: (r[TIME_COL[view]], r[ID_COL[view]]),
        )
        if self.malformed_next > 0:
            self.malformed_next -= 1
            return 200, {"Content-Type": "application/json"}, b'{"data": {"rowtype": [{"na'
        cols = COLUMNS[view]
        rowtype = [
            {"name": n, "database": "SNOWFLAKE", "schema": "ACCOUNT_USAGE", "table": view,
             "byteLength": 16777216 if t == "text" else None, "type": t,
             "scale": 9 if t.startswith("timestamp") else 0,
             "precision": 38 if t == "fixed" else 0, "nullable": True, "collation": None,
             "length": 16777216 if t == "text" else None}
            for n, t in cols
        ]  # fmt: skip
        rowset = [
            [
                None
                if r[n] is None
                else (_epoch(r[n]) if isinstance(r[n], dt.datetime) else str(r[n]))
                for n, _ in cols
            ]
            for r in rows
        ]
        return self._ok(
            {
                "parameters": [{"name": "TIMEZONE", "value": "UTC"}],
                "rowtype": rowtype,
                "rowset": rowset,
                "total": len(rowset),
                "returned": len(rowset),
                "queryId": str(uuid.uuid4()),
                "databaseProvider": None,
                "finalDatabaseName": None,
                "finalSchemaName": None,
                "finalWarehouseName": "COMPUTE_WH",
                "finalRoleName": "SECURITY_AUDIT",
                "numberOfBinds": 0,
                "arrayBindSupported": False,
                "statementTypeId": 4096,
                "version": 1,
                "sendResultTime": int(time.time() * 1000),
                "queryResultFormat": "json",
            }
        )
