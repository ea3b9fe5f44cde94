"""The warehouse gateway on both backends: DuckDB (demo data, translated SQL) and BigQuery
(the local emulator). Numbers are checked against plain-Python computations over raw rows.
"""

from __future__ import annotations

import datetime as dt
import decimal
import http.server
import logging
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from bot.errors import WarehouseError, WarehouseTimeout
from bot.settings import Settings
from bot.sql import load_sql
from bot.warehouse import BigQueryWarehouse, DuckDBWarehouse, make_warehouse
from tests.support.bigquery import (
    EMULATOR_PROJECT,
    copy_demo_slice,
    load_into_bigquery,
)

PACIFIC = ZoneInfo("America/Los_Angeles")
UTC = dt.UTC
HOSTILE = [
    "x' OR '1'='1",
    "'; DROP TABLE ssc.subscriptions; --",
    "$1 @name \\' \" ` ) ; SELECT 1",
]

# Parameters for each query in bot/sql/: every file there must have an entry.
SQL_PARAMS = {
    "cody_pro_daily": {
        # Includes Nov 1 2026: a month boundary and the end of daylight saving time.
        "start_date": dt.date(2026, 10, 20),
        "end_date": dt.date(2026, 11, 22),
        "price_usd": 9.0,
    },
    "cody_stripe_reconciliation": {"date": dt.date(2026, 11, 22)},
    # The account card's instances over the 30 days before Nov 23 2026 (across the end of
    # daylight saving time). The account is an input: the demo's first account by name.
    "account_instances": {
        "account": "Aster Energy Group",
        "start_date": dt.date(2026, 10, 24),
        "end_date": dt.date(2026, 11, 22),
        "start_ts": dt.datetime(2026, 10, 24, 7, tzinfo=dt.UTC),
        "end_ts": dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC),
    },
}
# Rows copied into the emulator (and a matching DuckDB file) for the parity test: every
# user whose id starts with cu_00..cu_07 (1/32 of SSC), all of their rows.
SLICES = {
    "ssc.subscriptions": "SELECT * FROM ssc.subscriptions WHERE user_id < 'cu_08'",
    "ssc.billing_cycles": "SELECT * FROM ssc.billing_cycles WHERE user_id < 'cu_08'",
    "ssc.sync_status": "SELECT * FROM ssc.sync_status",
    "stripe.subscriptions": "SELECT * FROM stripe.subscriptions WHERE ssc_user_id < 'cu_08'",
    "sourcegraph_analytics.update_checks": (
        "SELECT * FROM sourcegraph_analytics.update_checks "
        "WHERE account_name = 'Aster Energy Group' "
        "AND checked_at >= TIMESTAMPTZ '2026-10-20 00:00:00+00'"
    ),
    "sourcegraph_analytics.instances": "SELECT * FROM sourcegraph_analytics.instances",
    "sourcegraph_analytics.releases": "SELECT * FROM sourcegraph_analytics.releases",
}


def raw(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows straight from DuckDB, without the gateway or any translation."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def pacific_date(ts: dt.datetime) -> dt.date:
    return ts.astimezone(PACIFIC).date()


@pytest.fixture(scope="module")
def duck(demo_warehouse_path):
    warehouse = DuckDBWarehouse(demo_warehouse_path, timeout_s=30)
    yield warehouse
    warehouse.close()


# --- DuckDB: numbers ------------------------------------------------------------------


DAILY_USERS_SQL = """
SELECT DATE(timestamp, 'America/Los_Angeles') AS day,
       COUNT(DISTINCT user_id) AS users,
       COUNT(*) AS events
FROM dotcom_events.events
WHERE timestamp >= @from_ts AND timestamp < @to_ts
GROUP BY day
ORDER BY day
"""


@pytest.mark.parametrize(
    "first_day",
    [dt.date(2026, 3, 6), dt.date(2026, 10, 30)],
    ids=["dst-starts-mar-8", "dst-ends-nov-1"],
)
def test_duckdb_distinct_users_per_pacific_day_match_raw_rows_across_dst_change(
    duck, demo_warehouse_path, first_day
):
    from_ts = dt.datetime.combine(first_day, dt.time(), PACIFIC).astimezone(UTC)
    to_ts = dt.datetime.combine(first_day + dt.timedelta(days=4), dt.time(), PACIFIC)
    rows = duck.query(DAILY_USERS_SQL, {"from_ts": from_ts, "to_ts": to_ts.astimezone(UTC)})

    events = raw(
        demo_warehouse_path,
        "SELECT timestamp, user_id FROM dotcom_events.events "
        "WHERE timestamp >= ? AND timestamp < ?",
        [from_ts, to_ts],
    )
    users, counts, utc_users = defaultdict(set), defaultdict(int), defaultdict(set)
    for ts, user in events:
        users[pacific_date(ts)].add(user)
        counts[pacific_date(ts)] += 1
        utc_users[ts.astimezone(UTC).date()].add(user)
    expected = [
        {"day": day, "users": len(users[day]), "events": counts[day]} for day in sorted(users)
    ]
    assert rows == expected
    assert len(rows) == 4
    # The check can fail: grouping by UTC date would have given other numbers.
    assert [r["users"] for r in rows] != [len(utc_users[d]) for d in sorted(users)]


def test_duckdb_binds_date_and_array_parameters(duck, demo_warehouse_path):
    day = dt.date(2026, 11, 17)
    names = ["SearchSubmitted", "goToDefinition", "NoSuchEvent"]
    rows = duck.query(
        """
        SELECT event_name, COUNT(*) AS n
        FROM dotcom_events.events
        WHERE DATE(timestamp, 'America/Los_Angeles') = @day AND event_name IN UNNEST(@names)
        GROUP BY event_name ORDER BY event_name
        """,
        {"day": day, "names": names, "unused": "BigQuery ignores unused parameters"},
    )
    counts: dict[str, int] = defaultdict(int)
    # A generous UTC window around the day; the Pacific date is decided in Python.
    window = [
        dt.datetime.combine(day, dt.time(), UTC) - dt.timedelta(days=1),
        dt.datetime.combine(day, dt.time(), UTC) + dt.timedelta(days=2),
    ]
    for ts, name in raw(
        demo_warehouse_path,
        "SELECT timestamp, event_name FROM dotcom_events.events "
        "WHERE timestamp >= ? AND timestamp < ?",
        window,
    ):
        if name in names and pacific_date(ts) == day:
            counts[name] += 1
    assert rows == [{"event_name": n, "n": counts[n]} for n in sorted(counts)]
    assert {r["event_name"] for r in rows} == {"SearchSubmitted", "goToDefinition"}


@pytest.mark.parametrize("value", HOSTILE)
def test_duckdb_hostile_parameter_values_are_data_not_sql(duck, value):
    rows = duck.query(
        "SELECT @value AS echoed, (SELECT COUNT(*) FROM salesforce_data.accounts "
        "WHERE account_name = @value) AS matches, "
        "(SELECT COUNT(*) FROM ssc.subscriptions) AS subscriptions",
        {"value": value},
    )
    assert rows[0]["echoed"] == value
    assert rows[0]["matches"] == 0
    assert rows[0]["subscriptions"] > 0


def test_duckdb_account_filter_matches_exact_name_only(duck, demo_warehouse_path):
    (name,) = raw(demo_warehouse_path, "SELECT min(account_name) FROM salesforce_data.accounts")[0]
    rows = duck.query(
        "SELECT account_name FROM salesforce_data.accounts WHERE account_name IN UNNEST(@names)",
        {"names": [name, name + "' OR '1'='1"]},
    )
    assert rows == [{"account_name": name}]


def test_duckdb_translation_keeps_bigquery_weekday_and_week_semantics(duck):
    days = [dt.date(2026, 11, 22) + dt.timedelta(days=n) for n in range(7)]  # Sun..Sat
    rows = duck.query(
        "SELECT d, EXTRACT(DAYOFWEEK FROM d) AS dow, DATE_TRUNC(d, WEEK) AS week, "
        "DATE_TRUNC(d, ISOWEEK) AS isoweek, DATE_TRUNC(d, MONTH) AS month, "
        "DATE_ADD(d, INTERVAL 1 MONTH) AS next_month "
        "FROM UNNEST(@days) AS d ORDER BY d",
        {"days": days},
    )
    for row, day in zip(rows, days, strict=True):
        sunday = day - dt.timedelta(days=day.isoweekday() % 7)
        assert row == {
            "d": day,
            "dow": day.isoweekday() % 7 + 1,  # BigQuery: Sunday = 1 ... Saturday = 7
            "week": sunday,
            "isoweek": day - dt.timedelta(days=day.isoweekday() - 1),
            "month": day.replace(day=1),
            "next_month": day.replace(month=12),
        }


def test_duckdb_timestamps_come_back_as_aware_utc(duck, demo_warehouse_path):
    rows = duck.query("SELECT synced_through FROM ssc.sync_status ORDER BY table_name")
    expected = raw(demo_warehouse_path, "SELECT synced_through FROM ssc.sync_status")[0][0]
    assert rows[0]["synced_through"].utcoffset() == dt.timedelta(0)
    assert rows[0]["synced_through"] == expected


def test_duckdb_serves_concurrent_queries_from_many_threads(duck):
    sql = "SELECT COUNT(*) AS n FROM ssc.billing_cycles WHERE cycle_number = @k"
    expected = {k: duck.query(sql, {"k": k})[0]["n"] for k in range(1, 9)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda k: (k, duck.query(sql, {"k": k})[0]["n"]), [*range(1, 9)] * 4)
        )
    assert all(n == expected[k] for k, n in results)


# --- DuckDB: failures -----------------------------------------------------------------


def test_duckdb_query_over_time_limit_raises_timeout_and_warehouse_stays_usable(
    demo_warehouse_path,
):
    warehouse = DuckDBWarehouse(demo_warehouse_path, timeout_s=0.3)
    try:
        with pytest.raises(WarehouseTimeout) as caught:
            warehouse.query(
                "SELECT COUNT(DISTINCT CONCAT(a.user_id, b.user_id)) AS n "
                "FROM dotcom_events.events AS a CROSS JOIN dotcom_events.events AS b"
            )
        assert "0.3 s" in caught.value.user_message
        assert warehouse.query("SELECT 1 AS one") == [{"one": 1}]
    finally:
        warehouse.close()


@pytest.mark.parametrize(
    "sql",
    ["SELEC 1", "SELECT no_such_column FROM ssc.subscriptions", "SELECT 1; SELECT 2"],
    ids=["syntax", "unknown-column", "two-statements"],
)
def test_duckdb_bad_sql_raises_warehouse_error_with_user_safe_message(duck, sql, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.warehouse"):
        with pytest.raises(WarehouseError) as caught:
            duck.query(sql)
    message = caught.value.user_message
    assert "could not run this query" in message
    for leak in ("SELEC", "no_such_column", "Binder", "Traceback", "ssc."):
        assert leak not in message
    reference = message.split("reference ")[1].split(")")[0]
    assert reference in caplog.text  # the log line with the details carries the same ref


def test_duckdb_missing_parameter_is_a_warehouse_error(duck):
    with pytest.raises(WarehouseError):
        duck.query("SELECT @missing AS x")


# --- make_warehouse -------------------------------------------------------------------


def test_make_warehouse_without_project_uses_demo_duckdb(
    tmp_path, monkeypatch, demo_warehouse_path
):
    import bot.warehouse

    seen = []

    def fake_ensure(data_dir, **kwargs):
        seen.append(Path(data_dir))
        return demo_warehouse_path

    monkeypatch.setattr(bot.warehouse, "ensure_demo_warehouse", fake_ensure)
    settings = Settings(_env_file=None, gcp_project=None, data_dir=tmp_path)
    warehouse = make_warehouse(settings)
    try:
        assert warehouse.name == "duckdb"
        assert seen == [tmp_path]
        assert warehouse.query("SELECT COUNT(*) AS n FROM salesforce_data.accounts")[0]["n"] > 0
    finally:
        warehouse.close()


@pytest.mark.bigquery
def test_make_warehouse_with_project_uses_bigquery(bigquery_emulator, tmp_path):
    settings = Settings(
        _env_file=None,
        gcp_project=EMULATOR_PROJECT,
        bigquery_api_endpoint=bigquery_emulator,
        data_dir=tmp_path,
        query_timeout_seconds=20,
    )
    warehouse = make_warehouse(settings)
    try:
        assert warehouse.name == "bigquery"
        assert warehouse.query("SELECT @x + 1 AS y", {"x": 41}) == [{"y": 42}]
    finally:
        warehouse.close()


# --- BigQuery (emulator) --------------------------------------------------------------


@pytest.fixture(scope="module")
def bq(bigquery_emulator):
    warehouse = BigQueryWarehouse(
        EMULATOR_PROJECT,
        api_endpoint=bigquery_emulator,
        maximum_bytes_billed=10 * 1024**3,
        timeout_s=20,
    )
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def bq_accounts(bigquery_emulator):
    rows = [
        {"account_id": "001", "account_name": "Granite Labs Inc.", "seats": 100},
        {"account_id": "002", "account_name": "Harbor Media LLC", "seats": 50},
    ]
    load_into_bigquery(
        bigquery_emulator,
        "gateway_test.accounts",
        [("account_id", "STRING"), ("account_name", "STRING"), ("seats", "INT64")],
        rows,
    )
    return rows


@pytest.mark.bigquery
def test_bigquery_parameters_of_every_type_round_trip(bq):
    params = {
        "i": 3,
        "f": 1.5,
        "n": decimal.Decimal("1.25"),
        "s": "text",
        "b": True,
        "d": dt.date(2026, 11, 1),
        "ts": dt.datetime(2026, 11, 1, 8, 30, tzinfo=UTC),
        "xs": ["a", "b", "c"],
    }
    rows = bq.query(
        "SELECT @i AS i, @f AS f, @n AS n, @s AS s, @b AS b, @d AS d, @ts AS ts, "
        "ARRAY_LENGTH(@xs) AS xs_len, DATE(@ts, 'America/Los_Angeles') AS pacific_day",
        params,
    )
    row = rows[0]
    assert {k: row[k] for k in ("i", "f", "n", "s", "b", "d", "ts")} == {
        k: params[k] for k in ("i", "f", "n", "s", "b", "d", "ts")
    }
    assert [type(row[k]) for k in ("i", "f", "n", "b")] == [int, float, decimal.Decimal, bool]
    assert row["xs_len"] == 3
    assert row["pacific_day"] == dt.date(2026, 11, 1)  # 01:30 PDT


@pytest.mark.bigquery
def test_bigquery_reads_back_loaded_rows_filtered_by_array_parameter(bq, bq_accounts):
    rows = bq.query(
        "SELECT account_name, seats FROM gateway_test.accounts "
        "WHERE account_id IN UNNEST(@ids) ORDER BY account_name",
        {"ids": ["002", "999"]},
    )
    assert rows == [{"account_name": "Harbor Media LLC", "seats": 50}]


@pytest.mark.bigquery
@pytest.mark.parametrize("value", HOSTILE)
def test_bigquery_hostile_parameter_values_are_data_not_sql(bq, bq_accounts, value):
    rows = bq.query(
        "SELECT @value AS echoed, (SELECT COUNT(*) FROM gateway_test.accounts "
        "WHERE account_name = @value) AS matches",
        {"value": value},
    )
    assert rows == [{"echoed": value, "matches": 0}]
    assert len(bq.query("SELECT account_id FROM gateway_test.accounts")) == 2


@pytest.mark.bigquery
def test_bigquery_jobs_carry_labels_byte_cap_and_cache(bigquery_emulator):
    from google.cloud import bigquery

    sent = []

    class RecordingClient(bigquery.Client):
        def query(self, query, job_config=None, **kwargs):
            sent.append(job_config)
            return super().query(query, job_config=job_config, **kwargs)

    from google.auth.credentials import AnonymousCredentials

    client = RecordingClient(
        project=EMULATOR_PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": bigquery_emulator},
    )
    warehouse = BigQueryWarehouse(
        EMULATOR_PROJECT, client=client, maximum_bytes_billed=12345678, timeout_s=20
    )
    try:
        assert warehouse.query("SELECT 1 AS one", labels={"feature": "metric"}) == [{"one": 1}]
    finally:
        warehouse.close()
    # Priced first by a dry run (no labels, no cache: it bills nothing), then run.
    dry, config = sent
    assert dry.dry_run is True and config.dry_run is not True
    assert config.labels == {"app": "databot", "feature": "metric"}
    assert config.maximum_bytes_billed == 12345678
    assert config.use_query_cache is True


@pytest.mark.bigquery
@pytest.mark.parametrize(
    "sql",
    ["SELEC 1", "SELECT no_such_column FROM gateway_test.accounts"],
    ids=["syntax", "unknown-column"],
)
def test_bigquery_bad_sql_raises_warehouse_error_with_user_safe_message(
    bq, bq_accounts, sql, caplog
):
    with caplog.at_level(logging.WARNING, logger="bot.warehouse"):
        with pytest.raises(WarehouseError) as caught:
            bq.query(sql)
    assert not isinstance(caught.value, WarehouseTimeout)
    message = caught.value.user_message
    assert "could not run this query" in message
    for leak in ("SELEC", "no_such_column", "400", "gateway_test"):
        assert leak not in message
    assert message.split("reference ")[1].split(")")[0] in caplog.text


def test_bigquery_parameter_of_unsupported_type_is_a_clear_error():
    warehouse = BigQueryWarehouse("p", client=object(), maximum_bytes_billed=1, timeout_s=1)
    with pytest.raises(WarehouseError) as naive:
        warehouse.query("SELECT @when", {"when": dt.datetime(2026, 1, 1)})  # naive
    assert naive.value.user_message.endswith(": when.")
    with pytest.raises(WarehouseError) as empty:
        warehouse.query("SELECT 1 FROM t WHERE x IN UNNEST(@ids)", {"ids": []})
    assert empty.value.user_message.endswith(": ids.")


class _Server:
    """A loopback HTTP server that either never answers or always answers 503."""

    def __init__(self, mode: str) -> None:
        self.requests = 0
        server_self = self
        self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _handle(self):
                server_self.requests += 1
                if mode == "hang":
                    server_self.release.wait(60)
                    return
                body = b'{"error": {"code": 503, "message": "backend unavailable"}}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _handle

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.timeout(60)
def test_bigquery_unanswered_query_times_out_instead_of_retrying_for_minutes(monkeypatch):
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    server = _Server("hang")
    try:
        warehouse = BigQueryWarehouse(
            "p", api_endpoint=server.url, maximum_bytes_billed=1, timeout_s=1.0
        )
        with pytest.raises(WarehouseTimeout) as caught:
            warehouse.query("SELECT 1")
        assert "1 s" in caught.value.user_message
    finally:
        server.close()


@pytest.mark.timeout(60)
def test_bigquery_server_errors_give_up_within_the_time_limit(monkeypatch):
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    server = _Server("503")
    try:
        warehouse = BigQueryWarehouse(
            "p", api_endpoint=server.url, maximum_bytes_billed=1, timeout_s=1.0
        )
        with pytest.raises(WarehouseError) as caught:
            warehouse.query("SELECT 1")
        assert "503" not in caught.value.user_message
        assert server.requests >= 1
    finally:
        server.close()


# --- bot/sql: both backends, and the Cody Pro definition ------------------------------


def sql_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".sql")
        for p in resources.files("bot.sql").iterdir()
        if p.name.endswith(".sql")
    )


def referenced_tables(sql: str) -> set[str]:
    tree = sqlglot.parse_one(sql, read="bigquery")
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    return {f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db and t.name not in ctes}


@pytest.fixture(scope="module")
def bigquery_slice(bigquery_emulator, demo_warehouse_path, tmp_path_factory):
    tables = set().union(*(referenced_tables(load_sql(name)) for name in sql_names()))
    missing = tables - set(SLICES)
    assert not missing, f"add a slice for {sorted(missing)} to SLICES"
    path = tmp_path_factory.mktemp("slice") / "slice.duckdb"
    copy_demo_slice(
        bigquery_emulator,
        demo_warehouse_path,
        {t: SLICES[t] for t in sorted(tables)},
        slice_path=path,
    )
    return path


def test_every_sql_file_has_test_parameters():
    assert set(sql_names()) == set(SQL_PARAMS)


@pytest.mark.bigquery
@pytest.mark.parametrize("name", sql_names())
def test_sql_gives_same_rows_on_duckdb_and_bigquery(name, bigquery_slice, bq):
    duck = DuckDBWarehouse(bigquery_slice, timeout_s=30)
    try:
        duck_rows = duck.query(load_sql(name), SQL_PARAMS[name])
    finally:
        duck.close()
    bq_rows = bq.query(load_sql(name), SQL_PARAMS[name])
    assert duck_rows  # the slice is not empty
    assert any(any(isinstance(v, int) and v > 0 for v in r.values()) for r in duck_rows)
    assert bq_rows == duck_rows


def cody_fields_by_python(subscriptions, cycles, day: dt.date, price: float, to_date) -> dict:
    """DOMAIN.md's Cody Pro definitions, written out over raw SSC rows."""
    active = {
        u
        for u, start, end in subscriptions
        if to_date(start) <= day and (end is None or to_date(end) > day)
    }
    canceled = {u for u, _start, end in subscriptions if end is not None and to_date(end) == day}
    new = {u for u, k, start in cycles if k == 1 and to_date(start) == day}
    retained = {u for u, k, start in cycles if k >= 2 and to_date(start) == day}
    daily = len(new) + len(retained)
    return {
        "date": day,
        "daily_subscribers": daily,
        "new_subscribers": len(new),
        "retained_subscribers": len(retained),
        "canceled_subscribers": len(canceled),
        "active_subscribers": len(active),
        "daily_revenue": daily * price,
        "daily_revenue_added": len(new) * price,
        "daily_revenue_retained": len(retained) * price,
        "mrr": len(active) * price,
        "arr": len(active) * price * 12,
    }


@pytest.fixture(scope="module")
def ssc_rows(demo_warehouse_path):
    subscriptions = raw(
        demo_warehouse_path, "SELECT user_id, started_at, ended_at FROM ssc.subscriptions"
    )
    cycles = raw(
        demo_warehouse_path,
        "SELECT user_id, cycle_number, cycle_start FROM ssc.billing_cycles",
    )
    return subscriptions, cycles


@pytest.mark.parametrize(
    "day",
    [
        dt.date(2026, 3, 8),  # DST starts
        dt.date(2026, 3, 31),  # month end
        dt.date(2026, 4, 1),  # month start
        dt.date(2026, 11, 1),  # month start and DST ends
        dt.date(2026, 11, 22),  # the last complete day
    ],
)
def test_cody_pro_daily_matches_the_definitions_over_raw_ssc_rows(duck, ssc_rows, day):
    rows = duck.query(
        load_sql("cody_pro_daily"), {"start_date": day, "end_date": day, "price_usd": 9.0}
    )
    assert rows == [cody_fields_by_python(*ssc_rows, day, 9.0, pacific_date)]
    assert rows[0]["canceled_subscribers"] > 0
    assert (
        rows[0]["daily_subscribers"] == rows[0]["new_subscribers"] + rows[0]["retained_subscribers"]
    )


def test_cody_pro_daily_uses_pacific_not_utc_dates(duck, ssc_rows):
    """The demo data is built so that a UTC-date implementation gives different numbers."""
    start, end = dt.date(2026, 10, 25), dt.date(2026, 11, 8)
    rows = duck.query(
        load_sql("cody_pro_daily"), {"start_date": start, "end_date": end, "price_usd": 9.0}
    )
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]

    def utc_date(ts):
        return ts.astimezone(UTC).date()

    assert rows == [cody_fields_by_python(*ssc_rows, d, 9.0, pacific_date) for d in days]
    assert rows != [cody_fields_by_python(*ssc_rows, d, 9.0, utc_date) for d in days]


def test_cody_pro_daily_has_a_row_for_every_date_even_without_activity(duck):
    # Before the first subscription: every count is zero, but the dates are all there.
    rows = duck.query(
        load_sql("cody_pro_daily"),
        {"start_date": dt.date(2020, 2, 27), "end_date": dt.date(2020, 3, 2), "price_usd": 9.0},
    )
    assert [r["date"] for r in rows] == [dt.date(2020, 2, d) for d in (27, 28, 29)] + [
        dt.date(2020, 3, 1),
        dt.date(2020, 3, 2),
    ]
    assert all(r["active_subscribers"] == 0 and r["mrr"] == 0 for r in rows)
