WITH scan AS (
  SELECT
    `source`,
    `event_id`,
    `event_type`,
    `outcome`,
    `user`,
    `src_ip`,
    `dst_ip`,
    `user_agent`,
    `geo_country`,
    `geo_city`,
    `host`,
    `message`,
    `trace_id`,
    `sourceIPAddress`,
    `event_time` AS event_time,
    COALESCE(CAST(`user` AS STRING), CAST(`src_ip` AS STRING), CAST(`host` AS STRING), '') AS g0,
    CASE
      WHEN (
        (
          (
            LOWER(`sourceIPAddress`) LIKE '10.%'
          )
          OR (
            LOWER(`sourceIPAddress`) LIKE '172.16.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.17.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.18.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.19.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.20.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.21.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.22.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.23.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.24.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.25.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.26.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.27.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.28.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.29.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.30.%'
            OR LOWER(`sourceIPAddress`) LIKE '172.31.%'
          )
          OR (
            LOWER(`sourceIPAddress`) LIKE '2001:db8:%'
          )
        )
      )
      THEN 1
      ELSE 0
    END AS m0
  FROM cloudtrail
  WHERE
    `event_time` >= CAST('2026-11-01T00:00:00+00:00' AS TIMESTAMP)
    AND `event_time` < CAST('2026-11-01T01:00:00+00:00' AS TIMESTAMP)
    AND (
      (
        (
          LOWER(`sourceIPAddress`) LIKE '10.%'
        )
        OR (
          LOWER(`sourceIPAddress`) LIKE '172.16.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.17.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.18.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.19.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.20.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.21.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.22.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.23.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.24.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.25.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.26.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.27.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.28.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.29.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.30.%'
          OR LOWER(`sourceIPAddress`) LIKE '172.31.%'
        )
        OR (
          LOWER(`sourceIPAddress`) LIKE '2001:db8:%'
        )
      )
    )
), r AS (
  SELECT
    'e11e9781-55b1-5a17-9199-369530d34d07' AS rule_id,
    0 AS k
), hits AS (
  SELECT
    r.rule_id,
    r.rule_id AS ref,
    `scan`.`source`,
    `scan`.`event_id`,
    `scan`.`event_type`,
    `scan`.`outcome`,
    `scan`.`user`,
    `scan`.`src_ip`,
    `scan`.`dst_ip`,
    `scan`.`user_agent`,
    `scan`.`geo_country`,
    `scan`.`geo_city`,
    `scan`.`host`,
    `scan`.`message`,
    `scan`.`trace_id`,
    `scan`.`sourceIPAddress`,
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
    ROW_NUMBER() OVER (PARTITION BY rule_id, g0 ORDER BY event_time NULLS LAST, `event_id` NULLS LAST) AS rn
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
