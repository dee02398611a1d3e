"""JSON Lines: any JSON object per line (or a JSON array / ``{"records": [...]}``).

For applications that log JSON (Suricata EVE, app logs, anything shipped as NDJSON).
The whole object is kept as the ``data`` JSON column (query it with ``data->>'$.a.b'``);
the common columns come from the usual field names. The timestamp is the first of the
configured field names present (``ingest.timestamp_fields`` in the config, or the
source option ``timestamp_fields``), read as ISO-8601 or epoch s/ms/µs/ns.
"""

from __future__ import annotations

from typing import ClassVar

from mantissa.config import IngestConfig
from mantissa.sources._jsonsql import ip_sql
from mantissa.sources.base import JsonSource


def _path(field: str) -> str:
    """A JSON path for a (possibly dotted) field name: ``log.time`` → ``$.log.time``."""
    parts = [p.replace('"', "") for p in field.split(".")]
    return "$." + ".".join(f'"{p}"' for p in parts).replace("'", "''")


def trace_id_sql(expr: str) -> str:
    """A trace id (32 hex, any case; bare, ``projects/p/traces/<id>`` or a W3C
    ``traceparent``) → 32 lower-case hex; NULL when invalid or all zeros."""
    x = f"regexp_extract({expr}, '(^|/|^[0-9a-fA-F]{{2}}-)([0-9a-fA-F]{{32}})(-[0-9a-fA-F]{{16}}-[0-9a-fA-F]{{2}})?$', 2)"
    return f"CASE WHEN {x} <> '' AND {x} <> repeat('0', 32) THEN lower({x}) END"


def _first(*fields: str) -> str:
    return (
        "coalesce("
        + ", ".join(f"nullif(json_extract_string(raw, '{_path(f)}'), '')" for f in fields)
        + ")"
    )


class JsonLines(JsonSource):
    name = "json_lines"
    title = "JSON Lines (any JSON object per line)"
    category = "generic"
    variants = (
        'NDJSON of objects; JSON arrays; {"records": [...]} documents',
        "timestamp from configurable field names (ISO-8601, epoch s/ms/us/ns)",
        "Suricata EVE JSON, application JSON logs",
    )
    wrapper_keys = ("records",)
    common: ClassVar[dict[str, str]] = {
        "event_type": _first(
            "event_type", "eventType", "event.action", "action", "type", "event", "level"
        ),
        "outcome": (
            "CASE WHEN lower(" + _first("outcome", "event.outcome", "result", "status") + ") "
            "IN ('success', 'succeeded', 'ok', 'allowed', 'allow', 'pass') THEN 'success' "
            "WHEN lower(" + _first("outcome", "event.outcome", "result", "status") + ") "
            "IN ('failure', 'failed', 'fail', 'error', 'denied', 'deny', 'blocked') "
            "THEN 'failure' END"
        ),
        "user": _first("user.name", "user", "username", "user_name", "userName", "actor"),
        "src_ip": ip_sql(
            _first(
                "src_ip",
                "source_ip",
                "source.ip",
                "client_ip",
                "clientIp",
                "remote_addr",
                "ip",
                "sourceIPAddress",
            )
        ),
        "dst_ip": ip_sql(_first("dest_ip", "dst_ip", "destination_ip", "destination.ip")),
        "user_agent": _first(
            "user_agent", "userAgent", "http.http_user_agent", "user_agent.original"
        ),
        "host": _first("host", "hostname", "host.name", "host.hostname"),
        "message": _first("message", "msg", "alert.signature", "log"),
        # OpenTelemetry / W3C trace context, so log lines join the traces table
        "trace_id": trace_id_sql(
            _first(
                "trace_id",
                "traceId",
                "trace.id",
                "traceid",
                "otelTraceID",
                "trace_context.trace_id",
                "logging.googleapis.com/trace",
                "traceparent",
            )
        ),
    }

    def native_sql(self) -> str:
        return "SELECT line, raw, file, ctx, CAST(raw AS JSON) AS data FROM input"

    def select_sql(self) -> str:
        fields = self.options.get("timestamp_fields") or IngestConfig().timestamp_fields
        saved = dict(self.common)
        try:
            self.common = {**saved, "event_time": _first(*fields)}
            return super().select_sql()
        finally:
            self.common = saved

    def sniff(self, sample: list[str]) -> float:
        import json

        objs = 0
        for ln in sample:
            try:
                objs += isinstance(json.loads(ln), dict | list)
            except ValueError:
                pass
        # a fallback for JSON: any specific JSON source that matches outranks it
        if not sample:
            return 0.0
        share = objs / len(sample)
        return 0.6 if share >= 0.5 else 0.6 * share
