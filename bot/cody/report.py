"""Cody Pro subscriber numbers (issue #7) for the daily post.

Every number comes from the one definition, bot/sql/cody_pro_daily.sql (DOMAIN.md's
table, one row per Pacific date), which `/metric cody_pro` reads too. This module only
decides *which* dates to read, whether the source is complete enough to read them, and
what to compare and flag:

- readiness: SSC data for Pacific date D is complete only when `ssc.sync_status` says
  every table we read is synced through the start of D+1 (Pacific). Before that the job
  answers `NotReady`, so the runner retries and later posts a notice, never partial numbers.
- comparisons: the day before and the same weekday a week earlier; month-to-date net.
- sanity: identities that must hold (daily = new + retained, revenue = count x price, no
  negative counts) block the post; a large day-over-day move in active subscribers is
  flagged in the post, not hidden.
- Stripe reconciliation (optional): the share of active subscribers both systems agree on.

Dates are Pacific (America/Los_Angeles) by definition, whatever settings.timezone says.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from functools import cache
from typing import TYPE_CHECKING

from pydantic import BaseModel, field_validator

from bot.errors import WarehouseError
from bot.settings import REPORTING_TZ
from bot.sql import load_sql

if TYPE_CHECKING:
    from bot.settings import Settings
    from bot.warehouse import Warehouse

logger = logging.getLogger(__name__)

TREND_DAYS = 30
# The tables cody_pro_daily.sql reads; all must be synced for a date to be complete.
SSC_TABLES = ("ssc.subscriptions", "ssc.billing_cycles")

COUNT_FIELDS = (
    "daily_subscribers",
    "new_subscribers",
    "retained_subscribers",
    "canceled_subscribers",
    "active_subscribers",
)
MONEY_FIELDS = ("daily_revenue", "daily_revenue_added", "daily_revenue_retained", "mrr", "arr")


# High-water marks of the SSC export (too small for a file of its own).
SYNC_STATUS_SQL = "SELECT table_name, synced_through FROM ssc.sync_status"


@cache
def read_sql(name: str) -> str:
    """The query text without its whole-line `--` comments: they are for readers, and the
    BigQuery emulator counts an `@name` in a comment as a parameter (then fails the job)."""
    text = load_sql(name)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))


def _as_date(value: object) -> object:
    # Some backends hand DATE columns back as DATETIME (or ISO strings).
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value


class CodyDay(BaseModel):
    """One row of cody_pro_daily.sql: the DOMAIN.md fields for one Pacific date."""

    date: dt.date
    daily_subscribers: int
    new_subscribers: int
    retained_subscribers: int
    canceled_subscribers: int
    active_subscribers: int
    daily_revenue: float
    daily_revenue_added: float
    daily_revenue_retained: float
    mrr: float
    arr: float

    _date = field_validator("date", mode="before")(_as_date)

    @property
    def net_change(self) -> int:
        """Net subscriber change of the day: new - canceled."""
        return self.new_subscribers - self.canceled_subscribers


def load_days(
    warehouse: Warehouse, start: dt.date, end: dt.date, price_usd: float
) -> list[CodyDay]:
    """The Cody Pro rows for start..end (inclusive, Pacific dates), oldest first."""
    rows = warehouse.query(
        read_sql("cody_pro_daily.sql"),
        {"start_date": start, "end_date": end, "price_usd": float(price_usd)},
    )
    return sorted((CodyDay.model_validate(row) for row in rows), key=lambda d: d.date)


# --- readiness -------------------------------------------------------------------------


def start_of_day(day: dt.date) -> dt.datetime:
    """Midnight Pacific at the start of `day`, as aware UTC."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=REPORTING_TZ).astimezone(dt.UTC)


def last_complete_date(synced_through: dt.datetime) -> dt.date:
    """The last Pacific date whose data is complete at this high-water mark: D such that
    synced_through >= start of D+1 (Pacific)."""
    return synced_through.astimezone(REPORTING_TZ).date() - dt.timedelta(days=1)


class Readiness(BaseModel):
    """Whether SSC has complete data for `day`; if not, which table lags and how far."""

    day: dt.date
    ready: bool
    lagging_table: str | None = None
    synced_through: dt.datetime | None = None  # of the lagging (or least synced) table

    @property
    def reason(self) -> str:
        """User-facing explanation of why the numbers for `day` cannot be posted yet."""
        if self.ready:
            return ""
        if self.synced_through is None:
            return (
                f"ssc.sync_status has no sync time for {self.lagging_table}, so its data "
                f"for {fmt_day(self.day)} cannot be trusted yet"
            )
        last = last_complete_date(self.synced_through)
        return (
            f"{self.lagging_table} has complete data only through {fmt_day(last)} "
            f"(synced through {fmt_time(self.synced_through)})"
        )


def _normalise_table(name: str) -> str:
    name = name.strip().strip("`").lower()
    return name if "." in name else f"ssc.{name}"


def _as_utc(value: object) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise WarehouseError(f"ssc.sync_status.synced_through is not a timestamp: {value!r}")
    # BigQuery TIMESTAMPs are UTC; a backend that drops the zone still means UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def sync_marks(warehouse: Warehouse) -> dict[str, dt.datetime]:
    """synced_through per SSC table ("ssc.subscriptions", ...), aware UTC."""
    marks: dict[str, dt.datetime] = {}
    for row in warehouse.query(SYNC_STATUS_SQL, {}):
        if row.get("synced_through") is None:
            continue
        table = _normalise_table(str(row["table_name"]))
        mark = _as_utc(row["synced_through"])
        # Several rows for one table: the export appends; the newest mark counts.
        marks[table] = max(mark, marks.get(table, mark))
    return marks


def check_readiness(warehouse: Warehouse, day: dt.date) -> Readiness:
    marks = sync_marks(warehouse)
    needed = start_of_day(day + dt.timedelta(days=1))
    for table in SSC_TABLES:
        if table not in marks:
            return Readiness(day=day, ready=False, lagging_table=table)
    table = min(SSC_TABLES, key=lambda t: marks[t])
    return Readiness(
        day=day,
        ready=marks[table] >= needed,
        lagging_table=table if marks[table] < needed else None,
        synced_through=marks[table],
    )


def latest_complete_date(warehouse: Warehouse, today: dt.date) -> dt.date | None:
    """The newest Pacific date before `today` with complete SSC data (None: none known)."""
    marks = sync_marks(warehouse)
    if any(table not in marks for table in SSC_TABLES):
        return None
    last = min(last_complete_date(marks[t]) for t in SSC_TABLES)
    return min(last, today - dt.timedelta(days=1))


# --- comparisons, sanity, reconciliation -------------------------------------------------


class Change(BaseModel):
    """current vs an earlier value; pct is None when the earlier value is 0."""

    current: float
    previous: float

    @property
    def delta(self) -> float:
        return self.current - self.previous

    @property
    def pct(self) -> float | None:
        if self.previous == 0:
            return None
        return (self.current - self.previous) / abs(self.previous) * 100


# Shown with their changes in the post, in this order.
HEADLINE_FIELDS = (
    "active_subscribers",
    "new_subscribers",
    "retained_subscribers",
    "canceled_subscribers",
    "daily_subscribers",
    "mrr",
)


def check_identities(day: CodyDay, price_usd: float, *, show_revenue: bool = True) -> list[str]:
    """Rules the numbers must obey; any break means they are wrong and must not be posted.
    `show_revenue=False`: the reasons go to a channel that may not see revenue, so a broken
    revenue identity is named without its dollar figures."""
    problems = []
    for name in COUNT_FIELDS:
        if getattr(day, name) < 0:
            problems.append(f"{name} is negative ({getattr(day, name)})")
    if day.daily_subscribers != day.new_subscribers + day.retained_subscribers:
        problems.append(
            f"daily_subscribers ({day.daily_subscribers}) != new_subscribers "
            f"({day.new_subscribers}) + retained_subscribers ({day.retained_subscribers})"
        )
    expected = {
        "daily_revenue": day.daily_subscribers * price_usd,
        "daily_revenue_added": day.new_subscribers * price_usd,
        "daily_revenue_retained": day.retained_subscribers * price_usd,
        "mrr": day.active_subscribers * price_usd,
        "arr": day.active_subscribers * price_usd * 12,
    }
    for name, value in expected.items():
        if abs(getattr(day, name) - value) > 0.005:
            if show_revenue:
                problems.append(
                    f"{name} ({getattr(day, name)}) != {value} at ${price_usd:g} a seat"
                )
            else:
                problems.append(f"{name} is not its subscriber count × the seat price")
    return problems


def unusual_moves(day: CodyDay, previous: CodyDay, threshold_pct: float) -> list[str]:
    """Warnings for the post: moves large enough that a reader should double-check."""
    change = Change(current=day.active_subscribers, previous=previous.active_subscribers)
    if change.pct is not None and abs(change.pct) > threshold_pct:
        return [
            f"Active subscribers moved {change.pct:+.1f}% day over day "
            f"({previous.active_subscribers:,} → {day.active_subscribers:,}), more than the "
            f"usual ±{threshold_pct:g}%. Please double-check before relying on it."
        ]
    return []


class Reconciliation(BaseModel):
    """SSC vs Stripe active subscribers on one date.

    match_rate_pct = subscribers both count / subscribers either counts. The union (not
    one side) is the denominator so that a miss on either side lowers the rate.
    """

    dataset: str
    ssc_active: int
    stripe_active: int
    matched: int
    threshold_pct: float

    @property
    def ssc_only(self) -> int:
        return self.ssc_active - self.matched

    @property
    def stripe_only(self) -> int:
        return self.stripe_active - self.matched

    @property
    def match_rate_pct(self) -> float | None:
        either = self.ssc_active + self.stripe_active - self.matched
        return None if either == 0 else self.matched / either * 100

    @property
    def below_threshold(self) -> bool:
        rate = self.match_rate_pct
        return rate is not None and rate < self.threshold_pct


def reconcile_with_stripe(
    warehouse: Warehouse, day: dt.date, dataset: str, threshold_pct: float
) -> Reconciliation:
    sql = read_sql("cody_stripe_reconciliation.sql")
    if dataset != "stripe":
        # Settings validated the name ([project.]dataset); backticks allow a project id
        # with hyphens.
        sql = re.sub(r"\bstripe\.subscriptions\b", f"`{dataset}.subscriptions`", sql)
    rows = warehouse.query(sql, {"date": day})
    row = rows[0]
    return Reconciliation(
        dataset=dataset,
        ssc_active=int(row["ssc_active"]),
        stripe_active=int(row["stripe_active"]),
        matched=int(row["matched"]),
        threshold_pct=threshold_pct,
    )


# --- the report ---------------------------------------------------------------------------


class CodyReport(BaseModel):
    """Everything the daily post and the /metric summary show for one reference date."""

    day: CodyDay
    previous: CodyDay  # the day before
    week_ago: CodyDay  # the same weekday a week earlier
    trend: list[CodyDay]  # TREND_DAYS days ending at `day`, oldest first
    month_to_date_new: int
    month_to_date_canceled: int
    price_usd: float
    synced_through: dt.datetime | None = None
    problems: list[str] = []  # broken identities: do not post
    warnings: list[str] = []  # unusual but plausible: post, flagged
    reconciliation: Reconciliation | None = None

    @property
    def month_to_date_net(self) -> int:
        return self.month_to_date_new - self.month_to_date_canceled

    def vs_previous(self, name: str) -> Change:
        return Change(current=getattr(self.day, name), previous=getattr(self.previous, name))

    def vs_week_ago(self, name: str) -> Change:
        return Change(current=getattr(self.day, name), previous=getattr(self.week_ago, name))


def load_report(
    warehouse: Warehouse,
    settings: Settings,
    day: dt.date,
    *,
    synced_through: dt.datetime | None = None,
    show_revenue: bool = True,
) -> CodyReport:
    """Query the numbers for `day` and everything compared with them (one query for the
    trend, the comparisons and month to date; one more for Stripe when configured).
    `show_revenue=False`: the problems name no dollar figure (see check_identities)."""
    price = settings.cody_price_usd
    first = day - dt.timedelta(days=TREND_DAYS - 1)
    start = min(first, day.replace(day=1), day - dt.timedelta(days=7))
    days = {d.date: d for d in load_days(warehouse, start, day, price)}
    wanted = [start + dt.timedelta(days=i) for i in range((day - start).days + 1)]
    missing = [d for d in wanted if d not in days]
    if missing:
        raise WarehouseError(
            f"The Cody Pro query returned no row for {fmt_day(missing[0])}; "
            "it should return one row per date."
        )
    current = days[day]
    previous = days[day - dt.timedelta(days=1)]
    month = [days[d] for d in wanted if d >= day.replace(day=1)]
    # Every loaded day is shown somewhere (changes, trend, month to date): check them all.
    problems = [
        f"{fmt_day(d)}: {problem}"
        for d in reversed(wanted)
        for problem in check_identities(days[d], price, show_revenue=show_revenue)
    ]
    warnings = unusual_moves(current, previous, settings.cody_unusual_change_pct)
    reconciliation = None
    if settings.cody_stripe_reconciliation:
        reconciliation = reconcile_with_stripe(
            warehouse, day, settings.cody_stripe_dataset, settings.cody_stripe_match_threshold_pct
        )
        if reconciliation.below_threshold:
            warnings.append(
                f"SSC and Stripe agree on only {reconciliation.match_rate_pct:.1f}% of active "
                f"subscribers (threshold {reconciliation.threshold_pct:g}%)."
            )
    return CodyReport(
        day=current,
        previous=previous,
        week_ago=days[day - dt.timedelta(days=7)],
        trend=[days[d] for d in wanted if d >= first],
        month_to_date_new=sum(d.new_subscribers for d in month),
        month_to_date_canceled=sum(d.canceled_subscribers for d in month),
        price_usd=price,
        synced_through=synced_through,
        problems=problems,
        warnings=warnings,
        reconciliation=reconciliation,
    )


# --- formatting shared by the blocks and the reasons ----------------------------------------


def fmt_day(day: dt.date) -> str:
    return f"{day:%a, %b} {day.day}, {day.year}"


def fmt_time(when: dt.datetime) -> str:
    local = when.astimezone(REPORTING_TZ)
    return f"{local:%b} {local.day} {local:%H:%M} {local.tzname()}"
