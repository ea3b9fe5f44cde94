"""Subscriptions and alerts as scheduled jobs: each item is one job (`sub-3`, `alert-7`)
with its own cron, handed to the exactly-once runner by bot/features.py. So a delivery
goes out once per (item, period) however many clocks run, is caught up within the grace
period, waits for late data (NotReady: a "late" notice once, the numbers once they land),
and a failure is reported to the owner, exactly like the Cody Pro daily post.

One tick = one `Lookups`: a fresh /metric service (its cache and single flight), shared
by every item due in that tick, so N items over K distinct (metric, period, account) cost
K warehouse queries, and no tick reuses an earlier tick's (maybe incomplete) answer.

Sensitivity is checked again at every delivery: a revenue metric is posted only into a
revenue channel; an item whose channel lost the right is stopped and its creator told.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from bot.cron import CronSchedule, build_schedule
from bot.metric.blocks import build_metric_message
from bot.metric.catalog import Metric, Sensitivity
from bot.metric.lookup import MetricService, metric_service
from bot.metric.model import MetricQuery, NoData, UnknownAccount, format_through
from bot.metric.periods import Period
from bot.scheduling.job import NotReady, Post, Skip
from bot.settings import REPORTING_TZ
from bot.slack_channels import is_listed
from bot.slack_post import deliver, redeliver_due
from bot.subscriptions import records
from bot.subscriptions.blocks import (
    build_alert_fired,
    build_alert_no_data,
    build_delivery,
    build_delivery_no_data,
    build_stopped_notice,
)
from bot.subscriptions.model import (
    ALERT_CHECK_TIME,
    CheckState,
    Item,
    Kind,
    Status,
    alert_period,
    alert_period_key,
    delivery_period,
    parse_job_name,
    subscription_period,
)

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from bot.deps import Deps

logger = logging.getLogger(__name__)

# How far back a schedule's latest fire time is looked for (a weekly one is within a week).
LOOKBACK = dt.timedelta(days=8)
# Per stop (an item resumed and stopped again is told again), redelivered by the tick.
STOPPED_PREFIX = "subscription-stopped:"
STOPPED_KEY = STOPPED_PREFIX + "{id}:{at}"


def tick_lookups(deps: Deps) -> MetricService:
    """A fresh lookup service for one tick (or one `databot post`), on the shared catalog."""
    shared = metric_service(deps)
    return MetricService(shared.catalog, deps.warehouse, deps.settings, deps.now)


def revenue_ok(deps: Deps, channel: str) -> bool:
    """Whether revenue may be posted into `channel` (an ID): listed by ID, or by a #name
    that resolves to it. A Slack error while resolving a name raises (the runner retries):
    only a name that resolved to another channel (or none) means no."""
    return is_listed(deps, channel, deps.settings.revenue_channels)


def allowed_in(deps: Deps, metric: Metric, channel: str) -> bool:
    return metric.sensitivity is not Sensitivity.REVENUE or revenue_ok(deps, channel)


def stop_item(deps: Deps, item: Item, title: str, reason: str) -> None:
    """databot stops an item (it may no longer post where it does) and tells its creator
    once, by DM."""
    now = deps.now()
    records.set_status(deps.store, item.id, now, Status.STOPPED, reason)
    message = build_stopped_notice(item, title, reason)
    deliver(
        deps,
        STOPPED_KEY.format(id=item.id, at=now.astimezone(dt.UTC).isoformat()),
        channel=item.creator,
        text=message.text,
        unfurl_links=False,
    )


def redeliver_stopped_notices(deps: Deps) -> int:
    """Send again the "I stopped your item" DMs whose first try was lost (each tick)."""
    return redeliver_due(deps, STOPPED_PREFIX)


class ItemJob:
    """What subscriptions and alerts share as jobs: identity, schedule, the live re-check."""

    reads_warehouse = False  # /metric's answer carries its own "demo data" line

    def __init__(self, item: Item, lookups: MetricService) -> None:
        self.item = item
        self.id = item.job_name
        self.channel = item.channel
        self.lookups = lookups
        self._triggers: dict[str, CronSchedule] = {}

    @property
    def title(self) -> str:
        what = "Subscription" if self.item.kind is Kind.SUBSCRIPTION else "Alert"
        return f"{what} {self.item.job_name} ({self.item.metric})"

    def cron(self) -> str:
        return item_cron(self.item)

    def latest_fire(self, run_at: dt.datetime, tz: ZoneInfo) -> dt.datetime | None:
        """The schedule's latest fire time at or before `run_at`, not before the item was
        made (a new item never catches up a time before it existed)."""
        trigger = self._triggers.get(tz.key)
        if trigger is None:
            trigger = self._triggers[tz.key] = build_schedule(self.cron(), tz)
        # The clock asks about its fire times exactly: one step instead of a week's list.
        if trigger.get_next_fire_time(None, run_at) == run_at:
            fire: dt.datetime | None = run_at
        else:
            fires = list(trigger.fire_times(run_at - LOOKBACK, run_at))
            fire = fires[-1] if fires else None
        if fire is None or fire < self.item.created_at:
            return None
        return fire

    def current(self, deps: Deps) -> tuple[Item, Metric] | Skip:
        """The item as stored now, checked again: paused, deleted, metric gone, or the
        channel no longer allowed (then stopped, and the creator told)."""
        item = records.get(deps.store, self.item.id)
        if item is None:
            return Skip(reason="deleted")
        if item.status is not Status.ACTIVE:
            return Skip(reason=f"{item.status}")
        metric = self.lookups.catalog.get(item.metric)
        if metric is None:
            reason = f"the metric `{item.metric}` is no longer in the catalog."
            stop_item(deps, item, item.metric, reason)
            return Skip(reason=reason)
        if not allowed_in(deps, metric, item.channel):
            reason = (
                f"{metric.title} is revenue data and <#{item.channel}> is no longer one of the "
                "channels allowed to see it (REVENUE_CHANNELS), so nothing more is posted there."
            )
            stop_item(deps, item, metric.title, reason)
            return Skip(reason="the channel may no longer see revenue; stopped")
        return item, metric


class SubscriptionJob(ItemJob):
    def period_for(self, run_at: dt.datetime, tz: ZoneInfo) -> str | None:
        fire = self.latest_fire(run_at, tz)
        return delivery_period(fire) if fire else None

    def build(self, deps: Deps, period: str) -> Post | NotReady | Skip:
        found = self.current(deps)
        if isinstance(found, Skip):
            return found
        item, metric = found
        day = dt.date.fromisoformat(period)
        asked = subscription_period(item.period_text, metric.default_period, day)
        try:
            answer = self.lookups.answer(MetricQuery(metric, asked, item.account, by=item.by))
        except NoData as exc:
            if not _data_reaches(exc, asked):
                return NotReady(reason=exc.user_message.rstrip("."), channel=item.channel)
            # The data is complete and there is no row for it: that is the answer.
            message = build_delivery_no_data(item, exc.user_message)
            return Post(channel=item.channel, text=message.text, blocks=message.blocks)
        if not answer.complete:
            return NotReady(
                reason=_late_reason(deps, metric, answer.data_through), channel=item.channel
            )
        message = build_delivery(
            item, build_metric_message(answer, deps.settings, shared_by=item.creator)
        )
        return Post(channel=item.channel, text=message.text, blocks=message.blocks)


class AlertJob(ItemJob):
    # No "late" notice for an alert (it speaks only when something happens): it waits for
    # the period's data all day; the runner records it skipped at the end of the day.
    give_up_after = dt.timedelta(days=2)

    def period_for(self, run_at: dt.datetime, tz: ZoneInfo) -> str | None:
        fire = self.latest_fire(run_at, tz)
        if fire is None:
            return None
        assert self.item.rule is not None
        return alert_period_key(self.item.rule, fire.astimezone(REPORTING_TZ).date())

    def build(self, deps: Deps, period: str) -> Post | NotReady | Skip:
        found = self.current(deps)
        if isinstance(found, Skip):
            return found
        item, metric = found
        assert item.rule is not None
        rule = item.rule
        first = dt.date.fromisoformat(period[:10])
        # The period the key names, re-read from the day after it ends.
        checked = alert_period(rule, first + dt.timedelta(days=7 if rule.compare == "week" else 1))
        try:
            answer = self.lookups.answer(MetricQuery(metric, checked, item.account))
        except NoData as exc:
            if not _data_reaches(exc, checked):
                # At 00:30 the day's events may not have landed: wait, do not close it.
                return NotReady(reason=exc.user_message.rstrip("."), channel=item.channel)
            return self._no_data(deps, item, metric, period, exc.user_message)
        except UnknownAccount as exc:
            return self._no_data(deps, item, metric, period, exc.user_message)
        if not answer.complete:
            return NotReady(
                reason=_late_reason(deps, metric, answer.data_through), channel=item.channel
            )
        field, value, previous = answer.headline
        if value is None:
            return self._no_data(deps, item, metric, period, f"No data for {checked.label()}.")
        holds = rule.holds(value, previous)
        now = deps.now()
        if holds is None:
            records.record_check(deps.store, item.id, period, now, CheckState.NO_DATA, value)
            return Skip(reason="nothing to compare with")
        before = records.last_check_before(
            deps.store, item.id, period, [CheckState.TRUE, CheckState.FALSE]
        )
        records.record_check(
            deps.store, item.id, period, now, CheckState.TRUE if holds else CheckState.FALSE, value
        )
        # Skip reasons are stored and listed (`/metric subscriptions`, `databot posts`):
        # a revenue number stays out of them.
        shown = "" if metric.sensitivity is Sensitivity.REVENUE else f" ({value:g})"
        if not holds:
            return Skip(reason=f"{rule.describe()}: not true{shown}")
        if before is CheckState.TRUE:
            return Skip(reason=f"{rule.describe()}: still true{shown}; told already")
        if item.snoozed_until and item.snoozed_until > now:
            return Skip(reason=f"{rule.describe()}: true{shown} but snoozed")
        message = build_alert_fired(
            item,
            metric,
            build_metric_message(answer, deps.settings, shared_by=item.creator),
            value,
            previous,
            answer.period.label(),
            field.unit,
        )
        return Post(channel=item.channel, text=message.text, blocks=message.blocks)

    def _no_data(self, deps: Deps, item: Item, metric: Metric, period: str, reason: str):
        """Said once, not as a crossing: again only after a period with data."""
        before = records.last_check_before(
            deps.store, item.id, period, [CheckState.TRUE, CheckState.FALSE, CheckState.NO_DATA]
        )
        records.record_check(deps.store, item.id, period, deps.now(), CheckState.NO_DATA, None)
        if before is CheckState.NO_DATA:
            return Skip(reason="still no data; said already")
        message = build_alert_no_data(item, metric.title, reason)
        return Post(channel=item.channel, text=message.text)


def _data_reaches(exc: NoData, period: Period) -> bool:
    """Whether the source's data goes through the end of `period` (then no rows means no
    data, not data still to come)."""
    _, end = period.utc_bounds(REPORTING_TZ)
    return exc.data_end is not None and exc.data_end >= end


def _late_reason(deps: Deps, metric: Metric, through: dt.datetime | None) -> str:
    source = metric.source
    if through is None:
        return f"the {source} data has not arrived yet"
    return f"the {source} data is complete only through {format_through(through, deps.settings)}"


def job_for(item: Item, lookups: MetricService) -> SubscriptionJob | AlertJob:
    if item.kind is Kind.SUBSCRIPTION:
        return SubscriptionJob(item, lookups)
    return AlertJob(item, lookups)


def active_jobs(
    deps: Deps, lookups: MetricService | None = None
) -> list[SubscriptionJob | AlertJob]:
    """Every active item as a job, sharing one tick's lookups."""
    lookups = lookups or tick_lookups(deps)
    items = records.list_items(deps.store, statuses=[Status.ACTIVE])
    return [job_for(item, lookups) for item in items]


def find_item_job(deps: Deps, name: str) -> SubscriptionJob | AlertJob | None:
    """`databot post sub-3`: the item's job, whatever its status (the build re-checks)."""
    parsed = parse_job_name(name)
    if parsed is None:
        return None
    item = records.get(deps.store, parsed[1])
    if item is None or item.kind is not parsed[0]:
        return None
    return job_for(item, tick_lookups(deps))


def item_cron(item: Item) -> str:
    """A subscription's delivery time, or an alert's daily check (team time)."""
    if item.kind is Kind.SUBSCRIPTION and item.schedule is not None:
        return item.schedule.cron()
    return f"{ALERT_CHECK_TIME.minute} {ALERT_CHECK_TIME.hour} * * *"


def next_run(item: Item, deps: Deps) -> dt.datetime | None:
    """The item's next scheduled time, for the lists."""
    return build_schedule(item_cron(item), deps.settings.tz).get_next_fire_time(None, deps.now())
