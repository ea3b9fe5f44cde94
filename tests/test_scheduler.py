"""The clock: cron per job in the team's time zone, catch-up within the grace period, skip
after it, retries, and exactly-once with two clock processes and restarts."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from slack_sdk import WebClient

from bot import tables
from bot.deps import Deps
from bot.ids import Job
from bot.scheduling import runs
from bot.scheduling.clock import Clock, fire_times, scheduled_entries
from bot.scheduling.job import NotReady, Post
from bot.scheduling.runs import RunStatus
from bot.settings import Settings, utc_now
from sandbox.slack_api import FakeSlack

PT = ZoneInfo("America/Los_Angeles")


def pacific(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PT).astimezone(dt.UTC)


class WeeklyReport:
    """Due every Monday; the period is the Monday's date."""

    id = Job.SPRINT_DIGEST
    title = "Weekly report"

    def __init__(self, answer=None) -> None:
        self.answer = answer
        self.builds = 0
        self.lock = threading.Lock()

    def period_for(self, run_at, tz):
        day = run_at.astimezone(tz).date()
        return day.isoformat() if day.weekday() == 0 else None

    def build(self, deps, period):
        with self.lock:
            self.builds += 1
        if callable(self.answer):
            return self.answer()
        return self.answer or Post(channel="#analytics", text=f"Weekly report {period}")


class MinuteReport(WeeklyReport):
    id = Job.CODY_DAILY

    def period_for(self, run_at, tz):
        return run_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M")

    def build(self, deps, period):
        with self.lock:
            self.builds += 1
        time.sleep(0.05)  # long enough for a second clock to try the same period
        return Post(channel="#analytics", text=f"Minute report {period}")


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


def make_deps(store, slack, now, **settings) -> Deps:
    settings.setdefault("job_schedules", {"sprint-digest": "0 9 * * mon"})
    return Deps(
        settings=Settings(_env_file=None, owner_channel="U0OWNER", **settings),
        store=store,
        warehouse=None,
        slack=WebClient(token=slack.token, base_url=slack.api_url),
        github=None,
        work=ThreadPoolExecutor(1),
        now=now,
    )


@pytest.fixture
def deps(store, slack, clock):
    return make_deps(store, slack, clock, schedule_grace_minutes=240)


def posts(slack) -> list[str]:
    return [m["text"] for m in slack.messages("#analytics")]


def test_cron_fires_at_local_time_on_both_sides_of_a_dst_change():
    trigger = CronTrigger.from_crontab("0 9 * * mon", timezone=PT)
    fires = list(fire_times(trigger, pacific(2026, 2, 28), pacific(2026, 3, 20)))
    # DST starts Sunday March 8, 2026: 09:00 PST is 17:00 UTC, 09:00 PDT is 16:00 UTC.
    assert [(f.astimezone(PT).day, f.astimezone(PT).hour) for f in fires] == [
        (2, 9),
        (9, 9),
        (16, 9),
    ]
    assert [f.astimezone(dt.UTC).hour for f in fires] == [17, 16, 16]


def test_a_job_posts_at_its_time_once(deps, slack, clock):
    job = WeeklyReport()
    clock_ = Clock(deps, [job])
    clock.set(pacific(2026, 11, 23, 8, 59))
    assert clock_.tick() == [] and posts(slack) == []

    clock.set(pacific(2026, 11, 23, 9, 0))
    clock_.tick()
    clock.advance(minutes=1)
    clock_.tick()
    assert posts(slack) == ["Weekly report 2026-11-23"]


def test_a_restarted_clock_does_not_post_again(deps, slack, clock):
    clock.set(pacific(2026, 11, 23, 9, 0))
    Clock(deps, [WeeklyReport()]).tick()
    clock.advance(minutes=5)
    Clock(deps, [WeeklyReport()]).tick()  # a new process: nothing in memory
    assert posts(slack) == ["Weekly report 2026-11-23"]


def test_after_a_crash_the_sweep_does_not_repost_to_a_channel_it_cannot_read(deps, slack, clock):
    # The sprint posts go to #analytics without databot being in it (chat:write.public).
    slack.add_channel(name="analytics", is_member=False)
    clock.set(pacific(2026, 11, 23, 9, 0))
    Clock(deps, [WeeklyReport()]).tick()
    # The process died after Slack took the post and before it recorded it.
    with deps.store.engine.begin() as connection:
        connection.execute(
            tables.scheduled_runs.update()
            .where(tables.scheduled_runs.c.period == "2026-11-23")
            .values(status=RunStatus.RUNNING, ts=None, permalink=None, lease_until=clock())
        )

    for _ in range(3):  # the sweep after the lease expired, and later ones
        clock.advance(minutes=20)
        Clock(deps, [WeeklyReport()]).tick()

    assert posts(slack) == ["Weekly report 2026-11-23"]
    record = runs.get_run(deps.store, "sprint-digest", "2026-11-23")
    assert record.status == RunStatus.FAILED and "may have been posted" in record.detail
    [told] = [m["text"] for m in slack.messages("U0OWNER")]
    assert "Check #analytics" in told


def test_a_run_missed_while_down_is_caught_up_within_the_grace_period(deps, slack, clock):
    clock.set(pacific(2026, 11, 23, 12, 30))  # came back 3.5 h after the 09:00 run
    records = Clock(deps, [WeeklyReport()]).tick()
    assert posts(slack) == ["Weekly report 2026-11-23"]
    assert [r.status for r in records] == [RunStatus.POSTED]


def test_a_run_missed_by_more_than_the_grace_period_is_skipped_with_a_log_line(
    deps, slack, clock, caplog
):
    caplog.set_level(logging.WARNING, logger="bot.scheduling.clock")
    clock.set(pacific(2026, 11, 25, 10, 0))  # Wednesday: Monday's report is noise now
    Clock(deps, [WeeklyReport()]).tick()

    assert posts(slack) == []
    record = runs.get_run(deps.store, "sprint-digest", "2026-11-23")
    assert record.status == RunStatus.SKIPPED
    assert "missed" in record.detail and "Mon Nov 23 09:00" in record.detail
    assert any("skipped" in r.getMessage() for r in caplog.records)
    # Later ticks neither post it nor log it again.
    caplog.clear()
    clock.advance(minutes=1)
    Clock(deps, [WeeklyReport()]).tick()
    assert posts(slack) == [] and not caplog.records


def test_grace_is_measured_from_the_scheduled_time(deps, slack, clock):
    deps.settings = deps.settings.model_copy(update={"schedule_grace_minutes": 60})
    clock.set(pacific(2026, 11, 23, 10, 1))
    Clock(deps, [WeeklyReport()]).tick()
    assert posts(slack) == []
    assert runs.get_run(deps.store, "sprint-digest", "2026-11-23").status == "skipped"


def test_waiting_runs_are_retried_by_the_clock(deps, slack, clock):
    ready = {"now": False}

    def answer():
        if ready["now"]:
            return Post(channel="#analytics", text="Weekly report, complete")
        return NotReady(reason="the export is late")

    job = WeeklyReport(answer)
    clock_ = Clock(deps, [job])
    clock.set(pacific(2026, 11, 23, 9, 0))
    clock_.tick()
    clock.advance(minutes=10)
    clock_.tick()
    assert job.builds == 1  # the retry waits for its time (30 min)
    ready["now"] = True
    clock.advance(minutes=20)
    clock_.tick()
    assert posts(slack) == ["Weekly report, complete"]


def test_disabled_and_switched_off_jobs_are_not_scheduled(store, slack, clock):
    deps = make_deps(store, slack, clock, job_schedules={"sprint-digest": "off"})
    assert scheduled_entries(deps, [WeeklyReport()]) == []

    disabled = WeeklyReport()
    disabled.enabled = False
    deps = make_deps(store, slack, clock)
    assert scheduled_entries(deps, [disabled]) == []


def test_one_broken_job_does_not_stop_the_others(deps, slack, clock):
    class Broken(WeeklyReport):
        id = Job.SPRINT_PLANNING

        def period_for(self, run_at, tz):
            raise RuntimeError("bug")

    deps.settings = deps.settings.model_copy(
        update={"job_schedules": {"sprint-digest": "0 9 * * mon", "sprint-planning": "0 9 * * *"}}
    )
    clock.set(pacific(2026, 11, 23, 9, 0))
    Clock(deps, [Broken(), WeeklyReport()]).tick()
    assert posts(slack) == ["Weekly report 2026-11-23"]


@pytest.mark.postgres
def test_two_clock_processes_on_postgres_post_each_period_once(postgres_store, slack):
    """Two real APScheduler clocks, started together and restarted, on one database."""
    settings = {"job_schedules": {"cody-daily": "* * * * *"}, "schedule_grace_minutes": 5}
    jobs = [MinuteReport(), MinuteReport()]
    clocks = [Clock(make_deps(postgres_store, slack, utc_now, **settings), [j]) for j in jobs]
    try:
        barrier = threading.Barrier(2)
        starters = [
            threading.Thread(target=lambda c=c: (barrier.wait(), c.start())) for c in clocks
        ]
        for t in starters:
            t.start()
        for t in starters:
            t.join()
        _wait_for(lambda: len(posts(slack)) >= 1)
        time.sleep(0.5)  # both clocks' start-up catch-up has run
        clocks[0].stop()
        restarted = Clock(make_deps(postgres_store, slack, utc_now, **settings), [MinuteReport()])
        restarted.start()
        time.sleep(0.5)
        restarted.stop()
    finally:
        for c in clocks:
            c.stop()

    texts = posts(slack)
    assert texts and len(texts) == len(set(texts))  # one post per minute-period, never two
    recorded = [r for r in runs.list_runs(postgres_store) if r.status == RunStatus.POSTED]
    assert len(recorded) == len(texts)
    # The clock that lost a claim never even built the message.
    assert sum(j.builds for j in jobs) + restarted.jobs[0].builds == len(texts)


def _wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_after_dst_starts_the_job_runs_at_nine_local_not_nine_standard_time(deps, slack, clock):
    clock_ = Clock(deps, [WeeklyReport()])
    # Monday March 9 2026, the day after DST started: 09:00 PDT is 16:00 UTC.
    clock.set(dt.datetime(2026, 3, 9, 15, 59, tzinfo=dt.UTC))
    clock_.tick()
    assert posts(slack) == []
    clock.set(dt.datetime(2026, 3, 9, 16, 0, tzinfo=dt.UTC))
    clock_.tick()
    clock.set(dt.datetime(2026, 3, 9, 17, 0, tzinfo=dt.UTC))  # 09:00 PST would be now
    clock_.tick()
    assert posts(slack) == ["Weekly report 2026-03-09"]


def test_a_manual_run_picks_the_latest_due_period_or_the_given_day(deps, clock):
    from bot.errors import InputError
    from bot.scheduling.clock import manual_period

    clock.set(pacific(2026, 11, 25, 15, 0))  # a Wednesday
    job = WeeklyReport()
    assert manual_period(deps, job) == "2026-11-23"
    assert manual_period(deps, job, dt.date(2026, 11, 16)) == "2026-11-16"
    with pytest.raises(InputError, match="nothing due on Tue Nov 24, 2026"):
        manual_period(deps, job, dt.date(2026, 11, 24))
    # A job without a schedule is asked about the moment it is run.
    deps.settings = deps.settings.model_copy(update={"job_schedules": {}})
    assert manual_period(deps, MinuteReport()) == "2026-11-25T15:00"
