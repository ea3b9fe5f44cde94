"""Rollups the bot owns: small per-day aggregate tables in ROLLUP_DATASET, so a long
distinct-user lookup reads days x users instead of every raw event.

Two rollups, each one row per Pacific day and distinct key, keeping a real timestamp of
that day (the earliest event, the latest ping):
  events_daily  day x user_id x instance_id        (dotcom_events.events)
  pings_daily   day x instance_id x account_name x deployment_type x hosting_type x version
                                                   (sourcegraph_analytics.update_checks)
A metric that declares `rollups: [events_daily, ...]` (bot/metric/metrics.yml) reads its raw
table through a union: the rollup's rows for the days it covers, the raw rows for every
other day. Distinct counts by day or bucket, the account filter (instances that pinged for
an account in the window) and "the latest deployment type, hosting type or version" (the
breakdowns) depend only on those rows, so the answer equals the raw-table answer exactly
(tests/metric/test_rollups.py compares both).

Coverage is the table `<ROLLUP_DATASET>.rollup_days` (rollup, day), written after a day's
rows: a lookup uses the latest contiguous block of covered days. The `rollups` job (through
the exactly-once runner) builds every missing day up to yesterday, idempotently (a day is
deleted and rebuilt; its coverage row goes last).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from bot.errors import WarehouseError
from bot.ids import Job
from bot.metric.periods import Period
from bot.scheduling.job import Skip
from bot.settings import REPORTING_TZ

if TYPE_CHECKING:
    from bot.deps import Deps
    from bot.settings import Settings

logger = logging.getLogger(__name__)

COVERAGE_CACHE_SECONDS = 300.0
# Days the job keeps built behind yesterday: every default lookup's scan (MAX_SCAN_DAYS).
DEFAULT_BACKFILL_DAYS = 100
EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Rollup:
    name: str
    source: str  # dataset.table of the raw rows
    ts: str  # the raw table's partitioning timestamp column
    columns: tuple[str, ...]  # what the union exposes (the metrics' columns of the raw table)
    keys: tuple[str, ...]  # grouped by, besides the day
    ts_agg: str  # MIN or MAX of ts kept per row
    schema: tuple[tuple[str, str], ...]  # (column, BigQuery type) of the rollup table


ROLLUPS: dict[str, Rollup] = {
    r.name: r
    for r in (
        Rollup(
            "events_daily",
            "dotcom_events.events",
            "timestamp",
            ("timestamp", "user_id", "instance_id"),
            ("user_id", "instance_id"),
            "MIN",
            (("day", "DATE"), ("user_id", "STRING"), ("instance_id", "STRING"),
             ("timestamp", "TIMESTAMP")),
        ),
        Rollup(
            "pings_daily",
            "sourcegraph_analytics.update_checks",
            "checked_at",
            ("checked_at", "instance_id", "account_name", "deployment_type", "hosting_type",
             "version"),
            ("instance_id", "account_name", "deployment_type", "hosting_type", "version"),
            "MAX",
            (("day", "DATE"), ("instance_id", "STRING"), ("account_name", "STRING"),
             ("deployment_type", "STRING"), ("hosting_type", "STRING"), ("version", "STRING"),
             ("checked_at", "TIMESTAMP")),
        ),
    )
}  # fmt: skip


def _p(rollup: str, what: str) -> str:
    return f"{rollup}_{what}"


def rewrite(sql: str, rollups: list[str], dataset: str) -> str:
    """The metric's SQL reading each named rollup's raw table through the union (BigQuery
    SQL; the coverage arrives as parameters, so the text does not change day to day)."""
    tree = sqlglot.parse_one(sql, read="bigquery")
    wanted = {ROLLUPS[name].source: ROLLUPS[name] for name in rollups}

    def swap(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Table):
            return node
        found = wanted.get(f"{node.db}.{node.name}")
        if found is None:
            return node
        cols = ", ".join(found.columns)
        r = found.name
        union = (
            f"SELECT {cols} FROM {dataset}.{r} "
            f"WHERE day BETWEEN @{_p(r, 'from')} AND @{_p(r, 'through')} "
            f"UNION ALL SELECT {cols} FROM {found.source} "
            f"WHERE NOT ({found.ts} >= @{_p(r, 'from_ts')} AND {found.ts} < @{_p(r, 'end_ts')})"
        )
        sub = sqlglot.parse_one(union, read="bigquery")
        alias = node.alias or node.name
        return exp.Subquery(this=sub, alias=exp.TableAlias(this=exp.to_identifier(alias)))

    return tree.transform(swap).sql(dialect="bigquery")


def coverage_params(rollup: str, covered: Period | None) -> dict[str, Any]:
    if covered is None:  # nothing covered: the rollup branch is empty, the raw one whole
        start, end = dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return {
            _p(rollup, "from"): EPOCH + dt.timedelta(days=1),
            _p(rollup, "through"): EPOCH,
            _p(rollup, "from_ts"): start,
            _p(rollup, "end_ts"): end,
        }
    start, end = covered.utc_bounds(REPORTING_TZ)
    return {
        _p(rollup, "from"): covered.start,
        _p(rollup, "through"): covered.end,
        _p(rollup, "from_ts"): start,
        _p(rollup, "end_ts"): end,
    }


def _contiguous(days: set[dt.date]) -> Period | None:
    """The latest block of consecutive days."""
    if not days:
        return None
    end = max(days)
    start = end
    while start - dt.timedelta(days=1) in days:
        start -= dt.timedelta(days=1)
    return Period(start, end)


class Coverage:
    """Which days each rollup covers, read from the warehouse (cached for a few minutes)."""

    def __init__(self, warehouse: Any, dataset: str) -> None:
        self.warehouse = warehouse
        self.dataset = dataset
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, set[dt.date]]] | None = None

    def days(self, *, fresh: bool = False) -> dict[str, set[dt.date]]:
        with self._lock:
            if not fresh and self._cached and self._cached[0] > time.monotonic():
                return self._cached[1]
        found: dict[str, set[dt.date]] = {name: set() for name in ROLLUPS}
        try:
            rows = self.warehouse.query(
                f"SELECT rollup, day FROM {self.dataset}.rollup_days", {},
                labels={"feature": "metric", "metric": "rollup-coverage"},
            )  # fmt: skip
        except WarehouseError:
            rows = []  # not built yet: every lookup reads raw rows
        for row in rows:
            day = row["day"]
            if isinstance(day, dt.datetime):
                day = day.date()
            found.setdefault(str(row["rollup"]), set()).add(day)
        with self._lock:
            self._cached = (time.monotonic() + COVERAGE_CACHE_SECONDS, found)
        return found

    def covered(self, rollup: str) -> Period | None:
        return _contiguous(self.days().get(rollup, set()))

    def forget(self) -> None:
        with self._lock:
            self._cached = None


# --------------------------------------------------------------------------- building


def _create(rollup: Rollup, dataset: str) -> str:
    cols = ", ".join(f"{name} {kind}" for name, kind in rollup.schema)
    return f"CREATE TABLE IF NOT EXISTS {dataset}.{rollup.name} ({cols})"


def build_day(warehouse: Any, dataset: str, day: dt.date) -> None:
    """(Re)build every rollup for one Pacific day; its coverage row is written last, so a
    lookup never reads a half-built day."""
    start_ts, end_ts = Period(day, day).utc_bounds(REPORTING_TZ)
    labels = {"feature": "metric", "metric": "rollup-build"}
    warehouse.query(
        f"CREATE TABLE IF NOT EXISTS {dataset}.rollup_days (rollup STRING, day DATE)",
        {}, labels=labels,
    )  # fmt: skip
    for rollup in ROLLUPS.values():
        params = {"day": day, "start_ts": start_ts, "end_ts": end_ts, "rollup": rollup.name}
        warehouse.query(
            f"DELETE FROM {dataset}.rollup_days WHERE rollup = @rollup AND day = @day",
            params, labels=labels,
        )  # fmt: skip
        warehouse.query(_create(rollup, dataset), {}, labels=labels)
        warehouse.query(
            f"DELETE FROM {dataset}.{rollup.name} WHERE day = @day", params, labels=labels
        )
        keys = ", ".join(rollup.keys)
        warehouse.query(
            f"INSERT INTO {dataset}.{rollup.name} ({', '.join(n for n, _ in rollup.schema)}) "
            f"SELECT @day AS day, {keys}, {rollup.ts_agg}({rollup.ts}) AS {rollup.ts} "
            f"FROM {rollup.source} WHERE {rollup.ts} >= @start_ts AND {rollup.ts} < @end_ts "
            f"GROUP BY {keys}",
            params, labels=labels,
        )  # fmt: skip
        warehouse.query(
            f"INSERT INTO {dataset}.rollup_days (rollup, day) VALUES (@rollup, @day)",
            params, labels=labels,
        )  # fmt: skip


def build_missing(
    warehouse: Any, dataset: str, through: dt.date, *, backfill_days: int = DEFAULT_BACKFILL_DAYS
) -> list[dt.date]:
    """Build every day from `through - backfill_days + 1` to `through` some rollup lacks;
    the days built."""
    through = min(through, _last_complete_day(warehouse, through))
    coverage = Coverage(warehouse, dataset).days(fresh=True)
    built: list[dt.date] = []
    for n in range(backfill_days - 1, -1, -1):
        day = through - dt.timedelta(days=n)
        if all(day in coverage.get(name, set()) for name in ROLLUPS):
            continue
        build_day(warehouse, dataset, day)
        built.append(day)
    return built


def _last_complete_day(warehouse: Any, through: dt.date) -> dt.date:
    """The last Pacific day every raw table has data past (late rows would be missed)."""
    _, end_ts = Period(through, through).utc_bounds(REPORTING_TZ)
    latest = through
    for rollup in ROLLUPS.values():
        rows = warehouse.query(
            f"SELECT MAX({rollup.ts}) AS latest FROM {rollup.source} "
            f"WHERE {rollup.ts} >= TIMESTAMP_SUB(@end_ts, INTERVAL 3 DAY)",
            {"end_ts": end_ts}, labels={"feature": "metric", "metric": "rollup-build"},
        )  # fmt: skip
        found = rows[0]["latest"] if rows else None
        if found is None:
            return through - dt.timedelta(days=4)
        if found.tzinfo is None:
            found = found.replace(tzinfo=dt.UTC)
        day = found.astimezone(REPORTING_TZ).date() - dt.timedelta(days=1)
        latest = min(latest, day)
    return latest


class RollupJob:
    """The `rollups` job: once a day (exactly once per day through the runner), builds
    yesterday's rollups and any day missed before it. Posts nothing."""

    id = Job.ROLLUPS
    title = "Rollups"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def enabled(self) -> bool:
        return bool(self.settings.rollup_dataset)

    def period_for(self, run_at: dt.datetime, tz: Any = None) -> str | None:
        # Pacific days by definition (DOMAIN.md): the day that ended before run_at.
        return (run_at.astimezone(REPORTING_TZ).date() - dt.timedelta(days=1)).isoformat()

    def build(self, deps: Deps, period: str) -> Skip:
        dataset = deps.settings.rollup_dataset
        if not dataset:
            return Skip(reason="ROLLUP_DATASET is not set")
        through = dt.date.fromisoformat(period)
        built = build_missing(
            deps.warehouse, dataset, through, backfill_days=deps.settings.rollup_backfill_days
        )
        logger.info("rollups built for %d day(s) through %s", len(built), period)
        return Skip(reason=f"rolled up {len(built)} day(s) through {period} (nothing to post)")


def coverage_lines(warehouse: Any, dataset: str | None) -> list[str]:
    """`databot rollups`: each rollup's covered days."""
    if not dataset:
        return ["ROLLUP_DATASET is not set: lookups read raw rows only."]
    days = Coverage(warehouse, dataset).days(fresh=True)
    lines = []
    for name, rollup in ROLLUPS.items():
        found = days.get(name, set())
        block = _contiguous(found)
        if block is None:
            lines.append(f"{dataset}.{name} ({rollup.source}): not built yet")
            continue
        gaps = (max(found) - min(found)).days + 1 - len(found)
        lines.append(
            f"{dataset}.{name} ({rollup.source}): {len(found)} day(s); lookups use "
            f"{block.start} .. {block.end}" + (f" ({gaps} day(s) missing before)" if gaps else "")
        )
    return lines
