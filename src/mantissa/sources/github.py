"""GitHub Enterprise / organization audit log events.

Both wire formats: the REST API (``GET /orgs/{org}/audit-log``,
``/enterprises/{enterprise}/audit-log``: a JSON array, ``created_at`` and ``@timestamp``
epoch milliseconds) and audit-log streaming (one JSON event per line to S3, Azure Blob,
Event Hubs (``{"records": [...]}``), Splunk, Datadog: ``@timestamp``, ``_document_id``,
``actor_ip``, ``operation_type``). GitHub Docs, "Audit log events for your enterprise",
"Reviewing the audit log for your organization" and "Streaming the audit log for your
enterprise". Fields vary by action; the common ones are columns, the rest stay in ``raw``
and ``data``/``config`` are kept as JSON.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._expr import event_time, first, ip, sample_records, score
from mantissa.sources.base import JsonSource


class GitHub(JsonSource):
    name = "github"
    title = "GitHub audit log"
    category = "saas"
    variants = (
        "REST API audit-log responses (JSON arrays, epoch-ms created_at)",
        "audit-log streaming events (@timestamp, _document_id, actor_ip, operation_type)",
        'Event Hubs / Blob batches {"records": [...]}',
        "enterprise (business.*) and organization events, git.* events",
    )
    wrapper_keys = ("records",)
    signature = ("action", "actor")
    structure: ClassVar[dict[str, Any]] = {
        "@timestamp": "VARCHAR",
        "_document_id": "VARCHAR",
        "action": "VARCHAR",
        "operation_type": "VARCHAR",
        "actor": "VARCHAR",
        "actor_id": "BIGINT",
        "actor_ip": "VARCHAR",
        "actor_is_bot": "BOOLEAN",
        "actor_location": {
            "country_code": "VARCHAR",
            "country_name": "VARCHAR",
            "region": "VARCHAR",
            "region_code": "VARCHAR",
            "city": "VARCHAR",
            "postal_code": "VARCHAR",
            "location": "JSON",
        },
        "user_agent": "VARCHAR",
        "created_at": "VARCHAR",
        "business": "VARCHAR",
        "business_id": "BIGINT",
        "org": "VARCHAR",
        "org_id": "BIGINT",
        "user": "VARCHAR",
        "user_id": "BIGINT",
        "repo": "VARCHAR",
        "repo_id": "BIGINT",
        "repository": "VARCHAR",
        "repository_public": "BOOLEAN",
        "public_repo": "BOOLEAN",
        "visibility": "VARCHAR",
        "previous_visibility": "VARCHAR",
        "team": "VARCHAR",
        "permission": "VARCHAR",
        "old_permission": "VARCHAR",
        "branch": "VARCHAR",
        "name": "VARCHAR",
        "hashed_token": "VARCHAR",
        "token_id": "BIGINT",
        "token_scopes": "VARCHAR",
        "programmatic_access_type": "VARCHAR",
        "oauth_application_id": "BIGINT",
        "integration": "VARCHAR",
        "transport_protocol_name": "VARCHAR",
        "external_identity_nameid": "VARCHAR",
        "external_identity_username": "VARCHAR",
        "conclusion": "VARCHAR",
        "hook_id": "BIGINT",
        "secret_type": "VARCHAR",
        "publicly_leaked": "BOOLEAN",
        "ruleset_name": "VARCHAR",
        "ruleset_enforcement": "VARCHAR",
        "config": "JSON",
        "data": "JSON",
        "events": "JSON",
    }
    event_time_parsed = True  # _expr.event_time parses each field itself
    common: ClassVar[dict[str, str]] = {
        # streaming uses @timestamp; the REST API created_at (both epoch ms)
        "event_time": event_time('"@timestamp"', "created_at"),
        "event_id": "_document_id",
        "event_type": "action",
        "outcome": (
            "CASE WHEN conclusion IN ('failure', 'timed_out', 'startup_failure') "
            "OR action ILIKE '%.fail%' OR action ILIKE '%_failed' THEN 'failure' "
            "ELSE 'success' END"
        ),
        "user": first("actor"),
        "src_ip": ip("actor_ip"),
        "user_agent": "user_agent",
        "geo_country": first("actor_location.country_code", "actor_location.country_name"),
        "geo_city": "actor_location.city",
        "host": first("business", "org"),
        "message": (
            "action || coalesce(' ' || coalesce(repo, repository, team, "
            + first("user")
            + ", name), '') || coalesce(' by ' || actor, '')"
        ),
        "_error": "CASE WHEN action IS NULL THEN 'not a GitHub audit event: action missing' END",
    }

    def sniff(self, sample: list[str]) -> float:
        def ok(r: dict[str, Any]) -> bool:
            return (
                {"action", "actor"} <= r.keys()
                and isinstance(r.get("actor"), str)
                and "date_create" not in r
                and bool(r.keys() & {"created_at", "@timestamp", "org", "business", "repo"})
            )

        return score(sample_records(sample, self.wrapper_keys), ok)
