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
import functools
import hashlib
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bot import tables
from bot.errors import InputError, WarehouseError, WarehouseTimeout, WarehouseTooCostly
from bot.metric.catalog import (
    Catalog,
    Dimension,
    Metric,
    Sensitivity,
    ValueField,
    load_catalog,
)
from bot.metric.model import (
    AccountRequest,
    Answer,
    HelpRequest,
    MetricQuery,
    NoData,
    Row,
    UnknownAccount,
    format_through,
    may_see,
    no_data_message,
    parse_command,
)
from bot.metric.periods import Period, day_start_utc, parse_period
from bot.metric.rollups import Coverage, coverage_params, rewrite
from bot.settings import REPORTING_TZ, Settings, utc_now
from bot.slack_channels import is_listed, listed_as_given
from bot.slack_text import escape_mrkdwn
from bot.timers import Timer, shared_timers
from bot.warehouse import format_bytes, prepare_duckdb

if TYPE_CHECKING:
    from bot.deps import Deps
    from bot.store import Store

logger = logging.getLogger(__name__)
T = TypeVar("T")

MAX_CACHED = 500  # results kept in memory without a state database (each a few KB)
LEASE_MARGIN_SECONDS = 30.0  # a claim outlives the query time limit by this much
POLL_SECONDS = 0.1  # how often a waiting replica looks for another's result
FAILED_TTL_SECONDS = 30.0  # a failed query's message is shared this long, not re-run
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


class MetricService:
    """Thread-safe; one per process (kept by `deps.service`)."""

    def __init__(
        self,
        catalog: Catalog,
        warehouse: Any,
        settings: Settings,
        now: Callable[[], dt.datetime],
        clock: Callable[[], float] = time.monotonic,
        *,
        store: Store | None = None,
        executor: Executor | None = None,
        on_cache: Callable[[str], None] | None = None,
    ) -> None:
        """`store`: share results (and single flight) with every replica on that state
        database; without one they are kept in this process. `executor` runs a query this
        process takes over from a replica that died mid-query. `on_cache(result)` counts
        "hit" / "shared" / "miss" (telemetry)."""
        self.catalog = catalog
        self.warehouse = warehouse
        self.settings = settings
        self.now = now
        self.clock = clock
        self.queries_issued = 0
        self._lock = threading.Lock()
        self._accounts: tuple[float, list[str]] | None = None
        results: Results = StoreResults(store) if store is not None else MemoryResults(clock)
        self._flights = Flights(
            results,
            lease_s=settings.query_timeout_seconds + LEASE_MARGIN_SECONDS,
            executor=executor,
        )
        self._on_cache = on_cache
        dataset = settings.rollup_dataset
        self.rollups = Coverage(warehouse, dataset) if dataset else None
        self._rolled: dict[str, str] = {}
        if not settings.gcp_project:
            # The embedded warehouse: translate every catalog query once, now.
            prepare_duckdb(self.catalog_queries())
        shared_timers()  # started now, not in the first lookup's ack
        # Parsing is on the ack path, and a burst asks the same few things: what the
        # catalog and today make of a text is kept (results are frozen; mistakes raise
        # and are not kept).
        self._parse = functools.lru_cache(maxsize=1024)(
            lambda text, today: parse_command(text, self.catalog, today)
        )

    def today(self) -> dt.date:
        return self.now().astimezone(REPORTING_TZ).date()

    def parse(self, text: str | None) -> MetricQuery | HelpRequest | AccountRequest:
        return self._parse(text, self.today())

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
            return self.answer_async(query).result()
        finally:
            timer.finish()

    def answer_async(self, query: MetricQuery) -> Future[Answer]:
        """The answer for `query` as a future. The first asker of a query runs it in its own
        thread (the future is done when this returns); an identical lookup already in
        flight, here or on another replica, is joined without holding a thread: its future
        completes when that query does. A default period whose last day is not complete
        yet answers the last complete day instead (and says so). A distinct count over a
        calendar month is compared with the calendar month before (its own lookup: distinct
        users cannot be summed from days)."""
        account = self.resolve_account(query.account) if query.account else None
        metric, by = query.metric, query.by
        result: Future[Answer] = Future()
        result.set_running_or_notify_cancel()
        # A calendar month asked for by name is known to need the month before: that
        # lookup runs beside the first one, not after it (a default period may still move
        # to the last complete one, so its comparison waits for the first answer).
        ahead: dict[Period, Future[Answer]] = {}
        if metric.shape == "buckets" and not query.defaulted and query.period.end < self.today():
            # The period as queried (a minimum window may widen it: February's MAU reads
            # the 30 days to Feb 28, compared within its own query).
            planned = self.plan(metric, query.period, account, by).period
            month_before = planned.compared_with()
            if month_before != planned.previous():
                ahead[month_before] = self._lookup_beside(metric, month_before, account, by)

        def settle(answer: Answer) -> None:
            answer = replace(answer, defaulted=query.defaulted, by=by)
            month_before = answer.period.compared_with()
            if metric.shape != "buckets" or month_before == answer.previous_period:
                result.set_result(answer)
                return
            then(
                ahead.get(month_before) or self._lookup(metric, month_before, account, by),
                lambda before: result.set_result(compared_with(answer, before, month_before)),
                lambda _exc: result.set_result(compared_with(answer, None, month_before)),
            )

        def then(future: Future[Answer], use: Callable[[Answer], None], on_no_data) -> None:
            def done(f: Future[Answer]) -> None:
                try:
                    found = f.result()
                except NoData as exc:
                    on_no_data(exc)
                    return
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                    result.set_exception(exc)
                    return
                use(found)

            future.add_done_callback(done)

        def first(answer: Answer) -> None:
            if query.defaulted and not answer.complete and not answer.asked.partial:
                shifted = self._shifted_default(query, answer.data_through)
                if shifted is not None:
                    # An earlier complete period, else the incomplete answer with its warning.
                    then(
                        self._lookup(metric, shifted, account, by),
                        lambda earlier: settle(replace(earlier, shifted_from=answer.period)),
                        lambda _exc: settle(answer),
                    )
                    return
            settle(answer)

        def first_no_data(exc: NoData) -> None:
            # The default period's day has no data yet at all: answer the last complete day.
            shifted = self._shifted_default(query, exc.data_end)
            if shifted is None:
                result.set_exception(exc)
                return
            then(
                self._lookup(metric, shifted, account, by),
                lambda earlier: settle(replace(earlier, shifted_from=query.period)),
                result.set_exception,
            )

        then(self._lookup(metric, query.period, account, by), first, first_no_data)
        return result

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

    def _lookup(
        self, metric: Metric, asked: Period, account: str | None, by: Dimension | None
    ) -> Future[Answer]:
        """One lookup's answer as a future, through the shared results and single flight."""
        plan = self.plan(metric, asked, account, by)
        ttl = 60 * (metric.cache_minutes or self.settings.metric_cache_minutes)
        key = cache_key(plan.sql, plan.params)
        answer: Future[Answer] = Future()
        answer.set_running_or_notify_cancel()
        shaped = metric.model_copy(update={"dimension": "dimension"}) if by else metric

        def done(flight: Future[Outcome]) -> None:
            try:
                outcome = flight.result()
                if self._on_cache is not None:
                    self._on_cache(outcome.source)
                try:
                    found = summarise(
                        shaped,
                        asked,
                        plan.period,
                        plan.scan,
                        account,
                        outcome.rows,
                        self.settings,
                        now=self.now(),
                    )
                except NoData:
                    # The freshness query looks near the period's end only: for an older
                    # period ask the source how far it really goes.
                    data_end = self.data_end(metric)
                    raise NoData(
                        no_data_message(metric, plan.period, account, data_end, self.settings),
                        data_end=data_end,
                    ) from None
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                answer.set_exception(exc)
                return
            answer.set_result(
                replace(found, metric=metric, by=by, from_cache=outcome.source != "miss")
            )

        self._flights.get(key, ttl, lambda: self._fetch(metric, plan)).add_done_callback(done)
        return answer

    def _lookup_beside(
        self, metric: Metric, asked: Period, account: str | None, by: Dimension | None
    ) -> Future[Answer]:
        """`_lookup` on a thread of its own: a query this process leads runs in the thread
        that asks, and this one is to run beside the caller's own. Not on the worker pool:
        callers waiting there for their answer (Share, mentions, account cards) could hold
        every worker while it queued behind them."""
        answer: Future[Answer] = Future()
        answer.set_running_or_notify_cancel()

        def start() -> None:
            try:
                _forward(self._lookup(metric, asked, account, by), answer)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                answer.set_exception(exc)

        threading.Thread(target=start, name="databot-month-before", daemon=True).start()
        return answer

    def plan(
        self, metric: Metric, asked: Period, account: str | None, by: Dimension | None = None
    ) -> Plan:
        """What a lookup of `asked` reads: the period shown (widened to min_days), the days
        scanned (this period, the previous one, the trend) and the one query."""
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
        text, coverage = self._rollup_text(metric, scan)
        sql, params = self.build_query(metric, scan, period.days, account, by, text, coverage)
        return Plan(period, scan, sql, params)

    def _rollup_text(self, metric: Metric, scan: Period) -> tuple[str | None, dict[str, Any]]:
        """The metric's SQL through its rollups when they cover part of the scan (raw rows
        for the rest), with the coverage as parameters; (None, {}) for raw rows only."""
        if self.rollups is None or not metric.rollups:
            return None, {}
        blocks = {name: self.rollups.covered(name) for name in metric.rollups}
        if not any(b and b.start <= scan.end and b.end >= scan.start for b in blocks.values()):
            return None, {}
        params: dict[str, Any] = {}
        for name, block in blocks.items():
            params.update(coverage_params(name, block))
        return self._rollup_sql(metric), params

    def _rollup_sql(self, metric: Metric) -> str:
        found = self._rolled.get(metric.name)
        if found is None:
            assert self.rollups is not None
            found = rewrite(metric.query_text(), list(metric.rollups), self.rollups.dataset)
            self._rolled[metric.name] = found
        return found

    def _fetch(self, metric: Metric, plan: Plan) -> list[dict[str, Any]]:
        """Run a lookup's one query; failures in words about this metric."""
        period, _, sql, params = plan
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
        return rows

    def catalog_queries(self) -> list[str]:
        """The text of every lookup query the catalog can send (with and without an
        account); parameters do not change it."""
        probe = Period(dt.date(2000, 1, 1), dt.date(2000, 1, 1))
        texts = {self.build_query(m, probe, 1, None)[0] for m in self.catalog.metrics}
        if self.rollups is not None:
            texts |= {
                self.build_query(m, probe, 1, None, None, self._rollup_sql(m))[0]
                for m in self.catalog.metrics
                if m.rollups
            }
        return sorted(texts | {ACCOUNTS_SQL})

    def build_query(
        self,
        metric: Metric,
        scan: Period,
        bucket_days: int,
        account: str | None,
        by: Dimension | None = None,
        text: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """The one query of a lookup and its parameters (only those the SQL mentions).
        `text`: the metric's SQL to use (its rollup form), `extra`: more parameters."""
        source = self.catalog.sources[metric.source]
        sql = (
            # Newlines around the parts: a part may end in a `--` comment.
            "SELECT m.*, f.data_through AS data_through\n"
            f"FROM (\n{source.data_through_sql.strip().rstrip(';')}\n) AS f\n"
            f"LEFT JOIN (\n{text or metric.query_text()}\n) AS m ON TRUE"
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
            **(extra or {}),
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


# --------------------------------------------------------------------------- results


Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Outcome:
    rows: Rows
    source: str  # "miss" (ran the query), "hit" (cached), "shared" (joined one in flight)


def _tag(value: Any) -> Any:
    # Warehouse values that JSON cannot carry, tagged so they come back as they went in.
    if isinstance(value, dt.datetime):
        return {"$ts": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$num": str(value)}
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    if isinstance(value, list | tuple):
        return [_tag(v) for v in value]
    return value


def _untag(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        if tag == "$ts":
            return dt.datetime.fromisoformat(text)
        if tag == "$date":
            return dt.date.fromisoformat(text)
        if tag == "$num":
            return Decimal(text)
        if tag == "$float":
            return float(text)
    if isinstance(value, list):
        return [_untag(v) for v in value]
    return value


def dump_rows(rows: Rows) -> str:
    return json.dumps([{k: _tag(v) for k, v in row.items()} for row in rows])


def load_rows(text: str) -> Rows:
    return [{k: _untag(v) for k, v in row.items()} for row in json.loads(text)]


def cache_key(sql: str, params: Mapping[str, Any]) -> str:
    """The query and its parameters (typed), hashed: the same for every replica."""
    body = json.dumps([sql, sorted((k, _tag(v)) for k, v in params.items())], default=str)
    return hashlib.sha256(body.encode()).hexdigest()


class Results(Protocol):
    """Where results live and who runs a query. `read`: ("done", rows), ("failed",
    message), ("running", None) while someone's claim holds, or None (free to claim)."""

    def read(self, key: str) -> tuple[str, Any] | None: ...
    def claim(self, key: str, lease_s: float) -> bool: ...
    def finish(self, key: str, rows: Rows, ttl_s: float) -> None: ...
    def fail(self, key: str, message: str) -> None: ...
    def release(self, key: str) -> None: ...


class MemoryResults:
    """This process only (no state database: the CLI, tests of the arithmetic)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._rows: dict[str, tuple[float, Rows]] = {}

    def read(self, key: str) -> tuple[str, Any] | None:
        with self._lock:
            found = self._rows.get(key)
        if found and found[0] > self.clock():
            return ("done", found[1])
        return None

    def claim(self, key: str, lease_s: float) -> bool:
        return True  # in one process the flight itself is the claim

    def finish(self, key: str, rows: Rows, ttl_s: float) -> None:
        with self._lock:
            now = self.clock()
            if len(self._rows) >= MAX_CACHED:
                # Expired entries first; if all are fresh, the oldest insertions.
                for stale in [k for k, (expires, _) in self._rows.items() if expires <= now]:
                    del self._rows[stale]
                while len(self._rows) >= MAX_CACHED:
                    del self._rows[next(iter(self._rows))]
            self._rows[key] = (now + ttl_s, rows)

    def fail(self, key: str, message: str) -> None:
        pass  # waiters here share the exception through the flight

    def release(self, key: str) -> None:
        pass


class StoreResults:
    """The state database (tables.lookup_cache), shared by every replica. A claim is a row
    with a lease: the primary key decides who runs a query, and a lease that runs out (a
    replica died mid-query) lets another take over."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.owner = uuid.uuid4().hex
        self._swept = 0.0

    def read(self, key: str) -> tuple[str, Any] | None:
        c = tables.lookup_cache.c
        with self.store.reading() as connection:
            row = connection.execute(
                sa.select(c.status, c.rows, c.expires_at, c.lease_until).where(c.key == key)
            ).one_or_none()
        if row is None:
            return None
        now = utc_now()
        if row.status == "running":
            return ("running", None) if row.lease_until and row.lease_until > now else None
        if row.expires_at is None or row.expires_at <= now:
            return None
        if row.status == "done":
            return ("done", load_rows(row.rows or "[]"))
        return ("failed", row.rows or "")

    def claim(self, key: str, lease_s: float) -> bool:
        c = tables.lookup_cache.c
        now = utc_now()
        lease = now + dt.timedelta(seconds=lease_s)
        claimed = {"status": "running", "rows": None, "expires_at": None}
        try:
            with self.store.engine.begin() as connection:
                connection.execute(
                    tables.lookup_cache.insert().values(
                        key=key, lease_until=lease, owner=self.owner, updated_at=now, **claimed
                    )
                )
            return True
        except IntegrityError:
            pass
        # A row exists: take it over only if it is spent (expired result, or lapsed lease).
        spent = sa.or_(
            sa.and_(c.status == "running", c.lease_until <= now),
            sa.and_(c.status != "running", c.expires_at <= now),
        )
        with self.store.engine.begin() as connection:
            taken = connection.execute(
                tables.lookup_cache.update()
                .where(c.key == key, spent)
                .values(lease_until=lease, owner=self.owner, updated_at=now, **claimed)
            ).rowcount
        return taken == 1

    def _settle(self, key: str, **values: Any) -> None:
        c = tables.lookup_cache.c
        now = utc_now()
        with self.store.engine.begin() as connection:
            connection.execute(
                tables.lookup_cache.update()
                .where(c.key == key)
                .values(lease_until=None, owner=self.owner, updated_at=now, **values)
            )
            if time.monotonic() - self._swept > 3600:
                self._swept = time.monotonic()
                connection.execute(
                    tables.lookup_cache.delete().where(
                        c.status != "running", c.expires_at < now - dt.timedelta(hours=1)
                    )
                )

    def finish(self, key: str, rows: Rows, ttl_s: float) -> None:
        expires = utc_now() + dt.timedelta(seconds=ttl_s)
        self._settle(key, status="done", rows=dump_rows(rows), expires_at=expires)

    def fail(self, key: str, message: str) -> None:
        expires = utc_now() + dt.timedelta(seconds=FAILED_TTL_SECONDS)
        self._settle(key, status="failed", rows=message, expires_at=expires)

    def release(self, key: str) -> None:
        c = tables.lookup_cache.c
        with self.store.engine.begin() as connection:
            connection.execute(
                tables.lookup_cache.delete().where(
                    c.key == key, c.owner == self.owner, c.status == "running"
                )
            )


class Flights:
    """Single flight over `Results`: one query per key at a time across every process
    sharing them. The caller that claims a key runs the query in its own thread; everyone
    else gets a future that completes with that result, holding no thread while it waits
    (one poller thread per process watches the keys other replicas are running)."""

    def __init__(self, results: Results, *, lease_s: float, executor: Executor | None) -> None:
        self.results = results
        self.lease_s = lease_s
        self.executor = executor
        self._lock = threading.Lock()
        self._inflight: dict[str, Future[Outcome]] = {}
        self._waiting: dict[str, tuple[float, Callable[[], Rows]]] = {}
        self._poller: threading.Thread | None = None

    def get(self, key: str, ttl_s: float, run: Callable[[], Rows]) -> Future[Outcome]:
        with self._lock:
            flight = self._inflight.get(key)
            if flight is not None:
                return _as_shared(flight)
            flight = self._inflight[key] = Future()
            flight.set_running_or_notify_cancel()
        try:
            state = self.results.read(key)
            if state is not None and state[0] == "done":
                self._resolve(key, Outcome(state[1], "hit"))
            elif state is not None and state[0] == "failed":
                self._resolve(key, WarehouseError(state[1]))
            elif state is None and self.results.claim(key, self.lease_s):
                self._lead(key, ttl_s, run)
            else:
                self._wait(key, ttl_s, run)
        except Exception as exc:  # noqa: BLE001 - the state database failed: tell the waiters
            self._resolve(key, exc)
        return flight

    def _lead(self, key: str, ttl_s: float, run: Callable[[], Rows]) -> None:
        try:
            rows = run()
        except WarehouseError as exc:
            self._quietly(self.results.fail, key, exc.user_message)
            self._resolve(key, exc)
            return
        except BaseException as exc:
            self._quietly(self.results.release, key)
            self._resolve(key, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._quietly(self.results.finish, key, rows, ttl_s)
        self._resolve(key, Outcome(rows, "miss"))

    @staticmethod
    def _quietly(call: Callable[..., None], *args: Any) -> None:
        try:
            call(*args)
        except Exception:
            # The answer still goes to everyone waiting here; others find no row and retry.
            logger.exception("could not record a lookup result in the state database")

    def _resolve(self, key: str, outcome: Outcome | BaseException) -> None:
        # Out of the flight table first: a later lookup reads the stored result instead.
        with self._lock:
            flight = self._inflight.pop(key, None)
            self._waiting.pop(key, None)
        if flight is None:
            return
        if isinstance(outcome, BaseException):
            flight.set_exception(outcome)
        else:
            flight.set_result(outcome)

    def _wait(self, key: str, ttl_s: float, run: Callable[[], Rows]) -> None:
        with self._lock:
            self._waiting[key] = (ttl_s, run)
            if self._poller is None:
                self._poller = threading.Thread(
                    target=self._poll, name="databot-lookup-poller", daemon=True
                )
                self._poller.start()

    def _poll(self) -> None:
        while True:
            with self._lock:
                waiting = list(self._waiting.items())
                if not waiting:
                    self._poller = None
                    return
            for key, (ttl_s, run) in waiting:
                try:
                    state = self.results.read(key)
                    if state is None:
                        # The replica running it gave up or died: take it over.
                        if self.results.claim(key, self.lease_s):
                            with self._lock:
                                self._waiting.pop(key, None)
                            self._take_over(key, ttl_s, run)
                    elif state[0] == "done":
                        self._resolve(key, Outcome(state[1], "shared"))
                    elif state[0] == "failed":
                        self._resolve(key, WarehouseError(state[1]))
                except Exception as exc:  # noqa: BLE001 - handed to the waiters
                    self._resolve(key, exc)
            time.sleep(POLL_SECONDS)

    def _take_over(self, key: str, ttl_s: float, run: Callable[[], Rows]) -> None:
        if self.executor is not None:
            try:
                self.executor.submit(self._lead, key, ttl_s, run)
                return
            except RuntimeError:  # shutting down
                pass
        threading.Thread(target=self._lead, args=(key, ttl_s, run), daemon=True).start()


def _forward(source: Future[T], target: Future[T], change: Callable[[T], T] = lambda v: v) -> None:
    """When `source` completes, complete `target` alike (its result through `change`)."""

    def copy(done: Future[T]) -> None:
        error = done.exception()
        if error is not None:
            target.set_exception(error)
        else:
            target.set_result(change(done.result()))

    source.add_done_callback(copy)


def _as_shared(flight: Future[Outcome]) -> Future[Outcome]:
    """The same result, counted as shared (the caller joined a query in flight)."""
    shared: Future[Outcome] = Future()
    shared.set_running_or_notify_cancel()
    _forward(flight, shared, lambda outcome: replace(outcome, source="shared"))
    return shared


class StillWorking:
    """Calls `callback` once after `seconds` unless finished first; the answer is never
    overtaken by a late "still working" note (both sides hold the lock). Start it at the
    ack, so time spent queued for a worker thread counts too. The wait holds no thread
    (bot.timers)."""

    def __init__(self, seconds: float, callback: Callable[[], None] | None) -> None:
        self._lock = threading.Lock()
        self._done = False
        self._timer: Timer | None = None
        if callback is not None:
            self._timer = shared_timers().after(seconds, lambda: self._fire(callback))

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


def compared_with(answer: Answer, before: Answer | None, period: Period) -> Answer:
    """`answer` measured against `before`, the answer for `period` (None: no data then)."""
    values = [
        (f, value, before.values[i][1] if before else None)
        for i, (f, value, _) in enumerate(answer.values)
    ]
    earlier = {r.label: r.value for r in before.breakdown} if before else {}
    rows = [Row(r.label, r.value, earlier.get(r.label)) for r in answer.breakdown]
    return replace(answer, values=values, breakdown=rows, previous_period=period)


def compared_period(metric: Metric, period: Period) -> Period:
    """What a change is measured against. Daily metrics roll days up, so a calendar month
    compares with the calendar month before; bucket metrics (distinct counts) read the
    equal-length bucket before from the same query (`answer_async` then replaces a
    calendar month's with the month before, from a lookup of its own)."""
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
        lambda: MetricService(
            load_catalog(),
            deps.warehouse,
            deps.settings,
            deps.now,
            store=deps.store,
            executor=deps.work,
            on_cache=lambda result: deps.telemetry.lookup_cache.labels(result).inc(),
        ),
    )


def may_see_known(
    deps: Deps, metric: Metric, *, user: str | None, channel: str | None
) -> bool | None:
    """`may_see_in` from the settings alone, for the ack path; None when it needs a
    REVENUE_CHANNELS `#name` resolved (a Slack call, the state database)."""
    if may_see(metric, deps.settings, user=user, channel=channel):
        return True
    return listed_as_given(channel, deps.settings.revenue_channels)


def may_see_in(deps: Deps, metric: Metric, *, user: str | None, channel: str | None) -> bool:
    """`may_see` with REVENUE_CHANNELS' `#names` resolved to channel IDs (cached): what
    every /metric surface and subscriptions check. `user=None`: everyone in `channel` sees
    it. Slack errors in resolving a name propagate (retry), never a silent yes."""
    if may_see(metric, deps.settings, user=user, channel=channel):
        return True
    if metric.sensitivity is Sensitivity.PUBLIC:  # pragma: no cover - may_see said yes
        return True
    return is_listed(deps, channel, deps.settings.revenue_channels)
