"""Prints how long the demo warehouse takes to generate and typical queries take to answer.

Run: .venv/bin/python bench/bench_warehouse.py [DATA_DIR]
"""

from __future__ import annotations

import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

from bot.sql import load_sql
from bot.warehouse import DuckDBWarehouse
from bot.warehouse_demo import ensure_demo_warehouse

QUERIES = {
    "dau last 30 days": (
        "SELECT DATE(timestamp, 'America/Los_Angeles') AS day, COUNT(DISTINCT user_id) AS dau "
        "FROM dotcom_events.events WHERE DATE(timestamp, 'America/Los_Angeles') "
        "BETWEEN DATE_SUB(@day, INTERVAL 29 DAY) AND @day GROUP BY day",
        {"day": dt.date(2026, 11, 22)},
    ),
    "mau one month": (
        "SELECT COUNT(DISTINCT user_id) AS mau FROM dotcom_events.events "
        "WHERE DATE_TRUNC(DATE(timestamp, 'America/Los_Angeles'), MONTH) = @month",
        {"month": dt.date(2026, 10, 1)},
    ),
    "instances by deployment type": (
        "SELECT deployment_type, COUNT(DISTINCT instance_id) AS n "
        "FROM sourcegraph_analytics.update_checks "
        "WHERE DATE(checked_at, 'America/Los_Angeles') = @day GROUP BY deployment_type",
        {"day": dt.date(2026, 11, 22)},
    ),
    "cody pro daily, 90 days": (
        load_sql("cody_pro_daily"),
        {"start_date": dt.date(2026, 8, 25), "end_date": dt.date(2026, 11, 22), "price_usd": 9.0},
    ),
}


def main() -> None:
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    as_of = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)
    started = time.perf_counter()
    path = ensure_demo_warehouse(data_dir, as_of=as_of)
    print(f"generate (or reuse) demo warehouse: {time.perf_counter() - started:6.2f} s  {path}")
    print(f"file size: {path.stat().st_size / 1e6:.0f} MB")
    warehouse = DuckDBWarehouse(path, timeout_s=60)
    for name, (sql, params) in QUERIES.items():
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            warehouse.query(sql, params)
            timings.append(time.perf_counter() - started)
        print(
            f"{name:32s} first {timings[0] * 1000:7.1f} ms, then {min(timings[1:]) * 1000:7.1f} ms"
        )
    warehouse.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    main()
