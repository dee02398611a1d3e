"""Logsource → table mapping and per-table field mappings, as pySigma processing pipelines.

A Sigma rule names a ``logsource`` (product / service / category); the lake has tables.
:class:`LogsourceMap` decides which table a rule runs on (first matching entry wins; user
entries from ``detect.logsources`` in ``mantissa.yaml`` come before the built-in ones).
Community rules do not always use the vendor's wire names (the GCP rules use Elastic-style
``gcp.audit.method_name``); :func:`pipeline_for` builds a pySigma
:class:`~sigma.processing.pipeline.ProcessingPipeline` that renames such fields to the
vendor's native paths, which the backend then resolves against the table's schema (STRUCT,
JSON column, or the ``raw`` record). Editable in config::

    detect:
      logsources:
        - {product: acme, service: vpn, table: json_lines}
      field_mappings:
        okta: {user: actor.alternateId}
      array_fields:
        okta: [target]
      placeholders:
        admin_users: [alice, bob]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    FieldMappingTransformation,
    ValueListPlaceholderTransformation,
    WildcardPlaceholderTransformation,
)

# (product, service, category) → table; None = any. Ordered: first match wins.
DEFAULT_LOGSOURCES: list[dict[str, str | None]] = [
    {"product": "aws", "service": "cloudtrail", "table": "cloudtrail"},
    {"product": "aws", "service": "vpcflow", "table": "vpc_flow"},
    {"product": "aws", "service": "vpc_flow", "table": "vpc_flow"},
    {"product": "aws", "service": "guardduty", "table": "guardduty"},
    {"product": "aws", "service": "config", "table": "aws_config"},
    {"product": "aws", "service": "aws_config", "table": "aws_config"},
    {"product": "aws", "service": "s3", "table": "s3_access"},
    {"product": "aws", "service": "s3_access", "table": "s3_access"},
    {"product": "azure", "service": "signinlogs", "table": "azure_ad"},
    {"product": "azure", "service": "auditlogs", "table": "azure_ad"},
    {"product": "azure", "service": "riskdetection", "table": "azure_ad"},
    {"product": "azure", "service": "azure_ad", "table": "azure_ad"},
    {"product": "azure", "service": "activitylogs", "table": "azure_activity"},
    {"product": "azure", "service": "azure_activity", "table": "azure_activity"},
    {"product": "okta", "table": "okta"},
    {"product": "gcp", "service": "gcp.audit", "table": "gcp_audit"},
    {"product": "gcp", "service": "audit", "table": "gcp_audit"},
    {"product": "gcp", "service": "vpcflow", "table": "gcp_vpc_flow"},
    {"product": "gcp", "service": "google_workspace.admin", "table": "google_workspace"},
    {"product": "gcp", "service": "google_workspace.login", "table": "google_workspace"},
    {"product": "gcp", "service": "google_workspace", "table": "google_workspace"},
    {"product": "google_workspace", "table": "google_workspace"},
    {"product": "github", "table": "github"},
    {"product": "kubernetes", "table": "kubernetes"},
    {"product": "m365", "table": "microsoft_365"},
    {"product": "microsoft_365", "table": "microsoft_365"},
    {"product": "cisco", "service": "duo", "table": "duo"},
    {"product": "duo", "table": "duo"},
    {"product": "linux", "table": "syslog"},
    {"product": "syslog", "table": "syslog"},
    {"product": "apm", "service": "metrics", "table": "metrics"},
    {"product": "apm", "table": "traces"},
    {"product": "crowdstrike", "table": "crowdstrike"},
    {"product": "jamf", "table": "jamf"},
    {"product": "slack", "table": "slack_audit"},
    {"product": "docker", "table": "docker"},
    {"product": "snowflake", "table": "snowflake"},
    {"product": "salesforce", "table": "salesforce"},
    {"product": "onepassword", "table": "onepassword"},
    {"product": "1password", "table": "onepassword"},
    {"product": "cef", "table": "cef"},
    {"product": "json_lines", "table": "json_lines"},
]

# Community names → vendor wire paths (the GCP rules follow Elastic's ECS-style names; the
# Workspace Admin SDK nests event names and parameters under ``events``).
DEFAULT_FIELD_MAPPINGS: dict[str, dict[str, str]] = {
    "gcp_audit": {
        "gcp.audit.method_name": "protoPayload.methodName",
        "gcp.audit.service_name": "protoPayload.serviceName",
        "gcp.audit.resource_name": "protoPayload.resourceName",
        "gcp.audit.authorization_info.permission": "protoPayload.authorizationInfo.permission",
        "gcp.audit.authorization_info.granted": "protoPayload.authorizationInfo.granted",
        "data.protoPayload.authorizationInfo.permission": "protoPayload.authorizationInfo.permission",
        "data.protoPayload.authorizationInfo.granted": "protoPayload.authorizationInfo.granted",
        "data.protoPayload.serviceName": "protoPayload.serviceName",
        "data.protoPayload.methodName": "protoPayload.methodName",
        "data.protoPayload.resource.type": "resource.type",
        "data.protoPayload.logName": "logName",
    },
    "google_workspace": {
        "eventService": "id.applicationName",
        "eventName": "events.name",
        "setting_name": "events.parameters.value",
        "new_value": "events.parameters.value",
        "protoPayload.metadata.event.eventName": "events.name",
        "protoPayload.serviceName": "id.applicationName",
    },
    "okta": {},
    "azure_ad": {
        "properties.message": "operationName",
    },
    "azure_activity": {
        "properties.message": "operationName",
        "CategoryValue": "category",
        "ResourceProviderValue": "resourceProviderName",
        "OperationNameValue": "operationName",
    },
}

# Paths that hold JSON arrays of objects: a condition on ``target.displayName`` holds when
# any element matches (Okta System Log ``target``, GCP ``authorizationInfo``, Azure AD
# ``targetResources`` / ``modifiedProperties``).
DEFAULT_ARRAY_FIELDS: dict[str, list[str]] = {
    "okta": ["target"],
    "gcp_audit": ["protoPayload.authorizationInfo"],
    "google_workspace": ["events", "events.parameters"],
    "azure_ad": [
        "properties.targetResources",
        "targetResources",
        "properties.targetResources.modifiedProperties",
        "targetResources.modifiedProperties",
    ],
    "cloudtrail": ["resources"],
}


class DetectConfig(BaseModel):
    """The ``detect`` section of ``mantissa.yaml``."""

    model_config = ConfigDict(extra="forbid")
    rule_paths: list[str] = Field(default_factory=list)
    builtin_rules: bool = True
    logsources: list[dict[str, Any]] = Field(default_factory=list)
    field_mappings: dict[str, dict[str, str]] = Field(default_factory=dict)
    array_fields: dict[str, list[str]] = Field(default_factory=dict)
    placeholders: dict[str, list[str]] = Field(default_factory=dict)
    default_interval: str = "15m"
    intervals: dict[str, str] = Field(default_factory=dict)
    lookback: str = "10m"
    ingest_delay: str = "2m"
    max_catchup: str = "7d"
    poll_secs: float = Field(default=15.0, gt=0)  # how often ``serve`` looks for due windows
    parallelism: int = 2
    pack_rules: bool = True
    silent_days: int = 14
    noisy_per_day: int = 50


def detect_config(runtime: Any) -> DetectConfig:
    cfg = runtime.config if runtime is not None else None
    return cfg.section("detect", DetectConfig) if cfg is not None else DetectConfig()


@dataclass(frozen=True)
class LogsourceMap:
    """Which table a rule's logsource maps to."""

    entries: tuple[tuple[str | None, str | None, str | None, str], ...]

    @classmethod
    def from_config(cls, cfg: DetectConfig | None = None) -> LogsourceMap:
        raw = [*(cfg.logsources if cfg else []), *DEFAULT_LOGSOURCES]
        return cls(
            tuple(
                (
                    _norm(e.get("product")),
                    _norm(e.get("service")),
                    _norm(e.get("category")),
                    str(e["table"]),
                )
                for e in raw
            )
        )

    def table_for(
        self, product: str | None, service: str | None, category: str | None
    ) -> str | None:
        p, s, c = _norm(product), _norm(service), _norm(category)
        for ep, es, ec, table in self.entries:
            if ep is not None and ep != p:
                continue
            if es is not None and es != s:
                continue
            if ec is not None and ec != c:
                continue
            return table
        return None


def _norm(v: Any) -> str | None:
    if v is None or v == "*":
        return None
    return str(v).strip().lower()


def field_mappings(table: str, cfg: DetectConfig | None = None) -> dict[str, str]:
    out = dict(DEFAULT_FIELD_MAPPINGS.get(table, {}))
    if cfg:
        out.update(cfg.field_mappings.get(table, {}))
    return out


def array_fields(table: str, cfg: DetectConfig | None = None) -> set[str]:
    paths = [
        *DEFAULT_ARRAY_FIELDS.get(table, []),
        *((cfg.array_fields if cfg else {}).get(table, [])),
    ]
    return {p.lower() for p in paths}


def pipeline_for(table: str, cfg: DetectConfig | None = None) -> ProcessingPipeline:
    """The processing pipeline applied to every rule that runs on ``table``."""
    return _pipeline(table, _freeze(cfg))


def _freeze(cfg: DetectConfig | None) -> tuple[Any, ...]:
    if cfg is None:
        return ()
    return (
        tuple(sorted((k, tuple(sorted(v.items()))) for k, v in cfg.field_mappings.items())),
        tuple(sorted((k, tuple(v)) for k, v in cfg.placeholders.items())),
    )


@cache
def _pipeline(table: str, frozen: tuple[Any, ...]) -> ProcessingPipeline:
    fm = dict(DEFAULT_FIELD_MAPPINGS.get(table, {}))
    placeholders: dict[str, list[str]] = {}
    if frozen:
        fm.update(dict(dict(frozen[0]).get(table, ())))
        placeholders = {k: list(v) for k, v in frozen[1]}
    items: list[ProcessingItem] = []
    if fm:
        items.append(
            ProcessingItem(
                identifier=f"mantissa_{table}_field_mapping",
                transformation=FieldMappingTransformation(fm),  # type: ignore[arg-type]
            )
        )
    if placeholders:
        items.append(
            ProcessingItem(
                identifier="mantissa_placeholders",
                transformation=ValueListPlaceholderTransformation(
                    include=list(placeholders)  # type: ignore[arg-type]
                ),
            )
        )
    # |expand placeholders nobody defined match anything rather than failing the rule.
    items.append(
        ProcessingItem(
            identifier="mantissa_unset_placeholders",
            transformation=WildcardPlaceholderTransformation(),
        )
    )
    pipe = ProcessingPipeline(
        name=f"mantissa {table}", priority=20, items=items, vars=dict(placeholders)
    )
    return pipe
