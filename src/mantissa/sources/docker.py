"""Docker: daemon events and container logs of the json-file logging driver.

* ``docker events --format '{{json .}}'`` / Engine API ``GET /events``: ``EventMessage``
  objects (``Type``, ``Action``, ``Actor{ID, Attributes}``, ``scope``, ``time`` in epoch
  seconds, ``timeNano``; older daemons also send ``status``, ``id``, ``from``). Docker Engine
  API, "System events": https://docs.docker.com/reference/api/engine/
* ``docker events`` default text output: ``<RFC3339Nano> <type> <action> <id> (k=v, ...)``
  (CLI reference "docker system events").
* json-file driver container logs (``<container-id>-json.log``): ``{"log", "stream",
  "time", "attrs"}`` one per line ("JSON File logging driver"). A line the driver split
  (no trailing newline in ``log``) stays a row of its own, as written.

Text and JSON lines may be mixed in one file; both normalize to the native JSON names.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from mantissa.sources._expr import first
from mantissa.sources.base import Source

# the object types of the Engine API's EventMessage.Type
_TYPES = "container|image|volume|network|daemon|plugin|node|service|secret|config|builder"
_TEXT_EVENT = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+)\s+(" + _TYPES + r")\s+(.+?)\s+(\S+)(?:\s+\((.*)\))?$"
)


class Docker(Source):
    name = "docker"
    title = "Docker"
    category = "container"
    framing = "lines"
    variants = (
        "docker events --format json / Engine API EventMessage (incl. legacy status/id/from)",
        "docker events default text lines (RFC3339Nano type action id (attrs))",
        "json-file logging driver container logs (log, stream, time, attrs)",
    )
    structure: ClassVar[dict[str, Any]] = {
        "Type": "VARCHAR",
        "Action": "VARCHAR",
        "Actor": {"ID": "VARCHAR", "Attributes": "JSON"},
        "scope": "VARCHAR",
        "time": "VARCHAR",
        "timeNano": "BIGINT",
        "status": "VARCHAR",
        "id": "VARCHAR",
        "from": "VARCHAR",
        "log": "VARCHAR",
        "stream": "VARCHAR",
        "attrs": "JSON",
    }
    common: ClassVar[dict[str, str]] = {
        "event_time": (
            "CASE WHEN timeNano IS NOT NULL "
            "THEN CAST(make_timestamp(timeNano // 1000) AS VARCHAR) "
            # the CLI docs print Go's layout by mistake: "...999999999Z07:00" means Z
            "ELSE regexp_replace(time, 'Z[0-9]{2}:[0-9]{2}$', 'Z') END"
        ),
        "event_type": first(
            "lower(Type) || '.' || coalesce(Action, status)",
            "CASE WHEN status IS NOT NULL THEN 'container.' || status END",
            "CASE WHEN log IS NOT NULL THEN 'log.' || coalesce(stream, 'stdout') END",
        ),
        "outcome": (
            "CASE WHEN coalesce(Action, status) = 'oom' THEN 'failure' "
            "WHEN coalesce(Action, status) = 'die' AND Actor.Attributes ->> 'exitCode' <> '0' "
            "THEN 'failure' "
            "WHEN coalesce(Action, status) = 'die' AND Actor.Attributes ->> 'exitCode' = '0' "
            "THEN 'success' END"
        ),
        "host": "nullif(Actor.Attributes ->> 'com.docker.swarm.node.id', '')",
        "message": first(
            "rtrim(log, chr(10) || chr(13))",
            "concat_ws(' ', Type, coalesce(Action, status), coalesce(Actor.Attributes ->> 'name',"
            " Actor.ID, id), '(' || coalesce(Actor.Attributes ->> 'image', \"from\") || ')')",
        ),
        "_error": (
            "CASE WHEN _json IS NULL THEN 'not a Docker event or json-file log line' "
            "WHEN coalesce(Type, Action, status, log) IS NULL "
            "THEN 'not a Docker event or json-file log line: no Type, Action, status or log' END"
        ),
    }

    def native_sql(self) -> str:
        struct = json.dumps(self.structure).replace("'", "''")
        pat = _TEXT_EVENT.replace("'", "''")
        # "k=v, k=v" attributes of the text form → a JSON object
        attrs = (
            "'{' || array_to_string(list_transform(string_split(regexp_extract(raw, '"
            + pat
            + "', 5), ', '), lambda kv: to_json(split_part(kv, '=', 1)) || ':' || "
            "to_json(substr(kv, strpos(kv, '=') + 1))), ',') || '}'"
        )
        text_json = (
            "json_object('Type', regexp_extract(raw, '" + pat + "', 2), "
            "'Action', regexp_extract(raw, '" + pat + "', 3), "
            "'Actor', json_object('ID', regexp_extract(raw, '" + pat + "', 4), "
            "'Attributes', CASE WHEN regexp_extract(raw, '" + pat + "', 5) <> '' "
            f"THEN CAST({attrs} AS JSON) ELSE '{{}}'::JSON END), "
            "'time', regexp_extract(raw, '" + pat + "', 1))"
        )
        framed = (
            "SELECT line, raw, file, ctx, CASE "
            "WHEN json_valid(raw) AND json_type(raw) = 'OBJECT' THEN raw "
            f"WHEN regexp_matches(raw, '{pat}') THEN CAST({text_json} AS VARCHAR) END AS _json "
            "FROM input"
        )
        return (
            f"SELECT line, raw, file, ctx, _json, UNNEST(json_transform(_json, '{struct}')) "
            f"FROM ({framed})"
        )

    def sniff(self, sample: list[str]) -> float:
        import re

        hits = 0
        for line in sample:
            s = line.strip()
            if re.match(_TEXT_EVENT, s):
                hits += 1
                continue
            try:
                obj = json.loads(s)
            except ValueError:
                continue
            if isinstance(obj, dict) and (
                {"Type", "Action", "Actor"} <= obj.keys() or {"log", "stream", "time"} <= obj.keys()
            ):
                hits += 1
        return hits / len(sample) if sample else 0.0
