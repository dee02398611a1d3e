WITH scan AS (
  SELECT
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
    [eventType] AS [eventType],
    [event_time] AS event_time,
    COALESCE(
      CAST([user] AS NVARCHAR(4000)),
      CAST([src_ip] AS NVARCHAR(4000)),
      CAST([host] AS NVARCHAR(4000)),
      ''
    ) AS g0,
    CASE
      WHEN (
        (
          (
            LOWER([eventType]) = 'user.session.impersonation.initiate'
          )
          AND (
            EXISTS(SELECT 1 FROM OPENJSON([target], '$') AS __e WHERE LOWER(JSON_VALUE(__e.value, '$."alternateId"')) LIKE '%@admin.example.com')
          )
        )
      )
      THEN 1
      ELSE 0
    END AS m0
  FROM okta
  WHERE
    [event_time] >= CAST('2026-11-01T00:00:00+00:00' AS DATETIMEOFFSET)
    AND [event_time] < CAST('2026-11-01T01:00:00+00:00' AS DATETIMEOFFSET)
    AND (
      (
        (
          LOWER([eventType]) = 'user.session.impersonation.initiate'
        )
        AND (
          EXISTS(SELECT 1 FROM OPENJSON([target], '$') AS __e WHERE LOWER(JSON_VALUE(__e.value, '$."alternateId"')) LIKE '%@admin.example.com')
        )
      )
    )
), r AS (
  SELECT
    'ee62ed7e-a7f4-50aa-8bef-e14e458332d1' AS rule_id,
    0 AS k
), hits AS (
  SELECT
    r.rule_id AS rule_id,
    r.rule_id AS ref,
    [scan].[source] AS [source],
    [scan].[event_id] AS [event_id],
    [scan].[event_type] AS [event_type],
    [scan].[outcome] AS [outcome],
    [scan].[user] AS [user],
    [scan].[src_ip] AS [src_ip],
    [scan].[dst_ip] AS [dst_ip],
    [scan].[user_agent] AS [user_agent],
    [scan].[geo_country] AS [geo_country],
    [scan].[geo_city] AS [geo_city],
    [scan].[host] AS [host],
    [scan].[message] AS [message],
    [scan].[trace_id] AS [trace_id],
    [scan].[eventType] AS [eventType],
    scan.event_time AS event_time,
    scan.g0 AS g0
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
    ROW_NUMBER() OVER (
      PARTITION BY rule_id, g0
      ORDER BY CASE WHEN event_time IS NULL THEN 1 ELSE 0 END, event_time, CASE WHEN [event_id] IS NULL THEN 1 ELSE 0 END, [event_id]
    ) AS rn
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
