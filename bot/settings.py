"""All configuration, read from the environment (and `.env`) by pydantic-settings.

Field names are lowercase; the environment variable is the same name in upper case
(`slack_bot_token` <- `SLACK_BOT_TOKEN`). Secrets are `SecretStr` and are unwrapped only
where a client is built. Nothing here reads the environment at import time: `__main__`
(bot.cli) builds one `Settings` and passes it down; tests build them with explicit values.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.cron import check_cron
from bot.ids import Job

# Every reported day is a Pacific calendar date (DOMAIN.md), whatever TIMEZONE says:
# TIMEZONE only moves schedules. One constant, used by every feature that reports a day.
REPORTING_TZ = ZoneInfo("America/Los_Angeles")


def utc_now() -> dt.datetime:
    """The one wall clock (aware UTC). Code under test reads `deps.now` instead."""
    return dt.datetime.now(dt.UTC)


# Cron per job id (bot.ids.Job values), in settings.timezone; JOB_SCHEDULES overrides.
DEFAULT_JOB_SCHEDULES: dict[str, str] = {
    "sprint-digest": "0 9 * * mon",
    "sprint-planning": "0 10 * * thu",
    "sprint-checkin": "0 10 * * fri",
    "urgent-reminder": "0 9 * * *",
    "rollups": "30 3 * * *",
}


# What a requester can hear about their request's issue (bot.followup.model.Change values).
FOLLOWUP_CHANGE_KINDS = (
    "assigned",
    "scheduled",
    "comment",
    "delivered",
    "not-planned",
    "reopened",
    "urgent",
)


# Slack ids (api.slack.com/types): public/private channels C/G, DMs D; users U/W. A channel
# may also be given as #name (resolved to its id where Slack needs one).
SLACK_CHANNEL_ID = re.compile(r"^([CGD][A-Z0-9]+|#[a-z0-9][a-z0-9._-]*)$")
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
# State database URLs `Settings.state_url` can open (psycopg is the installed driver).
SUPPORTED_DATABASE_DRIVERS = {
    "sqlite",
    "sqlite+pysqlite",
    "postgres",
    "postgresql",
    "postgresql+psycopg",
}
DATABASE_URL_EXAMPLES = "postgresql://user:pass@host:5432/db or sqlite:///path/state.db"


# The groups of the team's support model (DOMAIN.md, "Who handles a request").
DEFAULT_BUSINESS_UNITS = [
    "Product/Engineering",
    "Customer Engineering",
    "Sales and Ops",
    "Marketing",
    "Customer Support",
    "People/Recruiting",
    "Finance",
]
# THREAD_MIRROR_CHANNELS value meaning every channel.
ALL_CHANNELS = "*"


class Analyst(BaseModel):
    """An analyst as the settings name them: who to assign on GitHub, who to ping on Slack."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    github: str = Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
    slack: str = Field(pattern=r"^[UW][A-Z0-9]+$")
    name: str | None = None

    @property
    def display(self) -> str:
        return self.name or f"@{self.github}"


def _slack_ids(value: list[str], pattern: re.Pattern[str], what: str) -> list[str]:
    ids = [item.strip() for item in value]
    if bad := [item for item in ids if not pattern.match(item)]:
        listed = ", ".join(map(repr, bad))
        raise ValueError(f"{listed} is not a Slack id; give a JSON list of {what}")
    return ids


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- Slack -----------------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(
        None, description="Bot token (xoxb-...). Needed to post anything."
    )
    slack_signing_secret: SecretStr | None = Field(
        None, description="Verifies that HTTP requests come from Slack. Needed for HTTP mode."
    )
    slack_app_token: SecretStr | None = Field(
        None, description="App-level token (xapp-...). When set, `serve` uses Socket Mode."
    )
    slack_api_url: str = Field(
        "https://slack.com/api/", description="Slack Web API base URL (tests point it at loopback)."
    )
    slack_response_url_hosts: list[str] = Field(
        ["hooks.slack.com", "hooks.slack-gov.com"],
        description="Hosts of the response URLs Slack hands out; a payload's response_url "
        "elsewhere is never called (tests add the loopback stand-in).",
    )

    # --- HTTP server -----------------------------------------------------------------
    host: str = Field("0.0.0.0", description="Interface the HTTP server binds.")
    port: int = Field(3000, description="HTTP port (Heroku-style platforms set PORT).")
    listener_threads: int = Field(
        32,
        description="Web server threads, and Bolt's listener pool for the listeners that "
        "call Slack after their ack (opening a modal, events); /metric and its buttons run "
        "in the request's thread. Slow work is on WORKER_THREADS.",
    )
    worker_threads: int = Field(
        16,
        description="Pool for slow work (warehouse queries, GitHub calls) after the ack. "
        "It is mostly waiting on BigQuery and GitHub, and as many distinct queries run at "
        "once as there are workers (identical lookups share one and hold none).",
    )

    # --- State -----------------------------------------------------------------------
    data_dir: Path = Field(
        Path(".databot"), description="Where the SQLite state and the demo warehouse live."
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the state database; PostgreSQL in production. "
        "Default: SQLite file in DATA_DIR.",
    )

    # --- Warehouse -------------------------------------------------------------------
    gcp_project: str | None = Field(
        None, description="BigQuery project. Unset: the embedded DuckDB demo warehouse."
    )
    demo_warehouse: bool = Field(
        False,
        description="Let `serve` and `clock` run on the embedded demo warehouse (invented "
        "numbers) when GCP_PROJECT is unset; every answer and post then says 'demo data'. "
        "`databot demo`, `databot metric` and tests need no flag.",
    )
    bigquery_api_endpoint: str | None = Field(
        None, description="Override the BigQuery API endpoint (e.g. a local emulator)."
    )
    bigquery_location: str | None = Field(None, description="BigQuery job location, e.g. US.")
    bigquery_max_bytes_billed: int = Field(
        50 * 1024**3, description="Refuse any query that would bill more bytes than this."
    )
    query_timeout_seconds: float = Field(30.0, description="Per-query time limit.")
    rollup_dataset: str | None = Field(
        None,
        description="Dataset databot may write its per-day rollups to (a DuckDB schema on the "
        "demo warehouse); unset: no rollups, lookups read raw rows.",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
    )
    rollup_backfill_days: int = Field(
        100,
        ge=1,
        le=1000,
        description="Days behind yesterday the rollups job keeps built (and catches up).",
    )

    # --- GitHub ----------------------------------------------------------------------
    github_token: SecretStr | None = Field(
        None, description="Token with issues read/write on the analytics repo."
    )
    github_api_url: str = Field("https://api.github.com", description="GitHub REST API base URL.")
    github_repo: str = Field("acme/analytics", description="The analytics repo, owner/name.")
    github_webhook_secret: SecretStr | None = Field(
        None, description="Verifies X-Hub-Signature-256 on POST /github/webhook."
    )
    # GitHub client behaviour (intake): POSTs are never retried by the client itself.
    github_timeout_seconds: int = Field(15, description="Per-request GitHub timeout.")
    github_retries: int = Field(3, description="Retries of idempotent GitHub requests (GET...).")
    github_retry_backoff_seconds: float = Field(
        0.5, description="Backoff factor between those retries."
    )
    github_max_wait_seconds: float = Field(
        60.0,
        description="Longest rate-limit wait inside a call; longer waits are rescheduled.",
    )
    github_seconds_between_requests: float = Field(
        0.25, description="PyGithub's pause between requests (0 in tests)."
    )
    github_seconds_between_writes: float = Field(
        1.0, description="PyGithub's pause between writes (0 in tests)."
    )
    intake_poll_seconds: float = Field(
        15.0, description="How often the outbox worker looks for queued requests."
    )
    intake_forms_ttl_seconds: float = Field(
        900.0, description="How long the repo's issue forms are cached before a refresh."
    )

    # --- Logs --------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe log level written (`-v` means DEBUG)."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object per line, for a log pipeline."
    )

    # --- Team, channels, schedule ------------------------------------------------------
    timezone: str = Field(
        "America/Los_Angeles",
        description="Time zone of the schedules (cron). Reported days are always Pacific "
        "(DOMAIN.md's definitions).",
    )
    analytics_channel: str = Field(
        "#analytics", description="Channel (id or #name) for urgent issues and sprint posts."
    )
    owner_channel: str | None = Field(
        None, description="Where failed scheduled posts are reported (channel or user id)."
    )
    revenue_channels: list[str] = Field(
        default_factory=list,
        description="Channel ids where sensitive (revenue) metrics may be shown.",
    )
    revenue_users: list[str] = Field(
        default_factory=list, description="User ids who may see sensitive metrics anywhere."
    )

    # --- /metric -----------------------------------------------------------------------
    metric_cache_minutes: float = Field(
        15.0,
        description="How long an identical /metric lookup is answered from the cache "
        "(a metric's catalog entry may set its own cache_minutes).",
    )
    metric_still_working_seconds: float = Field(
        3.0, description="A /metric lookup running longer than this posts a 'still working' note."
    )

    # --- Urgent issues ----------------------------------------------------------------
    urgent_label: str = Field(
        "urgent", description="GitHub label that makes an issue show up in ANALYTICS_CHANNEL."
    )
    urgent_poll_interval_seconds: int = Field(
        60,
        ge=10,
        description="How often `clock` polls GitHub for urgent issues when webhooks are off "
        "(no GITHUB_WEBHOOK_SECRET). An unchanged repo costs one conditional request (304).",
    )
    urgent_reconcile_interval_seconds: int = Field(
        900,
        ge=10,
        description="With webhooks on, the slower poll that catches deliveries GitHub dropped "
        "(GitHub does not redeliver failed webhooks by itself).",
    )
    urgent_digest_hours: float | None = Field(
        None,
        gt=0,
        description="If set, a reminder lists urgent issues still open and unassigned after "
        "this many hours.",
    )

    # --- Request follow-ups (bot/followup/) ------------------------------------------------
    followup_changes: list[str] = Field(
        default_factory=lambda: list(FOLLOWUP_CHANGE_KINDS),
        description="JSON list of the changes of a filed request's issue that are told in its "
        "Slack thread (or the requester's DM): " + ", ".join(FOLLOWUP_CHANGE_KINDS) + "; [] "
        "tells none.",
    )
    followup_comments: Literal["all", "questions"] = Field(
        "questions",
        description="Which team comments are told: all, or questions only (the issue has "
        "FOLLOWUP_NEED_INFO_LABEL, or the comment names it or @requester).",
    )
    followup_need_info_label: str = Field(
        "needs-info", description="The label that marks a question to the requester."
    )
    followup_excerpt_chars: int = Field(
        500,
        ge=50,
        le=2000,
        description="How much of a comment is quoted in Slack; the reply links to the rest.",
    )

    # --- Scheduler and sprints (bot/scheduling/, bot/sprints/) ---------------------------
    job_schedules: dict[str, str] = Field(
        default_factory=dict,
        description="Cron strings (minute hour day month weekday, in TIMEZONE) per job id, "
        'JSON, e.g. {"sprint-digest": "0 9 * * mon"}; merged over the defaults; "off" '
        "disables a job. Standard cron: weekday 0 and 7 are Sunday, 1 is Monday; names "
        "(mon, mon-fri) work too.",
    )
    schedule_grace_minutes: int = Field(
        240,
        description="A run missed while the clock was down is caught up if the clock is back "
        "within this many minutes, else skipped (and recorded as skipped).",
    )
    not_ready_retry_minutes: int = Field(
        30, description="When a job's data is not ready (or its build failed), retry this often."
    )
    not_ready_give_up_minutes: int = Field(
        180,
        description="After this long, post a 'not ready yet' notice once, then keep checking "
        "until the end of the day and post the real message once it is ready.",
    )
    sprint_anchor: dt.date = Field(
        dt.date(2026, 1, 5),
        description="First Monday of any one sprint; sprints repeat every SPRINT_LENGTH_DAYS "
        "from it when the repo has no sprint milestones with due dates.",
    )
    sprint_length_days: int = Field(14, description="Sprint length in days (Monday to Sunday).")
    sprint_milestone_pattern: str = Field(
        r"(?i)\bsprint\b",
        description="Regex a milestone title must match to count as a sprint (with a due date).",
    )
    sprint_label: str | None = Field(
        None,
        description="Label marking the current sprint's issues, when sprints are not milestones.",
    )
    request_type_labels: list[str] = Field(
        default_factory=list,
        description="Labels naming request types, for grouping the digest. Empty: group by "
        "each issue's first label.",
    )
    sprint_plan_url: str | None = Field(
        None, description="Link to the plan 2-4 weeks out, shown in the sprint digest."
    )
    sprint_digest_channel: str | None = Field(
        None, description="Channel for sprint posts (default: ANALYTICS_CHANNEL)."
    )
    sprint_digest_enabled: bool = Field(True, description="Post the sprint Monday digest.")
    sprint_planning_enabled: bool = Field(
        False, description="Post a planning reminder the Thursday before a new sprint."
    )
    sprint_checkin_enabled: bool = Field(
        False, description="Post a mid-sprint check-in on the sprint's first Friday."
    )

    # --- Who handles a request (bot/support/) -------------------------------------------
    support_analysts: list[Analyst] = Field(
        default_factory=list,
        description='The support rotation, in order, JSON: [{"github": "ana", "slack": '
        '"U0ANA", "name": "Ana Lopez"}, ...]; one analyst a week from SUPPORT_ROTATION_START.',
    )
    support_rotation_start: dt.date = Field(
        dt.date(2026, 1, 5),
        description="A Monday on which the first analyst of SUPPORT_ANALYSTS was on support; "
        "weeks run Monday to Sunday in TIMEZONE.",
    )
    support_routing: Literal["assign", "mention", "off"] = Field(
        "assign",
        description="What a new request does with its analyst: assign them on GitHub, mention "
        "them in the issue, or neither.",
    )
    business_units: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BUSINESS_UNITS),
        description="The groups the request modal offers (JSON list); empty: no question.",
    )
    business_unit_analysts: dict[str, Analyst] = Field(
        default_factory=dict,
        description="Each group's aligned analyst, JSON: "
        '{"Finance": {"github": "dana", "slack": "U0DANA"}}; a group without one goes to the '
        "support rotation.",
    )
    business_unit_label_prefix: str = Field(
        "unit: ", description="The issue label of a group is this prefix and its name."
    )
    thread_mirror_channels: list[str] = Field(
        default_factory=list,
        description="Channel ids whose request threads are mirrored to GitHub (replies become "
        'issue comments), JSON; ["*"] for every channel; empty (default): off.',
    )

    @field_validator("support_rotation_start")
    @classmethod
    def _rotation_starts_on_monday(cls, value: dt.date) -> dt.date:
        if value.weekday() != 0:
            raise ValueError(f"{value} is a {value:%A}; the rotation starts on a Monday")
        return value

    @field_validator("business_units")
    @classmethod
    def _unit_names(cls, value: list[str]) -> list[str]:
        names = [v.strip() for v in value]
        if bad := [n for n in names if not n or len(n) > 75]:
            raise ValueError(f"{bad!r}: a group name is 1 to 75 characters")
        if len(set(names)) != len(names) or len(names) > 100:
            raise ValueError("group names must be unique, at most 100")
        return names

    @model_validator(mode="after")
    def _aligned_units_exist(self) -> Settings:
        if unknown := sorted(set(self.business_unit_analysts) - set(self.business_units)):
            raise ValueError(
                f"BUSINESS_UNIT_ANALYSTS names {', '.join(map(repr, unknown))}, not in "
                "BUSINESS_UNITS"
            )
        return self

    @field_validator("thread_mirror_channels")
    @classmethod
    def _mirror_channels(cls, value: list[str]) -> list[str]:
        if [v.strip() for v in value] == [ALL_CHANNELS]:
            return [ALL_CHANNELS]
        ids = [v.strip() for v in value]
        if bad := [v for v in ids if not re.match(r"^[CG][A-Z0-9]+$", v)]:
            raise ValueError(
                f"{', '.join(map(repr, bad))} is not a channel id; give a JSON list of ids "
                'like C0123ABCD, or ["*"] for every channel'
            )
        return ids

    def mirrors_channel(self, channel_id: str) -> bool:
        return self.thread_mirror_channels == [ALL_CHANNELS] or (
            channel_id in self.thread_mirror_channels
        )

    @field_validator("job_schedules")
    @classmethod
    def _merge_schedules(cls, value: dict[str, str]) -> dict[str, str]:
        merged = {**DEFAULT_JOB_SCHEDULES, **{k.strip(): v.strip() for k, v in value.items()}}
        for job, cron in merged.items():
            try:
                check_cron(cron)
            except ValueError as exc:
                raise ValueError(f"bad cron string for {job}: {exc}") from None
        return merged

    @field_validator("sprint_anchor")
    @classmethod
    def _anchor_is_monday(cls, value: dt.date) -> dt.date:
        if value.weekday() != 0:
            raise ValueError(f"{value} is a {value:%A}; the anchor is a sprint's first Monday")
        return value

    @field_validator("sprint_length_days")
    @classmethod
    def _whole_weeks(cls, value: int) -> int:
        if value < 7 or value % 7:
            raise ValueError("sprint length must be a whole number of weeks (7, 14, 21 ...)")
        return value

    # --- Cody Pro daily numbers (bot/cody/) ------------------------------------------
    cody_channel: str = Field(
        "#cody-pro-metrics",
        description="Channel for the daily Cody Pro post; prefer its id (C...): Slack's "
        "history lookups, used to recover after a crash, take ids only. It shows revenue: "
        "use a channel where revenue may be shown.",
    )
    cody_price_usd: float = Field(9.0, gt=0, description="Cody Pro price per seat per month, USD.")
    cody_daily_enabled: bool = Field(True, description="Post the Cody Pro numbers every day.")
    cody_post_cron: str = Field(
        "0 9 * * *",
        description='When the daily Cody Pro post goes out (cron, in TIMEZONE; "off" disables).',
    )
    cody_retry_minutes: int = Field(
        30, ge=1, description="While SSC data for yesterday is incomplete, check again this often."
    )
    cody_give_up_time: dt.time = Field(
        dt.time(12, 0),
        description="Local time (TIMEZONE) after which a 'data not ready' notice is posted "
        "instead of waiting silently; the numbers still follow once the data arrives.",
    )
    cody_unusual_change_pct: float = Field(
        10.0,
        gt=0,
        description="Flag the post when active subscribers move more than this "
        "percentage day over day.",
    )
    cody_stripe_reconciliation: bool = Field(
        False, description="Compare SSC active subscribers with Stripe's in the daily post."
    )
    cody_stripe_dataset: str = Field(
        "stripe",
        pattern=r"^([A-Za-z0-9-]+\.)?[A-Za-z0-9_]+$",
        description="BigQuery dataset ([project.]dataset) holding Stripe's `subscriptions`.",
    )
    cody_stripe_match_threshold_pct: float = Field(
        95.0,
        ge=0,
        le=100,
        description="Flag the reconciliation when SSC and Stripe agree on "
        "fewer than this percentage of active subscribers.",
    )

    @field_validator("cody_post_cron")
    @classmethod
    def _cody_cron(cls, value: str) -> str:
        try:
            return check_cron(value.strip())
        except ValueError as exc:
            raise ValueError(f"bad CODY_POST_CRON: {exc}") from None

    @model_validator(mode="after")
    def _cody_schedule(self) -> Settings:
        # CODY_POST_CRON is the Cody post's schedule unless JOB_SCHEDULES names cody-daily
        # itself (e.g. "off"); the scheduler reads only job_schedules.
        explicit = "cody_post_cron" in self.model_fields_set
        if explicit or "cody-daily" not in self.job_schedules:
            self.job_schedules = {**self.job_schedules, "cody-daily": self.cody_post_cron}
        return self

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "github_token",
        "github_webhook_secret",
        mode="before",
    )
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        # `GITHUB_WEBHOOK_SECRET=` must not mean "HMAC with an empty key" (anyone could sign).
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("revenue_channels")
    @classmethod
    def _channel_ids(cls, value: list[str]) -> list[str]:
        return _slack_ids(value, SLACK_CHANNEL_ID, "channel ids like C0123ABCD (or #names)")

    @field_validator("revenue_users")
    @classmethod
    def _user_ids(cls, value: list[str]) -> list[str]:
        return _slack_ids(value, SLACK_USER_ID, "user ids like U0123ABCD")

    @field_validator("job_schedules")
    @classmethod
    def _known_jobs(cls, value: dict[str, str]) -> dict[str, str]:
        known = {str(job) for job in Job}
        if unknown := sorted(set(value) - known):
            raise ValueError(
                f"unknown job id {', '.join(map(repr, unknown))}; jobs: {', '.join(sorted(known))}"
            )
        return value

    @field_validator("followup_changes")
    @classmethod
    def _known_changes(cls, value: list[str]) -> list[str]:
        kinds = [item.strip().lower() for item in value]
        if unknown := [item for item in kinds if item not in FOLLOWUP_CHANGE_KINDS]:
            raise ValueError(
                f"unknown change {', '.join(map(repr, unknown))}; "
                f"changes: {', '.join(FOLLOWUP_CHANGE_KINDS)}"
            )
        return kinds

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        # The value is a secret: the message never repeats it.
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError(
                "must be the app-level token starting with xapp- (the bot token, xoxb-, "
                "goes in SLACK_BOT_TOKEN)"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str | None) -> str | None:
        # The URL may hold a password: the messages never repeat it.
        if value is None or not value.strip():
            return None
        try:
            url = make_url(value.strip())
        except ArgumentError:
            raise ValueError(f"not a database URL (expected {DATABASE_URL_EXAMPLES})") from None
        if url.drivername not in SUPPORTED_DATABASE_DRIVERS:
            raise ValueError(
                f"{url.drivername} is not a supported database (use {DATABASE_URL_EXAMPLES})"
            )
        return value.strip()

    @property
    def uses_demo_warehouse(self) -> bool:
        """Whether the warehouse is the embedded demo data (invented numbers): every
        answer and post built from it says so."""
        return not self.gcp_project

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def state_url(self) -> str:
        if self.database_url:
            # Heroku-style URLs say postgres://; SQLAlchemy wants the driver named.
            url = self.database_url
            for prefix in ("postgres://", "postgresql://"):
                if url.startswith(prefix):
                    return "postgresql+psycopg://" + url[len(prefix) :]
            return url
        return f"sqlite:///{(self.data_dir / 'state.db').resolve()}"

    def today(self, now: dt.datetime | None = None) -> dt.date:
        now = now or utc_now()
        return now.astimezone(self.tz).date()
