"""`databot check`: is this deployment configured to work? Each finding says, in plain
words, what is wrong and what to set. Also the start-up guard of `databot serve`."""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from typing import Literal

import sqlalchemy as sa

from bot.deps import build_deps
from bot.errors import ConfigError
from bot.features import build_jobs
from bot.manifest import manifest_problems, packaged_manifest
from bot.metric.catalog import check_catalog
from bot.scheduling.clock import schedule_lines
from bot.settings import Settings
from bot.store import open_read_only, sqlite_file, unreachable_reason

logger = logging.getLogger(__name__)

REAL_SLACK_API = "https://slack.com/api/"


def require_serve_settings(settings: Settings) -> Literal["socket", "http"]:
    """Which transport `serve` uses; raises ConfigError naming what is missing."""
    missing = []
    if settings.slack_bot_token is None:
        missing.append("SLACK_BOT_TOKEN is not set: needed to post anything")
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        missing.append(
            "SLACK_SIGNING_SECRET is not set: needed for HTTP mode "
            "(or set SLACK_APP_TOKEN to use Socket Mode)"
        )
    if missing:
        raise ConfigError("Cannot start: " + "; ".join(missing) + ".")
    return "socket" if settings.slack_app_token is not None else "http"


def require_warehouse_settings(settings: Settings) -> None:
    """`serve` and `clock` answer from invented numbers only when asked to, explicitly."""
    if settings.uses_demo_warehouse and not settings.demo_warehouse:
        raise ConfigError(
            "Cannot start: GCP_PROJECT is not set: set it to the BigQuery project, or set "
            "DEMO_WAREHOUSE=true to run on the embedded demo data (invented numbers)."
        )


def looks_like_production(settings: Settings) -> bool:
    """A bot token for the real Slack: whatever it posts, people read."""
    return settings.slack_bot_token is not None and settings.slack_api_url.rstrip(
        "/"
    ) == REAL_SLACK_API.rstrip("/")


@dataclass
class Finding:
    ok: bool
    what: str
    advice: str = ""
    warning: bool = False


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok or f.warning for f in self.findings)

    def add(self, ok: bool, what: str, advice: str = "", *, warning: bool = False) -> None:
        self.findings.append(Finding(ok, what, advice, warning))

    def render(self) -> str:
        lines = []
        for f in self.findings:
            mark = "ok  " if f.ok else ("warn" if f.warning else "FAIL")
            lines.append(f"[{mark}] {f.what}" + (f"\n       {f.advice}" if f.advice else ""))
        summary = "All checks passed." if self.ok else "Some checks failed: see FAIL lines above."
        return "\n".join([*lines, summary])


def run_checks(settings: Settings, *, now: dt.datetime | None = None) -> CheckReport:
    """`now` (default: the wall clock) is when the schedules' next fire times start."""
    report = CheckReport()
    _check_slack(settings, report)
    _check_manifest(report)
    _check_state(settings, report)
    _check_warehouse(settings, report)
    _check_github(settings, report)
    _check_revenue_channels(settings, report)
    _check_schedules(settings, report, now)
    check_catalog(settings, report)
    return report


def _check_schedules(settings: Settings, report: CheckReport, now: dt.datetime | None) -> None:
    # Each enabled job's cron in words with its next fire times, as the clock logs them at
    # start-up: "0 9 * * 1" is checked by reading "on Monday", not by waiting for Monday.
    # Building the jobs opens nothing (no database, Slack or GitHub connection).
    deps = build_deps(settings, migrate=False, now=(lambda: now) if now else None)
    try:
        lines = schedule_lines(deps, build_jobs(deps))
    finally:
        deps.close()
    for line in lines:
        report.add(True, line)
    if not lines:
        report.add(
            False,
            "no scheduled job is enabled: `databot clock` will post nothing",
            "See JOB_SCHEDULES and the *_ENABLED settings.",
            warning=True,
        )


def _check_slack(settings: Settings, report: CheckReport) -> None:
    try:
        mode = require_serve_settings(settings)
    except ConfigError as exc:
        report.add(False, "Slack credentials", exc.user_message)
        return
    if mode == "socket":
        report.add(True, "Slack credentials: Socket Mode (SLACK_APP_TOKEN set)")
    else:
        report.add(True, "Slack credentials: HTTP mode (signing secret set)")
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    if not token.startswith("xoxb-"):
        report.add(False, "SLACK_BOT_TOKEN", "It should be a bot token starting with xoxb-.")


def _check_manifest(report: CheckReport) -> None:
    problems = manifest_problems(packaged_manifest())
    if problems:
        report.add(False, "manifest.yml", "; ".join(problems))
    else:
        report.add(True, "manifest.yml matches the commands, shortcuts and ids in the code")


def _check_state(settings: Settings, report: CheckReport) -> None:
    # Read-only: `check` creates no file, no folder and no table.
    store = open_read_only(settings.state_url)
    if store is None:
        path = sqlite_file(settings.state_url)
        assert path is not None  # open_read_only returns None only for a missing SQLite file
        folder = next(p for p in path.parents if p.exists())
        if os.access(folder, os.W_OK | os.X_OK):
            report.add(
                True,
                "state database reachable (sqlite), schema revision none",
                f"{path} does not exist yet: it is created on first start (migrations run "
                "at start-up).",
            )
        else:
            report.add(
                False,
                f"state database unreachable (cannot create {path}: {folder} is not writable)",
                "Set DATA_DIR to a writable folder, or DATABASE_URL to the state database.",
            )
        return
    try:
        with store.reading() as connection:
            connection.execute(sa.text("SELECT 1"))
        revision = store.schema_revision()
        report.add(
            True,
            f"state database reachable ({store.dialect}), schema revision {revision or 'none'}",
            "" if revision else "It will be created on first start (migrations run at start-up).",
        )
    except sa.exc.DBAPIError as exc:
        report.add(
            False,
            f"state database unreachable ({unreachable_reason(exc)})",
            "Check DATABASE_URL (e.g. postgresql://user:pass@host:5432/db), or unset it for "
            "the default SQLite file in DATA_DIR.",
        )
    except Exception as exc:  # noqa: BLE001 - reported in plain words below
        report.add(
            False,
            f"state database unreachable ({type(exc).__name__})",
            "Check DATABASE_URL (e.g. postgresql://user:pass@host:5432/db), or unset it for "
            "the default SQLite file in DATA_DIR.",
        )
    finally:
        store.close()


def _check_warehouse(settings: Settings, report: CheckReport) -> None:
    if settings.gcp_project:
        report.add(True, f"warehouse: BigQuery project {settings.gcp_project}")
    elif looks_like_production(settings):
        report.add(
            False,
            "warehouse: embedded demo data (invented numbers) with a real Slack workspace "
            "configured (SLACK_BOT_TOKEN)",
            "Set GCP_PROJECT to the BigQuery project. DEMO_WAREHOUSE=true is for trying the bot "
            "out: every answer and post then says 'demo data'.",
        )
    else:
        report.add(
            True,
            "warehouse: embedded DuckDB demo data (set GCP_PROJECT to use BigQuery)",
            warning=True,
        )


def _check_revenue_channels(settings: Settings, report: CheckReport) -> None:
    # The daily Cody Pro post hides revenue (MRR, ARR) outside REVENUE_CHANNELS; say so
    # before the first post leaves the team wondering where the numbers went.
    if settings.cody_daily_enabled and settings.cody_channel not in settings.revenue_channels:
        report.add(
            False,
            f"CODY_CHANNEL {settings.cody_channel} is not in REVENUE_CHANNELS: the daily "
            "Cody Pro post will leave out revenue (MRR, ARR, daily revenue)",
            "To show revenue there, add the channel's id to REVENUE_CHANNELS (JSON list). "
            "(If its id is listed already, the post resolves the name and shows revenue.)",
            warning=True,
        )


def _check_github(settings: Settings, report: CheckReport) -> None:
    if "/" not in settings.github_repo:
        report.add(False, "GITHUB_REPO", "Give the analytics repo as owner/name.")
    if settings.github_token is None:
        report.add(
            False,
            "GITHUB_TOKEN is not set: requests are queued but not filed as GitHub issues",
            "Create a token with Issues read/write on " + settings.github_repo + ".",
            warning=True,
        )
    else:
        report.add(True, f"GitHub token set for {settings.github_repo}")
    if settings.github_webhook_secret is None:
        report.add(
            False,
            "GITHUB_WEBHOOK_SECRET is not set: POST /github/webhook rejects every delivery",
            "Set it to the webhook's secret, or rely on the urgent-issue poller in `clock`.",
            warning=True,
        )
