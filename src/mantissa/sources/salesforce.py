"""Salesforce: Event Monitoring EventLogFile rows, Setup Audit Trail, login events.

* EventLogFile bodies (``GET .../sobjects/EventLogFile/{id}/LogFile``): CSV with a header
  row, every value quoted, upper-case columns (``EVENT_TYPE``, ``TIMESTAMP`` as
  ``yyyyMMddHHmmss.SSS``, ``TIMESTAMP_DERIVED``, ``USER_ID``, ``CLIENT_IP``, ...), one event
  type per file (Login, Logout, API, RestApi, URI, ReportExport, ...); the same rows as
  JSON objects are accepted too. Object Reference, "EventLogFile" and "EventLogFile
  Supported Event Types".
* ``SetupAuditTrail`` records as the REST/SOQL API returns them (``Action``, ``Section``,
  ``Display``, ``CreatedDate``, ``CreatedById``, ``DelegateUser``, ``attributes``).
* Real-Time Event Monitoring ``LoginEvent`` and ``LoginHistory`` records (``EventDate`` /
  ``LoginTime``, ``Username``, ``SourceIp``, ``Status``, ``LoginType``, geo fields).
SOQL query responses (``{"records": [...]}``) are unwrapped.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._expr import csv_header, event_time, first, ip, sample_records, score
from mantissa.sources.base import JsonSource

# EventLogFile column names (upper-case) and sObject field names (CamelCase) side by side.
_ELF_COLUMNS = [
    "EVENT_TYPE",
    "TIMESTAMP",
    "TIMESTAMP_DERIVED",
    "REQUEST_ID",
    "ORGANIZATION_ID",
    "USER_ID",
    "USER_ID_DERIVED",
    "USER_NAME",
    "USER_TYPE",
    "CLIENT_IP",
    "SOURCE_IP",
    "URI",
    "URI_ID_DERIVED",
    "SESSION_KEY",
    "LOGIN_KEY",
    "LOGIN_STATUS",
    "REQUEST_STATUS",
    "BROWSER_TYPE",
    "API_TYPE",
    "API_VERSION",
    "AUTHENTICATION_METHOD_REFERENCE",
    "CIPHER_SUITE",
    "TLS_PROTOCOL",
    "METHOD",
    "ENTITY_NAME",
    "REPORT_ID",
    "REPORT_ID_DERIVED",
    "DELEGATED_USER_ID",
    "DELEGATED_USER_NAME",
    "CONNECTED_APP_ID",
    "CONNECTED_APP_NAME",
    "CLIENT_ID",
    "OPERATION_TYPE",
    "QUERY",
    "SUMMARY",
    "SECURITY_EVENT_DATA",
]
_ELF_NUMBERS = [
    "RUN_TIME",
    "CPU_TIME",
    "DB_TOTAL_TIME",
    "DB_CPU_TIME",
    "ROWS_PROCESSED",
    "ROW_COUNT",
    "RESPONSE_SIZE",
    "REQUEST_SIZE",
    "STATUS_CODE",
    "RECORDS_PROCESSED",
    "API_TOTAL_COUNT",
]


class Salesforce(JsonSource):
    name = "salesforce"
    title = "Salesforce"
    category = "saas"
    csv = True
    variants = (
        "Event Monitoring EventLogFile CSV bodies (header row, quoted values), any event type",
        "EventLogFile rows as JSON objects",
        "SetupAuditTrail records (REST/SOQL, records[] responses)",
        "LoginEvent (Real-Time Event Monitoring) and LoginHistory records",
    )
    wrapper_keys = ("records",)
    signature = ("EVENT_TYPE", "TIMESTAMP")
    structure: ClassVar[dict[str, Any]] = {
        **{c: "VARCHAR" for c in _ELF_COLUMNS},
        **{c: "DOUBLE" for c in _ELF_NUMBERS},
        "SCORE": "DOUBLE",
        # SetupAuditTrail
        "Id": "VARCHAR",
        "Action": "VARCHAR",
        "Section": "VARCHAR",
        "Display": "VARCHAR",
        "CreatedDate": "VARCHAR",
        "CreatedById": "VARCHAR",
        "CreatedBy": {"Username": "VARCHAR", "Name": "VARCHAR"},
        "CreatedByContext": "VARCHAR",
        "CreatedByIssuer": "VARCHAR",
        "DelegateUser": "VARCHAR",
        "ResponsibleNamespacePrefix": "VARCHAR",
        "attributes": {"type": "VARCHAR", "url": "VARCHAR"},
        # LoginEvent / LoginHistory
        "EventDate": "VARCHAR",
        "EventIdentifier": "VARCHAR",
        "LoginTime": "VARCHAR",
        "LoginHistoryId": "VARCHAR",
        "Username": "VARCHAR",
        "UserId": "VARCHAR",
        "UserType": "VARCHAR",
        "SourceIp": "VARCHAR",
        "Status": "VARCHAR",
        "LoginType": "VARCHAR",
        "LoginUrl": "VARCHAR",
        "LoginKey": "VARCHAR",
        "SessionKey": "VARCHAR",
        "SessionLevel": "VARCHAR",
        "Application": "VARCHAR",
        "Browser": "VARCHAR",
        "Platform": "VARCHAR",
        "ClientVersion": "VARCHAR",
        "ApiType": "VARCHAR",
        "ApiVersion": "VARCHAR",
        "AuthMethodReference": "VARCHAR",
        "AuthServiceId": "VARCHAR",
        "CipherSuite": "VARCHAR",
        "TlsProtocol": "VARCHAR",
        "HttpMethod": "VARCHAR",
        "City": "VARCHAR",
        "Country": "VARCHAR",
        "CountryIso": "VARCHAR",
        "Subdivision": "VARCHAR",
        "PostalCode": "VARCHAR",
        "LoginLatitude": "DOUBLE",
        "LoginLongitude": "DOUBLE",
        "LoginGeoId": "VARCHAR",
        "PolicyId": "VARCHAR",
        "PolicyOutcome": "VARCHAR",
        "EvaluationTime": "DOUBLE",
        "AdditionalInfo": "VARCHAR",
        "RelatedEventIdentifier": "VARCHAR",
    }
    # ``TIMESTAMP`` of EventLogFile is yyyyMMddHHmmss.SSS (UTC)
    _ELF_TS = (
        "CASE WHEN regexp_full_match(TIMESTAMP, '[0-9]{14}(\\.[0-9]+)?') THEN CAST("
        "try_strptime(TIMESTAMP, ['%Y%m%d%H%M%S.%g', '%Y%m%d%H%M%S']) AS VARCHAR) "
        "ELSE TIMESTAMP END"
    )
    event_time_parsed = True  # _expr.event_time parses each field itself
    common: ClassVar[dict[str, str]] = {
        "event_time": event_time(
            "TIMESTAMP_DERIVED", _ELF_TS, "EventDate", "LoginTime", "CreatedDate"
        ),
        "event_id": first(
            "EventIdentifier",
            "EVENT_TYPE || ':' || REQUEST_ID || ':' || coalesce(TIMESTAMP, '')",
            "Id",
        ),
        "event_type": first(
            "EVENT_TYPE",
            "CASE WHEN Action IS NOT NULL THEN 'SetupAuditTrail:' || Action END",
            "attributes.type",
            "CASE WHEN EventIdentifier IS NOT NULL THEN 'LoginEvent' END",
            "CASE WHEN LoginTime IS NOT NULL THEN 'LoginHistory' END",
        ),
        "outcome": (
            "CASE WHEN LOGIN_STATUS = 'LOGIN_NO_ERROR' THEN 'success' "
            "WHEN LOGIN_STATUS LIKE 'LOGIN_%' THEN 'failure' "
            "WHEN upper(REQUEST_STATUS) IN ('S', 'SUCCESS') THEN 'success' "
            "WHEN upper(REQUEST_STATUS) IN ('F', 'FAILURE', 'FAILED', 'A') THEN 'failure' "
            "WHEN lower(Status) = 'success' THEN 'success' "
            "WHEN Status IS NOT NULL AND Status <> '' THEN 'failure' "
            "WHEN Action IS NOT NULL THEN 'success' END"
        ),
        "user": first(
            "USER_NAME",
            "Username",
            "CreatedBy.Username",
            "DELEGATED_USER_NAME",
            "USER_ID",
            "UserId",
            "CreatedById",
        ),
        "src_ip": ip(first("SOURCE_IP", "CLIENT_IP", "SourceIp")),
        "user_agent": first("BROWSER_TYPE", "Browser"),
        "geo_country": first("Country", "CountryIso"),
        "geo_city": "City",
        "host": first("ORGANIZATION_ID", "LoginUrl"),
        "message": first(
            "Display",
            "SUMMARY",
            "EVENT_TYPE || coalesce(' ' || coalesce(nullif(URI, ''), nullif(ENTITY_NAME, ''), "
            "nullif(CONNECTED_APP_NAME, ''), nullif(LOGIN_STATUS, '')), '')",
            "CASE WHEN EventIdentifier IS NOT NULL OR LoginTime IS NOT NULL THEN 'login ' || "
            "coalesce(Username, UserId, '?') || ' ' || coalesce(Status, '') || coalesce(' via ' "
            "|| LoginType, '') END",
        ),
        "_error": (
            "CASE WHEN coalesce(EVENT_TYPE, Action, EventIdentifier, LoginTime, attributes.type)"
            " IS NULL THEN 'not a Salesforce event: no EVENT_TYPE, Action, EventIdentifier or "
            "LoginTime' END"
        ),
    }

    def native_sql(self) -> str:
        # DuckDB names are case-insensitive: Panther's USERNAME / STATUS land in the
        # sObject fields Username / Status rather than in columns of their own.
        return (
            "SELECT * REPLACE ("
            "coalesce(Username, nullif(json_extract_string(raw, '$.USERNAME'), '')) AS Username, "
            "coalesce(Status, nullif(json_extract_string(raw, '$.STATUS'), '')) AS Status) "
            f"FROM ({super().native_sql()})"
        )

    def sniff(self, sample: list[str]) -> float:
        def ok(keys: set[str], r: dict[str, Any] | None = None) -> bool:
            if {"EVENT_TYPE", "TIMESTAMP"} <= keys or {"EventIdentifier", "EventDate"} <= keys:
                return True
            if {"Action", "Section", "CreatedDate"} <= keys or "LoginTime" in keys:
                return True
            attrs = (r or {}).get("attributes")
            return isinstance(attrs, dict) and "/services/data/" in str(attrs.get("url", ""))

        header = csv_header(sample)
        if header:
            return 1.0 if ok(header) else 0.0
        return score(sample_records(sample, self.wrapper_keys), lambda r: ok(set(r), r))
