"""Cody Pro numbers: readiness, sanity rules, comparisons and reconciliation.

Numbers from the warehouse are checked against an independent computation in Python over
the raw SSC rows (read straight from the demo DuckDB file, not through bot/warehouse.py).
"""

import datetime as dt
import functools
from zoneinfo import ZoneInfo

import pytest

from bot.cody.job import CodyDailyJob
from bot.cody.report import (
    CodyDay,
    Reconciliation,
    check_identities,
    check_readiness,
    last_complete_date,
    latest_complete_date,
    load_days,
    load_report,
    reconcile_with_stripe,
    start_of_day,
    unusual_moves,
)
from bot.settings import Settings
from bot.warehouse import DuckDBWarehouse
from tests.support.cody_warehouse import (
    RawSSC,
    ReopeningWarehouse,
    add_subscriber,
    copy_ssc,
    execute,
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
    assert readiness.reason == (
        "ssc.billing_cycles has complete data only through Sat, Nov 21, 2026 "
        "(synced through Nov 22 06:30 PST)"
    )


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


# --- numbers on the demo warehouse vs an independent computation ---------------------------


@functools.cache
def raw_ssc(path) -> RawSSC:
    return RawSSC(path)


@pytest.fixture
def demo_warehouse(demo_warehouse_path):
    warehouse = DuckDBWarehouse(demo_warehouse_path, timeout_s=60)
    yield warehouse
    warehouse.close()


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


# Month ends and starts, both DST switches of 2026 (Mar 8, Nov 1) and the day after the
# fall switch, a year boundary, and the latest complete day.
CHECK_DATES = [
    dt.date(2025, 12, 31),
    dt.date(2026, 1, 1),
    dt.date(2026, 2, 28),
    dt.date(2026, 3, 8),
    dt.date(2026, 3, 9),
    dt.date(2026, 10, 31),
    dt.date(2026, 11, 1),
    dt.date(2026, 11, 2),
    dt.date(2026, 11, 22),
]


@pytest.mark.parametrize("day", CHECK_DATES, ids=str)
def test_every_field_equals_the_independent_computation(demo_warehouse, demo_warehouse_path, day):
    (row,) = load_days(demo_warehouse, day, day, 9.0)

    assert row.model_dump() == raw_ssc(demo_warehouse_path).fields(day)


def test_a_range_across_month_end_and_dst_matches_day_by_day(demo_warehouse, demo_warehouse_path):
    start, end = dt.date(2026, 10, 20), dt.date(2026, 11, 10)
    rows = load_days(demo_warehouse, start, end, 9.0)

    raw = raw_ssc(demo_warehouse_path)
    expected = [raw.fields(start + dt.timedelta(days=i)) for i in range((end - start).days + 1)]
    assert [r.model_dump() for r in rows] == expected
    assert any(r.canceled_subscribers for r in rows) and any(r.new_subscribers for r in rows)


def test_report_compares_with_day_before_week_before_and_month_to_date(
    demo_warehouse, demo_warehouse_path
):
    day = dt.date(2026, 11, 22)
    report = load_report(demo_warehouse, settings(), day)

    raw = raw_ssc(demo_warehouse_path)
    assert report.day.model_dump() == raw.fields(day)
    assert report.previous.model_dump() == raw.fields(dt.date(2026, 11, 21))
    assert report.week_ago.model_dump() == raw.fields(dt.date(2026, 11, 15))
    month = [raw.fields(dt.date(2026, 11, d)) for d in range(1, 23)]
    assert report.month_to_date_new == sum(f["new_subscribers"] for f in month)
    assert report.month_to_date_canceled == sum(f["canceled_subscribers"] for f in month)
    assert report.month_to_date_net == sum(
        f["new_subscribers"] - f["canceled_subscribers"] for f in month
    )
    assert [d.date for d in report.trend] == [day - dt.timedelta(days=29 - i) for i in range(30)]
    assert report.trend[0].model_dump() == raw.fields(dt.date(2026, 10, 24))
    assert report.problems == []


def test_month_to_date_on_the_first_of_the_month_is_that_day_only(
    demo_warehouse, demo_warehouse_path
):
    day = dt.date(2026, 11, 1)
    report = load_report(demo_warehouse, settings(), day)

    fields = raw_ssc(demo_warehouse_path).fields(day)
    assert report.month_to_date_new == fields["new_subscribers"]
    assert report.month_to_date_canceled == fields["canceled_subscribers"]


def test_month_to_date_on_the_31st_reaches_back_past_the_trend(demo_warehouse, demo_warehouse_path):
    # Oct 31: the month started 30 days before, one day before the 30-day trend window.
    day = dt.date(2026, 10, 31)
    report = load_report(demo_warehouse, settings(), day)

    month = [raw_ssc(demo_warehouse_path).fields(dt.date(2026, 10, d)) for d in range(1, 32)]
    assert report.month_to_date_new == sum(f["new_subscribers"] for f in month)
    assert len(report.trend) == 30


def test_revenue_uses_the_configured_price(demo_warehouse, demo_warehouse_path):
    day = dt.date(2026, 11, 22)
    report = load_report(demo_warehouse, settings(cody_price_usd=12.5), day)

    assert report.day.model_dump() == raw_ssc(demo_warehouse_path).fields(day, price=12.5)
    assert report.problems == []


def test_the_day_a_subscriber_cancels(demo_warehouse_path, tmp_path):
    db = copy_ssc(demo_warehouse_path, tmp_path / "cody.duckdb")
    warehouse = ReopeningWarehouse(db)
    window = (dt.date(2026, 10, 14), dt.date(2026, 11, 22))
    before = {d.date: d for d in load_days(warehouse, *window, 9.0)}
    # Starts Oct 15 10:00 PT; cancels Fri Nov 20 at 23:59:30 PT, which is already Nov 21 in
    # UTC: the cancellation belongs to Nov 20.
    add_subscriber(
        db,
        "cu_test_cancels",
        started_at=pacific(2026, 10, 15, 10, 0),
        ended_at=pacific(2026, 11, 20, 23, 59, 30),
        months=2,
    )
    after = {d.date: d for d in load_days(warehouse, *window, 9.0)}

    def moved(name: str) -> dict[dt.date, int]:
        return {
            day: getattr(after[day], name) - getattr(before[day], name)
            for day in after
            if getattr(after[day], name) != getattr(before[day], name)
        }

    assert moved("canceled_subscribers") == {dt.date(2026, 11, 20): 1}
    # active from the first day through the day before the cancellation, not on it
    assert set(moved("active_subscribers")) == {
        dt.date(2026, 10, 15) + dt.timedelta(days=i) for i in range(36)
    }
    assert max(moved("active_subscribers")) == dt.date(2026, 11, 19)
    assert moved("new_subscribers") == {dt.date(2026, 10, 15): 1}
    assert moved("retained_subscribers") == {dt.date(2026, 11, 15): 1}
    assert moved("mrr") == dict.fromkeys(moved("active_subscribers"), 9)
    # and the independent computation agrees on the changed file
    raw = RawSSC(db)
    for day in (dt.date(2026, 11, 19), dt.date(2026, 11, 20), dt.date(2026, 11, 21)):
        assert after[day].model_dump() == raw.fields(day)


# --- Stripe reconciliation -----------------------------------------------------------------


def test_reconciliation_on_the_demo_matches_the_independent_sets(
    demo_warehouse, demo_warehouse_path
):
    day = dt.date(2026, 11, 22)
    rec = reconcile_with_stripe(demo_warehouse, day, "stripe", 95.0)

    raw = raw_ssc(demo_warehouse_path)
    ssc, stripe = raw.active_users(day), raw.stripe_active_keys(day)
    assert (rec.ssc_active, rec.stripe_active, rec.matched) == (
        len(ssc),
        len(stripe),
        len(ssc & stripe),
    )
    assert rec.match_rate_pct == pytest.approx(len(ssc & stripe) / len(ssc | stripe) * 100)


def mirror_stripe(db) -> None:
    """Make Stripe agree with SSC exactly, so each test adds only its own mismatches."""
    execute(db, "DELETE FROM stripe.subscriptions")
    execute(
        db,
        "INSERT INTO stripe.subscriptions SELECT 'st_' || subscription_id, user_id, status, "
        "started_at, ended_at FROM ssc.subscriptions",
    )


def test_reconciliation_rate_on_a_constructed_mismatch(demo_warehouse_path, tmp_path):
    day = dt.date(2026, 11, 22)
    db = copy_ssc(demo_warehouse_path, tmp_path / "cody.duckdb")
    mirror_stripe(db)
    warehouse = ReopeningWarehouse(db)
    exact = reconcile_with_stripe(warehouse, day, "stripe", 95.0)
    assert exact.match_rate_pct == 100.0 and exact.ssc_active == exact.stripe_active

    active = sorted(RawSSC(db).active_users(day))
    missing, flipped = active[:30], active[30:50]
    execute(
        db, "DELETE FROM stripe.subscriptions WHERE list_contains($u, ssc_user_id)", {"u": missing}
    )
    # Stripe says canceled but has no end date: the known active-subscriber bug
    execute(
        db,
        "UPDATE stripe.subscriptions SET status = 'canceled', ended_at = NULL "
        "WHERE list_contains($u, ssc_user_id)",
        {"u": flipped},
    )
    execute(
        db,
        "INSERT INTO stripe.subscriptions VALUES "
        "('st_orphan', NULL, 'active', TIMESTAMPTZ '2026-11-01 12:00:00+00', NULL), "
        "('st_unknown', 'cu_only_in_stripe', 'active', "
        "TIMESTAMPTZ '2026-11-02 12:00:00+00', NULL), "
        "('st_future', 'cu_starts_later', 'active', TIMESTAMPTZ '2026-11-23 09:00:00+00', NULL)",
    )

    rec = reconcile_with_stripe(warehouse, day, "stripe", 95.0)

    n = len(active)
    assert rec.ssc_active == n
    assert rec.ssc_only == 50  # 30 missing + 20 flipped
    assert rec.stripe_only == 2  # the orphan and the unknown user; Nov 23 is not Nov 22
    assert rec.matched == n - 50
    assert rec.match_rate_pct == pytest.approx((n - 50) / (n + 2) * 100)


def test_report_flags_reconciliation_below_threshold(demo_warehouse_path, tmp_path):
    day = dt.date(2026, 11, 22)
    db = copy_ssc(demo_warehouse_path, tmp_path / "cody.duckdb")
    mirror_stripe(db)
    active = sorted(RawSSC(db).active_users(day))
    gone = active[: len(active) // 10]  # Stripe lacks 10%: 90% match
    execute(
        db, "DELETE FROM stripe.subscriptions WHERE list_contains($u, ssc_user_id)", {"u": gone}
    )
    warehouse = ReopeningWarehouse(db)

    on = settings(cody_stripe_reconciliation=True)
    flagged = load_report(warehouse, on, day)
    assert flagged.reconciliation.below_threshold
    assert any("SSC and Stripe agree on only 90.0%" in w for w in flagged.warnings)

    lenient = settings(cody_stripe_reconciliation=True, cody_stripe_match_threshold_pct=85)
    assert load_report(warehouse, lenient, day).warnings == []
    assert load_report(warehouse, settings(), day).reconciliation is None


# --- unusual moves on real data --------------------------------------------------------------


def test_a_jump_in_active_subscribers_is_flagged_not_hidden(demo_warehouse_path, tmp_path):
    day = dt.date(2026, 11, 22)
    db = copy_ssc(demo_warehouse_path, tmp_path / "cody.duckdb")
    warehouse = ReopeningWarehouse(db)
    assert load_report(warehouse, settings(), day).warnings == []

    active = len(RawSSC(db).active_users(dt.date(2026, 11, 21)))
    burst = active // 5  # +20% in a day: e.g. a bulk import
    execute(
        db,
        "INSERT INTO ssc.subscriptions SELECT 'sub_bulk_' || i, 'cu_bulk_' || i, "
        "TIMESTAMPTZ '2026-11-22 18:00:00+00', NULL, 'active' FROM range($n) t(i)",
        {"n": burst},
    )
    report = load_report(warehouse, settings(cody_unusual_change_pct=10), day)

    assert report.day.active_subscribers == len(RawSSC(db).active_users(day))
    assert report.problems == []
    (warning,) = report.warnings
    assert "Active subscribers moved +" in warning and "±10%" in warning


# --- schedule options the runner reads ------------------------------------------------------


@pytest.mark.parametrize(
    "cron, give_up, expected",
    [
        ("0 9 * * *", dt.time(12, 0), dt.timedelta(hours=3)),
        ("30 8 * * *", dt.time(12, 0), dt.timedelta(hours=3, minutes=30)),
        ("0 9 * * *", dt.time(9, 0), dt.timedelta(0)),
        ("0 9 * * mon-fri", dt.time(12, 0), dt.timedelta(hours=3)),
        ("*/30 * * * *", dt.time(12, 0), None),  # not a daily time: scheduler's default
    ],
)
def test_notice_is_due_at_the_give_up_time(cron, give_up, expected):
    job = CodyDailyJob(Settings(_env_file=None, cody_post_cron=cron, cody_give_up_time=give_up))
    assert job.give_up_after == expected


def test_job_options_come_from_the_cody_settings():
    job = CodyDailyJob(Settings(_env_file=None, cody_channel="C0CODY", cody_retry_minutes=15))
    assert job.retry_every == dt.timedelta(minutes=15)
    assert job.channel == "C0CODY"
    assert job.enabled
    assert not CodyDailyJob(Settings(_env_file=None, cody_daily_enabled=False)).enabled


# --- the same SQL on the BigQuery emulator ----------------------------------------------------


@pytest.mark.bigquery
def test_bigquery_and_duckdb_agree_with_the_independent_computation(bigquery_emulator, tmp_path):
    from bot.warehouse import BigQueryWarehouse
    from tests.support.bigquery import EMULATOR_PROJECT, load_into_bigquery
    from tests.support.cody_warehouse import SCHEMAS, small_dataset, write_duckdb

    synced = pacific(2026, 11, 23, 3, 0)
    data = small_dataset(synced)
    # the emulator holds one project: give this test its own dataset names
    for table, columns in SCHEMAS.items():
        load_into_bigquery(bigquery_emulator, table, columns, data[table])
    db = write_duckdb(tmp_path / "small.duckdb", data)
    bigquery = BigQueryWarehouse(
        EMULATOR_PROJECT,
        api_endpoint=bigquery_emulator,
        maximum_bytes_billed=10**9,
        timeout_s=30,
    )
    duck = DuckDBWarehouse(db, timeout_s=30)
    raw = RawSSC(db)
    start, end = dt.date(2026, 10, 28), dt.date(2026, 11, 22)
    try:
        expected = [raw.fields(start + dt.timedelta(days=i)) for i in range((end - start).days + 1)]
        assert sum(e["canceled_subscribers"] for e in expected) > 0
        for warehouse in (bigquery, duck):
            rows = load_days(warehouse, start, end, 9.0)
            assert [r.model_dump() for r in rows] == expected, warehouse.name
            rec = reconcile_with_stripe(warehouse, end, "stripe", 95.0)
            ssc, stripe = raw.active_users(end), raw.stripe_active_keys(end)
            assert (rec.ssc_active, rec.stripe_active, rec.matched) == (
                len(ssc),
                len(stripe),
                len(ssc & stripe),
            ), warehouse.name
            assert check_readiness(warehouse, end).ready
            assert not check_readiness(warehouse, end + dt.timedelta(days=1)).ready
    finally:
        bigquery.close()
        duck.close()


def test_reconciliation_reads_the_configured_stripe_dataset(demo_warehouse_path, tmp_path):
    day = dt.date(2026, 11, 22)
    db = copy_ssc(demo_warehouse_path, tmp_path / "cody.duckdb")
    default = reconcile_with_stripe(ReopeningWarehouse(db), day, "stripe", 95.0)
    execute(db, "CREATE SCHEMA finance_stripe")
    execute(db, "CREATE TABLE finance_stripe.subscriptions AS SELECT * FROM stripe.subscriptions")
    execute(db, "DELETE FROM finance_stripe.subscriptions WHERE ssc_user_id LIKE 'cu_0%'")

    other = reconcile_with_stripe(ReopeningWarehouse(db), day, "finance_stripe", 95.0)

    assert other.dataset == "finance_stripe"
    assert other.ssc_active == default.ssc_active
    assert other.stripe_active < default.stripe_active
    assert other.matched < default.matched
