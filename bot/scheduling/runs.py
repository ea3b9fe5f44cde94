"""The `scheduled_runs` table: one row per (job, period), the record that makes a post go out
once however many processes try.

- `claim` takes a key for this process: an INSERT for a new key (the primary key decides
  under concurrency), a conditional UPDATE for one whose lease expired (its process died or
  its retry time came), so exactly one process gets through.
- `finish` and `still_ours` write an attempt's outcome or renew its lease only while the
  run is still ours: `attempts` is the fencing token (a takeover increments it), so a
  process that outlived its lease leaves alone a run another process took over.
- `record` writes unconditionally (recovery, notices: rows this process just claimed).
- Notice rows ("late" notices) share the table under `period + NOTICE_SUFFIX` and are never
  retried.

Rows are never deleted. Details are cut to DETAIL_MAX characters (the column's size).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bot import tables
from bot.store import Store

logger = logging.getLogger(__name__)

# Longer than any build + post takes; a run still "running" after this died with its process.
LEASE = dt.timedelta(minutes=15)
NOTICE_SUFFIX = ":notice"
DETAIL_MAX = 500


class RunStatus(StrEnum):
    RUNNING = "running"  # claimed; a process is building/posting it (lease_until bounds it)
    WAITING = "waiting"  # not ready / build failed; next attempt at lease_until
    POSTED = "posted"
    SKIPPED = "skipped"  # missed beyond the grace period, or never became ready
    FAILED = "failed"  # could not post; the owner was told


@dataclass(frozen=True)
class RunRecord:
    job: str
    period: str
    status: RunStatus
    channel: str | None
    ts: str | None
    permalink: str | None
    detail: str | None
    attempts: int
    lease_until: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> RunRecord:
        data = dict(row._mapping)
        data["status"] = RunStatus(data["status"])
        return cls(**data)


def _key(job: str, period: str) -> sa.ColumnElement[bool]:
    t = tables.scheduled_runs
    return sa.and_(t.c.job == job, t.c.period == period)


def get_run(store: Store, job: str, period: str) -> RunRecord | None:
    with store.reading() as connection:
        row = connection.execute(sa.select(tables.scheduled_runs).where(_key(job, period))).first()
    return RunRecord.from_row(row) if row else None


def read_run(store: Store, job: str, period: str) -> RunRecord:
    """A run that has a row: one this process claimed or wrote (rows are never deleted)."""
    found = get_run(store, job, period)
    if found is None:  # pragma: no cover - only a hand-edited table gets here
        raise LookupError(f"scheduled run {job} {period} has no row")
    return found


def list_runs(store: Store, *, job: str | None = None, limit: int = 50) -> list[RunRecord]:
    t = tables.scheduled_runs
    query = sa.select(t).order_by(t.c.created_at.desc(), t.c.job, t.c.period).limit(limit)
    if job:
        query = query.where(t.c.job == job)
    with store.reading() as connection:
        return [RunRecord.from_row(r) for r in connection.execute(query)]


def claim(
    store: Store,
    job: str,
    period: str,
    now: dt.datetime,
    *,
    retake: frozenset[RunStatus] = frozenset(),
) -> tuple[RunRecord, RunStatus | None] | None:
    """Take (job, period) for this process. Returns (record, status it had before: None if
    new) or None when another process has it or it is done.

    A new key is claimed by INSERT (the primary key decides under concurrency). An existing
    one only if it is running/waiting with an expired lease, or in `retake` (a manual re-run
    of a failed or skipped period); the conditional UPDATE lets one process through.
    """
    t = tables.scheduled_runs
    try:
        with store.engine.begin() as connection:
            connection.execute(
                t.insert().values(
                    job=job,
                    period=period,
                    status=RunStatus.RUNNING,
                    attempts=1,
                    lease_until=now + LEASE,
                    created_at=now,
                    updated_at=now,
                )
            )
        return read_run(store, job, period), None
    except IntegrityError:
        pass
    before = get_run(store, job, period)
    if before is None:  # pragma: no cover - rows are never deleted
        return None
    expired = sa.and_(
        t.c.status.in_([RunStatus.RUNNING, RunStatus.WAITING]), t.c.lease_until <= now
    )
    condition = sa.or_(expired, t.c.status.in_(list(retake))) if retake else expired
    with store.engine.begin() as connection:
        taken = connection.execute(
            t.update()
            .where(_key(job, period), condition)
            .values(
                status=RunStatus.RUNNING,
                attempts=t.c.attempts + 1,
                lease_until=now + LEASE,
                updated_at=now,
            )
        ).rowcount
    if not taken:
        return None
    return read_run(store, job, period), before.status


def _cut_detail(values: dict[str, Any]) -> None:
    if values.get("detail"):
        values["detail"] = str(values["detail"])[:DETAIL_MAX]


def record(store: Store, job: str, period: str, now: dt.datetime, **values: Any) -> RunRecord:
    """Write `values` to the run, unfenced: for a row this process owns outright."""
    _cut_detail(values)
    with store.engine.begin() as connection:
        connection.execute(
            tables.scheduled_runs.update().where(_key(job, period)).values(updated_at=now, **values)
        )
    return read_run(store, job, period)


def _fenced(run: RunRecord) -> sa.ColumnElement[bool]:
    t = tables.scheduled_runs
    return sa.and_(
        _key(run.job, run.period),
        t.c.status == RunStatus.RUNNING,
        t.c.attempts == run.attempts,
    )


def still_ours(store: Store, run: RunRecord, now: dt.datetime, **values: Any) -> bool:
    """Renew our lease (and write `values`) only if no other process took the run over
    since we claimed it: `attempts` is the fencing token (a takeover increments it)."""
    t = tables.scheduled_runs
    with store.engine.begin() as connection:
        updated = connection.execute(
            t.update().where(_fenced(run)).values(lease_until=now + LEASE, updated_at=now, **values)
        ).rowcount
    return updated == 1


def finish(store: Store, run: RunRecord, now: dt.datetime, **values: Any) -> RunRecord | None:
    """Write this attempt's outcome only if the run is still ours (same fencing as
    `still_ours`); None when another process took it over (it may have posted since)."""
    _cut_detail(values)
    t = tables.scheduled_runs
    with store.engine.begin() as connection:
        updated = connection.execute(
            t.update().where(_fenced(run)).values(updated_at=now, **values)
        ).rowcount
    if not updated:
        logger.warning(
            "%s %s: another process took this run over; leaving its record alone",
            run.job,
            run.period,
        )
        return None
    return read_run(store, run.job, run.period)


def record_skipped(store: Store, job: str, period: str, now: dt.datetime, detail: str) -> bool:
    """Record a period that will not be posted (e.g. missed beyond grace). False if the
    period already has a row (another clock ran or skipped it)."""
    try:
        with store.engine.begin() as connection:
            connection.execute(
                tables.scheduled_runs.insert().values(
                    job=job,
                    period=period,
                    status=RunStatus.SKIPPED,
                    detail=detail[:DETAIL_MAX],
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def due_retries(store: Store, now: dt.datetime) -> list[tuple[str, str]]:
    """(job, period) of runs waiting for a retry, or abandoned by a dead process."""
    t = tables.scheduled_runs
    query = sa.select(t.c.job, t.c.period).where(
        t.c.status.in_([RunStatus.RUNNING, RunStatus.WAITING]),
        t.c.lease_until <= now,
        t.c.period.not_like(f"%{NOTICE_SUFFIX}"),
    )
    with store.reading() as connection:
        return [(r.job, r.period) for r in connection.execute(query)]
