WITH scan AS (
  SELECT
    "source",
    "event_id",
    "event_type",
    "outcome",
    "user",
    "src_ip",
    "dst_ip",
    "user_agent",
    "geo_country",
    "geo_city",
    "host",
    "message",
    "trace_id",
    "eventType",
    "event_time" AS event_time,
    COALESCE(CAST("user" AS TEXT), CAST("src_ip" AS TEXT), CAST("host" AS TEXT), '') AS g0,
    CASE
      WHEN (
        (
          (
            LOWER("eventType") = 'user.session.impersonation.initiate'
          )
          AND (
            list_bool_or([LOWER(__e) LIKE '%@admin.example.com' FOR __e IN json_extract_string("target", '$[*]."alternateId"')])
          )
        )
      )
      THEN 1
      ELSE 0
    END AS m0
  FROM okta
  WHERE
    "event_time" >= CAST('2026-11-01T00:00:00+00:00' AS TIMESTAMPTZ)
    AND "event_time" < CAST('2026-11-01T01:00:00+00:00' AS TIMESTAMPTZ)
    AND (
      (
        (
          LOWER("eventType") = 'user.session.impersonation.initiate'
        )
        AND (
          list_bool_or([LOWER(__e) LIKE '%@admin.example.com' FOR __e IN json_extract_string("target", '$[*]."alternateId"')])
        )
      )
    )
), r AS (
  SELECT
    'ee62ed7e-a7f4-50aa-8bef-e14e458332d1' AS rule_id,
    0 AS k
), hits AS (
  SELECT
    r.rule_id,
    r.rule_id AS ref,
    "scan"."source",
    "scan"."event_id",
    "scan"."event_type",
    "scan"."outcome",
    "scan"."user",
    "scan"."src_ip",
    "scan"."dst_ip",
    "scan"."user_agent",
    "scan"."geo_country",
    "scan"."geo_city",
    "scan"."host",
    "scan"."message",
    "scan"."trace_id",
    "scan"."eventType",
    scan.event_time,
    scan.g0
  FROM scan
  CROSS JOIN r
  WHERE
    (
      r.k = 0 AND scan.m0 = 1
    )
), ev AS (
  SELECT
    hits.*,
    COUNT(*) OVER (PARTITION BY rule_id, g0) AS match_count,
    MIN(event_time) OVER (PARTITION BY rule_id, g0) AS first_seen,
    MAX(event_time) OVER (PARTITION BY rule_id, g0) AS last_seen,
    COUNT(*) OVER (PARTITION BY rule_id, g0) AS agg_value,
    ROW_NUMBER() OVER (PARTITION BY rule_id, g0 ORDER BY event_time, "event_id") AS rn
  FROM hits
)
SELECT
  *
FROM ev
WHERE
  rn <= 20
ORDER BY
  rule_id,
  g0,
  rn
