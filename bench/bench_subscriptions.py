"""Subscriptions and alerts benchmark: prints figures, asserts nothing.

    python -m bench subscriptions            (from the repo root)

500 subscriptions and 500 alerts, all due in one clock tick, over 20 distinct lookups
(10 metrics x {yesterday, last week}), delivered through the real runner to the stand-in
Slack over HTTP, SQLite state, the embedded demo warehouse:

- warehouse queries issued for the whole tick (target: 20, one per distinct lookup);
- time to deliver all (every subscription posts; every alert's condition is true, so each
  posts once too).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.features import tick_subscriptions
from bot.settings import Settings
from bot.subscriptions import records
from bot.subscriptions.model import Condition, Every, Kind, Rule, Schedule
from bot.warehouse import make_warehouse
from sandbox.harness import BotHarness

METRICS = [
    "dau",
    "wau",
    "mau",
    "dau_mau",
    "searches",
    "active_instances",
    "instances_by_deployment",
    "cody_pro_active",
    "cody_pro_new",
    "cody_pro_canceled",
]
PERIODS = ["yesterday", "last week"]
EACH = int(os.environ.get("BENCH_SUBSCRIPTIONS", "500"))
PT = ZoneInfo("America/Los_Angeles")


class CountingWarehouse:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.queries = 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    def query(self, sql, params=None, **kwargs):
        with self._lock:
            self.queries += 1
        return self.inner.query(sql, params, **kwargs)

    def close(self) -> None:
        pass


def main() -> int:
    logging.getLogger().setLevel(logging.ERROR)  # a thousand "posted" lines bury the figures
    settings = Settings(_env_file=None, data_dir=Path(".databot"))
    inner = make_warehouse(settings)
    # The demo data runs to today: deliver on the last complete day's morning, a Tuesday
    # check time for alerts and subscriptions alike (00:30 team time).
    today = dt.datetime.now(PT).date()
    day = today - dt.timedelta(days=1)
    now_value = dt.datetime.combine(day, dt.time(0, 30), tzinfo=PT).astimezone(dt.UTC)
    made_at = now_value - dt.timedelta(hours=1)
    warehouse = CountingWarehouse(inner)
    lookups = [(m, p) for m in METRICS for p in PERIODS]
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            BotHarness(data_dir=Path(tmp), warehouse=warehouse, now=lambda: now_value) as bot,
        ):
            store = bot.deps.store
            schedule = Schedule(every=Every.DAILY, time=dt.time(0, 30))
            for n in range(EACH):
                metric, period = lookups[n % len(lookups)]
                records.create(
                    store,
                    made_at,
                    kind=Kind.SUBSCRIPTION,
                    metric=metric,
                    period_text=period,
                    account=None,
                    channel=f"C0BENCH{n % 25:02d}",
                    creator="U0BENCH",
                    schedule=schedule,
                )
                records.create(
                    store,
                    made_at,
                    kind=Kind.ALERT,
                    metric=metric,
                    period_text=None,
                    account=None,
                    channel=f"C0BENCH{n % 25:02d}",
                    creator="U0BENCH",
                    rule=Rule(
                        condition=Condition.ABOVE,
                        threshold=-1,
                        compare="week" if period == "last week" else "day",
                    ),
                )
            print(
                f"databot subscriptions benchmark ({sys.platform}, Python "
                f"{sys.version.split()[0]}): {EACH} subscriptions + {EACH} alerts over "
                f"{len(lookups)} distinct lookups, due in one tick"
            )
            started = time.perf_counter()
            done = tick_subscriptions(bot.deps)
            took = time.perf_counter() - started
            posted = sum(1 for r in done if r.status == "posted")
            print(f"warehouse queries issued: {warehouse.queries} (target {len(lookups)})")
            print(
                f"delivered: {posted} of {2 * EACH} in {took:.1f} s "
                f"({1000 * took / max(posted, 1):.1f} ms a delivery)"
            )
            others = [r for r in done if r.status != "posted"]
            if others:
                print(f"not posted: {len(others)}, e.g. {others[0].job} {others[0].detail}")
    finally:
        inner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
