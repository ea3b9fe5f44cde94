"""The `/metric` lookup service: one warehouse query per lookup, a cache per metric
freshness window, single flight for identical concurrent lookups, and a "still working"
callback for slow ones.

One lookup = one query: the metric's SQL (see bot/metric/catalog.py for its contract) joined
with its source's `data_through_sql`, scanning this period, the previous equal one and the
trend in a single pass.
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.errors import WarehouseError, WarehouseTimeout, WarehouseTooCostly
from bot.metric.catalog import Catalog, Metric, ValueField, load_catalog
from bot.metric.model import (
    Answer,
    HelpRequest,
    MetricQuery,
    NoData,
    Row,
    UnknownAccount,
    format_through,
    parse_command,
)
from bot.metric.periods import Period
from bot.settings import REPORTING_TZ, Settings
from bot.slack_text import escape_mrkdwn
from bot.warehouse import format_bytes, prepare_duckdb

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

MAX_CACHED = 500  # answers kept in memory (each is a few KB)
# Buckets metrics scan N periods for the trend (distinct counts cannot be summed from
# days); keep N * days within this, so a month's MAU scans three months (cost and the
# 500 ms lookup budget on the demo warehouse), a week's WAU twelve weeks.
MAX_SCAN_DAYS = 100
TREND_BUCKETS = 12
MIN_DAILY_TREND = 14
_PARAM = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")
ACCOUNTS_SQL = (
    "SELECT DISTINCT account_name FROM salesforce_data.accounts WHERE account_name IS NOT NULL"
)


# --------------------------------------------------------------------------- service


@dataclass(frozen=True)
class Plan:
    period: Period
    scan: Period
    sql: str
    params: dict[str, Any]

    def __iter__(self):  # period, scan, sql, params = plan
        return iter((self.period, self.scan, self.sql, self.params))


@dataclass
class _Entry:
    expires: float
    answer: Answer


class MetricService:
    """Thread-safe; one per process (kept by `deps.service`)."""

    def __init__(
        self,
        catalog: Catalog,
        warehouse: Any,
        settings: Settings,
        now: Callable[[], dt.datetime],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.warehouse = warehouse
        self.settings = settings
        self.now = now
        self.clock = clock
        self.queries_issued = 0
        self._lock = threading.Lock()
        self._cache: dict[tuple, _Entry] = {}
        self._inflight: dict[tuple, Future[Answer]] = {}
        self._accounts: tuple[float, list[str]] | None = None
        if not settings.gcp_project:
            # The embedded warehouse: translate every catalog query once, now.
            prepare_duckdb(self.catalog_queries())

    def today(self) -> dt.date:
        return self.now().astimezone(REPORTING_TZ).date()

    def parse(self, text: str | None) -> MetricQuery | HelpRequest:
        return parse_command(text, self.catalog, self.today())

    # -- accounts ----------------------------------------------------------------

    def resolve_account(self, name: str) -> str:
        """Typed name -> the account's name as stored (case-insensitive; a unique prefix
        is enough). UnknownAccount with close names otherwise."""
        names = self._account_names()
        key = name.casefold()
        exact = [n for n in names if n.casefold() == key]
        if exact:
            return exact[0]
        prefix = [n for n in names if n.casefold().startswith(key)]
        if len(prefix) == 1:
            return prefix[0]
        by_key = {n.casefold(): n for n in names}
        close = difflib.get_close_matches(key, list(by_key), n=3, cutoff=0.5)
        suggestions = [by_key[c] for c in close] or prefix[:3]
        raise UnknownAccount(name, suggestions)

    def _account_names(self) -> list[str]:
        with self._lock:
            if self._accounts and self._accounts[0] > self.clock():
                return self._accounts[1]
        rows = self._run(ACCOUNTS_SQL, {})
        names = sorted({str(r["account_name"]) for r in rows})
        with self._lock:
            self._accounts = (self.clock() + 3600, names)
        return names

    # -- lookups -----------------------------------------------------------------

    def answer(
        self,
        query: MetricQuery,
        *,
        on_slow: Callable[[], None] | None = None,
    ) -> Answer:
        """The answer for `query` (sensitivity is the caller's check: it knows who asks
        where). Calls `on_slow()` once if the answer takes longer than
        settings.metric_still_working_seconds."""
        timer = StillWorking(self.settings.metric_still_working_seconds, on_slow)
        try:
            account = self.resolve_account(query.account) if query.account else None
            return self._cached(query.metric, query.period, account)
        finally:
            timer.finish()

    def _cached(self, metric: Metric, asked: Period, account: str | None) -> Answer:
        key = (metric.name, asked.key(), asked.partial, account)
        with self._lock:
            entry = self._cache.get(key)
            if entry and entry.expires > self.clock():
                return replace(entry.answer, from_cache=True)
            flight = self._inflight.get(key)
            leader = flight is None
            if flight is None:
                flight = self._inflight[key] = Future()
        if not leader:
            # Someone is already running this exact query: wait for theirs.
            return replace(flight.result(), from_cache=True)
        try:
            answer = self._compute(metric, asked, account)
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(answer)
            ttl = 60 * (metric.cache_minutes or self.settings.metric_cache_minutes)
            with self._lock:
                now = self.clock()
                if len(self._cache) >= MAX_CACHED:
                    # Expired entries first; if all are fresh, the oldest insertions.
                    for stale in [k for k, e in self._cache.items() if e.expires <= now]:
                        del self._cache[stale]
                    while len(self._cache) >= MAX_CACHED:
                        del self._cache[next(iter(self._cache))]
                self._cache[key] = _Entry(now + ttl, answer)
            return answer
        finally:
            with self._lock:
                self._inflight.pop(key, None)

    def plan(self, metric: Metric, asked: Period, account: str | None) -> Plan:
        """What a lookup of `asked` reads: the period shown (widened to min_days), the days
        scanned (this period, the previous one, the trend) and the one query."""
        period = asked if asked.days >= metric.min_days else asked.ending_window(metric.min_days)
        previous = period.previous()
        if metric.shape == "buckets":
            buckets = max(2, min(TREND_BUCKETS, MAX_SCAN_DAYS // period.days))
            scan = Period(period.end - dt.timedelta(days=buckets * period.days - 1), period.end)
        else:
            trend_days = max(period.days, MIN_DAILY_TREND)
            scan = Period(
                min(previous.start, period.end - dt.timedelta(days=trend_days - 1)), period.end
            )
        sql, params = self.build_query(metric, scan, period.days, account)
        return Plan(period, scan, sql, params)

    def _compute(self, metric: Metric, asked: Period, account: str | None) -> Answer:
        period, scan, sql, params = self.plan(metric, asked, account)
        try:
            rows = self._run(sql, params, metric=metric.name)
        except WarehouseTooCostly as exc:
            # Priced by a dry run and not sent: a plain answer, not an error.
            raise WarehouseTooCostly(
                f"The {metric.title} lookup for {period.label()} would scan "
                f"{format_bytes(exc.estimated)}, more than the {format_bytes(exc.cap)} one "
                f"lookup may scan, so I did not run it (nothing was billed). Try a shorter "
                f"period, or open the dashboard: {metric.dashboard}",
                estimated=exc.estimated,
                cap=exc.cap,
            ) from exc
        except WarehouseTimeout as exc:
            raise WarehouseTimeout(
                f"The {metric.title} lookup took longer than "
                f"{self.settings.query_timeout_seconds:g} s and was cancelled, so it ran (and "
                f"was billed) once; I did not retry it. Try again in a few minutes, or open "
                f"the dashboard: {metric.dashboard}",
                detail=str(exc),
            ) from exc
        except WarehouseError as exc:
            raise WarehouseError(
                f"The warehouse could not answer the {metric.title} lookup "
                f"({exc.user_message}). It was not retried, so nothing was billed twice. "
                f"The dashboard may help meanwhile: {metric.dashboard}",
                detail=str(exc),
            ) from exc
        return summarise(metric, asked, period, scan, account, rows, self.settings, now=self.now())

    def catalog_queries(self) -> list[str]:
        """The text of every lookup query the catalog can send (with and without an
        account); parameters do not change it."""
        probe = Period(dt.date(2000, 1, 1), dt.date(2000, 1, 1))
        texts = {self.build_query(m, probe, 1, None)[0] for m in self.catalog.metrics}
        return sorted(texts | {ACCOUNTS_SQL})

    def build_query(
        self, metric: Metric, scan: Period, bucket_days: int, account: str | None
    ) -> tuple[str, dict[str, Any]]:
        """The one query of a lookup and its parameters (only those the SQL mentions)."""
        source = self.catalog.sources[metric.source]
        sql = (
            # Newlines around the parts: a part may end in a `--` comment.
            "SELECT m.*, f.data_through AS data_through\n"
            f"FROM (\n{source.data_through_sql.strip().rstrip(';')}\n) AS f\n"
            f"LEFT JOIN (\n{metric.query_text()}\n) AS m ON TRUE"
        )
        start_ts, end_ts = scan.utc_bounds(REPORTING_TZ)
        available: dict[str, Any] = {
            "start_date": scan.start,
            "end_date": scan.end,
            "start_ts": start_ts,
            "end_ts": end_ts,
            "bucket_days": bucket_days,
            "account": account or "",
            # One price for every Cody Pro number, /metric and the daily post alike.
            "price_usd": self.settings.cody_price_usd,
            **metric.params,
        }
        used = set(_PARAM.findall(sql))
        return sql, {k: v for k, v in available.items() if k in used}

    def _run(self, sql: str, params: Mapping[str, Any], *, metric: str = "accounts") -> list[dict]:
        with self._lock:
            self.queries_issued += 1
        started = time.perf_counter()
        # BigQuery job labels let the team see what /metric costs, per metric.
        rows = self.warehouse.query(
            sql, dict(params), labels={"feature": "metric", "metric": metric[:63]}
        )
        logger.info(
            "metric query: %d rows in %.0f ms", len(rows), 1000 * (time.perf_counter() - started)
        )
        return rows


class StillWorking:
    """Calls `callback` once after `seconds` unless finished first; the answer is never
    overtaken by a late "still working" note (both sides hold the lock). Start it at the
    ack, so time spent queued for a worker thread counts too."""

    def __init__(self, seconds: float, callback: Callable[[], None] | None) -> None:
        self._lock = threading.Lock()
        self._done = False
        self._timer: threading.Timer | None = None
        if callback is not None:
            self._timer = threading.Timer(seconds, self._fire, args=(callback,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if self._done:
                return
            try:
                callback()
            except Exception:
                logger.exception("could not post the still-working note")

    def finish(self) -> None:
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()


# --------------------------------------------------------------------------- numbers


def summarise(
    metric: Metric,
    asked: Period,
    period: Period,
    scan: Period,
    account: str | None,
    rows: list[dict],
    settings: Settings,
    *,
    now: dt.datetime,
) -> Answer:
    """Rows of the lookup query -> the answer. Pure: tests feed it rows directly."""
    data_through = _latest(r.get("data_through") for r in rows)
    key_col = "bucket" if metric.shape == "buckets" else metric.day_column
    rows = [r for r in rows if r.get(key_col) is not None]
    previous = period.previous()
    fields = metric.all_fields

    # series[dim][key] -> row; dim None for plain metrics
    series: dict[str | None, dict[Any, dict]] = {}
    for r in rows:
        dim = str(r[metric.dimension]) if metric.dimension else None
        key = int(r[key_col]) if metric.shape == "buckets" else _as_date(r[key_col])
        series.setdefault(dim, {})[key] = r

    def value(dim_rows: dict[Any, dict], f: ValueField, p: Period, bucket: int) -> float | None:
        if metric.shape == "buckets":
            r = dim_rows.get(bucket)
            return _num(r.get(f.column)) if r else None
        return _rollup(dim_rows, f, p, metric.rollup)

    def total(f: ValueField, p: Period, bucket: int) -> float | None:
        found = [value(d, f, p, bucket) for d in series.values()]
        vals = [v for v in found if v is not None]
        return sum(vals) if vals else None

    values = [(f, total(f, period, 0), total(f, previous, 1)) for f in fields]
    if values[0][1] is None:
        where = f" for {escape_mrkdwn(account)}" if account else ""
        raise NoData(
            f"No {escape_mrkdwn(metric.title)} data{where} for {period.label()}."
            + (
                f" The data goes through {format_through(data_through, settings)}."
                if data_through
                else ""
            )
        )

    head = fields[0]
    if metric.shape == "buckets":
        n = (scan.days + period.days - 1) // period.days
        trend = [total(head, period, b) for b in range(n - 1, -1, -1)]
        trend_label = f"last {n} periods of {period.days} day{'s' if period.days > 1 else ''}"
    else:
        trend, trend_label = _daily_trend(series, head, period, metric.rollup)

    breakdown: list[Row] = []
    if metric.dimension:
        for dim, dim_rows in series.items():
            cur = value(dim_rows, head, period, 0)
            if cur is None:
                continue
            breakdown.append(Row(dim or "unknown", cur, value(dim_rows, head, previous, 1)))
        breakdown.sort(key=lambda r: (-(r.value or 0), r.label))

    _, end_ts = period.utc_bounds(REPORTING_TZ)
    complete = data_through is not None and data_through >= end_ts and not period.partial
    # Sources look for their newest row only near the period's end (to scan few
    # partitions), so for an older period data_through is a lower bound, not the latest.
    recent = now - end_ts < dt.timedelta(days=1)
    return Answer(
        metric=metric,
        asked=asked,
        period=period,
        previous_period=previous,
        account=account,
        values=values,
        trend=trend,
        trend_label=trend_label,
        breakdown=breakdown,
        data_through=data_through,
        complete=complete,
        recent=recent,
    )


def _rollup(rows: dict[Any, dict], f: ValueField, p: Period, default: str) -> float | None:
    how = f.rollup or default
    days = [p.start + dt.timedelta(days=i) for i in range(p.days)]
    present = [d for d in days if d in rows and _num(rows[d].get(f.column)) is not None]
    if not present:
        return None
    if how == "last":
        # The state on the last day with data (snapshots such as active subscribers).
        return _num(rows[present[-1]].get(f.column))
    vals = [_num(rows[d].get(f.column)) or 0.0 for d in present]
    if how == "sum":
        return float(sum(vals))
    # mean over every day of the period: a day without rows had no activity
    return float(sum(vals)) / p.days


def _daily_trend(
    series: dict[str | None, dict[Any, dict]], f: ValueField, period: Period, how: str
) -> tuple[list[float | None], str]:
    if period.days <= 31:
        days = max(period.days, MIN_DAILY_TREND)
        start = period.end - dt.timedelta(days=days - 1)
        chunk, label = 1, f"daily, last {days} days"
    else:
        chunk = 7 if period.days <= 31 * 7 else 30
        start = period.start
        label = f"{'weekly' if chunk == 7 else '30-day'} over the period"
    points: list[float | None] = []
    day = start
    while day <= period.end:
        end = min(day + dt.timedelta(days=chunk - 1), period.end)
        p = Period(day, end)
        found = [_rollup(rows, f, p, how) for rows in series.values()]
        vals = [v for v in found if v is not None]
        points.append(sum(vals) if vals else None)
        day = end + dt.timedelta(days=1)
    return points, label


def _num(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, Decimal):
        return float(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _as_date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v)[:10])


def _latest(values: Iterable[Any]) -> dt.datetime | None:
    out = None
    for v in values:
        if v is None:
            continue
        if isinstance(v, str):
            v = dt.datetime.fromisoformat(v)
        if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
            v = dt.datetime.combine(v, dt.time(0))
        if v.tzinfo is None:  # DuckDB TIMESTAMP: naive, and UTC by the warehouse contract
            v = v.replace(tzinfo=dt.UTC)
        out = v if out is None or v > out else out
    return out


def metric_service(deps: Deps) -> MetricService:
    """The process's one MetricService, built on first use (catalog validated then)."""
    return deps.service(
        MetricService,
        lambda: MetricService(load_catalog(), deps.warehouse, deps.settings, deps.now),
    )
