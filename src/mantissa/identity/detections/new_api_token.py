"""New API token / access key / app secret created by an actor who does not routinely
create them (fewer than ``new_api_token.routine_tokens`` in their baseline)
(MITRE T1098.001)."""

from __future__ import annotations

from typing import Any

from mantissa.alerts.model import Severity
from mantissa.identity.detections.base import Context, Detection


class NewApiToken(Detection):
    name = "new_api_token"
    title = "API token created by an unusual actor"
    stage = "persistence"
    attack = ("attack.persistence", "attack.t1098.001")

    def find(self, ctx: Context) -> list[dict[str, Any]]:
        s = ctx.config.new_api_token
        return ctx.rows(
            f"""
SELECT e.actor AS "user", any_value(e.provider) AS provider, any_value(e.user_id) AS user_id,
  any_value(e.session_id) AS session_id, any_value(e.src_ip) AS src_ip,
  list(DISTINCT e.target) AS targets, min(e.event_time) AS first_seen,
  max(e.event_time) AS last_seen, count(*) AS n, coalesce(any_value(b.tokens), 0) AS tokens,
  any_value(b."user") IS NULL AS no_baseline, list(e.event_id ORDER BY e.event_time)[1:20] AS ids
FROM ev e LEFT JOIN bl b ON b."user" = e.actor
WHERE e.in_window AND e.action = 'token_create' AND e.outcome IS DISTINCT FROM 'failure'
  AND e.actor IS NOT NULL AND coalesce(b.tokens, 0) < {s.routine_tokens}
GROUP BY e.actor
"""
        )

    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        targets = ", ".join(t for t in row["targets"] if t) or "itself"
        text = (
            f"{row['user']} created {row['n']} API token(s)/key(s)/secret(s) for {targets} on "
            f"{row['provider']} from {row['src_ip']}; they created {row['tokens']} before "
            f"(routine from {ctx.config.new_api_token.routine_tokens})"
            + ("; the actor has no sign-in baseline" if row["no_baseline"] else "")
        )
        sev = Severity.high if row["no_baseline"] else Severity.medium
        return text, sev, {"tokens_before": row["tokens"]}
