"""The generated demo warehouse: deterministic, cached, realistic enough to answer questions."""

from __future__ import annotations

import calendar
import datetime as dt
import threading
from collections import Counter, defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from bot.warehouse_demo import (
    GENERATOR_VERSION,
    PIPELINE_LAG,
    TELEMETRY_EVENTS,
    demo_warehouse_path,
    ensure_demo_warehouse,
)
from tests.support.bigquery import DEMO_AS_OF

PACIFIC = ZoneInfo("America/Los_Angeles")
TABLES = [
    "dotcom_events.events",
    "dotcom_events.cody",
    "sourcegraph_analytics.update_checks",
    "salesforce_data.accounts",
    "sourcegraph_analytics.instances",
    "sourcegraph_analytics.releases",
    "ssc.subscriptions",
    "ssc.billing_cycles",
    "ssc.sync_status",
    "stripe.subscriptions",
]


def raw(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def checksums(path: Path) -> dict[str, tuple]:
    # Order-independent: row order in a DuckDB table is not part of the data.
    return {
        table: raw(path, f"SELECT COUNT(*), SUM(hash(*COLUMNS(*))) FROM {table}")[0]
        for table in TABLES
    }


def columns(path: Path, table: str) -> list[tuple[str, str]]:
    schema, name = table.split(".")
    return [
        (column, kind)
        for column, kind in raw(
            path,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, name],
        )
    ]


def test_same_as_of_gives_identical_data_and_concurrent_callers_share_one_file(
    tmp_path, demo_warehouse_path
):
    results: list[Path] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(ensure_demo_warehouse(tmp_path, as_of=DEMO_AS_OF))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results)) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        results[0].name
    ]  # no temp files left behind
    assert checksums(results[0]) == checksums(demo_warehouse_path)


def test_cached_file_is_reused_for_the_same_pacific_day(demo_warehouse_path):
    later_same_day = DEMO_AS_OF + dt.timedelta(hours=5)
    before = demo_warehouse_path.stat().st_mtime_ns
    again = ensure_demo_warehouse(demo_warehouse_path.parent, as_of=later_same_day)
    assert again == demo_warehouse_path
    assert again.stat().st_mtime_ns == before
    assert f"v{GENERATOR_VERSION}" in again.name


def test_cache_key_is_the_pacific_date_not_the_utc_date(tmp_path):
    # 2026-11-23 20:00 Pacific is already Nov 24 in UTC.
    evening = dt.datetime(2026, 11, 23, 20, 0, tzinfo=PACIFIC)
    assert demo_warehouse_path(tmp_path, evening) == demo_warehouse_path(tmp_path, DEMO_AS_OF)


def test_tables_have_the_agreed_columns(demo_warehouse_path):
    ts = "TIMESTAMP WITH TIME ZONE"
    event_columns = [
        ("event_id", "VARCHAR"),
        ("timestamp", ts),
        ("user_id", "VARCHAR"),
        ("instance_id", "VARCHAR"),
        ("event_name", "VARCHAR"),
    ]
    expected = {
        "dotcom_events.events": event_columns,
        "dotcom_events.cody": event_columns,
        "sourcegraph_analytics.update_checks": [
            ("instance_id", "VARCHAR"),
            ("checked_at", ts),
            ("account_id", "VARCHAR"),
            ("account_name", "VARCHAR"),
            ("is_customer", "BOOLEAN"),
            ("version", "VARCHAR"),
            ("deployment_type", "VARCHAR"),
            ("hosting_type", "VARCHAR"),
            ("telemetry_status", "VARCHAR"),
            ("seats_purchased", "BIGINT"),
            ("daily_active_users", "BIGINT"),
            ("monthly_active_users", "BIGINT"),
            ("repo_count", "BIGINT"),
            ("code_hosts", "VARCHAR"),
            ("total_user_accounts", "BIGINT"),
        ],
        "sourcegraph_analytics.instances": [
            ("instance_id", "VARCHAR"),
            ("account_id", "VARCHAR"),
            ("account_name", "VARCHAR"),
            ("hosting_type", "VARCHAR"),
            ("deployment_type", "VARCHAR"),
            ("telemetry_status", "VARCHAR"),
            ("licensed_from", "DATE"),
            ("licensed_until", "DATE"),
        ],
        "sourcegraph_analytics.releases": [("version", "VARCHAR"), ("released_on", "DATE")],
        "salesforce_data.accounts": [
            ("account_id", "VARCHAR"),
            ("account_name", "VARCHAR"),
            ("is_customer", "BOOLEAN"),
            ("seats_purchased", "BIGINT"),
        ],
        "ssc.subscriptions": [
            ("subscription_id", "VARCHAR"),
            ("user_id", "VARCHAR"),
            ("started_at", ts),
            ("ended_at", ts),
            ("status", "VARCHAR"),
        ],
        "ssc.billing_cycles": [
            ("subscription_id", "VARCHAR"),
            ("user_id", "VARCHAR"),
            ("cycle_number", "BIGINT"),
            ("cycle_start", ts),
            ("cycle_end", ts),
        ],
        "ssc.sync_status": [("table_name", "VARCHAR"), ("synced_through", ts)],
        "stripe.subscriptions": [
            ("stripe_subscription_id", "VARCHAR"),
            ("ssc_user_id", "VARCHAR"),
            ("status", "VARCHAR"),
            ("created", ts),
            ("ended_at", ts),
        ],
    }
    assert {table: columns(demo_warehouse_path, table) for table in TABLES} == expected


def test_events_cover_over_a_year_with_a_million_rows_ending_at_the_pipeline_lag(
    demo_warehouse_path,
):
    count, first, last = raw(
        demo_warehouse_path,
        "SELECT COUNT(*), MIN(timestamp), MAX(timestamp) FROM dotcom_events.events",
    )[0]
    data_end = DEMO_AS_OF - PIPELINE_LAG
    assert count >= 1_000_000
    assert (last - first).days > 365
    assert data_end - dt.timedelta(hours=1) < last < data_end
    (unique,) = raw(
        demo_warehouse_path, "SELECT COUNT(DISTINCT event_id) FROM dotcom_events.events"
    )[0]
    assert unique == count


def test_events_show_weekly_seasonality_and_growth(demo_warehouse_path):
    per_day = dict(
        raw(
            demo_warehouse_path,
            "SELECT CAST(timezone('America/Los_Angeles', timestamp) AS DATE) AS d, COUNT(*) "
            "FROM dotcom_events.events GROUP BY d",
        )
    )
    full_days = sorted(per_day)[1:-1]  # first and last days are partial
    weekday = [per_day[d] for d in full_days if d.weekday() < 5]
    weekend = [per_day[d] for d in full_days if d.weekday() >= 5]
    assert sum(weekday) / len(weekday) > 2 * sum(weekend) / len(weekend)
    first_month = sum(per_day[d] for d in full_days[:28])
    last_month = sum(per_day[d] for d in full_days[-28:])
    assert last_month > 1.3 * first_month


def test_only_instances_with_user_level_event_data_emit_events(demo_warehouse_path):
    status = dict(
        raw(
            demo_warehouse_path,
            "SELECT instance_id, any_value(telemetry_status) "
            "FROM sourcegraph_analytics.update_checks GROUP BY instance_id",
        )
    )
    for table in ("dotcom_events.events", "dotcom_events.cody"):
        emitting = {
            r[0] for r in raw(demo_warehouse_path, f"SELECT DISTINCT instance_id FROM {table}")
        }
        assert emitting
        assert {status.get(i) for i in emitting} == {TELEMETRY_EVENTS}
    assert set(status.values()) == {TELEMETRY_EVENTS, "full pings", "critical pings only"}


def test_instances_accounts_and_versions_look_like_a_real_install_base(demo_warehouse_path):
    instances, accounts, latest_day = raw(
        demo_warehouse_path,
        "SELECT COUNT(DISTINCT instance_id), COUNT(DISTINCT account_id), "
        "MAX(CAST(checked_at AS DATE)) FROM sourcegraph_analytics.update_checks",
    )[0]
    assert 200 <= instances <= 500
    assert 40 <= accounts <= 60
    customers, with_seats, total = raw(
        demo_warehouse_path,
        "SELECT COUNT(*) FILTER (is_customer), COUNT(seats_purchased), COUNT(*) "
        "FROM salesforce_data.accounts",
    )[0]
    assert total == 60 and customers == with_seats and 20 <= customers <= 40
    deployment_types = {
        r[0]
        for r in raw(
            demo_warehouse_path,
            "SELECT DISTINCT deployment_type FROM sourcegraph_analytics.update_checks",
        )
    }
    assert {"kubernetes", "docker-compose", "docker", "helm"} <= deployment_types
    # Some customers are on the newest version, some are not.
    versions = raw(
        demo_warehouse_path,
        "SELECT version, is_customer FROM sourcegraph_analytics.update_checks "
        "WHERE CAST(checked_at AS DATE) = ?",
        [latest_day - dt.timedelta(days=1)],
    )

    def key(version: str) -> tuple[int, ...]:
        return tuple(int(part) for part in version.split("."))

    newest = max((v for v, _ in versions), key=key)
    customer_versions = Counter(v == newest for v, is_customer in versions if is_customer)
    assert customer_versions[True] > 0 and customer_versions[False] > 0


def test_one_update_check_per_instance_per_day(demo_warehouse_path):
    (duplicates,) = raw(
        demo_warehouse_path,
        "SELECT COUNT(*) FROM (SELECT instance_id, CAST(checked_at AS DATE) "
        "FROM sourcegraph_analytics.update_checks GROUP BY ALL HAVING COUNT(*) > 1)",
    )[0]
    assert duplicates == 0


def add_months(ts: dt.datetime, months: int) -> dt.datetime:
    """Calendar months in UTC, clamped to the month's last day (Jan 31 + 1 -> Feb 28/29)."""
    ts = ts.astimezone(dt.UTC)
    index = ts.month - 1 + months
    year, month = ts.year + index // 12, index % 12 + 1
    return ts.replace(year=year, month=month, day=min(ts.day, calendar.monthrange(year, month)[1]))


def test_billing_cycles_start_each_month_after_the_subscription_start(demo_warehouse_path):
    starts = dict(
        raw(demo_warehouse_path, "SELECT subscription_id, started_at FROM ssc.subscriptions")
    )
    cycles = raw(
        demo_warehouse_path,
        "SELECT subscription_id, cycle_number, cycle_start, cycle_end FROM ssc.billing_cycles",
    )
    numbers = defaultdict(list)
    for sub, k, start, end in cycles:
        numbers[sub].append(k)
        assert start == add_months(starts[sub], k - 1)
        assert end == add_months(starts[sub], k)
    assert all(sorted(ks) == list(range(1, len(ks) + 1)) for ks in numbers.values())
    assert set(numbers) == set(starts)  # every subscription has its first cycle
    # Month-end clamping is exercised: some subscriptions start on the 29th-31st.
    assert any(starts[s].day >= 29 and len(numbers[s]) >= 3 for s in numbers)


def test_subscriptions_are_many_growing_and_partly_canceled(demo_warehouse_path):
    rows = raw(
        demo_warehouse_path,
        "SELECT user_id, started_at, ended_at, status FROM ssc.subscriptions",
    )
    assert len({r[0] for r in rows}) >= 3000
    assert {r[3] for r in rows} == {"active", "canceled"}
    assert all((r[2] is None) == (r[3] == "active") for r in rows)
    assert all(r[2] is None or r[2] > r[1] for r in rows)
    # Some users come back: more subscriptions than users.
    assert len(rows) > len({r[0] for r in rows})
    by_quarter = Counter((r[1].year, (r[1].month - 1) // 3) for r in rows)
    quarters = sorted(by_quarter)[1:-1]  # drop partial quarters
    assert by_quarter[quarters[-1]] > by_quarter[quarters[0]]


def test_subscription_times_sit_near_pacific_midnight_and_cross_dst(demo_warehouse_path):
    starts = [r[0] for r in raw(demo_warehouse_path, "SELECT started_at FROM ssc.subscriptions")]
    local = [s.astimezone(PACIFIC) for s in starts]
    near_midnight = [
        t for t in local if (t.hour == 23 and t.minute >= 30) or (t.hour == 0 and t.minute < 30)
    ]
    assert len(near_midnight) > 0.05 * len(starts)
    # A monthly cycle start near midnight lands on another Pacific date after a DST change.
    shifted = raw(
        demo_warehouse_path,
        "SELECT COUNT(*) FROM ssc.billing_cycles c "
        "JOIN ssc.subscriptions s USING (subscription_id) "
        "WHERE c.cycle_number > 1 AND day(timezone('America/Los_Angeles', c.cycle_start)) "
        "<> day(timezone('America/Los_Angeles', s.started_at)) AND day(s.started_at) < 28",
    )[0][0]
    assert shifted > 0


def test_ssc_data_stops_at_the_sync_high_water_mark(demo_warehouse_path):
    synced = dict(
        raw(demo_warehouse_path, "SELECT table_name, synced_through FROM ssc.sync_status")
    )
    assert synced == {
        "subscriptions": DEMO_AS_OF - PIPELINE_LAG,
        "billing_cycles": DEMO_AS_OF - PIPELINE_LAG,
    }
    (late,) = raw(
        demo_warehouse_path,
        "SELECT COUNT(*) FROM ssc.subscriptions WHERE started_at >= ? OR ended_at >= ?",
        [synced["subscriptions"]] * 2,
    )[0]
    (late_cycles,) = raw(
        demo_warehouse_path,
        "SELECT COUNT(*) FROM ssc.billing_cycles WHERE cycle_start >= ?",
        [synced["billing_cycles"]],
    )[0]
    assert late == late_cycles == 0


def test_stripe_matches_ssc_for_about_96_percent_of_subscriptions(demo_warehouse_path):
    ssc = {
        (user, started, status)
        for user, started, status in raw(
            demo_warehouse_path, "SELECT user_id, started_at, status FROM ssc.subscriptions"
        )
    }
    stripe_rows = raw(
        demo_warehouse_path,
        "SELECT ssc_user_id, created, status FROM stripe.subscriptions",
    )
    # Stripe records the creation a few seconds after SSC's start.
    stripe = {
        (user, created.replace(microsecond=0), status) for user, created, status in stripe_rows
    }
    ssc_seconds = {(u, s.replace(microsecond=0), st) for u, s, st in ssc}
    matched = sum(
        1
        for u, s, st in ssc_seconds
        if any((u, s + dt.timedelta(seconds=n), st) in stripe for n in range(1, 22))
    )
    assert 0.93 <= matched / len(ssc) <= 0.99


def test_no_personal_data_only_pseudonymous_ids(demo_warehouse_path):
    for table, column, prefix in [
        ("dotcom_events.events", "user_id", "u"),
        ("ssc.subscriptions", "user_id", "cu_"),
        ("stripe.subscriptions", "ssc_user_id", "cu_"),
    ]:
        (bad,) = raw(
            demo_warehouse_path,
            f"SELECT COUNT(*) FROM {table} WHERE NOT regexp_full_match({column}, ?)",
            [f"{prefix}[0-9a-f]+"],
        )[0]
        assert bad == 0, table
    names = [
        r[0] for r in raw(demo_warehouse_path, "SELECT account_name FROM salesforce_data.accounts")
    ]
    assert len(set(names)) == 60
    assert not any("@" in name for name in names)


def test_naive_as_of_is_refused(tmp_path):
    with pytest.raises(ValueError, match="timezone-aware"):
        ensure_demo_warehouse(tmp_path, as_of=dt.datetime(2026, 11, 23, 10, 0))


def test_the_registry_knows_instances_that_never_ping_and_pings_agree_with_it(
    demo_warehouse_path,
):
    registry = dict(
        raw(
            demo_warehouse_path,
            "SELECT instance_id, telemetry_status FROM sourcegraph_analytics.instances",
        )
    )
    pinged = dict(
        raw(
            demo_warehouse_path,
            "SELECT DISTINCT instance_id, telemetry_status "
            "FROM sourcegraph_analytics.update_checks",
        )
    )
    assert set(pinged) <= set(registry)
    assert all(registry[i] == status for i, status in pinged.items())
    silent = {i for i, status in registry.items() if status == "no telemetry"}
    assert silent and not silent & set(pinged)
    # Every version a ping reports is a release, and user accounts exceed monthly users.
    versions = {
        v for (v,) in raw(demo_warehouse_path, "SELECT version FROM sourcegraph_analytics.releases")
    }
    reported = {
        v
        for (v,) in raw(
            demo_warehouse_path, "SELECT DISTINCT version FROM sourcegraph_analytics.update_checks"
        )
    }
    assert reported <= versions
    (below,) = raw(
        demo_warehouse_path,
        "SELECT COUNT(*) FROM sourcegraph_analytics.update_checks "
        "WHERE total_user_accounts < monthly_active_users",
    )[0]
    assert below == 0
