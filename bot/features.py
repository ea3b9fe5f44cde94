"""The composition root: every feature's scheduled jobs, background workers and seams, named
in one place. Adding a feature means adding its lines here (and its Slack listeners in
handlers/__init__.py); nothing registers itself as an import side effect.

Seams (where one feature hands something to another, in one direction only):
- intake -> urgent: a request filed as urgent is shown in the analytics channel at once
  (`urgent.alerts.announce_issue`), instead of at the next poll or webhook, with the Slack
  thread it was filed from (urgent reads no intake table).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from apscheduler.triggers.interval import IntervalTrigger

from bot.cody.job import CodyDailyJob
from bot.intake.filing import start_outbox_worker
from bot.metric.rollups import RollupJob
from bot.scheduling.job import ScheduledJob
from bot.settings import utc_now
from bot.sprints.jobs import build_sprint_jobs
from bot.telemetry import CLOCK_HEARTBEAT_KEY
from bot.urgent.poller import schedule_in_clock
from bot.urgent.reminder import UrgentReminderJob
from bot.urgent.webhook import receive

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from bot.deps import Deps


def build_jobs(deps: Deps) -> list[ScheduledJob]:
    """Every scheduled job of this deployment, enabled or not (the clock checks
    `settings.job_enabled`; `databot post` can run any of them by hand)."""
    jobs: list[ScheduledJob] = []
    jobs += build_sprint_jobs(deps)
    jobs.append(CodyDailyJob(deps.settings))
    jobs.append(UrgentReminderJob(deps.settings))
    jobs.append(RollupJob(deps.settings))
    return jobs


def find_job(jobs: list[ScheduledJob], name: str) -> ScheduledJob | None:
    return next((j for j in jobs if str(j.id) == name), None)


def start_web_workers(deps: Deps) -> list[Callable[[], None]]:
    """Workers that run beside `serve` (the intake outbox); returns their stoppers."""
    return [start_outbox_worker(deps)]


def receive_github_webhook(deps: Deps, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
    """`POST /github/webhook`: (HTTP status, short plain reason). Urgent alerts read it."""
    return receive(deps, headers, body)


def schedule_clock_extras(scheduler: BaseScheduler, deps: Deps) -> None:
    """What the clock process runs besides the scheduled jobs: the urgent-issue poller and
    the heartbeat that `/readyz`, `/metrics` and `databot posts` show."""
    schedule_in_clock(scheduler, deps)
    scheduler.add_job(
        beat,
        IntervalTrigger(seconds=HEARTBEAT_SECONDS),
        args=[deps],
        id="heartbeat",
        next_run_time=utc_now(),
        max_instances=1,
        coalesce=True,
    )


HEARTBEAT_SECONDS = 60


def beat(deps: Deps) -> None:
    deps.store.kv_set(CLOCK_HEARTBEAT_KEY, deps.now().isoformat())
