WITH hits AS (
  SELECT
    'e31082db-b077-5cf7-9023-652f76d48f6a' AS rule_id,
    'e31082db-b077-5cf7-9023-652f76d48f6a' AS ref,
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
    "event_time" AS event_time,
    COALESCE("sourceIPAddress", '') AS g0,
    CAST(FLOOR(epoch("event_time") / 300) AS BIGINT) AS bucket
  FROM cloudtrail
  WHERE
    "event_time" >= CAST('2026-11-01T00:00:00+00:00' AS TIMESTAMPTZ)
    AND "event_time" < CAST('2026-11-01T01:00:00+00:00' AS TIMESTAMPTZ)
    AND (
      LOWER("eventName") = 'consolelogin'
    )
), ev AS (
  SELECT
    hits.*,
    COUNT(*) OVER (PARTITION BY rule_id, g0, bucket) AS match_count,
    MIN(event_time) OVER (PARTITION BY rule_id, g0, bucket) AS first_seen,
    MAX(event_time) OVER (PARTITION BY rule_id, g0, bucket) AS last_seen,
    COUNT(*) OVER (PARTITION BY rule_id, g0, bucket) AS agg_value,
    ROW_NUMBER() OVER (PARTITION BY rule_id, g0, bucket ORDER BY event_time, "event_id") AS rn
  FROM hits
)
SELECT
  *
FROM ev
WHERE
  rn <= 20 AND agg_value > 10.0
ORDER BY
  rule_id,
  g0,
  bucket,
  rn
