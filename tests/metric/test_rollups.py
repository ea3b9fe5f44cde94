"""Rollups the bot owns: a lookup through the rollups (covered days) plus raw rows (the
rest) gives exactly the raw-table answer, for every metric declaring a rollup, across the
DST change (Nov 1 2026) and month ends; the job builds them once per day through the
exactly-once runner and catches up missed days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.metric.catalog import load_catalog
from bot.metric.lookup import MetricService
from bot.metric.model import MetricQuery, NoData
from bot.metric.periods import Period
from bot.metric.rollups import Coverage, build_day, coverage_lines
from bot.settings import Settings
from bot.warehouse import DuckDBWarehouse

TZ = "America/Los_Angeles"
NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)  # Mon Nov 23, 10:00 PT
COVERED = Period(dt.date(2026, 9, 20), dt.date(2026, 11, 10))
CATALOG = load_catalog()
ROLLED = [m for m in CATALOG.metrics if m.rollups]
PERIODS = [
    Period(dt.date(2026, 11, 1), dt.date(2026, 11, 1)),  # 25-hour Pacific day
    Period(dt.date(2026, 10, 31), dt.date(2026, 10, 31)),
    Period(dt.date(2026, 9, 30), dt.date(2026, 9, 30)),
    Period(dt.date(2026, 10, 1), dt.date(2026, 10, 31)),  # a month, all covered or partly
    Period(dt.date(2026, 11, 1), dt.date(2026, 11, 21)),  # past the coverage: mixed
    Period(dt.date(2026, 10, 26), dt.date(2026, 11, 8)),  # across the DST change
]


@pytest.fixture(scope="module")
def rolled_warehouse(demo_warehouse_path, tmp_path_factory):
    path = tmp_path_factory.mktemp("rollups") / "rollups.duckdb"
    warehouse = DuckDBWarehouse(demo_warehouse_path, timeout_s=60, rollups=(path, "rollups"))
    day = COVERED.start
    while day <= COVERED.end:
        build_day(warehouse, "rollups", day)
        day += dt.timedelta(days=1)
    yield warehouse
    warehouse.close()


def an_account(warehouse) -> str:
    rows = warehouse.query(
        "SELECT account_name, COUNT(*) AS n FROM sourcegraph_analytics.update_checks "
        "WHERE account_name IS NOT NULL AND telemetry_status = 'full pings + event data' "
        "GROUP BY account_name ORDER BY n DESC, account_name LIMIT 1"
    )
    return rows[0]["account_name"]


def answer_or_none(service, metric, period, account, by=None):
    try:
        return service.answer(MetricQuery(metric, period, account, by))
    except NoData:
        return None


def numbers(answer):
    if answer is None:
        return None
    return (answer.values, answer.trend, [(r.label, r.value, r.previous) for r in answer.breakdown])


@pytest.mark.parametrize("metric", ROLLED, ids=[m.name for m in ROLLED])
def test_rollup_answers_equal_raw_answers(rolled_warehouse, metric):
    raw = MetricService(CATALOG, rolled_warehouse, Settings(_env_file=None), lambda: NOW)
    rolled = MetricService(
        CATALOG, rolled_warehouse, Settings(_env_file=None, rollup_dataset="rollups"), lambda: NOW
    )
    account = an_account(rolled_warehouse)
    used = 0
    for period in PERIODS:
        for who in (None, account):
            plan = rolled.plan(metric, period, who)
            used += "rollups." in plan.sql
            assert "rollups." not in raw.plan(metric, period, who).sql
            expected = numbers(answer_or_none(raw, metric, period, who))
            assert numbers(answer_or_none(rolled, metric, period, who)) == expected, (
                period,
                who,
            )
    assert used == 2 * len(PERIODS)  # every scan above overlaps the covered days
    # Breakdowns (`by deployment`, `by version`, ...) read the same rollup rows.
    for by in metric.dimensions:
        for period in PERIODS[3:]:
            expected = numbers(answer_or_none(raw, metric, period, None, by))
            assert expected is not None
            assert numbers(answer_or_none(rolled, metric, period, None, by)) == expected, (
                by,
                period,
            )


def test_rollups_shows_coverage(rolled_warehouse):
    lines = coverage_lines(rolled_warehouse, "rollups")
    assert lines == [
        f"rollups.events_daily (dotcom_events.events): {COVERED.days} day(s); lookups use "
        f"{COVERED.start} .. {COVERED.end}",
        f"rollups.pings_daily (sourcegraph_analytics.update_checks): {COVERED.days} day(s); "
        f"lookups use {COVERED.start} .. {COVERED.end}",
    ]
    assert Coverage(rolled_warehouse, "rollups").covered("events_daily") == COVERED


# ------------------------------------------------------------------------------ the job


def test_the_rollups_job_runs_once_per_day_and_catches_up_missed_days(
    tmp_path, postgres_store, demo_warehouse_path, clock
):
    import threading

    from bot.features import build_jobs, find_job
    from bot.scheduling import runner
    from sandbox.harness import BotHarness

    warehouse = DuckDBWarehouse(
        demo_warehouse_path, timeout_s=60, rollups=(tmp_path / "r.duckdb", "rollups")
    )
    try:
        with BotHarness(
            data_dir=tmp_path,
            store=postgres_store,
            warehouse=warehouse,
            now=clock,
            rollup_dataset="rollups",
            rollup_backfill_days=3,
        ) as bot:
            job = find_job(build_jobs(bot.deps), "rollups")
            results = []
            runs = [
                threading.Thread(
                    target=lambda: results.append(runner.run_period(bot.deps, job, "2026-11-20"))
                )
                for _ in range(2)
            ]
            for t in runs:
                t.start()
            for t in runs:
                t.join()
            done = [r for r in results if r is not None]
            assert len(done) == 1 and "rolled up 3 day(s) through 2026-11-20" in done[0].detail
            coverage = Coverage(warehouse, "rollups")
            assert coverage.covered("events_daily") == Period(
                dt.date(2026, 11, 18), dt.date(2026, 11, 20)
            )
            # Nov 21 was missed (clock down): the next run builds it too.
            again = runner.run_period(bot.deps, job, "2026-11-22")
            assert "rolled up 2 day(s) through 2026-11-22" in again.detail
            coverage.forget()
            assert coverage.covered("pings_daily") == Period(
                dt.date(2026, 11, 18), dt.date(2026, 11, 22)
            )
            lines = coverage_lines(warehouse, "rollups")
            assert "5 day(s); lookups use 2026-11-18 .. 2026-11-22" in lines[0]
        # Each day once, whatever ran twice: one row per day x user x instance.
        (built,) = warehouse.query(
            "SELECT COUNT(*) AS n FROM rollups.events_daily WHERE day = DATE '2026-11-20'"
        )
        (raw,) = warehouse.query(
            "SELECT COUNT(*) AS n FROM (SELECT DISTINCT user_id, instance_id "
            "FROM dotcom_events.events WHERE DATE(timestamp, 'America/Los_Angeles') = "
            "DATE '2026-11-20')"
        )
        assert built["n"] == raw["n"] > 0
    finally:
        warehouse.close()


def test_databot_rollups_without_a_dataset_says_lookups_read_raw_rows(tmp_path):
    from tests.test_cli import run_cli

    result = run_cli("rollups", env={"DATA_DIR": str(tmp_path)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ROLLUP_DATASET is not set: lookups read raw rows only."


# ------------------------------------------------------------------------- on BigQuery

SLICE = Period(dt.date(2026, 10, 25), dt.date(2026, 11, 2))  # tests.support.bigquery's


@pytest.fixture(scope="module")
def bigquery_rolled(bigquery_emulator, demo_warehouse_path, tmp_path_factory):
    """A slice of demo rows in the BigQuery emulator, with the rollups built there by the
    bot's own DDL and DML (CREATE TABLE, DELETE, INSERT ... SELECT) for every day of it."""
    from bot.warehouse import BigQueryWarehouse
    from tests.support.bigquery import (
        EMULATOR_PROJECT,
        copy_demo_slice,
        demo_slices,
        emulator_client,
    )

    copy_demo_slice(
        bigquery_emulator,
        demo_warehouse_path,
        demo_slices(),
        slice_path=tmp_path_factory.mktemp("bq-slice") / "slice.duckdb",
    )
    client = emulator_client(bigquery_emulator)
    client.create_dataset("databot_rollups", exists_ok=True)  # the dataset databot may write
    client.close()
    warehouse = BigQueryWarehouse(
        EMULATOR_PROJECT, api_endpoint=bigquery_emulator, maximum_bytes_billed=10**9, timeout_s=60
    )
    day = SLICE.start
    while day <= SLICE.end:
        build_day(warehouse, "databot_rollups", day)
        day += dt.timedelta(days=1)
    build_day(warehouse, "databot_rollups", SLICE.start)  # a rebuilt day replaces, not adds
    yield warehouse
    warehouse.close()


@pytest.mark.bigquery
@pytest.mark.parametrize("metric", ROLLED, ids=[m.name for m in ROLLED])
def test_rollups_built_on_bigquery_give_the_raw_answers(bigquery_rolled, metric):
    raw = MetricService(CATALOG, bigquery_rolled, Settings(_env_file=None), lambda: NOW)
    rolled = MetricService(
        CATALOG,
        bigquery_rolled,
        Settings(_env_file=None, rollup_dataset="databot_rollups"),
        lambda: NOW,
    )
    account = an_account(bigquery_rolled)
    for period in (Period(dt.date(2026, 11, 1), dt.date(2026, 11, 1)), SLICE):
        for who in (None, account):
            assert "databot_rollups." in rolled.plan(metric, period, who).sql
            expected = numbers(answer_or_none(raw, metric, period, who))
            assert expected is not None and any(expected[0]), (period, who)
            assert numbers(answer_or_none(rolled, metric, period, who)) == expected, (
                period,
                who,
            )


@pytest.mark.bigquery
def test_rollup_coverage_on_bigquery_is_every_day_built_once(bigquery_rolled):
    assert Coverage(bigquery_rolled, "databot_rollups").covered("events_daily") == SLICE
    rows = bigquery_rolled.query(
        "SELECT day, COUNT(*) AS n FROM databot_rollups.rollup_days GROUP BY day ORDER BY day", {}
    )
    assert [(r["day"], r["n"]) for r in rows] == [
        (SLICE.start + dt.timedelta(days=n), 2) for n in range(SLICE.days)
    ]
    # The rebuilt first day holds one row per key, as the raw rows give.
    raw = bigquery_rolled.query(
        "SELECT COUNT(DISTINCT CONCAT(user_id, '/', instance_id)) AS n "
        "FROM dotcom_events.events WHERE timestamp >= @a AND timestamp < @b",
        dict(
            zip(("a", "b"), Period(SLICE.start, SLICE.start).utc_bounds(ZoneInfo(TZ)), strict=True)
        ),
    )
    rolled = bigquery_rolled.query(
        "SELECT COUNT(*) AS n FROM databot_rollups.events_daily WHERE day = @day",
        {"day": SLICE.start},
    )
    assert rolled[0]["n"] == raw[0]["n"] > 0
