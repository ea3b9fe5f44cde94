"""The `metric_subscriptions` and `metric_alert_checks` tables: an item is written whole, in
one INSERT, only after everything about it was checked (nothing half-made)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bot import tables
from bot.metric.catalog import Dimension
from bot.store import Store
from bot.subscriptions.model import CheckState, Item, Kind, Rule, Schedule, Status


def _item(row: sa.Row[Any]) -> Item:
    return Item.model_validate(dict(row._mapping))


def create(
    store: Store,
    now: dt.datetime,
    *,
    kind: Kind,
    metric: str,
    period_text: str | None,
    account: str | None,
    channel: str,
    creator: str,
    schedule: Schedule | None = None,
    rule: Rule | None = None,
    by: Dimension | None = None,
) -> Item:
    t = tables.metric_subscriptions
    with store.engine.begin() as connection:
        result = connection.execute(
            t.insert().values(
                kind=kind,
                metric=metric,
                period_text=period_text,
                account=account,
                by=by,
                channel=channel,
                creator=creator,
                schedule=schedule.model_dump(mode="json") if schedule else None,
                rule=rule.model_dump(mode="json") if rule else None,
                status=Status.ACTIVE,
                created_at=now,
                updated_at=now,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        new_id = key[0]
    found = get(store, int(new_id))
    assert found is not None
    return found


def get(store: Store, item_id: int) -> Item | None:
    t = tables.metric_subscriptions
    with store.reading() as connection:
        row = connection.execute(sa.select(t).where(t.c.id == item_id)).first()
    return _item(row) if row else None


def list_items(
    store: Store,
    *,
    creator: str | None = None,
    channel: str | None = None,
    statuses: list[Status] | None = None,
) -> list[Item]:
    """Items made by `creator` or posting to `channel` (both None: all), oldest first."""
    t = tables.metric_subscriptions
    query = sa.select(t).order_by(t.c.id)
    who = []
    if creator:
        who.append(t.c.creator == creator)
    if channel:
        who.append(t.c.channel == channel)
    if who:
        query = query.where(sa.or_(*who))
    if statuses:
        query = query.where(t.c.status.in_([str(s) for s in statuses]))
    with store.reading() as connection:
        return [_item(r) for r in connection.execute(query)]


def set_status(
    store: Store, item_id: int, now: dt.datetime, status: Status, reason: str | None = None
) -> bool:
    """False when the item is gone (deleted meanwhile)."""
    t = tables.metric_subscriptions
    with store.engine.begin() as connection:
        return bool(
            connection.execute(
                t.update()
                .where(t.c.id == item_id)
                .values(status=status, status_reason=reason, updated_at=now)
            ).rowcount
        )


def snooze(store: Store, item_id: int, now: dt.datetime, until: dt.datetime) -> bool:
    t = tables.metric_subscriptions
    with store.engine.begin() as connection:
        return bool(
            connection.execute(
                t.update().where(t.c.id == item_id).values(snoozed_until=until, updated_at=now)
            ).rowcount
        )


def delete(store: Store, item_id: int) -> bool:
    with store.engine.begin() as connection:
        connection.execute(
            tables.metric_alert_checks.delete().where(
                tables.metric_alert_checks.c.alert_id == item_id
            )
        )
        t = tables.metric_subscriptions
        return bool(connection.execute(t.delete().where(t.c.id == item_id)).rowcount)


# --------------------------------------------------------------------------- alert checks


def record_check(
    store: Store,
    alert_id: int,
    period: str,
    now: dt.datetime,
    state: CheckState,
    value: float | None,
) -> None:
    """The alert's result for `period` (written again on a retry of the same period)."""
    t = tables.metric_alert_checks
    try:
        with store.engine.begin() as connection:
            connection.execute(
                t.insert().values(
                    alert_id=alert_id, period=period, state=state, value=value, created_at=now
                )
            )
    except IntegrityError:
        with store.engine.begin() as connection:
            connection.execute(
                t.update()
                .where(t.c.alert_id == alert_id, t.c.period == period)
                .values(state=state, value=value)
            )


def last_check_before(
    store: Store, alert_id: int, period: str, states: list[CheckState]
) -> CheckState | None:
    """The latest result before `period` among `states` (period keys sort by date)."""
    t = tables.metric_alert_checks
    query = (
        sa.select(t.c.state)
        .where(
            t.c.alert_id == alert_id,
            t.c.period < period,
            t.c.state.in_([str(s) for s in states]),
        )
        .order_by(t.c.period.desc())
        .limit(1)
    )
    with store.reading() as connection:
        found = connection.execute(query).scalar()
    return CheckState(found) if found else None


def last_check(store: Store, alert_id: int) -> tuple[str, CheckState, float | None] | None:
    t = tables.metric_alert_checks
    query = (
        sa.select(t.c.period, t.c.state, t.c.value)
        .where(t.c.alert_id == alert_id)
        .order_by(t.c.period.desc())
        .limit(1)
    )
    with store.reading() as connection:
        row = connection.execute(query).first()
    return (row.period, CheckState(row.state), row.value) if row else None


def last_runs(store: Store, job_names: list[str]) -> dict[str, tuple[str, str, str | None]]:
    """job -> (period, status, detail) of its newest scheduled run: read-only, for "last
    result" in the lists (the runner owns that table; this never writes it)."""
    if not job_names:
        return {}
    t = tables.scheduled_runs
    query = (
        sa.select(t.c.job, t.c.period, t.c.status, t.c.detail, t.c.updated_at)
        .where(t.c.job.in_(job_names), ~t.c.period.like("%:notice"))
        .order_by(t.c.updated_at)
    )
    found: dict[str, tuple[str, str, str | None]] = {}
    with store.reading() as connection:
        for row in connection.execute(query):
            found[row.job] = (row.period, row.status, row.detail)
    return found
