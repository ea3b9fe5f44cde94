"""Cody Pro numbers: readiness, sanity rules, comparisons and reconciliation.

Numbers from the warehouse are checked against an independent computation in Python over
the raw SSC rows (read straight from the demo DuckDB file, not through bot/warehouse.py).
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.cody_pro import (
    CodyDailyJob,
    CodyDay,
    Reconciliation,
    check_identities,
    check_readiness,
    last_complete_date,
    latest_complete_date,
    start_of_day,
    unusual_moves,
)

PT = ZoneInfo("America/Los_Angeles")


def day_row(date: dt.date, *, active=100, new=3, retained=2, canceled=1, price=9.0) -> CodyDay:
    daily = new + retained
    return CodyDay(
        date=date,
        daily_subscribers=daily,
        new_subscribers=new,
        retained_subscribers=retained,
        canceled_subscribers=canceled,
        active_subscribers=active,
        daily_revenue=daily * price,
        daily_revenue_added=new * price,
        daily_revenue_retained=retained * price,
        mrr=active * price,
        arr=active * price * 12,
    )


class SyncOnly:
    """A warehouse that only knows ssc.sync_status (rows given)."""

    def __init__(self, rows):
        self.rows = rows

    def query(self, sql, params):
        assert "sync_status" in sql
        return self.rows


def pacific(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PT).astimezone(dt.UTC)


# --- readiness -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "day, utc_midnight_after",
    [
        (dt.date(2026, 11, 22), dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)),  # PST
        (dt.date(2026, 7, 4), dt.datetime(2026, 7, 5, 7, 0, tzinfo=dt.UTC)),  # PDT
        # DST ends on Sun Nov 1 2026: that Pacific day is 25 hours long
        (dt.date(2026, 10, 31), dt.datetime(2026, 11, 1, 7, 0, tzinfo=dt.UTC)),
        (dt.date(2026, 11, 1), dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)),
        # DST starts on Sun Mar 8 2026: that Pacific day is 23 hours long
        (dt.date(2026, 3, 7), dt.datetime(2026, 3, 8, 8, 0, tzinfo=dt.UTC)),
        (dt.date(2026, 3, 8), dt.datetime(2026, 3, 9, 7, 0, tzinfo=dt.UTC)),
    ],
)
def test_a_day_is_complete_exactly_from_pacific_midnight_after_it(day, utc_midnight_after):
    assert start_of_day(day + dt.timedelta(days=1)) == utc_midnight_after
    just_before = utc_midnight_after - dt.timedelta(seconds=1)
    assert last_complete_date(utc_midnight_after) == day
    assert last_complete_date(just_before) == day - dt.timedelta(days=1)

    rows = lambda mark: [  # noqa: E731
        {"table_name": "subscriptions", "synced_through": mark},
        {"table_name": "billing_cycles", "synced_through": mark},
    ]
    assert check_readiness(SyncOnly(rows(utc_midnight_after)), day).ready
    assert not check_readiness(SyncOnly(rows(just_before)), day).ready


def test_not_ready_names_the_lagging_table_and_its_last_complete_day():
    warehouse = SyncOnly(
        [
            {"table_name": "subscriptions", "synced_through": pacific(2026, 11, 23, 5, 0)},
            {"table_name": "billing_cycles", "synced_through": pacific(2026, 11, 22, 6, 30)},
        ]
    )
    readiness = check_readiness(warehouse, dt.date(2026, 11, 22))

    assert not readiness.ready
    assert readiness.lagging_table == "ssc.billing_cycles"
    assert "ssc.billing_cycles has complete data through Sat, Nov 21, 2026" in readiness.reason
    assert "Sun, Nov 22, 2026" in readiness.reason


def test_a_table_missing_from_sync_status_is_not_ready():
    warehouse = SyncOnly(
        [{"table_name": "subscriptions", "synced_through": pacific(2026, 11, 24, 0, 0)}]
    )
    readiness = check_readiness(warehouse, dt.date(2026, 11, 22))

    assert not readiness.ready
    assert "ssc.billing_cycles" in readiness.reason


def test_latest_complete_date_is_the_older_table_and_never_today():
    warehouse = SyncOnly(
        [
            {"table_name": "subscriptions", "synced_through": pacific(2026, 11, 23, 5, 0)},
            {"table_name": "billing_cycles", "synced_through": pacific(2026, 11, 22, 6, 0)},
        ]
    )
    assert latest_complete_date(warehouse, dt.date(2026, 11, 23)) == dt.date(2026, 11, 21)
    ahead = SyncOnly(
        [
            {"table_name": t, "synced_through": pacific(2026, 11, 30, 0, 0)}
            for t in ("subscriptions", "billing_cycles")
        ]
    )
    assert latest_complete_date(ahead, dt.date(2026, 11, 23)) == dt.date(2026, 11, 22)


# --- the reference date ------------------------------------------------------------------


@pytest.mark.parametrize(
    "run_at, expected",
    [
        (pacific(2026, 11, 23, 9, 0), "2026-11-22"),
        (pacific(2026, 11, 23, 0, 5), "2026-11-22"),
        (pacific(2026, 11, 22, 23, 55), "2026-11-21"),  # already Nov 23 in UTC
        (pacific(2026, 12, 1, 9, 0), "2026-11-30"),
        (pacific(2026, 3, 9, 9, 0), "2026-03-08"),
    ],
)
def test_period_is_yesterday_in_pacific_time(run_at, expected):
    assert CodyDailyJob().period_for(run_at, PT) == expected
    # the schedule's zone does not move the reference date
    assert CodyDailyJob().period_for(run_at, ZoneInfo("Europe/Berlin")) == expected


# --- sanity ---------------------------------------------------------------------------------


def test_consistent_numbers_pass_the_identities():
    assert check_identities(day_row(dt.date(2026, 11, 22)), 9.0) == []


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"daily_subscribers": 6}, "daily_subscribers (6) != new_subscribers (3) + retained"),
        ({"canceled_subscribers": -1}, "canceled_subscribers is negative (-1)"),
        ({"mrr": 899.0}, "mrr (899.0) != 900.0"),
        ({"arr": 10.0}, "arr (10.0) != 10800.0"),
        ({"daily_revenue_added": 0.0}, "daily_revenue_added (0.0) != 27.0"),
    ],
)
def test_broken_identities_are_reported(change, expected):
    broken = day_row(dt.date(2026, 11, 22)).model_copy(update=change)
    problems = check_identities(broken, 9.0)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "before, after, flagged",
    [(100, 109, False), (100, 110, False), (100, 111, True), (100, 85, True), (0, 5, False)],
)
def test_active_subscribers_moving_more_than_the_threshold_is_flagged(before, after, flagged):
    today = day_row(dt.date(2026, 11, 22), active=after)
    yesterday = day_row(dt.date(2026, 11, 21), active=before)

    warnings = unusual_moves(today, yesterday, threshold_pct=10)

    assert bool(warnings) is flagged
    if flagged:
        assert f"{before:,} → {after:,}" in warnings[0]


# --- reconciliation -------------------------------------------------------------------------


def test_match_rate_counts_misses_on_either_side():
    rec = Reconciliation(
        dataset="stripe", ssc_active=100, stripe_active=98, matched=95, threshold_pct=95
    )
    # 95 in both, 5 only in SSC, 3 only in Stripe: 95 / 103
    assert rec.ssc_only == 5 and rec.stripe_only == 3
    assert rec.match_rate_pct == pytest.approx(95 / 103 * 100)
    assert rec.below_threshold


def test_match_rate_at_the_threshold_is_not_flagged():
    rec = Reconciliation(
        dataset="stripe", ssc_active=100, stripe_active=95, matched=95, threshold_pct=95
    )
    assert rec.match_rate_pct == pytest.approx(95.0)
    assert not rec.below_threshold
