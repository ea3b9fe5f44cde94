"""Test helpers for the Cody Pro numbers: a small, writable copy of the demo warehouse's
SSC and Stripe tables, ways to change it (late sync, a subscriber who cancels, Stripe
mismatches), and the independent computation every number is checked against.

The independent computation reads the raw rows straight from DuckDB (epoch microseconds,
no SQL translation) and applies DOMAIN.md's definitions in plain Python with zoneinfo.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from bot.warehouse import DuckDBWarehouse

PT = ZoneInfo("America/Los_Angeles")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
TABLES = ("ssc.subscriptions", "ssc.billing_cycles", "ssc.sync_status", "stripe.subscriptions")


def copy_ssc(demo_path: Path, dest: Path) -> Path:
    """A new DuckDB file holding only the demo's SSC and Stripe tables (fast to copy)."""
    con = duckdb.connect(str(dest))
    try:
        # Qualify with our catalog: a file named ssc.duckdb would make "ssc" ambiguous.
        (catalog,) = con.execute("SELECT current_database()").fetchone()
        con.execute(f"ATTACH '{demo_path}' AS demo (READ_ONLY)")
        for schema in ("ssc", "stripe"):
            con.execute(f'CREATE SCHEMA "{catalog}".{schema}')
        for table in TABLES:
            con.execute(f'CREATE TABLE "{catalog}".{table} AS SELECT * FROM demo.{table}')
        con.execute("DETACH demo")
    finally:
        con.close()
    return dest


def execute(path: Path, sql: str, params: list | dict | None = None) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(sql, params or [])
    finally:
        con.close()


def set_synced_through(path: Path, when: dt.datetime, table: str | None = None) -> None:
    where = "" if table is None else " WHERE table_name = $table"
    params = {"when": when} if table is None else {"when": when, "table": table}
    execute(path, f"UPDATE ssc.sync_status SET synced_through = $when{where}", params)


def add_subscriber(
    path: Path,
    user_id: str,
    started_at: dt.datetime,
    ended_at: dt.datetime | None,
    *,
    months: int,
) -> None:
    """One SSC subscription with `months` monthly billing cycles from started_at."""
    status = "active" if ended_at is None else "canceled"
    execute(
        path,
        "INSERT INTO ssc.subscriptions VALUES ($id, $user, $start, $end, $status)",
        {
            "id": f"sub_{user_id}",
            "user": user_id,
            "start": started_at,
            "end": ended_at,
            "status": status,
        },
    )
    for n in range(1, months + 1):
        execute(
            path,
            "INSERT INTO ssc.billing_cycles VALUES ($id, $user, $n, "
            "$start + to_months($n - 1), $start + to_months($n))",
            {"id": f"sub_{user_id}", "user": user_id, "n": n, "start": started_at},
        )


class ReopeningWarehouse:
    """The real DuckDB warehouse, reopened for every query so the test can change the
    file between queries (DuckDB will not open a file read-only and writable at once)."""

    name = "duckdb"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.queries: list[str] = []

    def query(self, sql, params=None, *, labels=None):
        self.queries.append(sql)
        warehouse = DuckDBWarehouse(self.path, timeout_s=60)
        try:
            return warehouse.query(sql, params, labels=labels)
        finally:
            warehouse.close()

    def close(self) -> None:
        pass


# --- the independent computation ----------------------------------------------------------


def _pt_date(us: int | None) -> dt.date | None:
    if us is None:
        return None
    return (EPOCH + dt.timedelta(microseconds=us)).astimezone(PT).date()


class RawSSC:
    """The raw SSC rows, with DOMAIN.md's definitions applied in Python."""

    def __init__(self, path: Path) -> None:
        con = duckdb.connect(str(path), read_only=True)
        try:
            self.subs = [
                (user, _pt_date(start), _pt_date(end))
                for user, start, end in con.execute(
                    "SELECT user_id, epoch_us(started_at), epoch_us(ended_at) "
                    "FROM ssc.subscriptions"
                ).fetchall()
            ]
            self.cycles = [
                (user, number, _pt_date(start))
                for user, number, start in con.execute(
                    "SELECT user_id, cycle_number, epoch_us(cycle_start) FROM ssc.billing_cycles"
                ).fetchall()
            ]
            self.stripe = con.execute(
                "SELECT stripe_subscription_id, ssc_user_id, status, epoch_us(created), "
                "epoch_us(ended_at) FROM stripe.subscriptions"
            ).fetchall()
        finally:
            con.close()

    def active_users(self, day: dt.date) -> set[str]:
        return {u for u, s, e in self.subs if s <= day and (e is None or e > day)}

    def fields(self, day: dt.date, price: float = 9.0) -> dict:
        active = len(self.active_users(day))
        canceled = len({u for u, _, e in self.subs if e == day})
        new = len({u for u, n, c in self.cycles if n == 1 and c == day})
        retained = len({u for u, n, c in self.cycles if n >= 2 and c == day})
        return {
            "date": day,
            "daily_subscribers": new + retained,
            "new_subscribers": new,
            "retained_subscribers": retained,
            "canceled_subscribers": canceled,
            "active_subscribers": active,
            "daily_revenue": (new + retained) * price,
            "daily_revenue_added": new * price,
            "daily_revenue_retained": retained * price,
            "mrr": active * price,
            "arr": active * price * 12,
        }

    def stripe_active_keys(self, day: dt.date) -> set[str]:
        keys = set()
        for stripe_id, user, status, created, ended in self.stripe:
            if _pt_date(created) > day:
                continue
            end = _pt_date(ended)
            if end is not None and end <= day:
                continue
            if end is None and status not in ("active", "trialing", "past_due"):
                continue
            keys.add(user if user is not None else f"stripe:{stripe_id}")
        return keys


# --- a small constructed SSC/Stripe dataset (for both DuckDB and the BigQuery emulator) ----

SCHEMAS = {
    "ssc.subscriptions": [
        ("subscription_id", "STRING"),
        ("user_id", "STRING"),
        ("started_at", "TIMESTAMP"),
        ("ended_at", "TIMESTAMP"),
        ("status", "STRING"),
    ],
    "ssc.billing_cycles": [
        ("subscription_id", "STRING"),
        ("user_id", "STRING"),
        ("cycle_number", "INT64"),
        ("cycle_start", "TIMESTAMP"),
        ("cycle_end", "TIMESTAMP"),
    ],
    "ssc.sync_status": [("table_name", "STRING"), ("synced_through", "TIMESTAMP")],
    "stripe.subscriptions": [
        ("stripe_subscription_id", "STRING"),
        ("ssc_user_id", "STRING"),
        ("status", "STRING"),
        ("created", "TIMESTAMP"),
        ("ended_at", "TIMESTAMP"),
    ],
}
DUCK_TYPES = {"STRING": "VARCHAR", "TIMESTAMP": "TIMESTAMPTZ", "INT64": "BIGINT"}


def small_dataset(synced_through: dt.datetime) -> dict[str, list[dict]]:
    """~60 subscribers starting in Oct-Nov 2026, many within minutes of Pacific midnight
    (where UTC and Pacific dates differ), some canceling, some only in SSC or Stripe."""
    import random

    rng = random.Random(7)
    subs, cycles, stripe = [], [], []
    for i in range(60):
        day = dt.date(2026, 10, 1) + dt.timedelta(days=rng.randrange(50))
        minute = rng.choice([0, 1, 2, 719, 1437, 1438, 1439])  # edges of the Pacific day
        start = dt.datetime.combine(day, dt.time(0), tzinfo=PT) + dt.timedelta(minutes=minute)
        start = start.astimezone(dt.UTC)
        months = rng.randint(1, 3)
        end = None
        if rng.random() < 0.4:
            end = start + dt.timedelta(days=rng.randint(3, 55), minutes=rng.choice([0, 7, 30]))
            if end >= synced_through:
                end = None
        sub_id, user = f"sub_{i:03d}", f"cu_{i % 55:03d}"  # a few users subscribe twice
        subs.append(
            {
                "subscription_id": sub_id,
                "user_id": user,
                "started_at": start,
                "ended_at": end,
                "status": "active" if end is None else "canceled",
            }
        )
        for n in range(1, months + 1):
            cycle_start = _add_months(start, n - 1)
            if cycle_start >= synced_through or (end is not None and cycle_start >= end):
                break
            cycles.append(
                {
                    "subscription_id": sub_id,
                    "user_id": user,
                    "cycle_number": n,
                    "cycle_start": cycle_start,
                    "cycle_end": _add_months(start, n),
                }
            )
        if i % 9 == 4:
            continue  # missing in Stripe
        status = "canceled" if (i % 11 == 3 and end is None) else subs[-1]["status"]
        stripe.append(
            {
                "stripe_subscription_id": f"st_{i:03d}",
                "ssc_user_id": user,
                "status": status,
                "created": start + dt.timedelta(seconds=5),
                "ended_at": end,
            }
        )
    stripe.append(
        {
            "stripe_subscription_id": "st_orphan",
            "ssc_user_id": None,
            "status": "active",
            "created": dt.datetime(2026, 10, 20, tzinfo=dt.UTC),
            "ended_at": None,
        }
    )
    sync = [
        {"table_name": "subscriptions", "synced_through": synced_through},
        {"table_name": "billing_cycles", "synced_through": synced_through},
    ]
    return {
        "ssc.subscriptions": subs,
        "ssc.billing_cycles": cycles,
        "ssc.sync_status": sync,
        "stripe.subscriptions": stripe,
    }


def _add_months(when: dt.datetime, months: int) -> dt.datetime:
    import calendar

    month = when.month - 1 + months
    year, month = when.year + month // 12, month % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def write_duckdb(path: Path, data: dict[str, list[dict]]) -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        (catalog,) = con.execute("SELECT current_database()").fetchone()
        for schema in ("ssc", "stripe"):
            con.execute(f'CREATE SCHEMA "{catalog}".{schema}')
        for table, columns in SCHEMAS.items():
            ddl = ", ".join(f"{name} {DUCK_TYPES[kind]}" for name, kind in columns)
            con.execute(f'CREATE TABLE "{catalog}".{table} ({ddl})')
            names = [name for name, _ in columns]
            marks = ", ".join("?" for _ in names)
            for row in data[table]:
                con.execute(
                    f'INSERT INTO "{catalog}".{table} VALUES ({marks})', [row[n] for n in names]
                )
    finally:
        con.close()
    return path
