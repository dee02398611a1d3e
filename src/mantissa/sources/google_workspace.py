"""Google Workspace: Admin SDK Reports API activities, one row per event.

An activity (``activities.list`` item, ``kind: admin#reports#activity``) has ``id{time,
uniqueQualifier, applicationName, customerId}``, ``actor``, ``ipAddress``, ``ownerDomain``,
``networkInfo`` and ``events[]``; each event has ``type``, ``name`` and ``parameters[]`` of
``{name, value | intValue | boolValue | multiValue | multiIntValue | messageValue |
multiMessageValue}``. Admin SDK Reports API, "Activities: list":
https://developers.google.com/admin-sdk/reports/reference/rest/v1/activities/list
and the per-application event references (login, admin, drive, token, saml, groups ...).

Rows carry the activity's fields under their API names plus the event's ``type``,
``name`` and ``parameters`` — flattened to one JSON object ``{parameter name: value}``
(``parameters->>'doc_title'``), and ``event_index`` (1-based position in ``events``).
Also accepted: whole ``activities.list`` responses (``items``), activities whose
``events`` is one object (as Filebeat splits them), and activities already flattened
to one event with ``name``/``type``/``parameters`` at the top (Panther).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from mantissa.sources._expr import event_time, first, ip, sample_records, score
from mantissa.sources.base import JsonSource

_PARAM_VALUE = (
    "coalesce(p -> 'value', p -> 'intValue', p -> 'boolValue', p -> 'multiValue', "
    "p -> 'multiIntValue', p -> 'messageValue', p -> 'multiMessageValue', 'null')"
)


class GoogleWorkspace(JsonSource):
    name = "google_workspace"
    title = "Google Workspace (Reports API)"
    category = "saas"
    variants = (
        "activities.list items with events[] (one row per event)",
        'activities.list responses {"kind": "admin#reports#activities", "items": [...]}',
        "activities with events as a single object (Filebeat)",
        "flattened single-event activities (name/type/parameters at top level)",
        "all applications: login, admin, drive, token, saml, groups, user_accounts, ...",
    )
    wrapper_keys = ("items",)
    signature = ("kind", "id", "actor")
    structure: ClassVar[dict[str, Any]] = {
        "kind": "VARCHAR",
        "etag": "VARCHAR",
        "id": {
            "time": "VARCHAR",
            "uniqueQualifier": "VARCHAR",
            "applicationName": "VARCHAR",
            "customerId": "VARCHAR",
        },
        "actor": {
            "callerType": "VARCHAR",
            "email": "VARCHAR",
            "profileId": "VARCHAR",
            "key": "VARCHAR",
            "applicationInfo": "JSON",
        },
        "ownerDomain": "VARCHAR",
        "ipAddress": "VARCHAR",
        "networkInfo": "JSON",
        "resourceDetails": "JSON",
    }
    event_time_parsed = True  # _expr.event_time parses each field itself
    common: ClassVar[dict[str, str]] = {
        "event_time": event_time("id.time"),
        "event_id": (
            "concat_ws(':', coalesce(id.applicationName, ''), coalesce(id.uniqueQualifier, ''), "
            "coalesce(id.time, ''), CAST(event_index AS VARCHAR), "
            "left(md5(coalesce(CAST(_ev AS VARCHAR), raw)), 16))"
        ),
        "event_type": "name",
        "outcome": (
            "CASE WHEN name IN ('login_failure', 'login_verification_failure') "
            "OR name ILIKE '%_failure' OR name ILIKE '%_failed' "
            "OR parameters ->> 'login_challenge_status' ILIKE '%fail%' THEN 'failure' "
            "WHEN name IS NOT NULL THEN 'success' END"
        ),
        "user": first("actor.email", "actor.profileId", "actor.key"),
        "src_ip": ip("ipAddress"),
        "geo_country": "nullif(networkInfo ->> 'regionCode', '')",
        "host": "ownerDomain",
        "message": (
            "coalesce(id.applicationName, '?') || ': ' || coalesce(name, type, '?') || "
            "coalesce(' ' || coalesce(parameters ->> 'doc_title', parameters ->> 'USER_EMAIL', "
            "parameters ->> 'app_name', parameters ->> 'group_email', "
            "parameters ->> 'affected_email_address', parameters ->> 'SETTING_NAME'), '')"
        ),
        "_error": (
            "CASE WHEN id.time IS NULL AND id.applicationName IS NULL AND name IS NULL THEN "
            "'not a Reports API activity: no id.time, id.applicationName or event name' END"
        ),
    }

    def native_sql(self) -> str:
        struct = json.dumps(self.structure).replace("'", "''")
        evs = (
            "CASE WHEN json_type(raw, '$.events') = 'ARRAY' AND "
            "json_array_length(raw, '$.events') > 0 THEN json_extract(raw, '$.events[*]') "
            "WHEN json_type(raw, '$.events') = 'OBJECT' THEN [json_extract(raw, '$.events')] "
            "ELSE [CAST(NULL AS JSON)] END"
        )
        params = (
            "CASE WHEN json_type(_ev, '$.parameters') = 'ARRAY' THEN CAST('{' || "
            "array_to_string(list_transform(json_extract(_ev, '$.parameters[*]'), lambda p: "
            f"to_json(coalesce(p ->> 'name', '')) || ':' || {_PARAM_VALUE}), ',') || '}}' AS JSON) "
            "WHEN json_type(raw, '$.parameters') = 'OBJECT' THEN json_extract(raw, '$.parameters') "
            "END"
        )
        # one row per event: number the events, then pick each one
        numbered = (
            f"SELECT line, raw, file, ctx, _evs, UNNEST(generate_series(1, len(_evs))) AS "
            f"event_index FROM (SELECT line, raw, file, ctx, {evs} AS _evs FROM input)"
        )
        picked = (
            f"SELECT line, raw, file, ctx, event_index, _evs[event_index] AS _ev FROM ({numbered})"
        )
        return (
            f"SELECT line, raw, file, ctx, UNNEST(json_transform(raw, '{struct}')), "
            "coalesce(_ev ->> 'type', json_extract_string(raw, '$.type')) AS type, "
            "coalesce(_ev ->> 'name', json_extract_string(raw, '$.name')) AS name, "
            f"{params} AS parameters, event_index, _ev FROM ({picked})"
        )

    def sniff(self, sample: list[str]) -> float:
        def ok(r: dict[str, Any]) -> bool:
            ident = r.get("id")
            return str(r.get("kind", "")).startswith("admin#reports#activit") or (
                isinstance(ident, dict)
                and "applicationName" in ident
                and "actor" in r
                and ("events" in r or "name" in r)
            )

        return score(sample_records(sample, self.wrapper_keys), ok)
