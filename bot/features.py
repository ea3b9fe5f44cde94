"""The composition root: every feature's scheduled jobs, background workers and seams, named
in one place. Adding a feature means adding its lines here (and its Slack listeners in
handlers/__init__.py); nothing registers itself as an import side effect.

Seams (where one feature hands something to another, in one direction only):
- intake -> urgent: a request filed as urgent is shown in the analytics channel at once
  (`urgent.alerts.announce_issue`), instead of at the next poll or webhook, with the Slack
  thread it was filed from (urgent reads no intake table).
- followup -> intake: request follow-ups ask intake which issues it filed, and where each
  request's replies go (`intake.outbox.filed_requests`); they read no intake table.
- urgent poller -> followup: the urgent poller's one listing of changed issues is handed to
  follow-ups (`observers=` below), so both share one conditional request per interval.
- followup -> (the Home tab): `request_changed` below is called once per told change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from apscheduler.triggers.interval import IntervalTrigger

from bot.cody.job import CodyDailyJob
from bot.followup.model import Update
from bot.followup.poller import observe_polled_issues
from bot.followup.poller import run_poll as run_followup_poll
from bot.followup.replies import start_reply_worker
from bot.followup.webhook import receive as receive_followup
from bot.github import GitHubIssue, IssuesClient
from bot.ids import Job
from bot.intake.filing import start_outbox_worker
from bot.scheduling.job import ScheduledJob
from bot.settings import utc_now
from bot.sprints.jobs import build_sprint_jobs
from bot.telemetry import CLOCK_HEARTBEAT_KEY
from bot.urgent.poller import poll_interval, schedule_in_clock
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
    return jobs


def find_job(jobs: list[ScheduledJob], name: str) -> ScheduledJob | None:
    return next((j for j in jobs if str(j.id) == name), None)


def request_changed(
    deps: Deps, requester_id: str, issue_number: int, updates: list[Update]
) -> None:
    """Called once for each batch of changes told to a request's requester (after the
    replies are queued), by the webhook and the poller alike: the place where a view of
    the requester's requests (the Home tab) is refreshed. Nothing to refresh yet."""


def start_web_workers(deps: Deps) -> list[Callable[[], None]]:
    """Workers that run beside `serve` (the intake outbox, follow-up replies still due);
    returns their stoppers."""
    return [start_outbox_worker(deps), start_reply_worker(deps)]


def receive_github_webhook(deps: Deps, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
    """`POST /github/webhook`: (HTTP status, short plain reason). Urgent alerts read it,
    then request follow-ups (each verifies the signature and claims the delivery under its
    own key, so a redelivery after one of them failed is done by that one only)."""
    status, reason = receive(deps, headers, body)
    if status in (400, 401, 404):
        return status, reason
    followup_status, followup_reason = receive_followup(
        deps, headers, body, on_change=request_changed
    )
    if followup_status >= 400 or (status == 202 and reason.startswith("ignored")):
        return followup_status, followup_reason
    return status, reason


def observe_for_followups(deps: Deps, client: IssuesClient, issues: list[GitHubIssue]) -> None:
    observe_polled_issues(deps, client, issues, on_change=request_changed)


def schedule_clock_extras(scheduler: BaseScheduler, deps: Deps) -> None:
    """What the clock process runs besides the scheduled jobs: the urgent-issue poller and
    the heartbeat that `/readyz`, `/metrics` and `databot posts` show."""
    schedule_in_clock(scheduler, deps, observers=[observe_for_followups])
    scheduler.add_job(
        run_followup_poll,
        IntervalTrigger(seconds=poll_interval(deps.settings)),
        args=[deps, request_changed],
        id=str(Job.FOLLOWUP_POLL),
        name=str(Job.FOLLOWUP_POLL),
        next_run_time=utc_now(),
        max_instances=1,
        coalesce=True,
    )
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
