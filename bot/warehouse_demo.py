"""The demo warehouse: a generated DuckDB file shaped like the BigQuery datasets databot reads.

Datasets are DuckDB schemas (`dotcom_events.events`, `ssc.subscriptions`, ...), so the same
BigQuery SQL runs on both backends after translation (bot/warehouse.py). Timestamps are
TIMESTAMPTZ holding UTC instants, like BigQuery TIMESTAMP.

Contract:
- Deterministic: the same `as_of` gives identical rows (pseudo-randomness comes from DuckDB's
  `hash()` over fixed seeds and absolute dates, never from a random state).
- Generated once per (GENERATOR_VERSION, Pacific date of `as_of`) and cached in `data_dir`.
  The first caller of the day fixes the data end (as_of minus PIPELINE_LAG); later callers
  the same day reuse that file. Writes go to a temp file renamed into place under a file
  lock, so concurrent callers never see a half-written warehouse.
- Data ends PIPELINE_LAG before `as_of` (like a real pipeline); `ssc.sync_status` says so.
- No personal data: users are random ids; account names are invented company names.

Telemetry statuses (update_checks.telemetry_status): 'full pings + event data' (the only
instances that emit dotcom_events rows), 'full pings', 'critical pings only' (usage columns
NULL: such pings carry no usage numbers), 'no telemetry' (air-gapped or pings off: these
instances send nothing, so they never appear in update_checks; their accounts do appear in
salesforce_data.accounts).

Also: `sourcegraph_analytics.instances`, the instance registry (every licensed instance,
whatever telemetry it sends, with the dates its license started and ended), and
`sourcegraph_analytics.releases` (every Sourcegraph release and its date), so "releases
behind the latest" and "no telemetry" can be answered. Full pings carry the instance's
total user accounts (`total_user_accounts`, NULL in critical pings). Fields added after
version 1 are derived from `hash()` of fixed seeds, so the rest of the data is unchanged.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb

from bot.settings import REPORTING_TZ

logger = logging.getLogger(__name__)

# Bump whenever the generated data changes shape or content: it is part of the cache key.
GENERATOR_VERSION = 2
PIPELINE_LAG = dt.timedelta(hours=3)
HISTORY_DAYS = 455  # a bit over 15 months, so year-over-year questions have data
SEED = 20231214  # Cody Pro's launch date, as good a seed as any

# Told each generation step as it starts: (step, number, of how many). The demo prints it.
Progress = Callable[[str, int, int], None]
STEPS = ("accounts and instances", "daily activity", "update checks", "events", "Cody Pro (SSC)")

DATASETS = ("dotcom_events", "sourcegraph_analytics", "salesforce_data", "ssc", "stripe")
TELEMETRY_EVENTS = "full pings + event data"
TELEMETRY_FULL = "full pings"
TELEMETRY_CRITICAL = "critical pings only"
TELEMETRY_NONE = "no telemetry"

DEPLOYMENT_TYPES = [
    ("kubernetes", 30),
    ("helm", 22),
    ("docker-compose", 20),
    ("docker", 10),
    ("kustomize", 6),
    ("aws-ami", 5),
    ("pure-docker", 4),
    ("single-program", 3),
]
CODE_HOSTS = ["github", "gitlab", "bitbucketServer", "gerrit", "azureDevOps", "perforce"]
SEARCH_EVENTS = [
    # (event name, relative weight)
    ("SearchSubmitted", 30),
    ("ViewBlob", 25),
    ("SearchResultsQueried", 15),
    ("goToDefinition", 10),
    ("findReferences", 6),
    ("ViewRepository", 6),
    ("SearchNotebookPageViewed", 3),
    ("CodeInsightsPageViewed", 2),
    ("BatchChangesPageViewed", 2),
    ("SignIn", 1),
]
CODY_EVENTS = [
    ("cody.completion.suggested", 50),
    ("cody.completion.accepted", 15),
    ("cody.chat-question.submitted", 20),
    ("cody.command.explain.executed", 6),
    ("cody.command.test.executed", 4),
    ("cody.auth.login", 5),
]
_NAME_FIRST = [
    "Northwind",
    "Bluefin",
    "Granite",
    "Copperleaf",
    "Silverline",
    "Harbor",
    "Redwood",
    "Lumen",
    "Quarry",
    "Tidewater",
    "Ironbark",
    "Aster",
    "Juniper",
    "Kestrel",
    "Meridian",
    "Nimbus",
    "Orchard",
    "Pinnacle",
    "Quill",
    "Riverbend",
    "Sable",
    "Summit",
    "Tamarack",
    "Umber",
    "Vantage",
    "Willow",
    "Yardley",
    "Zephyr",
    "Beacon",
    "Cinder",
]
_NAME_SECOND = [
    "Logistics",
    "Robotics",
    "Financial",
    "Health",
    "Systems",
    "Media",
    "Energy",
    "Analytics",
    "Insurance",
    "Networks",
    "Foods",
    "Labs",
    "Motors",
    "Retail",
    "Games",
]
_NAME_SUFFIX = ["Inc.", "Corp.", "LLC", "Group", "Co.", "Ltd."]


def demo_warehouse_path(data_dir: Path, as_of: dt.datetime) -> Path:
    day = as_of.astimezone(REPORTING_TZ).date()
    return Path(data_dir) / f"demo-warehouse-v{GENERATOR_VERSION}-{day:%Y%m%d}.duckdb"


def ensure_demo_warehouse(
    data_dir: Path, *, as_of: dt.datetime | None = None, progress: Progress | None = None
) -> Path:
    """Return the demo DuckDB file for as_of's Pacific date, generating it if missing
    (`progress` hears each step of a generation; nothing when the file is there)."""
    as_of = as_of or dt.datetime.now(dt.UTC)
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    target = demo_warehouse_path(data_dir, as_of)
    if target.exists():
        return target
    lock_path = data_dir / ".demo-warehouse.lock"
    with open(lock_path, "a+") as lock:
        # One generator at a time; the others wait and then find the finished file.
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if target.exists():
                return target
            tmp = data_dir / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
            started = time.monotonic()
            try:
                _generate(tmp, as_of, progress or _no_progress)
                os.replace(tmp, target)
            finally:
                for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                    leftover.unlink(missing_ok=True)
            logger.info("Generated demo warehouse %s in %.1f s", target, time.monotonic() - started)
            _remove_stale(data_dir, keep=target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


def _remove_stale(data_dir: Path, *, keep: Path) -> None:
    # Readers that still have an old file open keep their handle (POSIX unlink semantics).
    for old in data_dir.glob("demo-warehouse-v*.duckdb"):
        if old != keep:
            old.unlink(missing_ok=True)


def _weighted_case(column: str, choices: list[tuple[str, int]]) -> str:
    """A SQL CASE picking a name from `column` (uniform in [0, 1)) by weight.

    The names are constants from this module, never outside input.
    """
    total = sum(weight for _, weight in choices)
    parts, running = [], 0
    for name, weight in choices[:-1]:
        running += weight
        parts.append(f"WHEN {column} < {running / total!r} THEN '{name}'")
    return f"CASE {' '.join(parts)} ELSE '{choices[-1][0]}' END"


def _accounts(rng: random.Random) -> list[tuple]:
    names: set[str] = set()
    while len(names) < 60:
        names.add(
            f"{rng.choice(_NAME_FIRST)} {rng.choice(_NAME_SECOND)} {rng.choice(_NAME_SUFFIX)}"
        )
    rows = []
    for index, name in enumerate(sorted(names)):
        is_customer = index % 2 == 0
        seats = rng.choice([50, 100, 150, 250, 400, 600, 1000, 2500]) if is_customer else None
        rows.append((f"001A{index:05d}", name, is_customer, seats))
    return rows


def _releases(end_day: dt.date) -> list[tuple[str, dt.date]]:
    """Monthly minor releases plus one patch each, newest about two weeks before end_day."""
    releases = []
    for months_back in range(18, -1, -1):
        released = end_day - dt.timedelta(days=14 + 30 * months_back)
        minor = 18 - months_back
        major, minor = (5, minor) if minor < 10 else (6, minor - 10)
        releases.append((f"{major}.{minor}.0", released))
        releases.append((f"{major}.{minor}.{1 + minor % 3}", released + dt.timedelta(days=9)))
    return [(name, day) for name, day in releases if day <= end_day]


def _instances(
    rng: random.Random, accounts: list[tuple], first_day: dt.date, end_day: dt.date
) -> list[tuple]:
    span = (end_day - first_day).days
    deployment_names = [name for name, _ in DEPLOYMENT_TYPES]
    deployment_weights = [weight for _, weight in DEPLOYMENT_TYPES]
    rows: list[tuple] = []

    def add(account, *, production: bool) -> None:
        account_id, _name, is_customer, seats = account or (None, None, False, None)
        index = len(rows)
        managed = is_customer and rng.random() < 0.3
        if is_customer:
            telemetry = rng.choices(
                [TELEMETRY_EVENTS, TELEMETRY_FULL, TELEMETRY_CRITICAL, TELEMETRY_NONE],
                [45, 30, 15, 10],
            )[0]
        else:
            telemetry = rng.choices(
                [TELEMETRY_EVENTS, TELEMETRY_FULL, TELEMETRY_CRITICAL, TELEMETRY_NONE],
                [35, 35, 20, 10],
            )[0]
        if managed:
            telemetry = TELEMETRY_EVENTS  # managed instances always send event data
        if seats and production:
            pool = max(5, int(seats * rng.uniform(0.08, 0.22)))
        elif is_customer:
            pool = rng.randint(2, 12)  # staging / test instances
        else:
            pool = rng.randint(3, 30)
        # Growth: a third of the instances appear during the window.
        created = rng.randint(-120, span - 20) if rng.random() < 0.35 else -rng.randint(30, 900)
        retired = span + 1 if rng.random() > 0.08 else rng.randint(max(created, 0) + 30, span + 30)
        rows.append(
            (
                f"{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                index,
                account_id,
                "managed" if managed else "self-hosted",
                "kubernetes" if managed else rng.choices(deployment_names, deployment_weights)[0],
                telemetry,
                pool,
                created,
                min(retired, span + 1),
                # Upgrade lag in days: customers on managed instances are always current.
                0 if managed else rng.choice([0, 0, 5, 15, 30, 45, 60, 90, 150, 240]),
                ",".join(sorted(rng.sample(CODE_HOSTS, rng.choice([1, 1, 1, 2, 2, 3])))),
                rng.randint(20, 3000) if production else rng.randint(5, 80),
                rng.randint(0, 23 * 60),  # minute of the day (UTC) the instance checks in
            )
        )

    for account in accounts:
        _id, _name, is_customer, _seats = account
        if rng.random() < 0.12:
            continue  # no instances ever seen for this account
        count = rng.choice([2, 3, 4, 5, 6, 8]) if is_customer else rng.choice([1, 2, 3, 4])
        for n in range(count):
            add(account, production=n == 0 or (is_customer and n < 3))
    while len(rows) < 320:
        add(None, production=True)  # instances we cannot attribute to an account
    return rows


def _no_progress(step: str, number: int, total: int) -> None:
    pass


def _generate(path: Path, as_of: dt.datetime, progress: Progress) -> None:
    def step(number: int) -> None:
        progress(STEPS[number - 1], number, len(STEPS))

    step(1)
    end_ts = as_of.astimezone(dt.UTC) - PIPELINE_LAG
    end_day = end_ts.astimezone(REPORTING_TZ).date()
    first_day = end_day - dt.timedelta(days=HISTORY_DAYS)
    rng = random.Random(f"{SEED}:{end_day.isoformat()}")
    accounts = _accounts(rng)
    instances = _instances(rng, accounts, first_day, end_day)
    releases = _releases(end_day)

    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET threads = 2")
        con.execute("SET preserve_insertion_order = false")
        params = {"first_day": first_day, "end_day": end_day, "end_ts": end_ts}
        for schema in DATASETS:
            con.execute(f"CREATE SCHEMA {schema}")
        con.execute(f"CREATE MACRO rnd(a, b, c) AS (hash({SEED}, a, b, c) % 1000003) / 1000003.0")
        con.execute(
            "CREATE TABLE salesforce_data.accounts (account_id VARCHAR, account_name VARCHAR, "
            "is_customer BOOLEAN, seats_purchased BIGINT)"
        )
        con.executemany("INSERT INTO salesforce_data.accounts VALUES (?, ?, ?, ?)", accounts)
        con.execute(
            "CREATE TEMP TABLE inst (instance_id VARCHAR, idx INTEGER, account_id VARCHAR, "
            "hosting_type VARCHAR, deployment_type VARCHAR, telemetry_status VARCHAR, "
            "pool INTEGER, created INTEGER, retired INTEGER, upgrade_lag INTEGER, "
            "code_hosts VARCHAR, repos INTEGER, checkin_minute INTEGER)"
        )
        con.executemany(f"INSERT INTO inst VALUES ({', '.join(['?'] * 13)})", instances)
        con.execute("CREATE TEMP TABLE releases (version VARCHAR, released DATE)")
        con.executemany("INSERT INTO releases VALUES (?, ?)", releases)
        step(2)
        _generate_activity(con, params)
        step(3)
        _generate_registry(con, params)
        _generate_update_checks(con, params)
        step(4)
        _generate_events(con, params)
        step(5)
        _generate_ssc(con, params)
        con.execute("DROP MACRO rnd")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _generate_activity(con: duckdb.DuckDBPyConnection, params: dict) -> None:
    # Daily active users per instance per Pacific day: the instance's user pool x a growth
    # trend x weekly seasonality (weekends ~30%) x noise. Shared by update_checks and events
    # so the pings agree with the event stream.
    con.execute(
        """
        CREATE TEMP TABLE activity AS
        WITH days AS (
            SELECT CAST(d AS DATE) AS day, CAST(d AS DATE) - CAST($first_day AS DATE) AS t,
                   CAST($end_day AS DATE) - CAST($first_day AS DATE) AS span
            FROM generate_series(CAST($first_day AS DATE), CAST($end_day AS DATE),
                                 INTERVAL 1 DAY) AS g(d)
        )
        SELECT i.idx, i.instance_id, days.day, days.t,
               LEAST(i.pool, CAST(floor(
                   i.pool * 0.42
                   * (0.55 + 0.45 * days.t / days.span)
                   * (CASE WHEN dayofweek(days.day) IN (0, 6) THEN 0.3 ELSE 1.0 END)
                   * (0.8 + 0.4 * rnd(i.idx, days.day, 'dau'))
                   + rnd(i.idx, days.day, 'round')) AS INTEGER)) AS dau,
               LEAST(i.pool, CAST(floor(i.pool * (0.62 + 0.38 * days.t / days.span)
                   * (0.95 + 0.1 * rnd(i.idx, days.day, 'mau'))) AS INTEGER)) AS mau
        FROM inst i JOIN days ON days.t >= i.created AND days.t < i.retired
        WHERE i.telemetry_status <> 'no telemetry'
        """,
        {"first_day": params["first_day"], "end_day": params["end_day"]},
    )


def _generate_registry(con: duckdb.DuckDBPyConnection, params: dict) -> None:
    con.execute(
        """
        CREATE TABLE sourcegraph_analytics.releases AS
        SELECT version, released AS released_on FROM releases
        """
    )
    # `created`/`retired` are day offsets from first_day (active on days created ..
    # retired - 1); licensed_until is the last licensed day, NULL while it still runs.
    con.execute(
        """
        CREATE TABLE sourcegraph_analytics.instances AS
        SELECT i.instance_id, i.account_id, acc.account_name, i.hosting_type,
               i.deployment_type, i.telemetry_status,
               CAST(CAST($first_day AS DATE) + i.created AS DATE) AS licensed_from,
               CASE WHEN i.retired <= CAST($end_day AS DATE) - CAST($first_day AS DATE)
                    THEN CAST(CAST($first_day AS DATE) + i.retired - 1 AS DATE) END
                   AS licensed_until
        FROM inst i LEFT JOIN salesforce_data.accounts acc USING (account_id)
        """,
        {"first_day": params["first_day"], "end_day": params["end_day"]},
    )


def _generate_update_checks(con: duckdb.DuckDBPyConnection, params: dict) -> None:
    con.execute(
        """
        CREATE TABLE sourcegraph_analytics.update_checks AS
        WITH checks AS (
            SELECT a.*, i.account_id, i.hosting_type, i.deployment_type, i.telemetry_status,
                   i.upgrade_lag, i.code_hosts, i.repos, i.pool,
                   CAST(a.day AS TIMESTAMPTZ) + to_minutes(i.checkin_minute)
                     + to_seconds(CAST(rnd(a.idx, a.day, 'sec') * 600 AS INTEGER))
                     AS checked_at
            FROM activity a JOIN inst i USING (idx)
        )
        SELECT c.instance_id, c.checked_at, c.account_id, acc.account_name,
               coalesce(acc.is_customer, false) AS is_customer,
               coalesce((SELECT max_by(r.version, r.released) FROM releases r
                         WHERE r.released <= c.day - c.upgrade_lag), '5.0.0') AS version,
               c.deployment_type, c.hosting_type, c.telemetry_status,
               acc.seats_purchased,
               CASE WHEN c.telemetry_status <> 'critical pings only' THEN c.dau END
                   AS daily_active_users,
               CASE WHEN c.telemetry_status <> 'critical pings only' THEN c.mau END
                   AS monthly_active_users,
               CASE WHEN c.telemetry_status <> 'critical pings only'
                    THEN CAST(c.repos * (0.7 + 0.3 * c.t / 455.0) AS BIGINT) END AS repo_count,
               CASE WHEN c.telemetry_status <> 'critical pings only' THEN c.code_hosts END
                   AS code_hosts,
               -- every user account on the instance (active or not): above MAU, growing
               CASE WHEN c.telemetry_status <> 'critical pings only'
                    THEN CAST(floor(c.pool * (1.3 + 0.6 * rnd(c.idx, 'accounts', 0))
                                    * (0.8 + 0.2 * c.t / 455.0)) AS BIGINT) END
                   AS total_user_accounts
        FROM checks c LEFT JOIN salesforce_data.accounts acc USING (account_id)
        WHERE c.checked_at < $end_ts
        """,
        {"end_ts": params["end_ts"]},
    )
    con.execute(
        "ALTER TABLE sourcegraph_analytics.update_checks ALTER COLUMN daily_active_users "
        "TYPE BIGINT"
    )
    con.execute(
        "ALTER TABLE sourcegraph_analytics.update_checks ALTER COLUMN monthly_active_users "
        "TYPE BIGINT"
    )


def _generate_events(con: duckdb.DuckDBPyConnection, params: dict) -> None:
    # Each active user of an event-sending instance emits 1-4 events at Pacific local
    # times weighted to working hours; user slots are consecutive in the instance's pool,
    # so a day's distinct users equal its DAU.
    local_seconds = (
        "CASE WHEN rnd(a.idx, j * 16 + k, a.day) < 0.08 "
        "THEN CAST(rnd(k, j, a.day) * 86399 AS INTEGER) "
        "ELSE CAST((7 + 12 * (rnd(k, a.idx, a.day) + rnd(j, k, a.day)) / 2) * 3600 AS INTEGER) END"
    )
    for table, names, share in (
        ("events", SEARCH_EVENTS, 1.0),
        ("cody", CODY_EVENTS, 0.15),
    ):
        con.execute(
            f"""
            CREATE TABLE dotcom_events.{table} AS
            WITH user_days AS (
                SELECT a.idx, a.instance_id, a.day, j,
                       (j + CAST(hash(a.idx, a.day, '{table}') % i.pool AS INTEGER)) % i.pool
                           AS slot,
                       1 + CAST(floor(rnd(a.idx, a.day, j) * 4) AS INTEGER) AS n_events
                FROM activity a JOIN inst i USING (idx),
                     range(0, CAST(ceil(a.dau * {share}) AS INTEGER)) AS r(j)
                WHERE i.telemetry_status = 'full pings + event data'
            ), raw AS (
                SELECT a.*, k,
                       timezone('America/Los_Angeles',
                                CAST(a.day AS TIMESTAMP) + to_seconds({local_seconds}))
                           AS ts,
                       rnd(a.idx * 7919 + k, a.day, j + 1) AS pick
                FROM user_days a, range(0, a.n_events) AS e(k)
            )
            SELECT printf('%016x', hash(idx, day, j, k, '{table}')) AS event_id,
                   ts AS timestamp,
                   printf('u%012x', hash(idx, slot) % 281474976710656) AS user_id,
                   instance_id,
                   {_weighted_case("pick", names)} AS event_name
            FROM raw
            WHERE ts < $end_ts
            """,
            {"end_ts": params["end_ts"]},
        )


def _generate_ssc(con: duckdb.DuckDBPyConnection, params: dict) -> None:
    # Subscriptions start at a growing daily rate; ~12% start within 30 minutes of Pacific
    # midnight so UTC-vs-Pacific date mistakes change the numbers. Billing cycle k starts
    # k-1 calendar months after the start (UTC, clamped at month end like Stripe), so cycle
    # starts near midnight cross to another Pacific date when DST flips.
    con.execute(
        """
        CREATE TEMP TABLE subs_first AS
        WITH days AS (
            SELECT CAST(d AS DATE) AS day, CAST(d AS DATE) - CAST($first_day AS DATE) AS t
            FROM generate_series(CAST($first_day AS DATE), CAST($end_day AS DATE),
                                 INTERVAL 1 DAY) AS g(d)
        ), starts AS (
            SELECT day, t, n
            FROM days, range(0, CAST(floor((6 + 22 * t / 455.0)
                              * (CASE WHEN dayofweek(day) IN (0, 6) THEN 0.7 ELSE 1.0 END)
                              * (0.7 + 0.6 * rnd(t, 'starts', 0))) AS INTEGER)) AS r(n)
        )
        SELECT day, n,
               printf('sub_%014x', hash(day, n, 'ssc') % 72057594037927936) AS subscription_id,
               printf('cu_%014x', hash(day, n, 'user') % 72057594037927936) AS user_id,
               timezone('America/Los_Angeles', CAST(day AS TIMESTAMP) + to_seconds(
                   CASE WHEN rnd(day, n, 'edge') < 0.06 THEN
                            CAST(rnd(day, n, 'secs') * 1800 AS INTEGER)
                        WHEN rnd(day, n, 'edge') < 0.12 THEN
                            86399 - CAST(rnd(day, n, 'secs') * 1800 AS INTEGER)
                        ELSE CAST(rnd(day, n, 'secs') * 86399 AS INTEGER) END)) AS started_at,
               -- months paid before cancelling: geometric, ~9% monthly churn
               1 + CAST(floor(ln(1 - rnd(day, n, 'life')) / ln(0.91)) AS INTEGER) AS months,
               rnd(day, n, 'how') < 0.3 AS cancels_mid_cycle,
               rnd(day, n, 'frac') AS cancel_fraction,
               rnd(day, n, 'again') < 0.15 AS resubscribes
        FROM starts
        """,
        {"first_day": params["first_day"], "end_day": params["end_day"]},
    )
    # Some canceled users come back later with a new subscription (same user id).
    con.execute(
        """
        CREATE TEMP TABLE subs_all AS
        SELECT subscription_id, user_id, started_at, months, cancels_mid_cycle, cancel_fraction
        FROM subs_first
        UNION ALL
        SELECT printf('sub_%014x', hash(subscription_id, 'again') % 72057594037927936),
               user_id,
               started_at + to_months(months) + to_days(
                   10 + CAST(rnd(day, n, 'gap') * 80 AS INTEGER))
                   + to_seconds(CAST(rnd(day, n, 'gap2') * 3600 AS INTEGER)),
               1 + CAST(floor(ln(1 - rnd(day, n, 'life2')) / ln(0.85)) AS INTEGER),
               false, 0.0
        FROM subs_first WHERE resubscribes
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE subs AS
        SELECT *,
               CASE WHEN cancels_mid_cycle
                    THEN started_at + to_months(months - 1) + to_seconds(CAST(cancel_fraction
                         * epoch(started_at + to_months(months)
                                 - (started_at + to_months(months - 1))) AS BIGINT))
                    ELSE started_at + to_months(months) END AS planned_end
        FROM subs_all WHERE started_at < $end_ts
        """,
        {"end_ts": params["end_ts"]},
    )
    con.execute(
        """
        CREATE TABLE ssc.subscriptions AS
        SELECT subscription_id, user_id, started_at,
               CASE WHEN planned_end < $end_ts THEN planned_end END AS ended_at,
               CASE WHEN planned_end < $end_ts THEN 'canceled' ELSE 'active' END AS status
        FROM subs
        """,
        {"end_ts": params["end_ts"]},
    )
    con.execute(
        """
        CREATE TABLE ssc.billing_cycles AS
        SELECT s.subscription_id, s.user_id, CAST(c AS BIGINT) AS cycle_number,
               s.started_at + to_months(c - 1) AS cycle_start,
               s.started_at + to_months(c) AS cycle_end
        FROM subs s, range(1, s.months + 1) AS r(c)
        WHERE s.started_at + to_months(c - 1) < least(s.planned_end, $end_ts)
        """,
        {"end_ts": params["end_ts"]},
    )
    con.execute("CREATE TABLE ssc.sync_status (table_name VARCHAR, synced_through TIMESTAMPTZ)")
    con.execute(
        "INSERT INTO ssc.sync_status VALUES ('subscriptions', $end_ts), "
        "('billing_cycles', $end_ts)",
        {"end_ts": params["end_ts"]},
    )
    # Stripe mirrors SSC with ~4% disagreement: a few missing, a few with a different
    # status (the known active-subscriber bug), a few Stripe-only subscriptions.
    con.execute(
        """
        CREATE TABLE stripe.subscriptions AS
        SELECT printf('sub_1%015x', hash(subscription_id, 'stripe') % 1152921504606846976)
                   AS stripe_subscription_id,
               user_id AS ssc_user_id,
               CASE WHEN rnd(subscription_id, 'status', 0) < 0.015
                    THEN CASE status WHEN 'active' THEN 'canceled' ELSE 'active' END
                    ELSE status END AS status,
               started_at + to_seconds(1 + CAST(rnd(subscription_id, 'lag', 0) * 20 AS INTEGER))
                   AS created,
               ended_at
        FROM ssc.subscriptions
        WHERE rnd(subscription_id, 'missing', 0) >= 0.02
        UNION ALL
        SELECT printf('sub_1%015x', hash(subscription_id, 'extra') % 1152921504606846976),
               printf('cu_%014x', hash(subscription_id, 'extra_user') % 72057594037927936),
               'active', started_at + to_seconds(30), NULL
        FROM ssc.subscriptions
        WHERE rnd(subscription_id, 'extra', 0) < 0.005
        """
    )
