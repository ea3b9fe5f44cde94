"""/metric benchmark: prints figures, asserts nothing.

    python -m bench.bench_metric            (from the repo root)

1. Ack latency with 50 concurrent /metric requests while every warehouse query takes 2 s
   (target: p99 < 100 ms, no ack over 3 s), through the real app over signed HTTP.
2. End-to-end cached lookup: signed /metric request -> answer at the response URL (< 50 ms).
3. Uncached lookup on the embedded demo warehouse, per shipped metric (< 500 ms).
4. Warehouse queries issued for 100 concurrent lookups of 10 distinct metric/period pairs
   (target 10: cache + single flight).
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot.metric.catalog import load_catalog
from bot.metric.lookup import MetricService
from bot.settings import Settings
from bot.warehouse import make_warehouse

PAIRS = [
    "dau yesterday",
    "dau 7d",
    "wau last week",
    "mau last month",
    "dau_mau 30d",
    "searches 30d",
    "active_instances yesterday",
    "instances_by_deployment 7d",
    "cody_pro_active yesterday",
    "cody_pro_new 30d",
]


class SlowWarehouse:
    """The demo warehouse, with every query taking at least `delay` seconds; counts them.

    With `remote=True` it stands in for BigQuery: the rows of each distinct query are
    computed once up front (`prime`), and a query then only waits, as a remote warehouse
    costs the bot wall time but no CPU."""

    def __init__(self, inner, delay: float = 0.0, *, remote: bool = False) -> None:
        self.inner = inner
        self.delay = delay
        self.remote = remote
        self.embedded = not remote  # a remote one's lookups need not wait for the acks
        self.queries = 0
        self._memo: dict[tuple, list[dict]] = {}
        self._lock = threading.Lock()

    def prime(self, settings: Settings, now, texts: list[str]) -> None:
        service = MetricService(load_catalog(), self, settings, now)
        saved, self.delay = self.delay, 0.0
        for text in texts:
            service.answer(service.parse(text))
        self.delay, self.queries = saved, 0

    def query(self, sql, params, labels=None):
        with self._lock:
            self.queries += 1
        started = time.perf_counter()
        key = (sql, tuple(sorted((k, repr(v)) for k, v in params.items())))
        rows = self._memo.get(key) if self.remote else None
        if rows is None:
            rows = self.inner.query(sql, params, labels=labels)
            self._memo[key] = rows
        time.sleep(max(0.0, self.delay - (time.perf_counter() - started)))
        return rows

    def close(self) -> None:
        pass


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f} ms"


def burst(send: Callable[[int], tuple[Any, str]], n: int = 50) -> tuple[list[float], list[str]]:
    """`n` requests released at once from `n` threads, `send(i)` sending the i-th and
    returning (HTTP response, response URL): each one's ack time (until its HTTP response,
    which is what Slack waits for) and the response URLs, in completion order."""
    acks: list[float] = []
    urls: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        barrier.wait()
        started = time.perf_counter()
        response, url = send(i)
        elapsed = time.perf_counter() - started
        assert response.status == 200, response.text
        with lock:
            acks.append(elapsed)
            urls.append(url)

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(one, range(n)))
    return acks, urls


def slash_metric(bot) -> Callable[[int], tuple[Any, str]]:
    """The i-th of a burst: `/metric` of PAIRS[i % 10] from its own user, signed."""
    return lambda i: bot.slash("/metric", PAIRS[i % len(PAIRS)], user=f"U{i:04d}")


def bench_acks(data_dir: Path, settings: Settings, warehouse, now) -> None:
    from sandbox.harness import BotHarness

    slow = SlowWarehouse(warehouse, delay=2.0, remote=True)
    slow.prime(settings, now, PAIRS)
    with BotHarness(data_dir=data_dir, warehouse=slow, now=now) as bot:
        bot.slash("/metric", "help")  # warm up the HTTP path once
        bot.wait_idle()
        started = time.perf_counter()
        acks, urls = burst(slash_metric(bot))
        bot.wait_idle(timeout=120)
        answered = time.perf_counter() - started
        notes = sum(
            1
            for url in urls
            for r in bot.slack.responses(url)
            if "Still working" in (r.payload.get("text") or "")
        )
    print("1. ack latency, 50 concurrent /metric (10 distinct lookups), every query 2 s")
    print(f"   p50 {ms(pct(acks, 50))}   p99 {ms(pct(acks, 99))}   max {ms(max(acks))}")
    print(f"   acks over 3 s: {sum(a > 3 for a in acks)}   (target p99 < 100 ms, none over 3 s)")
    print(
        f"   all 50 answered after {answered:.1f} s; {slow.queries} queries; "
        f"{notes} 'still working' notes"
    )


def bench_cached_end_to_end(data_dir: Path, warehouse, now) -> None:
    from sandbox.harness import BotHarness

    with BotHarness(data_dir=data_dir, warehouse=warehouse, now=now) as bot:
        _, url = bot.slash("/metric", "dau 7d")
        bot.wait_idle()
        timings = []
        for _ in range(30):
            started = time.perf_counter()
            _, url = bot.slash("/metric", "dau 7d")
            _wait_response(bot, url)
            timings.append(time.perf_counter() - started)
    print("2. end-to-end cached lookup (signed request -> answer at response URL)")
    print(
        f"   p50 {ms(statistics.median(timings))}   p99 {ms(pct(timings, 99))}   (target < 50 ms)"
    )


def _wait_response(bot, url: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not bot.slack.responses(url):
        if time.monotonic() > deadline:
            raise TimeoutError(url)
        time.sleep(0.0005)


def bench_uncached(settings: Settings, warehouse, now) -> None:
    catalog = load_catalog()
    print(
        "3. uncached lookup on the embedded demo warehouse, default period, median of 3 "
        "(empty lookup cache each time; target < 500 ms)"
    )
    medians = []
    for metric in catalog.metrics:
        runs = []
        for _ in range(3):
            service = MetricService(catalog, warehouse, settings, now)
            query = service.parse(metric.name)
            started = time.perf_counter()
            service.answer(query)
            runs.append(time.perf_counter() - started)
        medians.append(statistics.median(runs))
        print(
            f"   {metric.name:<26} {metric.default_period:<11} {ms(medians[-1]):>10}"
            f"   (runs {', '.join(ms(r) for r in runs)})"
        )
    print(f"   median {ms(statistics.median(medians))}   max {ms(max(medians))}")


def bench_query_count(settings: Settings, warehouse, now) -> None:
    counting = SlowWarehouse(warehouse, delay=0.2)
    service = MetricService(load_catalog(), counting, settings, now)
    texts = [PAIRS[i % len(PAIRS)] for i in range(100)]
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda t: service.answer(service.parse(t)), texts))
    print("4. warehouse queries for 100 concurrent lookups of 10 distinct metric/period pairs")
    print(f"   {counting.queries} queries (target 10)")


def main() -> int:
    now_value = dt.datetime.now(dt.UTC)

    def now() -> dt.datetime:
        return now_value

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(".databot"))
        warehouse = make_warehouse(settings)
        try:
            print(f"databot /metric benchmark ({sys.platform}, Python {sys.version.split()[0]})")
            bench_acks(Path(tmp) / "a", settings, warehouse, now)
            bench_cached_end_to_end(Path(tmp) / "b", warehouse, now)
            bench_uncached(settings, warehouse, now)
            bench_query_count(settings, warehouse, now)
        finally:
            warehouse.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
