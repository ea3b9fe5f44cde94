"""The clock: cron per job in the team's time zone, catch-up within the grace period, skip
after it, retries, and exactly-once with two clock processes and restarts."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from slack_sdk import WebClient

from bot import cli, tables
from bot.cron import build_schedule
from bot.deps import Deps
from bot.features import build_jobs, find_job
from bot.ids import Job
from bot.scheduling import runs
from bot.scheduling.clock import Clock, fire_times, manual_period, run_due, scheduled_entries
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
    trigger = build_schedule("0 9 * * mon", PT)
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


# --- daylight-saving changes (tracker issue 16, part 9) ------------------------------------
#
# America/Los_Angeles, 2026: DST starts Sunday March 8 at 02:00 PST (10:00 UTC; 02:00-02:59
# does not exist) and ends Sunday November 1 at 02:00 PDT (09:00 UTC; 01:00-01:59 happens
# twice, first PDT then PST). Expected instants below are worked out by hand in UTC.

SPRING, FALL = dt.date(2026, 3, 8), dt.date(2026, 11, 1)
DST_CRONS = {
    "hourly": "0 * * * *",
    "daily 01:30": "30 1 * * *",  # the repeated hour in the fall
    "daily 02:30": "30 2 * * *",  # the skipped hour in the spring
    "weekly": "30 2 * * 0",  # Sundays, the day of both changes
}
# First fire naming the DST day's period, for the jobs whose period is one day.
FIRST_FIRE_UTC = {
    (SPRING, "hourly"): dt.datetime(2026, 3, 8, 8, 0, tzinfo=dt.UTC),  # 00:00 PST
    (SPRING, "daily 01:30"): dt.datetime(2026, 3, 8, 9, 30, tzinfo=dt.UTC),  # 01:30 PST
    (SPRING, "daily 02:30"): dt.datetime(2026, 3, 8, 10, 0, tzinfo=dt.UTC),  # gap end, 03:00 PDT
    (SPRING, "weekly"): dt.datetime(2026, 3, 8, 10, 0, tzinfo=dt.UTC),
    (FALL, "hourly"): dt.datetime(2026, 11, 1, 7, 0, tzinfo=dt.UTC),  # 00:00 PDT
    (FALL, "daily 01:30"): dt.datetime(2026, 11, 1, 8, 30, tzinfo=dt.UTC),  # 01:30 PDT
    (FALL, "daily 02:30"): dt.datetime(2026, 11, 1, 10, 30, tzinfo=dt.UTC),  # 02:30 PST
    (FALL, "weekly"): dt.datetime(2026, 11, 1, 10, 30, tzinfo=dt.UTC),
}
# The period each job runs for on the DST day. Sprints (14 days) from the anchor Jan 5:
# Mar 2 and Oct 26 start sprints whose first week holds the DST Sunday (digest, check-in).
# The planning reminder uses the anchor Jan 12 (sprints from Mar 9 and Nov 2), so the DST
# Sunday is in the week before a sprint. Cody: yesterday (Pacific); the reminder: the day.
DST_PERIODS = {
    ("sprint-digest", SPRING): "2026-03-02",
    ("sprint-digest", FALL): "2026-10-26",
    ("sprint-checkin", SPRING): "2026-03-02",
    ("sprint-checkin", FALL): "2026-10-26",
    ("sprint-planning", SPRING): "2026-03-09",
    ("sprint-planning", FALL): "2026-11-02",
    ("cody-daily", SPRING): "2026-03-07",
    ("cody-daily", FALL): "2026-10-31",
    ("urgent-reminder", SPRING): "2026-03-08",
    ("urgent-reminder", FALL): "2026-11-01",
}
DST_CASES = [
    pytest.param(job, cron, day, id=f"{job}-{label}-{'spring' if day == SPRING else 'fall'}")
    for job in (
        "sprint-digest",
        "sprint-planning",
        "sprint-checkin",
        "cody-daily",
        "urgent-reminder",
    )
    for label, cron in DST_CRONS.items()
    for day in (SPRING, FALL)
]


class Probe:
    """A real job's period computation with a stand-in message (no GitHub, no warehouse)."""

    enabled = True

    def __init__(self, job) -> None:
        self.job, self.id, self.title = job, job.id, job.title

    def period_for(self, run_at, tz):
        return self.job.period_for(run_at, tz)

    def build(self, deps, period):
        return Post(channel="#analytics", text=f"{self.id} {period}")


def dst_deps(store, slack, clock, job: str, cron: str, **settings) -> Deps:
    anchor = dt.date(2026, 1, 12) if job == "sprint-planning" else dt.date(2026, 1, 5)
    return make_deps(
        store,
        slack,
        clock,
        job_schedules={job: cron},
        sprint_anchor=anchor,
        **settings,
    )


def real_job(deps, name):
    job = find_job(build_jobs(deps), name)
    assert job is not None
    return job


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("job", "cron", "day"), DST_CASES)
def test_a_manual_run_on_a_dst_day_returns_the_days_period(
    sqlite_store, slack, clock, job, cron, day
):
    deps = dst_deps(sqlite_store, slack, clock, job, cron)
    clock.set(dt.datetime.combine(day, dt.time(12), tzinfo=PT))
    expected = DST_PERIODS[job, day]
    assert manual_period(deps, real_job(deps, job), day) == expected
    assert manual_period(deps, real_job(deps, job)) == expected  # the latest due, up to now


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("job", "cron", "day"), DST_CASES)
def test_the_clock_runs_each_jobs_dst_day_period_once_at_its_time(
    sqlite_store, slack, clock, job, cron, day
):
    # A long grace: a sprint period whose last fire was yesterday is caught up at once.
    deps = dst_deps(sqlite_store, slack, clock, job, cron, schedule_grace_minutes=25 * 60)
    clock_ = Clock(deps, [Probe(real_job(deps, job))])
    [entry] = clock_.entries
    expected = f"{job} {DST_PERIODS[job, day]}"
    posted_at = None
    clock.set(dt.datetime.combine(day, dt.time(0, 5), tzinfo=PT))
    end = dt.datetime.combine(day, dt.time(6), tzinfo=PT)
    while clock() <= end:  # every 10 minutes, through the changed hour
        run_due(deps, entry)
        if posted_at is None and expected in posts(slack):
            posted_at = clock()
        clock.advance(minutes=10)
    texts = posts(slack)
    assert texts.count(expected) == 1
    assert len(texts) == len(set(texts))  # no period twice
    if job in ("cody-daily", "urgent-reminder"):  # one period per day: posted at its time
        label = next(k for k, v in DST_CRONS.items() if v == cron)
        fire = FIRST_FIRE_UTC[day, label]
        assert fire <= posted_at < fire + dt.timedelta(minutes=10)


def test_dst_day_fire_times_are_each_wall_clock_time_once():
    def fires(cron, day):
        start = dt.datetime.combine(day, dt.time(0), tzinfo=PT)
        found = list(fire_times(build_schedule(cron, PT), start, start + dt.timedelta(hours=25)))
        return [f.astimezone(dt.UTC) for f in found if f.astimezone(PT).date() == day]

    # Spring: 23 hours, 02:00 does not exist and fires at 03:00 PDT with 03:00 itself, once.
    assert [f.hour for f in fires("0 * * * *", SPRING)] == [8, 9, *range(10, 24), *range(7)]
    assert fires("30 2 * * *", SPRING) == [dt.datetime(2026, 3, 8, 10, 0, tzinfo=dt.UTC)]
    assert fires("30 1 * * *", SPRING) == [dt.datetime(2026, 3, 8, 9, 30, tzinfo=dt.UTC)]
    # Fall: 25 hours; each wall-clock hour fires once, 01:00 at its first occurrence (PDT).
    hourly = fires("0 * * * *", FALL)
    assert len(hourly) == 24 and hourly[:3] == [
        dt.datetime(2026, 11, 1, 7, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC),  # 02:00 PST; 01:00 PST is not a fire
    ]
    assert fires("30 1 * * *", FALL) == [dt.datetime(2026, 11, 1, 8, 30, tzinfo=dt.UTC)]
    assert fires("30 2 * * *", FALL) == [dt.datetime(2026, 11, 1, 10, 30, tzinfo=dt.UTC)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cron", DST_CRONS.values())
@pytest.mark.parametrize("day", [SPRING, FALL])
def test_the_trigger_apscheduler_runs_always_moves_forward_across_a_dst_change(cron, day):
    # APScheduler's scheduler thread loops `while next_run_time <= now: next_run_time =
    # trigger.get_next_fire_time(next_run_time, now)`: a trigger that answers the same time
    # again hangs the clock process.
    trigger = build_schedule(cron, PT)
    now = dt.datetime.combine(day, dt.time(4), tzinfo=PT)
    fire = trigger.get_next_fire_time(None, dt.datetime.combine(day, dt.time(0), tzinfo=PT))
    seen = []
    while fire is not None and fire.astimezone(dt.UTC) <= now.astimezone(dt.UTC):
        seen.append(fire.astimezone(dt.UTC))
        following = trigger.get_next_fire_time(fire, now)
        assert following is not None and following.astimezone(dt.UTC) > seen[-1]
        fire = following
    assert 1 <= len(seen) <= 5  # at most 00:00-04:00 hourly, each wall-clock hour once


class EachFire(WeeklyReport):
    """A period per fire (its UTC instant): shows how many times the clock fires."""

    id = Job.URGENT_REMINDER

    def period_for(self, run_at, tz):
        return run_at.astimezone(dt.UTC).isoformat()


@pytest.mark.timeout(60)
def test_a_0130_run_on_the_fall_back_day_fires_once_not_twice(sqlite_store, slack, clock):
    deps = make_deps(sqlite_store, slack, clock, job_schedules={"urgent-reminder": "30 1 * * *"})
    job = EachFire()
    job.enabled = True
    clock_ = Clock(deps, [job])
    clock.set(pacific(2026, 11, 1, 0, 0))
    while clock() <= pacific(2026, 11, 1, 4, 0):  # 01:30 PDT, then 01:30 PST an hour later
        clock_.tick()
        clock.advance(minutes=5)
    assert job.builds == 1
    assert posts(slack) == ["Weekly report 2026-11-01T08:30:00+00:00"]


def _state_url(store) -> str:
    if store.dialect == "sqlite":
        return str(store.engine.url)
    with store.engine.connect() as connection:
        schema = connection.execute(sa.text("SELECT current_schema()")).scalar_one()
    return f"{store.url}?options=-csearch_path%3D{schema}"


@pytest.mark.timeout(60)
def test_a_manual_post_says_at_once_that_another_run_holds_the_period(store, tmp_path, capsys):
    # The tracker's case: `databot post sprint-planning` with an hourly cron beside a clock
    # that holds the period. It must not wait: it says who has it and returns.
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=_state_url(store),
        job_schedules={"sprint-planning": "0 * * * *"},
        sprint_planning_enabled=True,
        sprint_anchor=dt.date(2026, 1, 12),
    )
    held, _ = runs.claim(store, "sprint-planning", "2026-11-02", utc_now())
    args = argparse.Namespace(job="sprint-planning", date=FALL, dry_run=False)

    assert cli.cmd_post(args, settings) == 0

    until = held.lease_until.astimezone(PT)
    assert capsys.readouterr().out == (
        f"sprint-planning 2026-11-02 is already running in another process (its lease ends "
        f"{until:%H:%M %Z}); nothing posted. `databot posts` shows how it ends.\n"
    )
    record = runs.get_run(store, "sprint-planning", "2026-11-02")
    assert record.status == RunStatus.RUNNING and record.attempts == 1  # left alone
