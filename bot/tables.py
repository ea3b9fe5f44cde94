"""The state database's tables (SQLAlchemy Core). Schema changes are Alembic migrations
in bot/migrations/versions/; this module must describe the schema after the last one.

Times are stored as timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

metadata = sa.MetaData()


class UtcDateTime(sa.TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the state store; use aware UTC")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


kv = sa.Table(
    "kv",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# One row per thing that must happen at most once (a webhook delivery, a Slack retry).
dedupe_keys = sa.Table(
    "dedupe_keys",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# The intake outbox: a request is stored here before GitHub is called, so none is lost.
requests = sa.Table(
    "requests",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    # One issue per submission (Slack retries, double clicks) ...
    sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
    # ... and one per Slack thread ("C123:1700000000.000100"), when it came from one.
    sa.Column("thread_key", sa.String(100), nullable=True, unique=True),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("request_type", sa.String(100), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("requester_id", sa.String(50), nullable=False),
    sa.Column("channel_id", sa.String(50), nullable=True),
    sa.Column("thread_ts", sa.String(50), nullable=True),
    sa.Column("permalink", sa.Text, nullable=True),
    sa.Column("issue_number", sa.Integer, nullable=True),
    sa.Column("issue_url", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
    # A worker holds a lease while it calls GitHub, so two workers never file one request.
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("notified_at", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# One Slack message per urgent issue, updated in place.
urgent_alerts = sa.Table(
    "urgent_alerts",
    metadata,
    sa.Column("repo", sa.String(200), primary_key=True),
    sa.Column("issue_number", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String(50), nullable=False),
    sa.Column("ts", sa.String(50), nullable=True),
    sa.Column("state_hash", sa.String(64), nullable=True),
    sa.Column("state", sa.JSON, nullable=True),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# Every scheduled post, keyed (job, period) before it goes out: exactly once per period.
scheduled_runs = sa.Table(
    "scheduled_runs",
    metadata,
    sa.Column("job", sa.String(50), primary_key=True),
    sa.Column("period", sa.String(50), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("channel", sa.String(50), nullable=True),
    sa.Column("ts", sa.String(50), nullable=True),
    sa.Column("permalink", sa.Text, nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# Replies in a request's Slack thread, mirrored to its GitHub issue as comments: one row per
# Slack message (channel, ts), stored before GitHub is called, posted once (an outbox).
thread_mirrors = sa.Table(
    "thread_mirrors",
    metadata,
    sa.Column("channel_id", sa.String(50), primary_key=True),
    sa.Column("ts", sa.String(50), primary_key=True),
    sa.Column("request_id", sa.String(36), nullable=False, index=True),
    sa.Column("event_id", sa.String(100), nullable=True),
    sa.Column("user_id", sa.String(50), nullable=True),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# Metric subscriptions and alerts (bot/subscriptions/): one row per item, made whole or not
# at all. Deliveries are scheduled_runs rows under job "sub-<id>" / "alert-<id>".
metric_subscriptions = sa.Table(
    "metric_subscriptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("metric", sa.String(100), nullable=False),
    sa.Column("period_text", sa.String(60), nullable=True),
    sa.Column("account", sa.String(100), nullable=True),
    sa.Column("by", sa.String(40), nullable=True),  # `by DIMENSION`, a Dimension value
    sa.Column("channel", sa.String(50), nullable=False, index=True),
    sa.Column("creator", sa.String(50), nullable=False, index=True),
    sa.Column("schedule", sa.JSON, nullable=True),
    sa.Column("rule", sa.JSON, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("status_reason", sa.Text, nullable=True),
    sa.Column("snoozed_until", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    # SQLite would reuse a deleted item's id (and `sub-N` its runs) without AUTOINCREMENT.
    sqlite_autoincrement=True,
)

# Each alert's result per complete period: what re-arms it (false for a whole period).
metric_alert_checks = sa.Table(
    "metric_alert_checks",
    metadata,
    sa.Column("alert_id", sa.Integer, primary_key=True),
    sa.Column("period", sa.String(50), primary_key=True),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# What databot last told a request's requester about its issue (bot/followup/): the issue as
# last seen, so a webhook, its redelivery and the poller each find a change once.
followup_issues = sa.Table(
    "followup_issues",
    metadata,
    sa.Column("repo", sa.String(200), primary_key=True),
    sa.Column("issue_number", sa.Integer, primary_key=True),
    sa.Column("snapshot", sa.JSON, nullable=False),
    # GitHub's updated_at of the snapshot: an older view (a late webhook) never undoes it.
    sa.Column("github_updated_at", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# Lookup results shared by every replica (`/metric`): one row per warehouse query and its
# parameters. A replica claims a key (status 'running', with a lease) before it queries;
# the others wait for the row to turn 'done' (rows, until expires_at) or 'failed' (the
# user-safe message, briefly, so a failing query is not re-run by each waiter).
lookup_cache = sa.Table(
    "lookup_cache",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("rows", sa.Text, nullable=True),
    sa.Column("expires_at", UtcDateTime(), nullable=True, index=True),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
