WITH hits AS (
  SELECT
    '32644e99-631b-5264-a745-93109c645df2' AS rule_id,
    '32644e99-631b-5264-a745-93109c645df2' AS ref,
    [source] AS [source],
    [event_id] AS [event_id],
    [event_type] AS [event_type],
    [outcome] AS [outcome],
    [user] AS [user],
    [src_ip] AS [src_ip],
    [dst_ip] AS [dst_ip],
    [user_agent] AS [user_agent],
    [geo_country] AS [geo_country],
    [geo_city] AS [geo_city],
    [host] AS [host],
    [message] AS [message],
    [trace_id] AS [trace_id],
    [event_time] AS event_time,
    COALESCE([user], '') AS g0,
    CAST(FLOOR(CAST(DATEDIFF_BIG(SECOND, '1970-01-01T00:00:00', [event_time]) AS FLOAT) / 900) AS BIGINT) AS bucket,
    COALESCE(JSON_VALUE([requestParameters], '$."secretId"'), '') AS agg_field
  FROM cloudtrail
  WHERE
    [event_time] >= CAST('2026-11-01T00:00:00+00:00' AS DATETIMEOFFSET)
    AND [event_time] < CAST('2026-11-01T01:00:00+00:00' AS DATETIMEOFFSET)
    AND (
      (
        LOWER([eventSource]) = 'secretsmanager.amazonaws.com'
      )
      AND COALESCE(JSON_VALUE([requestParameters], '$."secretId"'), '') <> ''
    )
), ev AS (
  SELECT
    hits.*,
    COUNT(*) OVER (PARTITION BY rule_id, g0, bucket) AS match_count,
    MIN(event_time) OVER (PARTITION BY rule_id, g0, bucket) AS first_seen,
    MAX(event_time) OVER (PARTITION BY rule_id, g0, bucket) AS last_seen,
    DENSE_RANK() OVER (
      PARTITION BY rule_id, g0, bucket
      ORDER BY CASE WHEN agg_field IS NULL THEN 1 ELSE 0 END, agg_field
    ) + DENSE_RANK() OVER (PARTITION BY rule_id, g0, bucket ORDER BY agg_field DESC) - 1 AS agg_value,
    ROW_NUMBER() OVER (
      PARTITION BY rule_id, g0, bucket
      ORDER BY CASE WHEN event_time IS NULL THEN 1 ELSE 0 END, event_time, CASE WHEN [event_id] IS NULL THEN 1 ELSE 0 END, [event_id]
    ) AS rn
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
