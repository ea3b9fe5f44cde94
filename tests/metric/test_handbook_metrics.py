"""The handbook's metrics (DOMAIN.md "Commonly requested metrics" and "Reports people ask
for most"), `by DIMENSION` breakdowns and the account card, on the demo warehouse, each
checked against plain Python over the raw rows (read straight from the DuckDB file: no
catalog SQL, no translation), with Pacific dates from zoneinfo. Periods: the DST change
days (Mar 8 and Nov 1 2026), a calendar month (October, ending on the 31st) and a range
across the November change."""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from zoneinfo import ZoneInfo

import duckdb
import pytest

from bot.metric.account import account_card
from bot.metric.card import build_account_card, build_account_card_text
from bot.metric.catalog import load_catalog
from bot.metric.cli import print_metric_lookup
from bot.metric.lookup import MetricService
from bot.metric.periods import Period
from bot.settings import Settings
from bot.warehouse import DuckDBWarehouse
from tests.metric.test_metric_values import (
    AS_OF,
    bigquery_pair,  # noqa: F401 - the same rows in the emulator and in DuckDB
    days_of,
    expected_dau,
    expected_distinct_users,
    pdate_us,
)

D = dt.date
PERIODS = {
    "dst-start day": "2026-03-08",
    "dst-end day": "2026-11-01",
    "october": "2026-10",
    "across dst": "2026-10-25..2026-11-07",
}
EVENTS = "full pings + event data"
PT = ZoneInfo("America/Los_Angeles")


@pytest.fixture(scope="module")
def service(demo_warehouse_path):
    warehouse = DuckDBWarehouse(demo_warehouse_path, timeout_s=60)
    yield MetricService(load_catalog(), warehouse, Settings(_env_file=None), lambda: AS_OF)
    warehouse.close()


@pytest.fixture(scope="module")
def raw(demo_warehouse_path):
    con = duckdb.connect(str(demo_warehouse_path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")

    def rows(sql: str) -> list[tuple]:
        return con.execute(sql).fetchall()

    since = "TIMESTAMPTZ '2026-01-01 00:00:00+00'"
    pings = defaultdict(list)  # Pacific day -> ping dicts
    checks = defaultdict(list)  # the shape tests/metric/test_metric_values.py reads
    for r in rows(
        "SELECT instance_id, epoch_us(checked_at), account_id, account_name, is_customer, "
        "version, deployment_type, hosting_type, telemetry_status, monthly_active_users, "
        "repo_count, code_hosts, total_user_accounts "
        f"FROM sourcegraph_analytics.update_checks WHERE checked_at >= {since}"
    ):
        keys = (
            "instance us account_id account is_customer version deployment hosting "
            "telemetry mau repos code_hosts user_accounts"
        ).split()
        ping = dict(zip(keys, r, strict=True))
        day = pdate_us(ping["us"])
        pings[day].append(ping)
        checks[day].append((ping["instance"], ping["us"], ping["account"], ping["deployment"]))
    events = defaultdict(list)
    for us, user, instance, name in rows(
        "SELECT epoch_us(timestamp), user_id, instance_id, event_name "
        f"FROM dotcom_events.events WHERE timestamp >= {since}"
    ):
        events[pdate_us(us)].append((user, instance, name))
    cody = defaultdict(list)
    for us, user, instance in rows(
        f"SELECT epoch_us(timestamp), user_id, instance_id FROM dotcom_events.cody "
        f"WHERE timestamp >= {since}"
    ):
        cody[pdate_us(us)].append((user, instance))
    data = {
        "pings": pings,
        "checks": checks,
        "events": events,
        "cody": cody,
        "accounts": {
            a: (name, customer, seats)
            for a, name, customer, seats in rows("SELECT * FROM salesforce_data.accounts")
        },
        "releases": dict(rows("SELECT version, released_on FROM sourcegraph_analytics.releases")),
        "registry": rows(
            "SELECT instance_id, account_name, hosting_type, deployment_type, "
            "telemetry_status, licensed_from, licensed_until FROM sourcegraph_analytics.instances"
        ),
    }
    con.close()
    return data


# --------------------------------------------------------------------------- independent


def latest_pings(raw, p: Period, account: str | None = None, column: str | None = None):
    """instance -> its most recent ping with a Pacific date in p (with `column` set)."""
    out = {}
    for day in days_of(p):
        for ping in raw["pings"].get(day, []):
            if account is not None and ping["account"] != account:
                continue
            if column is not None and ping[column] is None:
                continue
            if ping["instance"] not in out or ping["us"] > out[ping["instance"]]["us"]:
                out[ping["instance"]] = ping
    return out


def attribute(ping, by):
    if by == "account":
        return ping["account"] or "no account"
    return ping[by]


def summed(column):
    def compute(raw, p, account=None, by=None):
        latest = latest_pings(raw, p, account, column).values()
        if by is None:
            return sum(ping[column] for ping in latest)
        out = defaultdict(int)
        for ping in latest:
            out[attribute(ping, by)] += ping[column]
        return dict(out)

    return compute


def seat_consumption(raw, p, account=None):
    per_account = defaultdict(int)
    for ping in latest_pings(raw, p, account, "mau").values():
        if ping["account_id"] is not None:
            per_account[ping["account_id"]] += ping["mau"]
    ratios = []
    for account_id, mau in per_account.items():
        _, customer, seats = raw["accounts"][account_id]
        if customer and seats:
            ratios.append(mau / seats)
    return 100 * sum(ratios) / len(ratios)


def releases_behind(raw, version, day):
    released = raw["releases"][version]
    return sum(1 for r in raw["releases"].values() if released < r <= day)


def customers_on_latest(raw, p):
    newest = raw["releases"][newest_release_by_date(raw, p.end)]
    runs = defaultdict(list)
    for ping in latest_pings(raw, p).values():
        if ping["is_customer"] and ping["account_id"] is not None:
            runs[ping["account_id"]].append(raw["releases"].get(ping["version"]))
    on_latest = sum(1 for released in runs.values() if all(r == newest for r in released))
    return on_latest, 100 * on_latest / len(runs)


def newest_release_by_date(raw, day):
    return max(
        (v for v, released in raw["releases"].items() if released <= day),
        key=lambda v: raw["releases"][v],
    )


def by_version(raw, p, account=None):
    out = defaultdict(int)
    for ping in latest_pings(raw, p, account).values():
        behind = releases_behind(raw, ping["version"], p.end)
        where = "latest" if behind == 0 else f"{behind} release{'s' if behind != 1 else ''} behind"
        out[f"{ping['version']} ({where})"] += 1
    return dict(out)


def tally(raw, p, key, account=None):
    out = defaultdict(int)
    for ping in latest_pings(raw, p, account).values():
        out[ping[key]] += 1
    return dict(out)


def by_code_host(raw, p, account=None):
    out = defaultdict(int)
    for ping in latest_pings(raw, p, account, "code_hosts").values():
        for host in ping["code_hosts"].split(","):
            out[host] += 1
    return dict(out)


def registry_on(raw, day, account=None):
    return [
        r
        for r in raw["registry"]
        if r[5] <= day and (r[6] is None or r[6] >= day) and (account is None or r[1] == account)
    ]


def by_telemetry(raw, p, account=None):
    out = defaultdict(int)
    for r in registry_on(raw, p.end, account):
        out[r[4]] += 1
    return dict(out)


def cody_users(raw, p, account=None):
    instances = None
    if account:
        instances = {
            ping["instance"]
            for day in days_of(p)
            for ping in raw["pings"].get(day, [])
            if ping["account"] == account
        }
    return len(
        {
            user
            for day in days_of(p)
            for user, instance in raw["cody"].get(day, [])
            if instances is None or instance in instances
        }
    )


HEADLINES = {
    "monthly_users": summed("mau"),
    "users_by_instance_type": summed("mau"),
    "user_accounts": summed("user_accounts"),
    "repos": summed("repos"),
    "seat_consumption": seat_consumption,
    "customers_on_latest": lambda raw, p: customers_on_latest(raw, p)[0],
    "version": lambda raw, p: sum(by_version(raw, p).values()),
    "hosting_type": lambda raw, p: len(latest_pings(raw, p)),
    "telemetry_status": lambda raw, p: sum(by_telemetry(raw, p).values()),
    "code_hosts": lambda raw, p: sum(by_code_host(raw, p).values()),
    "cody_users": cody_users,
}
BREAKDOWNS = {
    "users_by_instance_type": lambda raw, p: summed("mau")(raw, p, by="hosting"),
    "version": by_version,
    "hosting_type": lambda raw, p: tally(raw, p, "hosting"),
    "telemetry_status": by_telemetry,
    "code_hosts": by_code_host,
}


# --------------------------------------------------------------------------- the checks


@pytest.mark.parametrize("period", list(PERIODS.values()), ids=list(PERIODS))
@pytest.mark.parametrize("name", list(HEADLINES))
def test_handbook_metric_matches_independent_computation(service, raw, name, period):
    answer = service.answer(service.parse(f"{name} {period}"))
    _, value, previous = answer.headline
    assert value == pytest.approx(HEADLINES[name](raw, answer.period), rel=1e-9)
    if name != "telemetry_status":  # the registry is a state: compared at period ends
        want_previous = HEADLINES[name](raw, answer.previous_period)
        assert previous == pytest.approx(want_previous, rel=1e-9)
    if name in BREAKDOWNS:
        rows = {r.label: r.value for r in answer.breakdown}
        assert rows == BREAKDOWNS[name](raw, answer.period)


@pytest.mark.parametrize("period", ["2026-11-01", "2026-10"])
def test_customers_on_latest_share_matches(service, raw, period):
    answer = service.answer(service.parse(f"customers_on_latest {period}"))
    count, share = customers_on_latest(raw, answer.period)
    values = {f.column: v for f, v, _ in answer.values}
    assert values["value"] == count and values["share"] == pytest.approx(share)
    assert 0 < share < 100


def test_customer_level_metrics_for_an_account(service, raw):
    october = Period(D(2026, 10, 1), D(2026, 10, 31))
    account = busiest_event_account(raw, october)
    checks = {
        "seat_consumption": seat_consumption(raw, october, account),
        "repos": summed("repos")(raw, october, account),
        "user_accounts": summed("user_accounts")(raw, october, account),
        "monthly_users": summed("mau")(raw, october, account),
        "cody_users": cody_users(raw, october, account),
    }
    for name, want in checks.items():
        answer = service.answer(service.parse(f"{name} 2026-10 for {account}"))
        assert answer.headline[1] == pytest.approx(want), name
    for name, compute in (
        ("version", by_version),
        ("hosting_type", lambda r, p, a: tally(r, p, "hosting", a)),
        ("instances_by_deployment", lambda r, p, a: tally(r, p, "deployment", a)),
        ("code_hosts", by_code_host),
        ("telemetry_status", by_telemetry),
    ):
        answer = service.answer(service.parse(f"{name} 2026-11-01 for {account}"))
        assert {r.label: r.value for r in answer.breakdown} == compute(
            raw, answer.period, account
        ), name


def busiest_event_account(raw, p):
    counts = defaultdict(set)
    for day in days_of(p):
        for ping in raw["pings"].get(day, []):
            if ping["account"] and ping["telemetry"] == EVENTS and ping["is_customer"]:
                counts[ping["account"]].add(ping["instance"])
    return max(sorted(counts), key=lambda n: len(counts[n]))


# --------------------------------------------------------------------------- by DIMENSION


@pytest.mark.parametrize("by", ["deployment", "hosting", "version", "account"])
def test_searches_by_dimension_match_independent_counts(service, raw, by):
    answer = service.answer(service.parse(f"searches 2026-11-01 by {by}"))
    # The instance's attribute comes from its latest ping in the dates the lookup scanned:
    # for a one-day period, the 14 days ending on it (the daily trend).
    scan = Period(D(2026, 10, 19), D(2026, 11, 1))
    latest = latest_pings(raw, scan)
    want = defaultdict(int)
    for user, instance, name in raw["events"][D(2026, 11, 1)]:
        del user
        label = attribute(latest[instance], by) if instance in latest else "no ping"
        want[label] += name == "SearchSubmitted"
    assert {r.label: r.value for r in answer.breakdown} == dict(want)
    assert answer.headline[1] == sum(want.values())
    model = answer.breakdown_model()
    assert model is not None and model.total == answer.headline[1]
    assert model.title == f"Searches by {answer.by.label}"


@pytest.mark.parametrize("by", ["hosting", "deployment"])
def test_monthly_users_by_dimension_add_up_to_the_total(service, raw, by):
    answer = service.answer(service.parse(f"monthly_users 2026-10 by {by}"))
    want = summed("mau")(raw, answer.period, by=by)
    assert {r.label: r.value for r in answer.breakdown} == want
    assert answer.headline[1] == sum(want.values())


# --------------------------------------------------------------------------- wording


def test_a_day_with_events_but_no_searches_answers_zero(service, raw):
    instance_account = {
        ping["instance"]: ping["account"]
        for day in sorted(raw["pings"])
        for ping in raw["pings"][day]
        if ping["account"]
    }
    found = None
    for day in sorted(raw["events"], reverse=True):
        if day > D(2026, 11, 22):
            continue
        names = defaultdict(list)
        for _, instance, name in raw["events"][day]:
            names[instance_account.get(instance)].append(name)
        quiet = sorted(a for a, n in names.items() if a and "SearchSubmitted" not in n)
        if quiet:
            found = day, quiet[0]
            break
    assert found, "the demo data has a quiet day"
    day, account = found
    answer = service.answer(service.parse(f"searches {day.isoformat()} for {account}"))
    assert answer.headline[1] == 0


def test_no_data_for_an_old_period_says_when_the_data_really_ends(service, demo_warehouse_path):
    from bot.metric.model import NoData

    con = duckdb.connect(str(demo_warehouse_path), read_only=True)
    (newest,) = con.execute("SELECT MAX(timestamp) FROM dotcom_events.events").fetchone()
    con.close()
    newest = newest.astimezone(dt.UTC).astimezone(PT)
    with pytest.raises(NoData) as err:
        service.answer(service.parse("dau 2024-03"))
    assert f"goes through {newest:%b} {newest.day}, {newest:%H:%M} PT" in err.value.user_message


# --------------------------------------------------------------------------- account card


def card_for(service, name):
    return account_card(service, name)


def test_account_card_numbers_match_independent_computation(service, raw):
    october = Period(D(2026, 10, 1), D(2026, 10, 31))
    account = busiest_event_account(raw, october)
    card = card_for(service, account.lower())
    period = Period(D(2026, 10, 24), D(2026, 11, 22))  # the 30 days before Nov 23, across DST
    assert card.account == account and card.period == period
    assert card.monthly_users.headline[1] == summed("mau")(raw, period, account)
    events_raw = {"events": raw["events"], "checks": raw["checks"]}
    want = expected_dau(events_raw, period, account) / expected_distinct_users(
        events_raw, period, account
    )
    assert card.dau_mau.headline[1] == pytest.approx(want)
    assert card.seat_consumption.headline[1] == pytest.approx(
        seat_consumption(raw, period, account)
    )
    assert card.cody_users.headline[1] == cody_users(raw, period, account)
    latest = latest_pings(raw, period, account)
    assert card.repos == sum(p["repos"] for p in latest.values() if p["repos"] is not None)
    assert card.code_hosts == sorted(
        {h for p in latest.values() if p["code_hosts"] for h in p["code_hosts"].split(",")}
    )
    assert {(v, b): n for v, b, n in card.versions()} == {
        (v, releases_behind(raw, v, period.end)): n
        for v, n in tally(raw, period, "version", account).items()
    }
    assert dict(card.counts("hosting_type")) == tally(raw, period, "hosting", account)
    assert dict(card.counts("deployment_type")) == tally(raw, period, "deployment", account)
    licensed = [
        r
        for r in raw["registry"]
        if r[1] == account and r[5] <= period.end and (r[6] is None or r[6] >= period.start)
    ]
    assert len(card.instances) == len(licensed) and len(card.pinged) == len(latest)
    assert card.unavailable == []
    text = build_account_card_text(card, service.settings)
    assert f"Account overview: {account}" in text and "Oct 24 – Nov 22, 2026" in text
    _, _, seats = next(v for v in raw["accounts"].values() if v[0] == account)
    assert f"{seats:,} purchased" in text


def test_account_without_user_level_telemetry_says_what_is_unavailable_and_why(service, raw):
    period = Period(D(2026, 10, 24), D(2026, 11, 22))
    statuses = defaultdict(set)
    for r in raw["registry"]:
        if r[1]:
            statuses[r[1]].add(r[4])
    account = min(n for n, s in statuses.items() if s == {"full pings"})
    card = card_for(service, account)
    assert card.monthly_users.headline[1] == summed("mau")(raw, period, account)
    assert card.dau_mau is None and card.cody_users is None
    gaps = {g.what: g.why for g in card.unavailable}
    assert "no instance of it sends user-level event data" in gaps["DAU/MAU"]
    assert "Cody usage" in gaps
    text = build_account_card_text(card, service.settings)
    assert "no DAU/MAU, no Cody usage" in text  # what the telemetry status means
    blocks = build_account_card(card, service.settings).blocks
    assert "Not available" in str(blocks)


def test_account_that_sends_nothing_still_gets_a_card_from_salesforce_and_the_registry(
    service, raw
):
    names = {r[1] for r in raw["registry"] if r[1]}
    silent = min(v[0] for v in raw["accounts"].values() if v[0] not in names and v[1])
    card = card_for(service, silent)
    assert card.instances == [] and card.is_customer
    gaps = {g.what for g in card.unavailable}
    assert {"Monthly users", "DAU/MAU", "Seat consumption", "Cody usage"} <= gaps
    assert "sends nothing" in build_account_card_text(card, service.settings)


def test_near_miss_account_name_gets_did_you_mean(service, raw):
    from bot.metric.model import UnknownAccount

    account = sorted(v[0] for v in raw["accounts"].values())[5]
    typo = account[:3] + account[4:]  # one letter dropped
    with pytest.raises(UnknownAccount) as err:
        card_for(service, typo)
    assert "Did you mean" in err.value.user_message and account in err.value.suggestions


# --------------------------------------------------------------------------- terminal


def test_terminal_prints_the_account_card_and_breakdowns(service, raw, warehouse):
    settings = Settings(_env_file=None)
    october = Period(D(2026, 10, 1), D(2026, 10, 31))
    account = busiest_event_account(raw, october)
    out = io.StringIO()
    status = print_metric_lookup(
        settings, f"account {account}", out, warehouse=warehouse, now=lambda: AS_OF
    )
    assert status == 0
    text = out.getvalue()
    assert text.startswith(f"Account overview: {account}")
    mau = summed("mau")(raw, Period(D(2026, 10, 24), D(2026, 11, 22)), account)
    assert f"Monthly users (pings): {mau:,}" in text
    # `databot metric NAME` where NAME is an account: the same card
    out = io.StringIO()
    assert print_metric_lookup(settings, account, out, warehouse=warehouse, now=lambda: AS_OF) == 0
    assert out.getvalue().startswith(f"Account overview: {account}")
    out = io.StringIO()
    status = print_metric_lookup(
        settings, "monthly users 2026-10 by instance type", out, warehouse=warehouse,
        now=lambda: AS_OF,
    )  # fmt: skip
    assert status == 0
    rows = summed("mau")(raw, october, by="hosting")
    for label, value in rows.items():
        assert label in out.getvalue() and f"{value:,}" in out.getvalue()
    assert "by hosting type" in out.getvalue()


# --------------------------------------------------------------------------- BigQuery


@pytest.mark.bigquery
def test_account_card_is_the_same_on_bigquery_and_duckdb(bigquery_pair):  # noqa: F811
    """The card's own SQL (bot/sql/account_instances.sql, the Salesforce lookup) and the
    catalog metrics it calls are BigQuery SQL: run them on the emulator and on DuckDB over
    the same rows."""
    bigquery, duck = bigquery_pair
    settings = Settings(_env_file=None)
    rows = duck.query(
        "SELECT account_name, COUNT(DISTINCT instance_id) AS n "
        "FROM sourcegraph_analytics.update_checks WHERE account_name IS NOT NULL "
        "GROUP BY account_name ORDER BY n DESC, account_name LIMIT 1"
    )
    account = rows[0]["account_name"]
    now = dt.datetime(2026, 11, 3, 18, 0, tzinfo=dt.UTC)  # the slice ends on Nov 2
    cards = []
    for warehouse in (bigquery, duck):
        svc = MetricService(load_catalog(), warehouse, settings, lambda: now)
        cards.append(account_card(svc, account))
    on_bq, on_duck = cards
    assert on_bq.instances == on_duck.instances and on_duck.instances
    assert build_account_card_text(on_bq, settings) == build_account_card_text(on_duck, settings)


@pytest.mark.parametrize(
    ("now", "period"),
    [
        # the day after the DST start and after February's end: Feb 7 .. Mar 8
        (dt.datetime(2026, 3, 9, 18, 0, tzinfo=dt.UTC), Period(D(2026, 2, 7), D(2026, 3, 8))),
        # the day after the DST end and October's end: Oct 3 .. Nov 1
        (dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.UTC), Period(D(2026, 10, 3), D(2026, 11, 1))),
    ],
    ids=["dst-start", "dst-end"],
)
def test_account_card_on_other_days_matches(demo_warehouse_path, raw, now, period):
    warehouse = DuckDBWarehouse(demo_warehouse_path, timeout_s=60)
    try:
        svc = MetricService(load_catalog(), warehouse, Settings(_env_file=None), lambda: now)
        account = busiest_event_account(raw, period)
        card = account_card(svc, account)
    finally:
        warehouse.close()
    assert card.period == period
    assert card.monthly_users.headline[1] == summed("mau")(raw, period, account)
    assert card.monthly_users.headline[2] == summed("mau")(
        raw, Period(period.start - dt.timedelta(days=30), period.start - dt.timedelta(days=1)),
        account,
    )  # fmt: skip
    assert card.seat_consumption.headline[1] == pytest.approx(
        seat_consumption(raw, period, account)
    )
    assert card.cody_users.headline[1] == cody_users(raw, period, account)
    assert {(v, b): n for v, b, n in card.versions()} == {
        (v, releases_behind(raw, v, period.end)): n
        for v, n in tally(raw, period, "version", account).items()
    }


def test_terminal_json_of_the_account_card(raw, warehouse):
    import json

    account = busiest_event_account(raw, Period(D(2026, 10, 1), D(2026, 10, 31)))
    out = io.StringIO()
    status = print_metric_lookup(
        Settings(_env_file=None), f"account {account}", out, warehouse=warehouse,
        now=lambda: AS_OF, as_json=True,
    )  # fmt: skip
    assert status == 0
    data = json.loads(out.getvalue())
    assert data["account"] == account
    assert data["period"] == {"start": "2026-10-24", "end": "2026-11-22"}
    latest = latest_pings(raw, Period(D(2026, 10, 24), D(2026, 11, 22)), account)
    assert sum(1 for i in data["instances"] if i["last_ping"]) == len(latest)
