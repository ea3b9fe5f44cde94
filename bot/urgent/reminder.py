"""The daily reminder of urgent issues nobody has picked up, as a scheduled job.

The runner (bot/scheduling/runner.py) posts it at most once per team-local day, lists it in
`databot posts`, previews it with `databot post urgent-reminder --dry-run` and reports a
failed post to the owner. It runs only when URGENT_DIGEST_HOURS is set: an urgent issue
still open and unassigned more than that many hours after it was opened is "stale". A day
with no stale issue is recorded as skipped: nothing is posted.

Before this was a job, the poller posted the reminder once a day under the dedupe key
`urgent-digest:{repo}:{date}`. A day that key exists for was reminded already, so the job
skips it: the first run after an upgrade does not post a second reminder that day.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import sqlalchemy as sa

from bot import tables
from bot.ids import Job
from bot.scheduling.job import Post, Skip
from bot.urgent.alerts import alert_states
from bot.urgent.blocks import build_urgent_digest
from bot.urgent.model import AlertState, AlertStatus

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from bot.deps import Deps
    from bot.settings import Settings


def legacy_dedupe_key(repo: str, day: str) -> str:
    """The key the poller claimed when it posted the reminder for `day` (a team-local
    date), before the reminder was a scheduled job."""
    return f"urgent-digest:{repo}:{day}"


def stale_unassigned(deps: Deps, hours: float) -> list[AlertState]:
    """Urgent issues still open and unassigned more than `hours` after they were opened."""
    cutoff = deps.now() - dt.timedelta(hours=hours)
    return [
        state
        for state in alert_states(deps, deps.settings.github_repo)
        if state.status is AlertStatus.URGENT and not state.assignees and state.created_at < cutoff
    ]


def _claimed(deps: Deps, key: str) -> bool:
    with deps.store.reading() as connection:
        found = connection.execute(
            sa.select(tables.dedupe_keys.c.key).where(tables.dedupe_keys.c.key == key)
        ).first()
    return found is not None


class UrgentReminderJob:
    """Due every day at its cron time ("0 9 * * *" in TIMEZONE by default); the period is
    the team-local date."""

    id = Job.URGENT_REMINDER
    title = "The urgent-issue reminder"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def channel(self) -> str:
        return self.settings.analytics_channel

    @property
    def enabled(self) -> bool:
        return self.settings.urgent_digest_hours is not None

    def period_for(self, run_at: dt.datetime, tz: ZoneInfo) -> str:
        return run_at.astimezone(tz).date().isoformat()

    def build(self, deps: Deps, period: str) -> Post | Skip:
        settings = deps.settings
        hours = settings.urgent_digest_hours
        if hours is None:
            return Skip(reason="URGENT_DIGEST_HOURS is not set")
        if _claimed(deps, legacy_dedupe_key(settings.github_repo, period)):
            return Skip(reason="reminded already that day (before the reminder was a job)")
        states = stale_unassigned(deps, hours)
        if not states:
            return Skip(reason=f"no urgent issue unassigned after more than {hours:g}h")
        message = build_urgent_digest(states, hours=hours, now=deps.now())
        return Post(channel=settings.analytics_channel, text=message.text, blocks=message.blocks)
