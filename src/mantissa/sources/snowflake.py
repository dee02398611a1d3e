"""Snowflake account usage: LOGIN_HISTORY, QUERY_HISTORY and ACCESS_HISTORY rows.

Rows of the ``SNOWFLAKE.ACCOUNT_USAGE`` views as a collector exports them: JSON objects
keyed by the upper-case column names (SQL API ``resultSetMetaData`` applied, one per
line or as arrays) or CSV with a header row (``COPY INTO @stage ... HEADER = TRUE``,
Snowsight "Download results"). GRANTS_TO_ROLES / GRANTS_TO_USERS and
DATA_TRANSFER_HISTORY rows are accepted too. Snowflake docs, "Account Usage":
https://docs.snowflake.com/en/sql-reference/account-usage/login_history ,
.../query_history , .../access_history .
Column names stay as Snowflake spells them (``USER_NAME``, ``CLIENT_IP``, ``QUERY_TEXT``);
the ACCESS_HISTORY object arrays and ``LOGIN_DETAILS`` are JSON (decoded when a CSV or
an API client delivered them as strings).
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._expr import (
    csv_header,
    decode_json_strings,
    event_time,
    first,
    ip,
    sample_records,
    score,
)
from mantissa.sources.base import JsonSource

_JSON_COLUMNS = [
    "LOGIN_DETAILS",
    "DIRECT_OBJECTS_ACCESSED",
    "BASE_OBJECTS_ACCESSED",
    "OBJECTS_MODIFIED",
    "OBJECT_MODIFIED_BY_DDL",
    "POLICIES_REFERENCED",
]


class Snowflake(JsonSource):
    name = "snowflake"
    title = "Snowflake"
    category = "saas"
    csv = True
    variants = (
        "ACCOUNT_USAGE.LOGIN_HISTORY rows (JSON or CSV)",
        "ACCOUNT_USAGE.QUERY_HISTORY rows (JSON or CSV)",
        "ACCOUNT_USAGE.ACCESS_HISTORY rows (object arrays as JSON or JSON strings)",
        "GRANTS_TO_ROLES / GRANTS_TO_USERS / DATA_TRANSFER_HISTORY rows",
        "SQL API responses as arrays of row objects",
    )
    wrapper_keys = ("data", "rows")
    signature = ("USER_NAME",)
    structure: ClassVar[dict[str, Any]] = {
        # LOGIN_HISTORY
        "EVENT_ID": "VARCHAR",
        "EVENT_TIMESTAMP": "VARCHAR",
        "EVENT_TYPE": "VARCHAR",
        "USER_NAME": "VARCHAR",
        "CLIENT_IP": "VARCHAR",
        "REPORTED_CLIENT_TYPE": "VARCHAR",
        "REPORTED_CLIENT_VERSION": "VARCHAR",
        "FIRST_AUTHENTICATION_FACTOR": "VARCHAR",
        "SECOND_AUTHENTICATION_FACTOR": "VARCHAR",
        "FIRST_AUTHENTICATION_FACTOR_ID": "VARCHAR",
        "SECOND_AUTHENTICATION_FACTOR_ID": "VARCHAR",
        "IS_SUCCESS": "VARCHAR",
        "ERROR_CODE": "VARCHAR",
        "ERROR_MESSAGE": "VARCHAR",
        "RELATED_EVENT_ID": "VARCHAR",
        "CONNECTION": "VARCHAR",
        "CLIENT_PRIVATE_LINK_ID": "VARCHAR",
        "LOGIN_DETAILS": "JSON",
        "AUTHORIZING_INTEGRATION_NAME": "VARCHAR",
        # QUERY_HISTORY
        "QUERY_ID": "VARCHAR",
        "QUERY_TEXT": "VARCHAR",
        "QUERY_TYPE": "VARCHAR",
        "QUERY_TAG": "VARCHAR",
        "QUERY_HASH": "VARCHAR",
        "QUERY_PARAMETERIZED_HASH": "VARCHAR",
        "DATABASE_ID": "VARCHAR",
        "DATABASE_NAME": "VARCHAR",
        "SCHEMA_ID": "VARCHAR",
        "SCHEMA_NAME": "VARCHAR",
        "SESSION_ID": "VARCHAR",
        "ROLE_NAME": "VARCHAR",
        "ROLE_TYPE": "VARCHAR",
        "USER_TYPE": "VARCHAR",
        "WAREHOUSE_ID": "VARCHAR",
        "WAREHOUSE_NAME": "VARCHAR",
        "WAREHOUSE_SIZE": "VARCHAR",
        "WAREHOUSE_TYPE": "VARCHAR",
        "CLUSTER_NUMBER": "BIGINT",
        "EXECUTION_STATUS": "VARCHAR",
        "START_TIME": "VARCHAR",
        "END_TIME": "VARCHAR",
        "TOTAL_ELAPSED_TIME": "BIGINT",
        "COMPILATION_TIME": "BIGINT",
        "EXECUTION_TIME": "BIGINT",
        "BYTES_SCANNED": "BIGINT",
        "BYTES_WRITTEN": "BIGINT",
        "BYTES_WRITTEN_TO_RESULT": "BIGINT",
        "ROWS_PRODUCED": "BIGINT",
        "ROWS_INSERTED": "BIGINT",
        "ROWS_UPDATED": "BIGINT",
        "ROWS_DELETED": "BIGINT",
        "ROWS_UNLOADED": "BIGINT",
        "OUTBOUND_DATA_TRANSFER_CLOUD": "VARCHAR",
        "OUTBOUND_DATA_TRANSFER_REGION": "VARCHAR",
        "OUTBOUND_DATA_TRANSFER_BYTES": "BIGINT",
        "INBOUND_DATA_TRANSFER_BYTES": "BIGINT",
        "CREDITS_USED_CLOUD_SERVICES": "DOUBLE",
        "IS_CLIENT_GENERATED_STATEMENT": "BOOLEAN",
        # ACCESS_HISTORY
        "QUERY_START_TIME": "VARCHAR",
        "DIRECT_OBJECTS_ACCESSED": "JSON",
        "BASE_OBJECTS_ACCESSED": "JSON",
        "OBJECTS_MODIFIED": "JSON",
        "OBJECT_MODIFIED_BY_DDL": "JSON",
        "POLICIES_REFERENCED": "JSON",
        "PARENT_QUERY_ID": "VARCHAR",
        "ROOT_QUERY_ID": "VARCHAR",
        # GRANTS_TO_ROLES / GRANTS_TO_USERS
        "CREATED_ON": "VARCHAR",
        "MODIFIED_ON": "VARCHAR",
        "DELETED_ON": "VARCHAR",
        "PRIVILEGE": "VARCHAR",
        "GRANTED_ON": "VARCHAR",
        "NAME": "VARCHAR",
        "TABLE_CATALOG": "VARCHAR",
        "TABLE_SCHEMA": "VARCHAR",
        "GRANTED_TO": "VARCHAR",
        "GRANTEE_NAME": "VARCHAR",
        "ROLE": "VARCHAR",
        "GRANT_OPTION": "BOOLEAN",
        "GRANTED_BY": "VARCHAR",
        # DATA_TRANSFER_HISTORY
        "SOURCE_CLOUD": "VARCHAR",
        "SOURCE_REGION": "VARCHAR",
        "TARGET_CLOUD": "VARCHAR",
        "TARGET_REGION": "VARCHAR",
        "BYTES_TRANSFERRED": "BIGINT",
        "TRANSFER_TYPE": "VARCHAR",
    }
    _VIEW = (
        "CASE WHEN DIRECT_OBJECTS_ACCESSED IS NOT NULL OR BASE_OBJECTS_ACCESSED IS NOT NULL "
        "OR QUERY_START_TIME IS NOT NULL THEN 'ACCESS' "
        "WHEN EVENT_TIMESTAMP IS NOT NULL OR IS_SUCCESS IS NOT NULL OR EVENT_TYPE IS NOT NULL "
        "THEN 'LOGIN' "
        "WHEN QUERY_TEXT IS NOT NULL OR QUERY_TYPE IS NOT NULL OR EXECUTION_STATUS IS NOT NULL "
        "THEN 'QUERY' "
        "WHEN PRIVILEGE IS NOT NULL OR GRANTEE_NAME IS NOT NULL THEN 'GRANT' "
        "WHEN TRANSFER_TYPE IS NOT NULL OR BYTES_TRANSFERRED IS NOT NULL THEN 'DATA_TRANSFER' END"
    )
    event_time_parsed = True  # _expr.event_time parses each field itself
    common: ClassVar[dict[str, str]] = {
        "event_time": event_time(
            "EVENT_TIMESTAMP",
            "QUERY_START_TIME",
            "START_TIME",
            "END_TIME",
            "nullif(DELETED_ON, '')",
            "MODIFIED_ON",
            "CREATED_ON",
        ),
        # ACCESS_HISTORY and QUERY_HISTORY rows share QUERY_ID: the view is part of the id
        "event_id": (
            f"CASE ({_VIEW}) WHEN 'LOGIN' THEN 'login:' || EVENT_ID "
            "WHEN 'QUERY' THEN 'query:' || QUERY_ID WHEN 'ACCESS' THEN 'access:' || QUERY_ID END"
        ),
        "event_type": (
            f"CASE ({_VIEW}) WHEN 'LOGIN' THEN coalesce(EVENT_TYPE, 'LOGIN') "
            "WHEN 'QUERY' THEN 'QUERY:' || coalesce(QUERY_TYPE, 'UNKNOWN') "
            "WHEN 'ACCESS' THEN 'ACCESS' "
            "WHEN 'GRANT' THEN CASE WHEN nullif(DELETED_ON, '') IS NOT NULL THEN 'REVOKE:' "
            "ELSE 'GRANT:' END || coalesce(PRIVILEGE, GRANTED_TO, '') "
            "WHEN 'DATA_TRANSFER' THEN 'DATA_TRANSFER:' || coalesce(TRANSFER_TYPE, '') END"
        ),
        "outcome": (
            "CASE WHEN upper(IS_SUCCESS) IN ('YES', 'TRUE') THEN 'success' "
            "WHEN upper(IS_SUCCESS) IN ('NO', 'FALSE') THEN 'failure' "
            "WHEN upper(EXECUTION_STATUS) = 'SUCCESS' THEN 'success' "
            "WHEN upper(EXECUTION_STATUS) IN ('FAIL', 'FAILED_WITH_ERROR', 'INCIDENT', "
            "'FAILED_WITH_INCIDENT') THEN 'failure' "
            "WHEN nullif(ERROR_CODE, '') IS NOT NULL THEN 'failure' "
            "WHEN PRIVILEGE IS NOT NULL OR GRANTEE_NAME IS NOT NULL "
            "OR TRANSFER_TYPE IS NOT NULL THEN 'success' END"
        ),
        "user": first("USER_NAME", "GRANTED_BY"),
        "src_ip": ip("CLIENT_IP"),
        "user_agent": (
            "nullif(concat_ws('/', nullif(REPORTED_CLIENT_TYPE, ''), "
            "nullif(REPORTED_CLIENT_VERSION, '')), '')"
        ),
        "host": "WAREHOUSE_NAME",
        "message": first(
            "CASE WHEN IS_SUCCESS IS NOT NULL THEN 'login ' || coalesce(USER_NAME, '?') || "
            "' via ' || coalesce(FIRST_AUTHENTICATION_FACTOR, '?') || coalesce(' + ' || "
            "nullif(SECOND_AUTHENTICATION_FACTOR, ''), '') || CASE WHEN upper(IS_SUCCESS) = "
            "'YES' THEN ' succeeded' ELSE ' failed' || coalesce(': ' || ERROR_MESSAGE, '') END END",
            "left(QUERY_TEXT, 500)",
            "CASE WHEN PRIVILEGE IS NOT NULL THEN PRIVILEGE || ' on ' || coalesce(GRANTED_ON, '')"
            " || ' ' || coalesce(NAME, '') || ' to ' || coalesce(GRANTEE_NAME, '') END",
            "CASE WHEN GRANTEE_NAME IS NOT NULL THEN coalesce(ROLE, '') || ' granted to ' || "
            "GRANTEE_NAME END",
            "CASE WHEN QUERY_ID IS NOT NULL THEN 'access by query ' || QUERY_ID END",
            "CASE WHEN TRANSFER_TYPE IS NOT NULL THEN TRANSFER_TYPE || ' ' || "
            "coalesce(CAST(BYTES_TRANSFERRED AS VARCHAR), '?') || ' bytes to ' || "
            "coalesce(TARGET_CLOUD, '') || ' ' || coalesce(TARGET_REGION, '') END",
        ),
        "_error": (
            f"CASE WHEN ({_VIEW}) IS NULL THEN 'not a Snowflake account usage row: no "
            "LOGIN_HISTORY, QUERY_HISTORY, ACCESS_HISTORY, GRANTS or DATA_TRANSFER columns' END"
        ),
    }

    def native_sql(self) -> str:
        return decode_json_strings(super().native_sql(), _JSON_COLUMNS)

    def sniff(self, sample: list[str]) -> float:
        marks = {
            "EVENT_TIMESTAMP", "IS_SUCCESS", "QUERY_ID", "QUERY_TEXT", "EXECUTION_STATUS",
            "QUERY_START_TIME", "DIRECT_OBJECTS_ACCESSED", "GRANTEE_NAME", "GRANTED_TO",
            "TRANSFER_TYPE", "BYTES_TRANSFERRED",
        }  # fmt: skip

        def ok(keys: set[str]) -> bool:
            # upper-case view columns; not Salesforce's EVENT_TYPE + TIMESTAMP
            return bool(keys & marks) and not {"EVENT_TYPE", "TIMESTAMP"} <= keys

        header = csv_header(sample)
        if header:
            return 1.0 if ok(header) else 0.0
        return score(sample_records(sample, self.wrapper_keys), lambda r: ok(set(r)))
