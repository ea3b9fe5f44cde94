-- Cody Pro: SSC vs Stripe active subscribers on one Pacific date D (parameter: date DATE).
-- (No at-sign names in comments: the BigQuery emulator counts them as parameters.)
-- bot/cody_pro.py swaps `stripe.` for the configured Stripe dataset (CODY_STRIPE_DATASET).
-- "Active on D" is the same date rule on both sides: started on or before D (Pacific) and
-- not ended on or before D. Stripe's `status` is its status now, not on D: a subscription
-- Stripe calls canceled (or unpaid, incomplete...) without an end date is not active, as
-- Stripe's own dashboard counts it. A Stripe subscription without an SSC user id can never
-- match: it counts as Stripe-only.
WITH ssc_active AS (
  SELECT DISTINCT user_id AS user_key
  FROM ssc.subscriptions
  WHERE DATE(started_at, 'America/Los_Angeles') <= @date
    AND (ended_at IS NULL OR DATE(ended_at, 'America/Los_Angeles') > @date)
),
stripe_active AS (
  SELECT DISTINCT COALESCE(ssc_user_id, CONCAT('stripe:', stripe_subscription_id)) AS user_key
  FROM stripe.subscriptions
  WHERE DATE(created, 'America/Los_Angeles') <= @date
    AND (
      DATE(ended_at, 'America/Los_Angeles') > @date
      OR (ended_at IS NULL AND status IN ('active', 'trialing', 'past_due'))
    )
)
SELECT
  (SELECT COUNT(*) FROM ssc_active) AS ssc_active,
  (SELECT COUNT(*) FROM stripe_active) AS stripe_active,
  (SELECT COUNT(*) FROM ssc_active INNER JOIN stripe_active USING (user_key)) AS matched
