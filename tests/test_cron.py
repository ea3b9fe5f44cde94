"""Cron strings mean what standard cron means (tracker issue 11): 0 and 7 are Sunday, 1 is
Monday; `databot check` and the clock say each schedule in words with its next fire times.
Weekdays below are checked against the calendar: Mon Nov 23, 2026 is a Monday."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bot.checks import run_checks
from bot.cody.job import cron_time
from bot.cron import build_schedule, parse_cron, schedule_line
from bot.deps import build_deps
from bot.features import build_jobs
from bot.scheduling.clock import Clock
from bot.settings import Settings

PT = ZoneInfo("America/Los_Angeles")
# Saturday Dec 5 2026, noon Pacific.
SATURDAY = dt.datetime(2026, 12, 5, 12, 0, tzinfo=PT)


def weekdays_of(cron: str, count: int = 7) -> list[str]:
    return [f"{f:%a}" for f in build_schedule(cron, PT).next_fires(SATURDAY, count)]


@pytest.mark.parametrize(
    ("cron", "days"),
    [
        ("0 9 * * 1", ["Mon"]),
        ("0 9 * * 0", ["Sun"]),
        ("0 9 * * 7", ["Sun"]),
        ("0 9 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 9 * * 5-7", ["Fri", "Sat", "Sun"]),
        ("0 9 * * */2", ["Sun", "Tue", "Thu", "Sat"]),
        ("0 9 * * 1,3", ["Mon", "Wed"]),
        ("0 9 * * mon", ["Mon"]),
        ("0 9 * * MON-FRI", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 9 * * sun", ["Sun"]),
        ("0 9 * * *", ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]),
    ],
)
def test_day_of_week_is_standard_cron(cron, days):
    fires = build_schedule(cron, PT).next_fires(SATURDAY, 14)
    assert sorted({f"{f:%a}" for f in fires}, key=days.index) == days
    assert all(f.astimezone(PT).time() == dt.time(9) for f in fires)


def test_0_9_star_star_1_fires_on_monday_not_tuesday():
    [first] = build_schedule("0 9 * * 1", PT).next_fires(SATURDAY, 1)
    assert first == dt.datetime(2026, 12, 7, 9, 0, tzinfo=PT)  # Monday Dec 7
    assert first.weekday() == 0


def test_both_day_fields_restricted_match_either_as_in_standard_cron():
    fires = build_schedule("0 9 1 * mon", PT).next_fires(dt.datetime(2026, 11, 24, tzinfo=PT), 4)
    # Tue Dec 1 (the 1st) and the Mondays around it.
    assert [f"{f:%a %d}" for f in fires] == ["Mon 30", "Tue 01", "Mon 07", "Mon 14"]


@pytest.mark.parametrize(
    ("cron", "start", "expected"),
    [
        # DST starts Sun Mar 8 2026: 09:00 PST is 17:00 UTC, 09:00 PDT 16:00 UTC.
        (
            "0 9 * * 1",
            dt.datetime(2026, 3, 1, tzinfo=PT),
            ["Mon Mar 2 09:00 PST", "Mon Mar 9 09:00 PDT", "Mon Mar 16 09:00 PDT"],
        ),
        # DST ends Sun Nov 1 2026.
        (
            "0 9 * * 1",
            dt.datetime(2026, 10, 25, tzinfo=PT),
            ["Mon Oct 26 09:00 PDT", "Mon Nov 2 09:00 PST", "Mon Nov 9 09:00 PST"],
        ),
        # The skipped hour fires when it ends; the repeated one once.
        (
            "30 2 * * 0",
            dt.datetime(2026, 3, 1, 12, tzinfo=PT),
            ["Sun Mar 8 03:00 PDT", "Sun Mar 15 02:30 PDT", "Sun Mar 22 02:30 PDT"],
        ),
        (
            "30 1 * * 7",
            dt.datetime(2026, 10, 26, tzinfo=PT),
            ["Sun Nov 1 01:30 PDT", "Sun Nov 8 01:30 PST", "Sun Nov 15 01:30 PST"],
        ),
    ],
)
def test_next_three_fire_times_across_a_dst_change(cron, start, expected):
    line = schedule_line("job", cron, PT, start.astimezone(dt.UTC))
    assert line.endswith("; next: " + ", ".join(expected))


def test_next_fire_times_keep_the_local_time_in_utc_terms():
    fires = build_schedule("0 9 * * 1", PT).next_fires(dt.datetime(2026, 3, 1, tzinfo=PT), 3)
    assert [f.astimezone(dt.UTC).hour for f in fires] == [17, 16, 16]


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("0 9 * * mon", "at 09:00 on Monday"),
        ("0 9 * * 1", "at 09:00 on Monday"),
        ("0 9 * * 0", "at 09:00 on Sunday"),
        ("0 9 * * 7", "at 09:00 on Sunday"),
        ("0 9 * * 1-5", "at 09:00 on Monday to Friday"),
        ("0 9 * * 0,6", "at 09:00 on Saturday and Sunday"),
        ("0 9 * * *", "at 09:00 every day"),
        ("30 8,13 * * *", "at 08:30 and 13:30 every day"),
        ("0 * * * *", "every hour at :00 every day"),
        ("*/15 9-17 * * 1-5", "every 15 minutes during hours 9-17 on Monday to Friday"),
        ("0 9 1 * *", "at 09:00 on day 1 of the month"),
        ("0 9 1 * mon", "at 09:00 on day 1 of the month or on Monday"),
        ("0 9 * jan-mar thu", "at 09:00 on Thursday in January to March"),
    ],
)
def test_a_schedule_in_words(cron, words):
    assert parse_cron(cron).describe() == words


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("0 9 * *", "has 4 field(s)"),
        ("0 9 * * 8", "day of week 8 is out of range 0-7 (0 and 7 are Sunday)"),
        ("61 9 * * *", "minute 61 is out of range 0-59"),
        ("0 9 * * fri-mon", "runs backwards"),
        ("0 9 * * funday", "is not a number 0-7 or a name"),
        ("0 0 31 2 *", "never fires"),
        ("0 9 * * 1/0", "the step must be at least 1"),
    ],
)
def test_an_invalid_cron_is_a_one_line_settings_error_naming_the_variable(cron, problem):
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, job_schedules={"sprint-digest": cron})
    [error] = raised.value.errors()
    assert error["loc"] == ("job_schedules",)
    assert "bad cron string for sprint-digest: " in error["msg"]
    assert problem in error["msg"] and "\n" not in error["msg"]

    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, cody_post_cron=cron)
    [error] = raised.value.errors()
    assert error["loc"] == ("cody_post_cron",) and problem in error["msg"]


def test_off_disables_and_defaults_are_valid():
    settings = Settings(
        _env_file=None, job_schedules={"sprint-digest": "OFF"}, cody_post_cron="off"
    )
    assert settings.job_schedules["sprint-digest"] == "OFF"
    assert settings.job_schedules["cody-daily"] == "off"
    for cron in Settings(_env_file=None).job_schedules.values():
        parse_cron(cron)


def test_the_cody_give_up_delay_reads_the_time_of_day_from_the_same_parser():
    assert cron_time("0 9 * * *") == dt.time(9, 0)
    assert cron_time("30 8 * * 1-5") == dt.time(8, 30)
    assert cron_time("*/5 * * * *") is None
    assert cron_time("off") is None


def test_check_prints_each_enabled_jobs_schedule_with_its_next_three_fire_times(tmp_path):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        job_schedules={"sprint-digest": "0 9 * * 1"},
        sprint_checkin_enabled=True,
        cody_post_cron="30 8 * * *",
    )
    report = run_checks(settings, now=SATURDAY.astimezone(dt.UTC))
    lines = [f.what for f in report.findings if f.what.startswith(("sprint-", "cody-", "urgent-"))]
    assert lines == [
        "sprint-digest: at 09:00 on Monday (America/Los_Angeles); next: Mon Dec 7 09:00 PST, "
        "Mon Dec 14 09:00 PST, Mon Dec 21 09:00 PST",
        "sprint-checkin: at 10:00 on Friday (America/Los_Angeles); next: Fri Dec 11 10:00 PST, "
        "Fri Dec 18 10:00 PST, Fri Dec 25 10:00 PST",
        "cody-daily: at 08:30 every day (America/Los_Angeles); next: Sun Dec 6 08:30 PST, "
        "Mon Dec 7 08:30 PST, Tue Dec 8 08:30 PST",
    ]
    # Disabled (sprint-planning, urgent-reminder) and "off" jobs are not listed.
    assert "[ok  ] sprint-digest: at 09:00 on Monday" in report.render()
    # The clock logs the same lines at start-up.
    deps = build_deps(settings, migrate=False, now=lambda: SATURDAY.astimezone(dt.UTC))
    try:
        assert Clock(deps, build_jobs(deps)).schedule_lines() == lines
    finally:
        deps.close()


@pytest.mark.parametrize(
    ("cron", "weekday"), [("0 9 * * 1", 0), ("0 9 * * 0", 6), ("0 9 * * 7", 6)]
)
def test_the_clock_fires_a_numeric_weekday_on_that_day(tmp_path, cron, weekday):
    settings = Settings(_env_file=None, data_dir=tmp_path, job_schedules={"sprint-digest": cron})
    deps = build_deps(settings, migrate=False, now=lambda: SATURDAY.astimezone(dt.UTC))
    try:
        runs = dict(Clock(deps, build_jobs(deps)).next_runs())
    finally:
        deps.close()
    fire = runs["sprint-digest"].astimezone(PT)
    assert fire.weekday() == weekday and fire.time() == dt.time(9)  # Python: Monday is 0
