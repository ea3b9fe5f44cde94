-- The instances of one account for the /metric account card: every instance in the
-- registry (sourcegraph_analytics.instances) licensed at some point of the period, with
-- its most recent ping of the period (NULL columns when it sent none), the version it ran
-- and how many releases (sourcegraph_analytics.releases, out by the period's end) came
-- after that version.
WITH latest AS (
  SELECT instance_id, checked_at, version, deployment_type, hosting_type,
         code_hosts, repo_count
  FROM sourcegraph_analytics.update_checks
  WHERE checked_at >= @start_ts AND checked_at < @end_ts
    AND LOWER(account_name) = LOWER(@account)
  QUALIFY ROW_NUMBER() OVER (PARTITION BY instance_id ORDER BY checked_at DESC) = 1
),
ranked AS (
  SELECT version, ROW_NUMBER() OVER (ORDER BY released_on DESC) - 1 AS behind
  FROM sourcegraph_analytics.releases
  WHERE released_on <= @end_date
),
newest AS (
  SELECT version AS latest_version FROM ranked WHERE behind = 0
),
registry AS (
  SELECT instance_id, hosting_type, deployment_type, telemetry_status
  FROM sourcegraph_analytics.instances
  WHERE LOWER(account_name) = LOWER(@account)
    AND licensed_from <= @end_date
    AND (licensed_until IS NULL OR licensed_until >= @start_date)
)
SELECT registry.instance_id AS instance_id,
       COALESCE(latest.hosting_type, registry.hosting_type) AS hosting_type,
       COALESCE(latest.deployment_type, registry.deployment_type) AS deployment_type,
       registry.telemetry_status AS telemetry_status,
       latest.checked_at AS last_ping,
       latest.version AS version,
       ranked.behind AS releases_behind,
       newest.latest_version AS latest_version,
       latest.code_hosts AS code_hosts,
       latest.repo_count AS repo_count
FROM registry
LEFT JOIN latest ON latest.instance_id = registry.instance_id
LEFT JOIN ranked ON ranked.version = latest.version
LEFT JOIN newest ON TRUE
ORDER BY instance_id
