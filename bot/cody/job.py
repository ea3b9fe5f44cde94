"""The daily Cody Pro post as a scheduled job: the period is the reference date
(yesterday, Pacific); the runner posts it once, retrying while SSC is behind.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackClientError

from bot.cody.blocks import build_cody_daily_message
from bot.cody.chart import render_trend_png, trend_alt_text
from bot.cody.report import TREND_DAYS, check_readiness, fmt_day, load_report
from bot.cron import is_off, parse_cron
from bot.errors import InputError
from bot.ids import Job
from bot.scheduling.job import NotReady, Post, PostFile
from bot.settings import REPORTING_TZ
from bot.slack_channels import channel_id, is_listed

if TYPE_CHECKING:
    from bot.deps import Deps
    from bot.settings import Settings

logger = logging.getLogger(__name__)


def parse_period(period: str) -> dt.date:
    try:
        return dt.date.fromisoformat(period)
    except ValueError:
        raise InputError(
            f"{period!r} is not a date; give the reference date as YYYY-MM-DD."
        ) from None


def reference_date(run_at: dt.datetime) -> dt.date:
    """Yesterday in Pacific time, as seen at `run_at`."""
    return run_at.astimezone(REPORTING_TZ).date() - dt.timedelta(days=1)


def cron_time(cron: str) -> dt.time | None:
    """The one time of day a cron string fires at ("0 9 * * *" -> 09:00); None when it
    fires at several times of day, or is "off"."""
    if is_off(cron):
        return None
    try:
        return parse_cron(cron).time_of_day()
    except ValueError:
        return None  # settings validated it; a hand-built one falls back to the default


def revenue_allowed(deps: Deps, channel: str) -> bool:
    """Whether revenue may be shown in `channel` (DOMAIN.md: revenue belongs only in the
    channels allowed to see it). CODY_CHANNEL and REVENUE_CHANNELS may both hold #names;
    they are matched the one way every surface matches them (`slack_channels.is_listed`).
    When a name cannot be resolved (Slack unreachable, no channels:read, not listed) the
    answer is no: a post without revenue is the safe side."""
    allowed = deps.settings.revenue_channels
    if not allowed:
        return False  # nothing can match: no Slack lookup needed
    if channel in allowed:
        return True
    try:
        return is_listed(deps, channel_id(deps, channel), allowed)
    except (SlackClientError, OSError) as exc:
        logger.warning(
            "cody-daily: could not resolve %s to a channel ID (%s); revenue is hidden",
            channel,
            type(exc).__name__,
        )
        return False


class CodyDailyJob:
    """The daily Cody Pro post: the period is the reference date (yesterday, Pacific).

    Timing options are read by the scheduler (bot.scheduling.job.JobOptions): retry every
    `cody_retry_minutes` while SSC is behind; post the "data not ready" notice once the
    local time passes `cody_give_up_time` (expressed as a delay from the scheduled time,
    because the runner counts from the first attempt); the numbers follow when complete.
    """

    id = Job.CODY_DAILY
    title = "The Cody Pro daily post"
    reads_warehouse = True  # on the demo warehouse, every post says "demo data"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings

    @property
    def channel(self) -> str | None:
        return self.settings.cody_channel if self.settings else None

    @property
    def enabled(self) -> bool:
        return self.settings.cody_daily_enabled if self.settings else True

    @property
    def retry_every(self) -> dt.timedelta | None:
        if self.settings is None:
            return None
        return dt.timedelta(minutes=self.settings.cody_retry_minutes)

    @property
    def give_up_after(self) -> dt.timedelta | None:
        if self.settings is None:
            return None
        schedules = getattr(self.settings, "job_schedules", None) or {}
        posted = cron_time(schedules.get(str(self.id)) or self.settings.cody_post_cron)
        if posted is None:
            return None  # not a plain daily time: the scheduler's default delay applies
        give_up = self.settings.cody_give_up_time
        delay = dt.datetime.combine(dt.date.min, give_up) - dt.datetime.combine(dt.date.min, posted)
        # A give-up time at or before the post time: notice at the first failed attempt.
        return max(delay, dt.timedelta(0))

    def period_for(self, run_at: dt.datetime, tz=None) -> str | None:
        # The reference date is Pacific by definition (DOMAIN.md), not the schedule's zone.
        return reference_date(run_at).isoformat()

    def build(self, deps: Deps, period: str) -> Post | NotReady:
        day = parse_period(period)
        channel = deps.settings.cody_channel
        readiness = check_readiness(deps.warehouse, day)
        if not readiness.ready:
            logger.debug("cody-daily %s not ready: %s", period, readiness.reason)
            return NotReady(reason=readiness.reason, channel=channel)
        show_revenue = revenue_allowed(deps, channel)
        report = load_report(
            deps.warehouse,
            deps.settings,
            day,
            synced_through=readiness.synced_through,
            show_revenue=show_revenue,
        )
        if report.problems:
            # Wrong numbers are worse than late ones: hold the post, say why.
            logger.warning("cody-daily %s failed sanity checks: %s", period, report.problems)
            return NotReady(
                reason="the Cody Pro numbers failed a consistency check ("
                + "; ".join(report.problems)
                + "), so they are held back",
                channel=channel,
            )
        message = build_cody_daily_message(report, show_revenue=show_revenue)
        # Without revenue the chart drops its MRR axis too.
        png = render_trend_png(report.trend, price_usd=report.price_usd if show_revenue else None)
        return Post(
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            files=[
                PostFile(
                    filename=f"cody-pro-{day.isoformat()}.png",
                    content=png,
                    title=f"Cody Pro, {TREND_DAYS} days to {fmt_day(day)}",
                    alt_text=trend_alt_text(report.trend, show_revenue=show_revenue),
                )
            ],
        )
