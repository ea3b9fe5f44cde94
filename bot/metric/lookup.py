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

from bot.errors import InputError, WarehouseError, WarehouseTimeout
from bot.metric.catalog import Catalog, Dimension, Metric, ValueField, load_catalog
from bot.metric.model import (
    AccountRequest,
    Answer,
    HelpRequest,
    MetricQuery,
    NoData,
    Row,
    UnknownAccount,
    format_through,
    no_data_message,
    parse_command,
)
from bot.metric.periods import Period, day_start_utc, parse_period
from bot.settings import REPORTING_TZ, Settings
from bot.slack_text import escape_mrkdwn

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


# --------------------------------------------------------------------------- service


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

    def today(self) -> dt.date:
        return self.now().astimezone(REPORTING_TZ).date()

    def parse(self, text: str | None) -> MetricQuery | HelpRequest | AccountRequest:
        return parse_command(text, self.catalog, self.today())

    # -- accounts ----------------------------------------------------------------

    def accounts_known(self) -> bool:
        """The account names are cached (matching a name needs no warehouse query)."""
        with self._lock:
            return bool(self._accounts and self._accounts[0] > self.clock())

    def match_account(self, name: str) -> str | None:
        """Typed name -> the account's name as stored, when it names exactly one account
        (case-insensitive; a unique prefix is enough); None otherwise."""
        names = self._account_names()
        key = " ".join(name.casefold().split())
        exact = [n for n in names if n.casefold() == key]
        if exact:
            return exact[0]
        prefix = [n for n in names if n.casefold().startswith(key)]
        if len(prefix) == 1:
            return prefix[0]
        return None

    def resolve_account(self, name: str) -> str:
        """Typed name -> the account's name as stored (case-insensitive; a unique prefix
        is enough). UnknownAccount with close names otherwise."""
        found = self.match_account(name)
        if found is not None:
            return found
        names = self._account_names()
        key = " ".join(name.casefold().split())
        prefix = [n for n in names if n.casefold().startswith(key)]
        by_key = {n.casefold(): n for n in names}
        close = difflib.get_close_matches(key, list(by_key), n=3, cutoff=0.5)
        suggestions = [by_key[c] for c in close] or prefix[:3]
        raise UnknownAccount(name, suggestions)

    def _account_names(self) -> list[str]:
        with self._lock:
            if self._accounts and self._accounts[0] > self.clock():
                return self._accounts[1]
        rows = self._run(
            "SELECT DISTINCT account_name FROM salesforce_data.accounts "
            "WHERE account_name IS NOT NULL",
            {},
        )
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
            return self._answer(query, account)
        finally:
            timer.finish()

    def _answer(self, query: MetricQuery, account: str | None) -> Answer:
        metric, by = query.metric, query.by
        try:
            answer = self._cached(metric, query.period, account, by)
        except NoData as exc:
            # The default period's day has no data yet at all: answer the last complete day.
            shifted = self._shifted_default(query, exc.data_end)
            if shifted is None:
                raise
            answer = replace(self._cached(metric, shifted, account, by), shifted_from=query.period)
        else:
            if query.defaulted and not answer.complete and not answer.asked.partial:
                shifted = self._shifted_default(query, answer.data_through)
                if shifted is not None:
                    try:
                        earlier = self._cached(metric, shifted, account, by)
                    except NoData:
                        pass  # keep the incomplete answer and its warning
                    else:
                        answer = replace(earlier, shifted_from=answer.period)
        return replace(answer, defaulted=query.defaulted, by=by)

    def _shifted_default(
        self, query: MetricQuery, data_through: dt.datetime | None
    ) -> Period | None:
        """The metric's default period as of the last complete day, when the default's own
        last day is not complete yet; None when it is (or nothing is known)."""
        if not query.defaulted or data_through is None or query.period.partial:
            return None
        last_complete = data_through.astimezone(REPORTING_TZ).date() - dt.timedelta(days=1)
        if last_complete >= query.period.end:
            return None
        try:
            shifted = parse_period(
                query.metric.default_period, last_complete + dt.timedelta(days=1)
            )
        except InputError:
            return None
        return shifted if shifted.end < query.period.end else None

    def data_end(self, metric: Metric) -> dt.datetime | None:
        """How far the metric's source really goes (its freshness query near today), for
        a "no data" answer about an older period."""
        source = self.catalog.sources[metric.source]
        today = self.today()
        start_ts = day_start_utc(today, REPORTING_TZ)
        end_ts = day_start_utc(today + dt.timedelta(days=1), REPORTING_TZ)
        sql = source.data_through_sql.strip().rstrip(";")
        params = {"start_ts": start_ts, "end_ts": end_ts, "start_date": today, "end_date": today}
        used = set(_PARAM.findall(sql))
        rows = self._run(sql, {k: v for k, v in params.items() if k in used}, metric=metric.name)
        return _latest(r.get("data_through") for r in rows)

    def _cached(
        self, metric: Metric, asked: Period, account: str | None, by: Dimension | None = None
    ) -> Answer:
        key = (metric.name, asked.key(), asked.partial, account, by)
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
            answer = self._compute(metric, asked, account, by)
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

    def _compute(
        self, metric: Metric, asked: Period, account: str | None, by: Dimension | None = None
    ) -> Answer:
        period = asked if asked.days >= metric.min_days else asked.ending_window(metric.min_days)
        previous = compared_period(metric, period)
        if metric.shape == "buckets":
            buckets = max(2, min(TREND_BUCKETS, MAX_SCAN_DAYS // period.days))
            scan = Period(period.end - dt.timedelta(days=buckets * period.days - 1), period.end)
        else:
            trend_days = max(period.days, MIN_DAILY_TREND)
            scan = Period(
                min(previous.start, period.end - dt.timedelta(days=trend_days - 1)), period.end
            )
        sql, params = self.build_query(metric, scan, period.days, account, by)
        try:
            rows = self._run(sql, params, metric=metric.name)
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
        shaped = metric.model_copy(update={"dimension": "dimension"}) if by else metric
        try:
            answer = summarise(
                shaped, asked, period, scan, account, rows, self.settings, now=self.now()
            )
        except NoData:
            # The freshness query looks near the period's end only: for an older period
            # ask the source how far it really goes.
            data_end = self.data_end(metric)
            raise NoData(
                no_data_message(metric, period, account, data_end, self.settings),
                data_end=data_end,
            ) from None
        return replace(answer, metric=metric, by=by)

    def build_query(
        self,
        metric: Metric,
        scan: Period,
        bucket_days: int,
        account: str | None,
        by: Dimension | None = None,
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
            "by": by.value if by else "",
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
    previous = compared_period(metric, period)
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
        span = dt.timedelta(days=period.days)
        trend_periods = [
            Period(period.start - b * span, period.end - b * span) for b in range(n - 1, -1, -1)
        ]
    else:
        trend, trend_label, trend_periods = _daily_trend(series, head, period, metric.rollup)
    # One day: also the same weekday a week earlier (bucket 7 of one-day buckets).
    week = period.week_before()
    week_ago = total(head, week, 7) if week is not None and scan.start <= week.start else None

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
        trend_periods=trend_periods,
        week_ago=week_ago,
    )


def compared_period(metric: Metric, period: Period) -> Period:
    """What a change is measured against. Daily metrics roll days up, so a calendar month
    compares with the calendar month before; bucket metrics (distinct counts) can only
    compare with the equal-length bucket before."""
    return period.compared_with() if metric.shape == "daily" else period.previous()


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
) -> tuple[list[float | None], str, list[Period]]:
    if period.days <= 31:
        days = max(period.days, MIN_DAILY_TREND)
        start = period.end - dt.timedelta(days=days - 1)
        chunk, label = 1, f"daily, last {days} days"
    else:
        chunk = 7 if period.days <= 31 * 7 else 30
        start = period.start
        label = f"{'weekly' if chunk == 7 else '30-day'} over the period"
    points: list[float | None] = []
    spans: list[Period] = []
    day = start
    while day <= period.end:
        end = min(day + dt.timedelta(days=chunk - 1), period.end)
        p = Period(day, end)
        found = [_rollup(rows, f, p, how) for rows in series.values()]
        vals = [v for v in found if v is not None]
        points.append(sum(vals) if vals else None)
        spans.append(p)
        day = end + dt.timedelta(days=1)
    return points, label, spans


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
