import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.errors import InputError
from bot.metric.periods import Period, parse_period

D = dt.date
PT = ZoneInfo("America/Los_Angeles")
MONDAY = D(2026, 11, 23)


@pytest.mark.parametrize(
    ("text", "today", "start", "end", "partial"),
    [
        ("", MONDAY, D(2026, 11, 22), D(2026, 11, 22), False),
        ("yesterday", MONDAY, D(2026, 11, 22), D(2026, 11, 22), False),
        ("  YESTERDAY ", MONDAY, D(2026, 11, 22), D(2026, 11, 22), False),
        ("today", MONDAY, MONDAY, MONDAY, True),
        ("7d", MONDAY, D(2026, 11, 16), D(2026, 11, 22), False),
        ("30d", MONDAY, D(2026, 10, 24), D(2026, 11, 22), False),
        ("90d", MONDAY, D(2026, 8, 25), D(2026, 11, 22), False),
        ("last week", MONDAY, D(2026, 11, 16), D(2026, 11, 22), False),
        # On a Sunday the current week is not over: last week is the one before.
        ("last week", D(2026, 11, 22), D(2026, 11, 9), D(2026, 11, 15), False),
        ("Last  Month", MONDAY, D(2026, 10, 1), D(2026, 10, 31), False),
        ("last month", D(2027, 1, 5), D(2026, 12, 1), D(2026, 12, 31), False),
        ("last month", D(2026, 3, 1), D(2026, 2, 1), D(2026, 2, 28), False),
        ("this month", MONDAY, D(2026, 11, 1), D(2026, 11, 22), False),
        ("this month", D(2026, 11, 1), D(2026, 11, 1), D(2026, 11, 1), True),
        ("2026-10", MONDAY, D(2026, 10, 1), D(2026, 10, 31), False),
        ("2024-02", MONDAY, D(2024, 2, 1), D(2024, 2, 29), False),
        ("2026-11", MONDAY, D(2026, 11, 1), D(2026, 11, 22), False),
        ("2026-10-05", MONDAY, D(2026, 10, 5), D(2026, 10, 5), False),
        ("2026-11-23", MONDAY, MONDAY, MONDAY, True),
        ("2026-10-01..2026-10-31", MONDAY, D(2026, 10, 1), D(2026, 10, 31), False),
        ("2026-10-01 .. 2026-10-03", MONDAY, D(2026, 10, 1), D(2026, 10, 3), False),
    ],
)
def test_period_grammar_gives_exact_pacific_dates(text, today, start, end, partial):
    assert parse_period(text, today) == Period(start, end, partial)


@pytest.mark.parametrize(
    ("period", "previous"),
    [
        (Period(D(2026, 11, 22), D(2026, 11, 22)), Period(D(2026, 11, 21), D(2026, 11, 21))),
        (Period(D(2026, 11, 16), D(2026, 11, 22)), Period(D(2026, 11, 9), D(2026, 11, 15))),
        # 31 days back from Oct 1: equal length, so Aug 31 - Sep 30.
        (Period(D(2026, 10, 1), D(2026, 10, 31)), Period(D(2026, 8, 31), D(2026, 9, 30))),
        (Period(D(2026, 3, 1), D(2026, 3, 1)), Period(D(2026, 2, 28), D(2026, 2, 28))),
    ],
)
def test_previous_period_is_the_equal_length_just_before(period, previous):
    assert period.previous() == previous
    assert period.previous().days == period.days


def test_utc_bounds_follow_pacific_midnights_across_dst():
    # DST ends Sun Nov 1 2026 (25-hour day), starts Sun Mar 8 2026 (23-hour day).
    fall = Period(D(2026, 11, 1), D(2026, 11, 1)).utc_bounds(PT)
    assert fall == (
        dt.datetime(2026, 11, 1, 7, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC),
    )
    spring = Period(D(2026, 3, 8), D(2026, 3, 8)).utc_bounds(PT)
    assert spring[1] - spring[0] == dt.timedelta(hours=23)
    october = Period(D(2026, 10, 1), D(2026, 10, 31)).utc_bounds(PT)
    assert october == (
        dt.datetime(2026, 10, 1, 7, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 7, tzinfo=dt.UTC),
    )


def test_labels_say_the_exact_dates():
    assert Period(D(2026, 11, 22), D(2026, 11, 22)).label() == "Sun Nov 22, 2026"
    assert Period(D(2026, 10, 1), D(2026, 10, 31)).label() == "Oct 1 – Oct 31, 2026"
    assert Period(D(2025, 12, 1), D(2026, 1, 3)).label() == "Dec 1, 2025 – Jan 3, 2026"
    assert Period(MONDAY, MONDAY, partial=True).label().endswith("(so far)")


@pytest.mark.parametrize(
    "text",
    [
        "last yeer",
        "tomorrow",
        "0d",
        "401d",
        "2026-13",
        "2026-02-30",
        "2026-10-31..2026-10-01",
        "2026-12-01",
        "2027-01",
        "2026-11-01..2026-12-01",
        "2020-01-01..2022-01-01",
        "'; DROP TABLE events; --",
        "1 OR 1=1",
        "x" * 5000,
        "昨日",
        "7d\u202e",
        "<!channel> now",
    ],
)
def test_unusable_periods_raise_input_error_with_help(text):
    with pytest.raises(InputError) as err:
        parse_period(text, MONDAY)
    message = err.value.user_message
    assert len(message) < 1000
    assert "<!" not in message  # mentions stay inert


def test_unparseable_period_lists_every_accepted_form():
    with pytest.raises(InputError) as err:
        parse_period("fortnight", MONDAY)
    for form in ("yesterday", "today", "7d", "last week", "last month", "this month"):
        assert form in err.value.user_message
    assert "2026-10-01..2026-10-31" in err.value.user_message
