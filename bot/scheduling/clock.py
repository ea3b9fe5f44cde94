"""The clock process: fires each enabled job on its cron (settings.job_schedules, in
settings.timezone) and hands the period to the runner, which posts it exactly once.

APScheduler (3.x) keeps its jobs in memory, built from settings in every clock process:
its job stores cannot be shared by two schedulers, and they need not be, because
exactly-once lives in the `scheduled_runs` table. What APScheduler cannot do for us, we do
from that table and the cron string:

- catch-up: at start and on every sweep (each minute), each job's fire times over the last
  days are listed; a period whose fire time passed less than the grace period ago and has
  no record is run now (once: the runner's claim decides); one missed by more than that is
  recorded as skipped with a log line (a Monday digest on Wednesday is noise);
- retries: runs waiting for data, or left behind by a process that died, are retried
  when their `lease_until` passes.

Every decision reads the time from `deps.now`, so tests drive it with a controllable clock
through `Clock.tick()`; APScheduler only decides when to wake up.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.cron import CronSchedule, build_schedule, is_off, schedule_line
from bot.errors import InputError
from bot.scheduling import runner, runs
from bot.scheduling.job import JobOptions, ScheduledJob
from bot.scheduling.runs import RunRecord

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

# How far back catch-up looks for fire times (a weekly job's last one is within a week).
LOOKBACK = dt.timedelta(days=8)
SWEEP_SECONDS = 60


@dataclass(frozen=True)
class Entry:
    """A job as this clock runs it."""

    job: ScheduledJob
    cron: str
    trigger: CronSchedule
    opts: JobOptions

    @property
    def name(self) -> str:
        return str(self.job.id)


def scheduled_entries(deps: Deps, jobs: list[ScheduledJob]) -> list[Entry]:
    """The enabled jobs with a cron string, each with its trigger in the team's time zone."""
    entries = []
    for job in jobs:
        name = str(job.id)
        opts = JobOptions.of(job, deps.settings)
        cron = deps.settings.job_schedules.get(name, "off")
        if not opts.enabled or is_off(cron):
            logger.debug("%s: not scheduled (%s)", name, "disabled" if not opts.enabled else "off")
            continue
        trigger = build_schedule(cron, deps.settings.tz)
        entries.append(Entry(job, cron, trigger, opts))
    return entries


def schedule_lines(deps: Deps, jobs: list[ScheduledJob]) -> list[str]:
    """Each scheduled job's cron in words with its next three fire times (team's zone), as
    `databot check` prints them and the clock logs them at start-up."""
    tz, now = deps.settings.tz, deps.now()
    return [schedule_line(e.name, e.cron, tz, now) for e in scheduled_entries(deps, jobs)]


def fire_times(trigger: BaseTrigger, start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
    """Fire times of `trigger` in [start, end], oldest first (aware datetimes).

    Each is strictly later than the last, so the loop ends: a CronSchedule guarantees it
    across daylight-saving changes; any other trigger that stands still (APScheduler's own
    cron in a repeated hour) is stopped here rather than looping."""
    if isinstance(trigger, CronSchedule):
        yield from trigger.fire_times(start, end)
        return
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire.astimezone(dt.UTC) <= end.astimezone(dt.UTC):
        yield fire
        following = trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
        if following is not None and following <= fire:
            logger.warning("%s stood still at %s; fire times stop there", trigger, fire)
            return
        fire = following


def run_due(deps: Deps, entry: Entry) -> list[RunRecord]:
    """Run every period of `entry` that is due now and not yet recorded; record the latest
    one missed by more than the grace period as skipped."""
    now = deps.now()
    tz = deps.settings.tz
    lookback = max(entry.opts.grace, LOOKBACK)
    latest_fire: dict[str, dt.datetime] = {}
    for fire in fire_times(entry.trigger, now - lookback, now):
        period = entry.job.period_for(fire, tz)
        if period is not None:
            latest_fire[period] = fire  # the last fire naming a period counts
    done: list[RunRecord] = []
    missed: tuple[str, dt.datetime] | None = None
    for period, fire in sorted(latest_fire.items(), key=lambda item: item[1]):
        late = now - fire
        if late > entry.opts.grace:
            missed = (period, fire)
            continue
        if runs.get_run(deps.store, entry.name, period) is not None:
            continue  # done, or in progress / waiting: the sweep handles retries
        if late > dt.timedelta(minutes=2):
            logger.info("%s %s: catching up a run missed by %s", entry.name, period, _ago(late))
        record = runner.run_period(deps, entry.job, period)
        if record is not None:
            done.append(record)
    if missed:
        period, fire = missed
        if runs.get_run(deps.store, entry.name, period) is None:
            detail = (
                f"missed: due {fire.astimezone(tz):%a %b %d %H:%M %Z}; the clock came back "
                f"{_ago(now - fire)} later (grace {_ago(entry.opts.grace)})"
            )
            if runs.record_skipped(deps.store, entry.name, period, now, detail):
                logger.warning("%s %s skipped: %s", entry.name, period, detail)
    return done


def sweep(deps: Deps, jobs: list[ScheduledJob]) -> list[RunRecord]:
    """Retry runs whose retry time has come or whose process died (lease expired), and
    owner notices whose post may not have gone out."""
    by_name = {str(j.id): j for j in jobs}
    done = []
    runner.redeliver_owner_notices(deps)
    for name, period in runs.due_retries(deps.store, deps.now()):
        job = by_name.get(name)
        if job is None:
            continue  # a job this deployment no longer has
        record = runner.run_period(deps, job, period)
        if record is not None:
            done.append(record)
    return done


def _ago(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h"
    return f"{hours // 24} days"


class Clock:
    """The scheduler of one clock process. Several may run at once (e.g. during a deploy):
    the state store keeps every post to one per period."""

    def __init__(self, deps: Deps, jobs: list[ScheduledJob]) -> None:
        self.deps = deps
        self.jobs = jobs
        self.entries = scheduled_entries(deps, jobs)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(max(2, len(self.entries) + 1))},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=deps.settings.tz,
        )

    def tick(self) -> list[RunRecord]:
        """One pass of everything the clock does, at deps.now(): due runs, catch-up,
        retries. APScheduler calls it; tests call it after moving the clock."""
        done: list[RunRecord] = []
        for entry in self.entries:
            done += self._guarded(run_due, entry)
        done += self._guarded(sweep, self.jobs)
        return done

    def _guarded(self, func, arg) -> list[RunRecord]:
        # One job's bug must not stop the clock or the other jobs.
        try:
            return func(self.deps, arg)
        except Exception:
            logger.exception("scheduler: %s failed", getattr(func, "__name__", func))
            return []

    def start(self) -> None:
        for entry in self.entries:
            self.scheduler.add_job(
                self._guarded,
                entry.trigger,
                args=[run_due, entry],
                id=entry.name,
                name=entry.name,
                misfire_grace_time=int(entry.opts.grace.total_seconds()) or None,
            )
            logger.info("scheduled %s: %s (%s)", entry.name, entry.cron, entry.trigger.timezone.key)
        # The sweep also catches up at start (next_run_time=now) and after a suspend.
        self.scheduler.add_job(
            self.tick,
            IntervalTrigger(seconds=SWEEP_SECONDS),
            id="sweep",
            name="sweep",
            next_run_time=dt.datetime.now(dt.UTC),
        )
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def next_runs(self) -> list[tuple[str, dt.datetime | None]]:
        now = self.deps.now()
        return [(e.name, e.trigger.get_next_fire_time(None, now)) for e in self.entries]

    def schedule_lines(self) -> list[str]:
        """What `databot check` prints for this clock's jobs (logged at start-up)."""
        return schedule_lines(self.deps, self.jobs)


# How far back `databot post JOB` (no --date) looks for the latest due period.
MANUAL_LOOKBACK = dt.timedelta(days=35)


def manual_period(deps: Deps, job: ScheduledJob, day: dt.date | None = None) -> str:
    """The period `databot post JOB [--date D]` runs: the one due at the job's scheduled
    time on day D, or without D the latest one due up to now. A job with no cron is asked
    about noon of D (or now). Raises InputError when nothing is due."""
    tz = deps.settings.tz
    name = str(job.id)
    cron = deps.settings.job_schedules.get(name, "off")
    now = deps.now()
    if day is not None:
        start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
        end = start + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    else:
        start, end = now - MANUAL_LOOKBACK, now
    if is_off(cron):
        candidates = [dt.datetime.combine(day, dt.time(12), tzinfo=tz) if day else now]
    else:
        candidates = list(build_schedule(cron, tz).fire_times(start, end))
    for run_at in reversed(candidates):
        period = job.period_for(run_at, tz)
        if period is not None:
            return period
    when = f"on {day:%a %b %d, %Y}" if day else "in the last weeks"
    schedule = f" (its schedule: {cron!r} in {deps.settings.timezone})" if not is_off(cron) else ""
    raise InputError(
        f"{name} has nothing due {when}{schedule}. Pass --date with a day it runs, "
        "e.g. the first Monday of a sprint for sprint-digest."
    )
