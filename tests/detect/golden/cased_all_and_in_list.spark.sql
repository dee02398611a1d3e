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
    `errorMessage`,
    `eventName`,
    `userAgent`,
    `event_time` AS event_time,
    COALESCE(CAST(`user` AS STRING), CAST(`src_ip` AS STRING), CAST(`host` AS STRING), '') AS g0,
    CASE
      WHEN (
        (
          (
            LOWER(`eventName`) IN ('createuser', 'deleteuser', 'createrole')
          )
          AND (
            `errorMessage` = 'Denied'
          )
          AND (
            (
              LOWER(`userAgent`) LIKE '%boto3%'
            )
            AND (
              LOWER(`userAgent`) LIKE '%python%'
            )
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
          LOWER(`eventName`) IN ('createuser', 'deleteuser', 'createrole')
        )
        AND (
          `errorMessage` = 'Denied'
        )
        AND (
          (
            LOWER(`userAgent`) LIKE '%boto3%'
          )
          AND (
            LOWER(`userAgent`) LIKE '%python%'
          )
        )
      )
    )
), r AS (
  SELECT
    'f8eb151f-ab3f-5cd3-93a4-5835e3c65d62' AS rule_id,
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
    `scan`.`errorMessage`,
    `scan`.`eventName`,
    `scan`.`userAgent`,
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
