"""The composition root: every feature's scheduled jobs, background workers and seams, named
in one place. Adding a feature means adding its lines here (and its Slack listeners in
handlers/__init__.py); nothing registers itself as an import side effect.

Seams (where one feature hands something to another, in one direction only):
- intake -> urgent: a request filed as urgent is shown in the analytics channel at once
  (`urgent.alerts.announce_issue`), instead of at the next poll or webhook, with the Slack
  thread it was filed from (urgent reads no intake table).
- intake -> support: a new request goes to the analyst its business unit is aligned with,
  else to the one on support that week (`support.model.route`); urgent ones ping them.
- intake -> home: filing a request redraws the requester's Home tab
  (`home.tab.refresh_home(deps, slack_user_id)`; only for people who opened it).
- home -> intake: the Home tab lists a person's requests (`intake.outbox.requests_by`).
- home -> sprints, home -> support: the tab shows this sprint's dates and who is on support.
- subscriptions -> metric: subscriptions and alerts reuse /metric's grammar, catalog, lookup
  service and answer builders (`metric.model.parse_command`, `metric.lookup.MetricService`,
  `metric.blocks.build_metric_message`); metric knows nothing of subscriptions (its
  "Subscribe" button is only an action id, handled in handlers/subscriptions.py).
- followup -> intake: request follow-ups ask intake which issues it filed, and where each
  request's replies go (`intake.outbox.filed_requests`); they read no intake table.
- intake -> followup: filing records the created issue as the follow-ups' baseline
  (`followup.replies.record_filed`), so routing's own assignment is not told back.
- urgent poller -> followup: the urgent poller's one listing of changed issues is handed to
  follow-ups (`observers=` below), so both share one conditional request per interval.
- followup -> home: `request_changed` below redraws the requester's Home tab once per
  batch of told changes.

Subscriptions and alerts are jobs made by people, one per item (`sub-3`, `alert-7`), so
they are not in `build_jobs`: `tick_subscriptions` hands each one due to the same runner
(and clock catch-up) every minute in the clock process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from apscheduler.triggers.interval import IntervalTrigger

from bot.cody.job import CodyDailyJob
from bot.cron import build_schedule
from bot.followup.model import Update
from bot.followup.poller import observe_polled_issues
from bot.followup.poller import run_poll as run_followup_poll
from bot.followup.replies import start_reply_worker
from bot.followup.webhook import receive as receive_followup
from bot.github import GitHubIssue, IssuesClient
from bot.home.tab import refresh_home
from bot.ids import Job
from bot.intake.filing import start_outbox_worker
from bot.intake.mirror import start_mirror_worker
from bot.metric.rollups import RollupJob
from bot.scheduling import runs
from bot.scheduling.clock import Entry, run_due
from bot.scheduling.job import JobOptions, ScheduledJob
from bot.scheduling.runner import run_period
from bot.scheduling.runs import RunRecord
from bot.settings import utc_now
from bot.sprints.jobs import build_sprint_jobs
from bot.subscriptions.delivery import (
    AlertJob,
    SubscriptionJob,
    active_jobs,
    find_item_job,
    redeliver_stopped_notices,
)
from bot.telemetry import CLOCK_HEARTBEAT_KEY
from bot.urgent.poller import (
    IssuesObserver,
    PollLoop,
    PollResult,
    poll_interval,
    poll_once,
    schedule_in_clock,
)
from bot.urgent.reminder import UrgentReminderJob
from bot.urgent.webhook import receive

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from bot.deps import Deps


logger = logging.getLogger(__name__)
TICK_THREADS = 8  # deliveries of one subscriptions tick running at once


def build_jobs(deps: Deps) -> list[ScheduledJob]:
    """Every scheduled job of this deployment, enabled or not (the clock checks
    `settings.job_enabled`; `databot post` can run any of them by hand)."""
    jobs: list[ScheduledJob] = []
    jobs += build_sprint_jobs(deps)
    jobs.append(CodyDailyJob(deps.settings))
    jobs.append(UrgentReminderJob(deps.settings))
    jobs.append(RollupJob(deps.settings))
    return jobs


def find_job(jobs: list[ScheduledJob], name: str, deps: Deps | None = None) -> ScheduledJob | None:
    """The job called `name`; with `deps`, also a subscription or alert (`sub-3`)."""
    found = next((j for j in jobs if str(j.id) == name), None)
    if found is None and deps is not None:
        return find_item_job(deps, name)  # type: ignore[return-value]
    return found


def tick_subscriptions(deps: Deps) -> list[RunRecord]:
    """One pass over every subscription and alert, at deps.now(): each period due and not
    yet recorded is run once (catch-up within the grace period, a missed one recorded as
    skipped), then the retries (late data, failed builds, crashed runs). All items due in
    this tick share one lookup service: one warehouse query per distinct lookup."""
    jobs = active_jobs(deps)
    by_name = {str(j.id): j for j in jobs}
    done: list[RunRecord] = []

    def due(job: SubscriptionJob | AlertJob) -> list[RunRecord]:
        entry = Entry(
            job,  # type: ignore[arg-type]
            job.cron(),
            build_schedule(job.cron(), deps.settings.tz),
            JobOptions.of(job, deps.settings),  # type: ignore[arg-type]
        )
        return run_due(deps, entry)

    # Items in parallel (each one's periods in order, in one thread): the waits are Slack's
    # and the state database's; the shared lookups' single flight keeps one query each.
    with ThreadPoolExecutor(TICK_THREADS, thread_name_prefix="databot-subs") as pool:
        for records in pool.map(due, jobs):
            done += records
    for name, period in runs.due_retries(deps.store, deps.now()):
        retry = by_name.get(name)
        if retry is not None:
            record = run_period(deps, retry, period)  # type: ignore[arg-type]
            if record is not None:
                done.append(record)
    redeliver_stopped_notices(deps)  # a creator's "stopped" DM whose first try was lost
    return done


def request_changed(
    deps: Deps, requester_id: str, issue_number: int, updates: list[Update]
) -> None:
    """Called once for each batch of changes told to a request's requester (after the
    replies are queued), by the webhook and the poller alike: the place where a view of
    the requester's requests (the Home tab) is refreshed."""
    try:
        refresh_home(deps, requester_id)
    except Exception:  # the Home tab is redrawn when it is next opened
        logger.warning("could not refresh the Home tab of %s", requester_id, exc_info=True)


def start_web_workers(deps: Deps) -> list[Callable[[], None]]:
    """Workers that run beside `serve` (the intake outbox, the thread mirror's retries,
    follow-up replies still due); returns their stoppers."""
    return [start_outbox_worker(deps), start_mirror_worker(deps), start_reply_worker(deps)]


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


def poll_observers() -> list[IssuesObserver]:
    """Who else reads the urgent poller's listing: the cursor it moves is shared, so every
    run of the poller (the clock, `databot urgent-poll`) hands them what it lists."""
    return [observe_for_followups]


def urgent_poll_once(deps: Deps) -> PollResult:
    """`databot urgent-poll --once`: one poll, follow-ups included."""
    return poll_once(deps, observers=poll_observers())


def urgent_poll_loop(deps: Deps) -> PollLoop:
    """`databot urgent-poll`: the poller on its own, follow-ups included (not started)."""
    return PollLoop(deps, observers=poll_observers())


def schedule_clock_extras(scheduler: BaseScheduler, deps: Deps) -> None:
    """What the clock process runs besides the scheduled jobs: the urgent-issue poller and
    the heartbeat that `/readyz`, `/metrics` and `databot posts` show."""
    schedule_in_clock(scheduler, deps, observers=poll_observers())
    every = poll_interval(deps.settings)
    _every(scheduler, str(Job.FOLLOWUP_POLL), every, run_followup_poll, deps, request_changed)
    _every(scheduler, "subscriptions", HEARTBEAT_SECONDS, _guarded_tick, deps)
    _every(scheduler, "heartbeat", HEARTBEAT_SECONDS, beat, deps)


def _every(scheduler: BaseScheduler, job_id: str, seconds: float, fn, *args) -> None:
    """An interval job of the clock: first run now, never two at once, missed runs merged."""
    scheduler.add_job(
        fn,
        IntervalTrigger(seconds=seconds),
        args=list(args),
        id=job_id,
        name=job_id,
        next_run_time=utc_now(),
        max_instances=1,
        coalesce=True,
    )


HEARTBEAT_SECONDS = 60


def _guarded_tick(deps: Deps) -> None:
    # One item's bug must not stop the clock.
    try:
        tick_subscriptions(deps)
    except Exception:
        logger.exception("subscriptions: the tick failed")


def beat(deps: Deps) -> None:
    deps.store.kv_set(CLOCK_HEARTBEAT_KEY, deps.now().isoformat())
