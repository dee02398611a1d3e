"""CrowdStrike Falcon: Event Streams API events and Falcon Data Replicator (FDR) events.

* Event Streams API (``/sensors/entities/datafeed/v2`` stream): ``{"metadata":
  {customerIDString, offset, eventType, eventCreationTime (ms), version}, "event": {...}}``
  with ``eventType`` DetectionSummaryEvent, EppDetectionSummaryEvent, IncidentSummaryEvent,
  AuthActivityAuditEvent, UserActivityAuditEvent, RemoteResponseSessionStart/EndEvent,
  FirewallMatchEvent ...; collectors save them one per line or pretty-printed one after
  another (both accepted). ``event`` is kept as JSON (its fields depend on eventType).
* FDR events (S3, gzip NDJSON): flat objects whose values are all strings,
  ``event_simpleName``, ``aid``, ``aip``, ``cid``, ``timestamp`` (epoch ms) and the
  event type's fields (``CommandLine``, ``ImageFileName``, ``DomainName``,
  ``RemoteAddressIP4`` ...). Panther's copies wrap the record in ``event{}`` and may
  lower-case keys; both are unwrapped / matched.
CrowdStrike "Event Streams API" and "Falcon Data Replicator" data dictionaries
(customer portal).
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._expr import event_time, first, ip, sample_records, score
from mantissa.sources.base import JsonSource

_FDR_FIELDS = [
    "event_simpleName",
    "name",
    "id",
    "aid",
    "aip",
    "cid",
    "timestamp",
    "ContextTimeStamp",
    "ContextProcessId",
    "ContextThreadId",
    "event_platform",
    "ConfigBuild",
    "ConfigStateHash",
    "Entitlements",
    "EffectiveTransmissionClass",
    "TreeId",
    "ComputerName",
    "UserName",
    "UserSid",
    "UserPrincipal",
    "LogonDomain",
    "LogonType",
    "AuthenticationId",
    "CommandLine",
    "ImageFileName",
    "ParentBaseFileName",
    "ParentProcessId",
    "TargetProcessId",
    "RawProcessId",
    "SourceProcessId",
    "SHA256HashData",
    "SHA1HashData",
    "MD5HashData",
    "TargetFileName",
    "DomainName",
    "RequestType",
    "IP4Records",
    "LocalAddressIP4",
    "LocalAddressIP6",
    "LocalPort",
    "RemoteAddressIP4",
    "RemoteAddressIP6",
    "RemotePort",
    "Protocol",
    "ConnectionDirection",
    "RemoteAccount",
    "Tags",
    "fdr_event_type",
]


class CrowdStrike(JsonSource):
    name = "crowdstrike"
    title = "CrowdStrike Falcon"
    category = "endpoint"
    variants = (
        "Event Streams API events (metadata + event), NDJSON or pretty-printed in a row",
        "detection, incident, audit, remote response and firewall event types",
        "Falcon Data Replicator (FDR) events (flat, string values, epoch-ms timestamp)",
        "FDR records wrapped in event{} with lower-cased keys (Panther)",
    )
    case_insensitive_keys = True
    wrapper_keys = ("resources", "events")
    signature = ("metadata", "event")
    structure: ClassVar[dict[str, Any]] = {
        "metadata": {
            "customerIDString": "VARCHAR",
            "offset": "BIGINT",
            "eventType": "VARCHAR",
            "eventCreationTime": "VARCHAR",
            "version": "VARCHAR",
        },
        "event": "JSON",
        **{f: "VARCHAR" for f in _FDR_FIELDS},
    }
    event_time_parsed = True  # _expr.event_time parses each field itself
    common: ClassVar[dict[str, str]] = {
        "event_time": event_time(
            "metadata.eventCreationTime",
            "event ->> 'UTCTimestamp'",
            "event ->> 'Timestamp'",
            "timestamp",
            "ContextTimeStamp",
        ),
        "event_id": first(
            "metadata.customerIDString || ':' || CAST(metadata.offset AS VARCHAR)",
            "id",
        ),
        "event_type": first(
            "metadata.eventType",
            "event_simpleName",
            "fdr_event_type",
        ),
        "outcome": (
            "CASE WHEN event ->> 'Success' = 'true' THEN 'success' "
            "WHEN event ->> 'Success' = 'false' THEN 'failure' "
            "WHEN event_simpleName ILIKE '%LogonFailed%' OR event_simpleName ILIKE '%LoginFailed%'"
            " THEN 'failure' "
            "WHEN event_simpleName IN ('UserLogon', 'UserLogonV2') THEN 'success' "
            "WHEN event ->> 'PatternDispositionFlags' IS NOT NULL AND "
            "(event -> 'PatternDispositionFlags' ->> 'KillProcess' = 'true' OR "
            "event -> 'PatternDispositionFlags' ->> 'OperationBlocked' = 'true' OR "
            "event -> 'PatternDispositionFlags' ->> 'QuarantineFile' = 'true') THEN 'failure' END"
        ),
        "user": first(
            "event ->> 'UserName'",
            "event ->> 'UserId'",
            "UserName",
            "UserPrincipal",
        ),
        "src_ip": ip(
            first(
                "event ->> 'UserIp'",
                # logons: the remote address is where the logon came from
                "CASE WHEN event_simpleName ILIKE 'UserLogon%' "
                "THEN coalesce(RemoteAddressIP4, RemoteAddressIP6) END",
                "LocalAddressIP4",
                "LocalAddressIP6",
                "event ->> 'LocalAddress'",
                "event ->> 'LocalIP'",
                "aip",
            )
        ),
        "dst_ip": ip(
            "CASE WHEN event_simpleName ILIKE 'UserLogon%' THEN NULL ELSE "
            + first("RemoteAddressIP4", "RemoteAddressIP6", "event ->> 'RemoteAddress'")
            + " END"
        ),
        "host": first(
            "event ->> 'ComputerName'",
            "event ->> 'HostnameField'",
            "event ->> 'HostName'",
            "event ->> 'Hostname'",
            "ComputerName",
            "json_extract_string(raw, '$.Hostname')",
            "aid",
        ),
        "message": first(
            "event ->> 'DetectName' || coalesce(': ' || (event ->> 'DetectDescription'), '')",
            "event ->> 'Name' || coalesce(': ' || (event ->> 'Description'), '')",
            "event ->> 'OperationName' || coalesce(' (' || (event ->> 'ServiceName') || ')', '')",
            "event ->> 'RuleName'",
            "CASE WHEN metadata.eventType IS NOT NULL THEN metadata.eventType || "
            "coalesce(' ' || (event ->> 'SessionId'), '') END",
            "event_simpleName || coalesce(': ' || coalesce(CommandLine, DomainName, "
            "TargetFileName, RemoteAddressIP4), '')",
        ),
        "_error": (
            "CASE WHEN metadata.eventType IS NULL AND event_simpleName IS NULL "
            "AND fdr_event_type IS NULL THEN 'not a CrowdStrike event: no metadata.eventType "
            "or event_simpleName' END"
        ),
    }

    def native_sql(self) -> str:
        # FDR records that arrive wrapped in "event" (no stream "metadata"): lift the
        # wrapped record's fields to the top so they land in the FDR columns.
        unwrapped = (
            "SELECT line, file, ctx, CASE WHEN NOT json_exists(raw, '$.metadata') "
            "AND json_type(raw, '$.event') = 'OBJECT' "
            "THEN CAST(json_merge_patch(raw, json_extract(raw, '$.event')) AS VARCHAR) "
            "ELSE raw END AS raw FROM input"
        )
        return super().native_sql().replace("FROM input", f"FROM ({unwrapped})")

    def sniff(self, sample: list[str]) -> float:
        def ok(r: dict[str, Any]) -> bool:
            meta, ev = r.get("metadata"), r.get("event")
            if isinstance(meta, dict) and "eventType" in meta and "customerIDString" in meta:
                return True
            keys = {k.lower() for k in r}
            inner = {k.lower() for k in ev} if isinstance(ev, dict) else set()
            return "event_simplename" in keys or "event_simplename" in inner

        records = sample_records(sample)
        if not records and sample and sample[0].lstrip().startswith("{"):
            # a pretty-printed stream event longer than the sample: recognise its keys
            text = "\n".join(sample)
            if '"customerIDString"' in text and '"eventType"' in text:
                return 0.9
        return score(records, ok)
