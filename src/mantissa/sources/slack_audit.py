"""Slack Audit Logs API entries.

Entries as ``GET https://api.slack.com/audit/v1/logs`` returns them (``{"entries": [...]}``
responses accepted whole): ``id``, ``date_create`` (epoch seconds), ``action``, ``actor``,
``entity`` (typed: user, workspace, enterprise, channel, file, app, workflow, barrier,
message, ...), ``context`` (location, ua, ip_address, session_id) and free-form ``details``.
Slack "Audit Logs API": https://api.slack.com/admins/audit-logs
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._expr import event_time, first, ip, sample_records, score
from mantissa.sources.base import JsonSource

_USER = {"id": "VARCHAR", "name": "VARCHAR", "email": "VARCHAR", "team": "VARCHAR"}


class SlackAudit(JsonSource):
    name = "slack_audit"
    title = "Slack Audit Logs"
    category = "saas"
    variants = (
        'Audit Logs API responses {"entries": [...]} and single entries per line',
        "all entity types (user, workspace, enterprise, channel, file, app, workflow ...)",
    )
    wrapper_keys = ("entries",)
    signature = ("date_create", "action", "actor")
    structure: ClassVar[dict[str, Any]] = {
        "id": "VARCHAR",
        "date_create": "VARCHAR",
        "action": "VARCHAR",
        "actor": {"type": "VARCHAR", "user": _USER},
        "entity": {
            "type": "VARCHAR",
            "user": _USER,
            "workspace": {"id": "VARCHAR", "name": "VARCHAR", "domain": "VARCHAR"},
            "enterprise": {"id": "VARCHAR", "name": "VARCHAR", "domain": "VARCHAR"},
            "channel": "JSON",
            "file": "JSON",
            "app": "JSON",
            "workflow": "JSON",
            "barrier": "JSON",
            "message": "JSON",
            "huddle": "JSON",
            "role": "JSON",
            "usergroup": "JSON",
            "account_type_role": "JSON",
        },
        "context": {
            "location": {
                "type": "VARCHAR",
                "id": "VARCHAR",
                "name": "VARCHAR",
                "domain": "VARCHAR",
            },
            "ua": "VARCHAR",
            "ip_address": "VARCHAR",
            "session_id": "VARCHAR",
            "app": "JSON",
        },
        "details": "JSON",
    }
    event_time_parsed = True  # _expr.event_time parses each field itself
    common: ClassVar[dict[str, str]] = {
        "event_time": event_time("date_create"),
        "event_id": "id",
        "event_type": "action",
        # the audit log records actions that happened; denials are actions of their own
        "outcome": (
            "CASE WHEN action ILIKE '%failed%' OR action ILIKE '%denied%' "
            "OR action ILIKE '%rejected%' THEN 'failure' ELSE 'success' END"
        ),
        "user": first("actor.user.email", "actor.user.name", "actor.user.id"),
        "src_ip": ip("context.ip_address"),
        "user_agent": "context.ua",
        "host": "context.location.domain",
        "message": (
            "action || ' ' || coalesce(entity.type, '') || coalesce(' ' || "
            "coalesce(entity.user.email, entity.user.name, entity.workspace.name, "
            "entity.enterprise.name, entity.channel ->> 'name', entity.file ->> 'name', "
            "entity.app ->> 'name'), '')"
        ),
        "_error": "CASE WHEN action IS NULL THEN 'not a Slack audit entry: action missing' END",
    }

    def sniff(self, sample: list[str]) -> float:
        def ok(r: dict[str, Any]) -> bool:
            return {"date_create", "action", "actor"} <= r.keys() or (
                "action" in r
                and isinstance(r.get("actor"), dict)
                and (isinstance(r.get("entity"), dict) or isinstance(r.get("context"), dict))
            )

        return score(sample_records(sample, self.wrapper_keys), ok)
