-- Cody Pro daily fields: the one definition (DOMAIN.md, "Cody Pro reporting").
-- Source of truth: SSC. Dates are Pacific (America/Los_Angeles) calendar dates.
-- Params: start_date DATE, end_date DATE, price_usd FLOAT64 (price per user per month).
-- One row per date from start_date to end_date inclusive, zero-activity dates included.
-- (No at-sign names in comments: the BigQuery emulator counts them as parameters.)
WITH dates AS (
  SELECT day FROM UNNEST(GENERATE_DATE_ARRAY(@start_date, @end_date)) AS day
),
subs AS (
  SELECT
    user_id,
    DATE(started_at, 'America/Los_Angeles') AS start_day,
    DATE(ended_at, 'America/Los_Angeles') AS end_day
  FROM ssc.subscriptions
  WHERE DATE(started_at, 'America/Los_Angeles') <= @end_date
    AND (ended_at IS NULL OR DATE(ended_at, 'America/Los_Angeles') >= @start_date)
),
cycles AS (
  SELECT
    DATE(cycle_start, 'America/Los_Angeles') AS day,
    COUNT(DISTINCT IF(cycle_number = 1, user_id, NULL)) AS new_subscribers,
    COUNT(DISTINCT IF(cycle_number >= 2, user_id, NULL)) AS retained_subscribers
  FROM ssc.billing_cycles
  WHERE DATE(cycle_start, 'America/Los_Angeles') BETWEEN @start_date AND @end_date
  GROUP BY day
),
active AS (
  SELECT dates.day, COUNT(DISTINCT subs.user_id) AS active_subscribers
  FROM dates
  JOIN subs
    ON subs.start_day <= dates.day AND (subs.end_day IS NULL OR subs.end_day > dates.day)
  GROUP BY dates.day
),
canceled AS (
  SELECT end_day AS day, COUNT(DISTINCT user_id) AS canceled_subscribers
  FROM subs
  WHERE end_day BETWEEN @start_date AND @end_date
  GROUP BY end_day
),
counts AS (
  SELECT
    dates.day,
    COALESCE(cycles.new_subscribers, 0) AS new_subscribers,
    COALESCE(cycles.retained_subscribers, 0) AS retained_subscribers,
    COALESCE(canceled.canceled_subscribers, 0) AS canceled_subscribers,
    COALESCE(active.active_subscribers, 0) AS active_subscribers
  FROM dates
  LEFT JOIN cycles ON cycles.day = dates.day
  LEFT JOIN canceled ON canceled.day = dates.day
  LEFT JOIN active ON active.day = dates.day
)
SELECT
  day AS date,
  new_subscribers + retained_subscribers AS daily_subscribers,
  new_subscribers,
  retained_subscribers,
  canceled_subscribers,
  active_subscribers,
  (new_subscribers + retained_subscribers) * @price_usd AS daily_revenue,
  new_subscribers * @price_usd AS daily_revenue_added,
  retained_subscribers * @price_usd AS daily_revenue_retained,
  active_subscribers * @price_usd AS mrr,
  active_subscribers * @price_usd * 12 AS arr
FROM counts
ORDER BY date
