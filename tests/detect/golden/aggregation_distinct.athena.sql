WITH hits AS (
  SELECT
    '32644e99-631b-5264-a745-93109c645df2' AS rule_id,
    '32644e99-631b-5264-a745-93109c645df2' AS ref,
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
    COALESCE("user", '') AS g0,
    CAST(FLOOR(CAST(to_unixtime("event_time") AS DOUBLE) / 900) AS BIGINT) AS bucket,
    COALESCE(json_extract_scalar("requestParameters", '$["secretId"]'), '') AS agg_field
  FROM cloudtrail
  WHERE
    "event_time" >= CAST('2026-11-01T00:00:00+00:00' AS TIMESTAMP WITH TIME ZONE)
    AND "event_time" < CAST('2026-11-01T01:00:00+00:00' AS TIMESTAMP WITH TIME ZONE)
    AND (
      (
        LOWER("eventSource") = 'secretsmanager.amazonaws.com'
      )
      AND COALESCE(json_extract_scalar("requestParameters", '$["secretId"]'), '') <> ''
    )
), ev AS (
  SELECT
    hits.*,
    COUNT(*) OVER (PARTITION BY rule_id, g0, bucket) AS match_count,
    MIN(event_time) OVER (PARTITION BY rule_id, g0, bucket) AS first_seen,
    MAX(event_time) OVER (PARTITION BY rule_id, g0, bucket) AS last_seen,
    DENSE_RANK() OVER (PARTITION BY rule_id, g0, bucket ORDER BY agg_field) + DENSE_RANK() OVER (PARTITION BY rule_id, g0, bucket ORDER BY agg_field DESC) - 1 AS agg_value,
    ROW_NUMBER() OVER (PARTITION BY rule_id, g0, bucket ORDER BY event_time, "event_id") AS rn
  FROM hits
)
SELECT
  *
FROM ev
WHERE
  rn <= 20 AND agg_value >= 5.0
ORDER BY
  rule_id,
  g0,
  bucket,
  rn
