"""The account card behind `/metric account NAME`: the catalog's own metrics for one
account over the last 30 complete days, plus its instances (registry and latest pings).
No number is defined here: each comes from the catalog entry of the same name, so the card
and `/metric NAME 30d for ACCOUNT` always agree."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.metric.lookup import MetricService, _latest, _num
from bot.metric.model import (
    TELEMETRY_EVENTS,
    TELEMETRY_FULL,
    AccountCard,
    Answer,
    InstanceInfo,
    MetricQuery,
    NoData,
    Unavailable,
)
from bot.metric.periods import parse_period
from bot.settings import REPORTING_TZ
from bot.sql import load_sql

CARD_PERIOD = "30d"  # the last 30 complete Pacific days
ACCOUNT_SQL = (
    "SELECT account_name, is_customer, seats_purchased FROM salesforce_data.accounts "
    "WHERE LOWER(account_name) = LOWER(@account)"
)


def account_card(service: MetricService, name: str) -> AccountCard:
    """The card for the account `name` names (UnknownAccount with "did you mean" else)."""
    account = service.resolve_account(name)
    period = parse_period(CARD_PERIOD, service.today())
    start_ts, end_ts = period.utc_bounds(REPORTING_TZ)
    params = {
        "account": account,
        "start_ts": start_ts,
        "end_ts": end_ts,
        "start_date": period.start,
        "end_date": period.end,
    }
    facts = service._run(ACCOUNT_SQL, {"account": account}, metric="account_card")
    rows = service._run(load_sql("account_instances"), params, metric="account_card")
    instances = [_instance(r) for r in rows]
    is_customer = bool(facts and facts[0].get("is_customer"))
    seats = _int(facts[0].get("seats_purchased")) if facts else None
    best = {i.telemetry_status for i in instances}
    events = TELEMETRY_EVENTS in best
    usage = events or TELEMETRY_FULL in best
    unavailable: list[Unavailable] = []

    def lookup(metric_name: str, what: str, why: str) -> Answer | None:
        metric = service.catalog.get(metric_name)
        if metric is None:
            return None
        try:
            return service.answer(MetricQuery(metric, period, account))
        except NoData:
            unavailable.append(Unavailable(what, why))
            return None

    no_usage = (
        "no instance of it sends usage numbers (critical pings only, or no telemetry)"
        if not usage
        else "none of its instances reported user counts in these 30 days"
    )
    no_events = (
        "no instance of it sends user-level event data"
        if not events
        else "its instances sent no events in these 30 days"
    )
    monthly_users = lookup("monthly_users", "Monthly users", no_usage)
    dau_mau = lookup("dau_mau", "DAU/MAU", no_events)
    seat = None
    if not is_customer or not seats:
        unavailable.append(
            Unavailable("Seat consumption", "not a customer with purchased seats in Salesforce")
        )
    else:
        seat = lookup("seat_consumption", "Seat consumption", no_usage)
    cody = lookup("cody_users", "Cody usage", no_events)
    if not any(i.repo_count is not None for i in instances):
        unavailable.append(Unavailable("Repos and code hosts", no_usage))
    if not any(i.last_ping for i in instances):
        unavailable.append(
            Unavailable(
                "Version, deployment and hosting from pings",
                "no instance of it pinged in these 30 days",
            )
        )
    answers = [a for a in (monthly_users, dau_mau, seat, cody) if a is not None]
    through = _latest([a.data_through for a in answers] + [i.last_ping for i in instances])
    complete = all(a.complete for a in answers) if answers else through is not None
    return AccountCard(
        account=account,
        is_customer=is_customer,
        seats_purchased=seats,
        period=period,
        instances=instances,
        monthly_users=monthly_users,
        dau_mau=dau_mau,
        seat_consumption=seat,
        cody_users=cody,
        unavailable=unavailable,
        data_through=through,
        complete=complete,
    )


def _instance(r: dict[str, Any]) -> InstanceInfo:
    hosts = r.get("code_hosts")
    last = r.get("last_ping")
    if isinstance(last, dt.datetime) and last.tzinfo is None:
        last = last.replace(tzinfo=dt.UTC)
    return InstanceInfo(
        instance_id=str(r["instance_id"]),
        hosting_type=r.get("hosting_type"),
        deployment_type=r.get("deployment_type"),
        telemetry_status=r.get("telemetry_status"),
        last_ping=last,
        version=r.get("version"),
        releases_behind=_int(r.get("releases_behind")),
        latest_version=r.get("latest_version"),
        code_hosts=[h for h in str(hosts).split(",") if h] if hosts else [],
        repo_count=_int(r.get("repo_count")),
    )


def _int(v: Any) -> int | None:
    n = _num(v)
    return None if n is None else int(n)
