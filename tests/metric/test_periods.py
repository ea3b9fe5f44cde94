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


# --------------------------------------------------------------------------- the wider grammar
# Expected dates are worked out here from the calendar, independently of the parser: a few
# fixed "today"s (Pacific dates) that sit on week, month, quarter and year edges.

import calendar  # noqa: E402

TODAYS = [
    D(2026, 11, 23),  # a Monday
    D(2026, 11, 22),  # a Sunday
    D(2026, 10, 1),  # first day of a month and of Q4
    D(2026, 1, 1),  # first day of the year
    D(2026, 3, 8),  # DST starts
    D(2026, 7, 15),  # mid Q3
]


def _days_back(today, n):
    end = today - dt.timedelta(days=1)
    return Period(end - dt.timedelta(days=n - 1), end)


def _upto(start, today):
    if start == today:
        return Period(today, today, partial=True)
    return Period(start, today - dt.timedelta(days=1))


def _monday(today):
    return today - dt.timedelta(days=calendar.weekday(today.year, today.month, today.day))


def _quarter_of(day):
    return (day.month - 1) // 3 + 1


def _quarter(year, q):
    first = D(year, 3 * q - 2, 1)
    last_month = 3 * q
    return first, D(year, last_month, calendar.monthrange(year, last_month)[1])


def _calendar_span(first, last, today):
    return _upto(first, today) if last >= today else Period(first, last)


def _latest_month(month, today):
    year = today.year if D(today.year, month, 1) <= today else today.year - 1
    return _calendar_span(
        D(year, month, 1), D(year, month, calendar.monthrange(year, month)[1]), today
    )


def _latest_quarter(q, today):
    first, last = _quarter(today.year, q)
    if first > today:
        first, last = _quarter(today.year - 1, q)
    return _calendar_span(first, last, today)


def _last_quarter(today):
    q, year = _quarter_of(today) - 1, today.year
    if q == 0:
        q, year = 4, year - 1
    return Period(*_quarter(year, q))


EXPECTED = {
    "last 7 days": lambda t: _days_back(t, 7),
    "Past 30 Days": lambda t: _days_back(t, 30),
    "past 90 days": lambda t: _days_back(t, 90),
    "last 1 day": lambda t: _days_back(t, 1),
    "14 days": lambda t: _days_back(t, 14),
    "this week": lambda t: _upto(_monday(t), t),
    "last week": lambda t: Period(
        _monday(t) - dt.timedelta(days=7), _monday(t) - dt.timedelta(days=1)
    ),
    "this quarter": lambda t: _upto(_quarter(t.year, _quarter_of(t))[0], t),
    "last quarter": _last_quarter,
    "Q3": lambda t: _latest_quarter(3, t),
    "q4": lambda t: _latest_quarter(4, t),
    "Q1": lambda t: _latest_quarter(1, t),
    "2026-Q3": lambda t: _calendar_span(*_quarter(2026, 3), t),
    "2025-q4": lambda t: Period(*_quarter(2025, 4)),
    "Q2 2025": lambda t: Period(*_quarter(2025, 2)),
    "ytd": lambda t: _upto(D(t.year, 1, 1), t),
    "YTD": lambda t: _upto(D(t.year, 1, 1), t),
    "mtd": lambda t: _upto(t.replace(day=1), t),
    "this month": lambda t: _upto(t.replace(day=1), t),
    "Oct 2025": lambda t: Period(D(2025, 10, 1), D(2025, 10, 31)),
    "october 2025": lambda t: Period(D(2025, 10, 1), D(2025, 10, 31)),
    "Feb 2024": lambda t: Period(D(2024, 2, 1), D(2024, 2, 29)),
    "October": lambda t: _latest_month(10, t),
    "oct": lambda t: _latest_month(10, t),
    "March": lambda t: _latest_month(3, t),
    "sept": lambda t: _latest_month(9, t),
    "December": lambda t: _latest_month(12, t),
}


@pytest.mark.parametrize("today", TODAYS, ids=str)
@pytest.mark.parametrize("text", list(EXPECTED))
def test_every_period_form_gives_the_calendar_dates(text, today):
    expected = EXPECTED[text](today)
    if expected.start > today:  # e.g. 2026-Q3 asked on Jan 1, 2026
        with pytest.raises(InputError):
            parse_period(text, today)
        return
    assert parse_period(text, today) == expected


@pytest.mark.parametrize(
    ("text", "today", "start", "end", "partial"),
    [
        # Spelled out, for a reader: the same answers as the table above.
        ("this week", MONDAY, MONDAY, MONDAY, True),
        ("this week", D(2026, 11, 22), D(2026, 11, 16), D(2026, 11, 21), False),
        ("Q3", MONDAY, D(2026, 7, 1), D(2026, 9, 30), False),
        ("Q4", MONDAY, D(2026, 10, 1), D(2026, 11, 22), False),
        ("Q4", D(2026, 5, 1), D(2025, 10, 1), D(2025, 12, 31), False),
        ("last quarter", D(2026, 1, 10), D(2025, 10, 1), D(2025, 12, 31), False),
        ("ytd", MONDAY, D(2026, 1, 1), D(2026, 11, 22), False),
        ("ytd", D(2026, 1, 1), D(2026, 1, 1), D(2026, 1, 1), True),
        ("October", MONDAY, D(2026, 10, 1), D(2026, 10, 31), False),
        ("October", D(2026, 5, 1), D(2025, 10, 1), D(2025, 10, 31), False),
        ("Oct 2026", MONDAY, D(2026, 10, 1), D(2026, 10, 31), False),
    ],
)
def test_named_periods_read_as_people_mean_them(text, today, start, end, partial):
    assert parse_period(text, today) == Period(start, end, partial)


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("7 dyas", "7d"),
        ("7dys", "7d"),
        ("last 30 dyas", "30d"),
        ("yesterdy", "yesterday"),
        ("lst week", "last week"),
        ("this quartr", "this quarter"),
        ("Octobr", "October"),
    ],
)
def test_a_near_miss_gets_one_suggestion_not_the_whole_list(text, meant):
    with pytest.raises(InputError) as err:
        parse_period(text, MONDAY)
    message = err.value.user_message
    assert f"Did you mean `{meant}`?" in message
    assert "2026-10-01..2026-10-31" not in message


@pytest.mark.parametrize("text", ["2027-Q1", "Q1 2027", "Dec 2026", "2026-Q1 2026"])
def test_future_or_doubled_named_periods_are_refused(text):
    with pytest.raises(InputError):
        parse_period(text, MONDAY)


@pytest.mark.parametrize(
    ("text", "today", "compared"),
    [
        # A month or quarter asked for by name is compared with the one before it.
        ("last month", D(2026, 11, 23), (D(2026, 9, 1), D(2026, 9, 30))),
        ("2026-03", MONDAY, (D(2026, 2, 1), D(2026, 2, 28))),
        ("jan 2026", MONDAY, (D(2025, 12, 1), D(2025, 12, 31))),
        ("October", MONDAY, (D(2026, 9, 1), D(2026, 9, 30))),
        ("2026-Q3", MONDAY, (D(2026, 4, 1), D(2026, 6, 30))),
        ("last quarter", D(2026, 1, 5), (D(2025, 7, 1), D(2025, 9, 30))),
        # Anything else with the equal-length period just before, also when its dates
        # happen to be a whole month: `30d` on Dec 1 is November, against Oct 2..Oct 31.
        ("30d", D(2026, 12, 1), (D(2026, 10, 2), D(2026, 10, 31))),
        ("2026-10-01..2026-10-31", MONDAY, (D(2026, 8, 31), D(2026, 9, 30))),
        ("last week", MONDAY, (D(2026, 11, 9), D(2026, 11, 15))),
        ("mtd", MONDAY, (D(2026, 10, 10), D(2026, 10, 31))),
        # The current month so far is not a whole month.
        ("this month", D(2026, 12, 1), (D(2026, 11, 30), D(2026, 11, 30))),
    ],
)
def test_a_named_month_or_quarter_is_compared_with_the_one_before(text, today, compared):
    period = parse_period(text, today)
    assert period.compared_with() == Period(*compared)


@pytest.mark.parametrize(
    ("start", "end", "calendar", "compared_start"),
    [
        # A button posted before values carried `calendar`: a whole month reads as named.
        (D(2026, 10, 1), D(2026, 10, 31), None, D(2026, 9, 1)),
        (D(2026, 10, 1), D(2026, 10, 31), False, D(2026, 8, 31)),
        (D(2026, 10, 1), D(2026, 10, 31), True, D(2026, 9, 1)),
        (D(2026, 10, 2), D(2026, 10, 31), None, D(2026, 9, 2)),
    ],
)
def test_a_period_from_a_button_keeps_how_it_was_asked(start, end, calendar, compared_start):
    period = Period.restored(start, end, False, calendar)
    assert period.compared_with().start == compared_start


def test_one_day_is_also_compared_with_the_same_weekday_a_week_earlier():
    monday = Period(MONDAY, MONDAY)
    assert monday.week_before() == Period(D(2026, 11, 16), D(2026, 11, 16))
    assert monday.week_before().start.weekday() == MONDAY.weekday()
    assert Period(D(2026, 11, 16), D(2026, 11, 22)).week_before() is None
