"""Scale benchmark (issue 15): prints ratios measured in this run, asserts nothing.

    python -m bench scale            (from the repo root; PostgreSQL at 127.0.0.1:5432)

1. 50 concurrent signed /metric requests of 10 distinct metric/period pairs, every warehouse
   query 2 s: time until all 50 are answered / the query time, and "still working" notes.
2. Replicas on one PostgreSQL state database: 3 in-process apps (each its own Deps, lookup
   service and warehouse counter), then 3 `databot serve` processes (queries counted from
   each one's /metrics), answer 100 lookups of 10 pairs spread over them: warehouse
   queries in all.
3. Rows and bytes (BigQuery's column-size model) read by the default WAU, MAU and DAU/MAU
   lookups with and without rollups, on the demo events (1x) and on 10x the events (each
   event repeated ten times within its Pacific day), with the lookup times.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import sqlalchemy as sa

from bench.bench_metric import PAIRS, SlowWarehouse
from bench.serving import spawn_serve, wait_healthy
from bot.metric.catalog import load_catalog
from bot.metric.lookup import MetricService
from bot.metric.rollups import ROLLUPS, build_day
from bot.settings import Settings
from bot.store import Store
from bot.warehouse import DuckDBWarehouse
from bot.warehouse_demo import ensure_demo_warehouse

AS_OF = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
NOW = AS_OF.astimezone(dt.UTC)
SECRET = "bench-secret"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
QUERY_SECONDS = 2.0


def now() -> dt.datetime:
    return NOW


def _answered(bot, urls: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done = all(
            any("metric_share" in str(r.payload) for r in bot.slack.responses(url)) for url in urls
        )
        if done:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("not every lookup was answered")
        time.sleep(0.005)


def bench_burst(data_dir: Path, warehouse, workers: int) -> None:
    """The bot in this process (its warehouse a stand-in BigQuery), Slack in its own: the
    answers' HTTP posts are then served elsewhere, as Slack's are, not by this process's
    interpreter (bench_ack does the same)."""
    from bench.bench_ack import Slack
    from sandbox.harness import BotHarness
    from sandbox.slack_requests import send_signed, slash_command

    settings = Settings(_env_file=None)
    slow = SlowWarehouse(warehouse, delay=QUERY_SECONDS, remote=True)
    slow.prime(settings, now, PAIRS)
    slack = Slack()
    try:
        with BotHarness(data_dir=data_dir, warehouse=slow, now=now, worker_threads=workers) as bot:
            bot.slash("/metric", "help")
            bot.wait_idle()
            urls = slack.urls(50)
            barrier = threading.Barrier(50)

            def one(i: int) -> None:
                body = slash_command(
                    "/metric", PAIRS[i % len(PAIRS)], user_id=f"U{i:04d}", response_url=urls[i]
                )
                barrier.wait()
                send_signed(f"{bot.url}/slack/events", body, secret=bot.signing_secret)

            started = time.perf_counter()
            with ThreadPoolExecutor(50) as pool:
                list(pool.map(one, range(50)))
            deadline = time.monotonic() + 120
            while slack.answers(urls) < 50:
                if time.monotonic() > deadline:
                    raise TimeoutError("not every lookup was answered")
                time.sleep(0.005)
            answered = time.perf_counter() - started
            bot.wait_idle(timeout=120)
            notes = slack.notes(urls)
    finally:
        slack.close()
    print(
        f"   WORKER_THREADS={workers:<3} all 50 answered after {answered:.2f} s = "
        f"{answered / QUERY_SECONDS:.2f}x the query time; {slow.queries} queries; "
        f"{notes} 'still working' notes"
    )


def bench_replicas(data_dir: Path, warehouse) -> None:
    from sandbox.harness import BotHarness

    try:
        admin = sa.create_engine(POSTGRES_URL)
        with admin.begin() as connection:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - a benchmark prints why it could not run
        print(f"   skipped: PostgreSQL not reachable at {POSTGRES_URL} ({type(exc).__name__})")
        return
    stores = [
        Store(
            POSTGRES_URL,
            engine=sa.create_engine(
                POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"}
            ),
        )
        for _ in range(3)
    ]
    stores[0].migrate()
    counters = [SlowWarehouse(warehouse, delay=0.5) for _ in stores]
    try:
        bots = [
            BotHarness(data_dir=data_dir / str(i), store=s, warehouse=c, now=now).__enter__()
            for i, (s, c) in enumerate(zip(stores, counters, strict=True))
        ]
        try:
            texts = [PAIRS[i % len(PAIRS)] for i in range(100)]

            def one(i: int) -> tuple:
                bot = bots[i % 3]
                return bot, bot.slash("/metric", texts[i], user=f"U{i:04d}")[1]

            with ThreadPoolExecutor(50) as pool:
                sent = list(pool.map(one, range(100)))
            for bot in bots:
                _answered(bot, [url for b, url in sent if b is bot])
        finally:
            for bot in bots:
                bot.__exit__(None, None, None)
    finally:
        for s in stores:
            s.close()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    total = sum(c.queries for c in counters)
    print(
        f"   100 lookups of 10 pairs over 3 replicas: {total} warehouse queries "
        f"({', '.join(str(c.queries) for c in counters)} per replica; target 10)"
    )


def bench_serve_replicas(data_dir: Path) -> None:
    """Three `databot serve` processes on one PostgreSQL database (the deployment)."""
    import subprocess
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from sandbox.slack_api import FakeSlack
    from sandbox.slack_requests import send, slash_command

    try:
        admin = sa.create_engine(POSTGRES_URL)
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - a benchmark prints why it could not run
        print(f"   skipped: PostgreSQL not reachable ({type(exc).__name__})")
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ensure_demo_warehouse(data_dir)  # once, before the replicas start (they share it)
    print(f"   (demo warehouse for today generated in {time.perf_counter() - started:.0f} s)")
    database_url = "postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D" + schema
    processes = []
    ports = []
    with FakeSlack() as slack:
        try:
            for _ in range(3):
                process, port = spawn_serve(
                    data_dir, api_url=slack.api_url, database_url=database_url, secret=SECRET
                )
                processes.append(process)
                ports.append(port)
            for process, port in zip(processes, ports, strict=True):
                wait_healthy(port, process)

            def queries(port: int) -> float:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
                    text = r.read().decode()
                return sum(
                    sample.value
                    for family in text_string_to_metric_families(text)
                    for sample in family.samples
                    if sample.name == "databot_warehouse_queries_total"
                )

            # Each replica's start-up probe (SELECT 1) is not a lookup.
            before = [queries(port) for port in ports]
            urls = []

            def one(i: int) -> None:
                url = slack.response_url("C0ANALYTICS")
                urls.append(url)
                body = slash_command(
                    "/metric", PAIRS[i % len(PAIRS)], user_id=f"U{i:04d}", response_url=url
                )
                target = f"http://127.0.0.1:{ports[i % 3]}/slack/events"
                assert send(target, body, secret=SECRET).status == 200

            with ThreadPoolExecutor(30) as pool:
                list(pool.map(one, range(100)))

            def answered(url: str) -> bool:  # an answer, not only a "still working" note
                texts = [r.payload.get("text") or "" for r in slack.responses(url)]
                return any(not t.startswith("Still working") for t in texts)

            deadline = time.monotonic() + 180
            while not all(answered(url) for url in urls):
                if time.monotonic() > deadline:
                    raise TimeoutError("not every lookup was answered")
                time.sleep(0.05)
            counts = [queries(port) - before[n] for n, port in enumerate(ports)]
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(
        f"   3 `databot serve` processes, 100 lookups of 10 pairs: {sum(counts):.0f} "
        f"warehouse queries ({', '.join(f'{c:.0f}' for c in counts)} per replica, "
        "target 10)"
    )


# ------------------------------------------------------------------------- rows and bytes

_READ = {  # columns the distinct-user lookups read, per table
    "dotcom_events.events": ("timestamp", "user_id", "instance_id"),
    "sourcegraph_analytics.update_checks": ("checked_at", "instance_id", "account_name"),
}


def _bytes_per_row(con, table: str, columns: tuple[str, ...]) -> float:
    # BigQuery's sizes: STRING 2 + UTF-8 bytes, TIMESTAMP and DATE 8.
    kinds = {row[0]: row[1] for row in con.execute(f"DESCRIBE {table}").fetchall()}
    parts = []
    for col in columns:
        if kinds.get(col) == "VARCHAR":
            parts.append(f"AVG(2 + COALESCE(strlen({col}), 0))")
        else:
            parts.append("8")
    return float(con.execute(f"SELECT {' + '.join(parts)} FROM {table}").fetchone()[0] or 0)


def _rows_read(con, plan_sql: str, params: dict, rolled: bool) -> tuple[int, float]:
    """Rows and modelled bytes the lookup's scan reads: raw rows in its window (outside the
    rollup's covered days when `rolled`) plus rollup rows in the covered days."""
    start, end = params["start_ts"], params["end_ts"]
    rows = 0
    size = 0.0
    for table, cols in _READ.items():
        ts = cols[0]
        where = f"{ts} >= $s AND {ts} < $e"
        bind = {"s": start, "e": end}
        name = "events_daily" if table.startswith("dotcom") else "pings_daily"
        if rolled:
            bind |= {"f": params[f"{name}_from_ts"], "t": params[f"{name}_end_ts"]}
            where += f" AND NOT ({ts} >= $f AND {ts} < $t)"
        n = con.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", bind).fetchone()[0]
        rows += n
        size += n * _bytes_per_row(con, table, cols)
        if rolled:
            r = ROLLUPS[name]
            m = con.execute(
                f"SELECT COUNT(*) FROM rollups.{name} WHERE day BETWEEN $a AND $b "
                f"AND {r.ts} >= $s AND {r.ts} < $e",
                {
                    "a": params[f"{name}_from"],
                    "b": params[f"{name}_through"],
                    "s": start,
                    "e": end,
                },
            ).fetchone()[0]
            rows += m
            size += m * (8 + _bytes_per_row(con, f"rollups.{name}", r.columns))
    return rows, size


def _scaled_copy(source: Path, target: Path, factor: int) -> Path:
    if target.exists():
        return target
    con = duckdb.connect(str(target))
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
        for schema in ("dotcom_events", "sourcegraph_analytics", "salesforce_data"):
            con.execute(f"CREATE SCHEMA {schema}")
        con.execute(
            "CREATE TABLE sourcegraph_analytics.update_checks AS "
            "SELECT * FROM src.sourcegraph_analytics.update_checks"
        )
        con.execute(
            "CREATE TABLE salesforce_data.accounts AS SELECT * FROM src.salesforce_data.accounts"
        )
        # Each event k more times, k seconds later (same user, instance and Pacific day).
        con.execute(
            "CREATE TABLE dotcom_events.events AS "
            "SELECT e.event_id || '-' || k AS event_id, "
            "e.timestamp + k * INTERVAL 1 SECOND AS timestamp, "
            "e.user_id, e.instance_id, e.event_name "
            f"FROM src.dotcom_events.events e, range(0, {factor}) r(k) "
            "WHERE date_trunc('day', timezone('America/Los_Angeles', e.timestamp)) = "
            "date_trunc('day', timezone('America/Los_Angeles', "
            "e.timestamp + k * INTERVAL 1 SECOND))"
        )
    finally:
        con.close()
    return target


def bench_rows(data_dir: Path, demo: Path) -> None:
    catalog = load_catalog()
    for factor in (1, 10):
        path = demo if factor == 1 else _scaled_copy(demo, data_dir / "x10.duckdb", factor)
        rollup_file = data_dir / f"rollups-{factor}.duckdb"
        warehouse = DuckDBWarehouse(path, timeout_s=300, rollups=(rollup_file, "rollups"))
        started = time.perf_counter()
        day = AS_OF.date() - dt.timedelta(days=100)
        while day < AS_OF.date():
            build_day(warehouse, "rollups", day)
            day += dt.timedelta(days=1)
        build_s = time.perf_counter() - started
        # The counting below reads the same session (the rollup file has one writer).
        con = warehouse._con.cursor()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("USE demo_data")
        print(f"   {factor}x events: rollups for 100 days built in {build_s:.1f} s")
        for name in ("wau", "mau", "dau_mau"):
            metric = catalog.get(name)
            figures = []
            for rolled in (False, True):
                extra = {"rollup_dataset": "rollups"} if rolled else {}
                service = MetricService(catalog, warehouse, Settings(_env_file=None, **extra), now)
                query = service.parse(name)
                plan = service.plan(metric, query.period, None)
                # The raw form and the rollup form hold a byte-identical answer.
                runs = []
                for _ in range(3):
                    fresh = MetricService(
                        catalog, warehouse, Settings(_env_file=None, **extra), now
                    )
                    t = time.perf_counter()
                    fresh.answer(query)
                    runs.append(time.perf_counter() - t)
                rows, size = _rows_read(con, plan.sql, plan.params, rolled)
                figures.append((rows, size, statistics.median(runs)))
            (raw_rows, raw_bytes, raw_s), (r_rows, r_bytes, r_s) = figures
            print(
                f"   {factor:>2}x {name:<8} raw {raw_rows:>10,} rows {raw_bytes / 1e6:8.1f} MB "
                f"{1000 * raw_s:7.0f} ms | rollup {r_rows:>9,} rows {r_bytes / 1e6:7.1f} MB "
                f"{1000 * r_s:6.0f} ms | rows {raw_rows / max(1, r_rows):5.1f}x fewer, "
                f"{raw_s / max(r_s, 1e-9):4.1f}x faster"
            )
        con.close()
        warehouse.close()


def main() -> int:
    # The harness's web server says so whenever requests queue for its threads, as a
    # burst's do: 30 lines of noise between the figures.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    demo = ensure_demo_warehouse(Path(".databot") / "test-cache", as_of=AS_OF)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        warehouse = DuckDBWarehouse(demo, timeout_s=60)
        try:
            print(f"databot scale benchmark ({sys.platform}, Python {sys.version.split()[0]})")
            print(f"1. 50 concurrent /metric, 10 distinct pairs, every query {QUERY_SECONDS:g} s")
            bench_burst(base / "burst", warehouse, workers=Settings(_env_file=None).worker_threads)
            print("2. replicas sharing one PostgreSQL state database")
            bench_replicas(base / "replicas", warehouse)
            bench_serve_replicas(base / "serve")
        finally:
            warehouse.close()
        print("3. rows/bytes read by default WAU, MAU, DAU/MAU, without vs with rollups")
        bench_rows(base, demo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
