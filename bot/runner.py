"""Runs a scheduled job for one period, exactly once: claim -> build -> post -> record.

The `scheduled_runs` row, keyed (job, period), is claimed with an INSERT that fails on
conflict before anything is built or posted, so two clock processes, a restart or a manual
`databot post` racing the clock cannot post twice. A claim carries a lease: a run whose
process died mid-way (status running, lease expired) is taken over by the next sweep, after
checking Slack for a message it may already have posted (the message carries the key in its
metadata). Retries (NotReady, failed builds) keep the row in `waiting` with `lease_until` as
the next attempt time; a conditional UPDATE hands each retry to exactly one process.

A run that cannot post tells the owner (settings.owner_channel); every outcome is in the
table, which `databot posts` lists.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import sqlalchemy as sa
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import IntegrityError

from bot import tables
from bot.errors import DatabotError
from bot.jobs import JobOptions, NotReady, Post, ScheduledJob

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

# Longer than any build + post takes; a run still "running" after this died with its process.
LEASE = dt.timedelta(minutes=15)
METADATA_EVENT = "databot_scheduled_post"
NOTICE_SUFFIX = ":notice"
DETAIL_MAX = 500


class RunStatus(StrEnum):
    RUNNING = "running"  # claimed; a process is building/posting it (lease_until bounds it)
    WAITING = "waiting"  # not ready / build failed; next attempt at lease_until
    POSTED = "posted"
    SKIPPED = "skipped"  # missed beyond the grace period, or never became ready
    FAILED = "failed"  # could not post; the owner was told


FINAL = frozenset({RunStatus.POSTED, RunStatus.SKIPPED, RunStatus.FAILED})


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
    def from_row(cls, row) -> RunRecord:
        data = dict(row._mapping)
        data["status"] = RunStatus(data["status"])
        return cls(**data)


# --- the table -------------------------------------------------------------------------


def _key(job: str, period: str):
    t = tables.scheduled_runs
    return sa.and_(t.c.job == job, t.c.period == period)


def get_run(store, job: str, period: str) -> RunRecord | None:
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(tables.scheduled_runs).where(_key(job, period))).first()
    return RunRecord.from_row(row) if row else None


def list_runs(store, *, job: str | None = None, limit: int = 50) -> list[RunRecord]:
    t = tables.scheduled_runs
    query = sa.select(t).order_by(t.c.created_at.desc(), t.c.job, t.c.period).limit(limit)
    if job:
        query = query.where(t.c.job == job)
    with store.engine.connect() as connection:
        return [RunRecord.from_row(r) for r in connection.execute(query)]


def claim(
    store,
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
        return get_run(store, job, period), None
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
    return get_run(store, job, period), before.status


def _record(store, job: str, period: str, now: dt.datetime, **values) -> RunRecord:
    if values.get("detail"):
        values["detail"] = str(values["detail"])[:DETAIL_MAX]
    with store.engine.begin() as connection:
        connection.execute(
            tables.scheduled_runs.update().where(_key(job, period)).values(updated_at=now, **values)
        )
    return get_run(store, job, period)


def _still_ours(store, record: RunRecord, now: dt.datetime, **values) -> bool:
    """Renew our lease (and write `values`) only if no other process took the run over
    since we claimed it: `attempts` is the fencing token (a takeover increments it)."""
    t = tables.scheduled_runs
    with store.engine.begin() as connection:
        updated = connection.execute(
            t.update()
            .where(
                _key(record.job, record.period),
                t.c.status == RunStatus.RUNNING,
                t.c.attempts == record.attempts,
            )
            .values(lease_until=now + LEASE, updated_at=now, **values)
        ).rowcount
    return updated == 1


def record_skipped(store, job: str, period: str, now: dt.datetime, detail: str) -> bool:
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


def due_retries(store, now: dt.datetime) -> list[tuple[str, str]]:
    """(job, period) of runs waiting for a retry, or abandoned by a dead process."""
    t = tables.scheduled_runs
    query = sa.select(t.c.job, t.c.period).where(
        t.c.status.in_([RunStatus.RUNNING, RunStatus.WAITING]),
        t.c.lease_until <= now,
        t.c.period.not_like(f"%{NOTICE_SUFFIX}"),
    )
    with store.engine.connect() as connection:
        return [(r.job, r.period) for r in connection.execute(query)]


# --- running ---------------------------------------------------------------------------


def run_period(
    deps: Deps, job: ScheduledJob, period: str, *, manual: bool = False
) -> RunRecord | None:
    """Run `job` for `period` unless it is done or another process has it.

    Returns the record as this run left it, or None when it was not ours to run (the caller
    can read the current record with `get_run`). `manual` (databot post) may re-run a
    period that failed or was skipped, and reports errors to the person instead of the owner.
    """
    name = str(job.id)
    now = deps.now()
    retake = frozenset({RunStatus.FAILED, RunStatus.SKIPPED}) if manual else frozenset()
    claimed = claim(deps.store, name, period, now, retake=retake)
    if claimed is None:
        return None
    record, before = claimed
    opts = JobOptions.of(job, deps.settings)

    if before == RunStatus.RUNNING and record.channel:
        # The last process died after choosing a channel: it may have posted already.
        found = _find_posted(deps, record)
        if found is not None:
            channel, ts = found
            logger.info("%s %s was posted before a crash; recording it", name, period)
            return _record(
                deps.store,
                name,
                period,
                now,
                status=RunStatus.POSTED,
                channel=channel,
                ts=ts,
                permalink=_permalink(deps, channel, ts),
                lease_until=None,
                detail="recovered after a crash",
            )

    try:
        result = job.build(deps, period)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded and reported
        return _build_failed(deps, job, opts, record, exc, manual=manual)

    if isinstance(result, NotReady):
        return _not_ready(deps, job, opts, record, result, manual=manual)
    return _post(deps, job, opts, record, result, manual=manual)


def preview(deps: Deps, job: ScheduledJob, period: str) -> Post | NotReady:
    """`--dry-run`: build only; nothing is claimed, posted or recorded."""
    return job.build(deps, period)


def _end_of_day(deps: Deps, when: dt.datetime) -> dt.datetime:
    tz = deps.settings.tz
    day = when.astimezone(tz).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)


def _build_failed(deps, job, opts, record, exc, *, manual) -> RunRecord:
    name, period, now = str(job.id), record.period, deps.now()
    reason = exc.user_message if isinstance(exc, DatabotError) else f"{type(exc).__name__}"
    if not isinstance(exc, DatabotError):
        logger.error("%s %s: building the message failed", name, period, exc_info=exc)
    else:
        logger.warning("%s %s: building the message failed: %s", name, period, reason)
    next_at = now + opts.retry_every
    # Transient failures (GitHub, the warehouse) get the same window as late data.
    give_up_at = min(record.created_at + opts.give_up_after, _end_of_day(deps, record.created_at))
    if not manual and next_at <= give_up_at:
        return _record(
            deps.store,
            name,
            period,
            now,
            status=RunStatus.WAITING,
            lease_until=next_at,
            detail=f"attempt {record.attempts} failed: {reason}; retrying",
        )
    detail = f"could not build the message: {reason}"
    rec = _record(
        deps.store, name, period, now, status=RunStatus.FAILED, lease_until=None, detail=detail
    )
    if manual:
        raise DatabotError(f"{opts.title} for {period} failed: {reason}") from exc
    tell_owner(deps, f"{opts.title} for {period} was not posted: {reason}")
    return rec


def _not_ready(deps, job, opts, record, result: NotReady, *, manual) -> RunRecord:
    name, period, now = str(job.id), record.period, deps.now()
    give_up_at = record.created_at + opts.give_up_after
    end_of_day = _end_of_day(deps, record.created_at)
    next_at = min(now + opts.retry_every, end_of_day)
    if now >= end_of_day:
        rec = _record(
            deps.store,
            name,
            period,
            now,
            status=RunStatus.SKIPPED,
            lease_until=None,
            detail=f"not ready by the end of the day: {result.reason}",
        )
        tell_owner(
            deps,
            f"{opts.title} for {period} was not posted: the data was not ready "
            f"by the end of the day ({result.reason}).",
        )
        return rec
    if now >= give_up_at:
        _post_notice_once(deps, job, opts, period, result)
    logger.info("%s %s not ready (%s); next try %s", name, period, result.reason, next_at)
    return _record(
        deps.store,
        name,
        period,
        now,
        status=RunStatus.WAITING,
        lease_until=next_at,
        detail=f"not ready: {result.reason}",
    )


def _post_notice_once(deps, job, opts, period: str, result: NotReady) -> None:
    name, now = str(job.id), deps.now()
    notice_period = period + NOTICE_SUFFIX
    if claim(deps.store, name, notice_period, now) is None:
        return
    channel = result.channel or getattr(job, "channel", None) or deps.settings.owner_channel
    if not channel:
        _record(
            deps.store,
            name,
            notice_period,
            now,
            status=RunStatus.SKIPPED,
            lease_until=None,
            detail="no channel for the notice",
        )
        return
    text = (
        f":hourglass_flowing_sand: {opts.title} for {period} is late: {result.reason}. "
        "It will be posted here as soon as the data is complete."
    )
    try:
        response = deps.slack.chat_postMessage(channel=channel, text=text, unfurl_links=False)
    except SlackApiError as exc:
        error = exc.response.get("error", "error")
        _record(
            deps.store,
            name,
            notice_period,
            now,
            status=RunStatus.FAILED,
            lease_until=None,
            detail=f"Slack said {error}",
        )
        tell_owner(deps, f"The 'late' notice for {opts.title} {period} failed: Slack said {error}.")
        return
    _record(
        deps.store,
        name,
        notice_period,
        now,
        status=RunStatus.POSTED,
        channel=response["channel"],
        ts=response["ts"],
        permalink=_permalink(deps, response["channel"], response["ts"]),
        lease_until=None,
        detail=f"not ready: {result.reason}",
    )


def _post(deps, job, opts, record, post: Post, *, manual) -> RunRecord:
    name, period = str(job.id), record.period
    # Written before posting: if this process dies mid-post, the next one knows where to
    # look for the message before posting again.
    if not _still_ours(deps.store, record, deps.now(), channel=post.channel[:50]):
        logger.warning("%s %s: another process took this run over; not posting", name, period)
        return get_run(deps.store, name, period)
    try:
        response = deps.slack.chat_postMessage(
            channel=post.channel,
            text=post.text,
            blocks=post.blocks or None,
            unfurl_links=False,
            unfurl_media=False,
            metadata={
                "event_type": METADATA_EVENT,
                "event_payload": {"job": name, "period": period},
            },
        )
    except SlackApiError as exc:
        error = exc.response.get("error", "error")
        return _post_failed(deps, opts, record, f"Slack said {error}", manual=manual)
    except Exception as exc:  # noqa: BLE001 - timeouts, connection errors
        logger.error("%s %s: posting failed", name, period, exc_info=exc)
        return _post_failed(
            deps, opts, record, f"could not reach Slack ({type(exc).__name__})", manual=manual
        )
    channel, ts = response["channel"], response["ts"]
    detail = None
    if post.files:
        try:
            deps.slack.files_upload_v2(
                channel=channel,
                thread_ts=ts,
                file_uploads=[
                    {"content": f.content, "filename": f.filename, "title": f.title}
                    for f in post.files
                ],
            )
        except Exception as exc:  # noqa: BLE001 - the message is out; report the files
            error = (
                exc.response.get("error", "error")
                if isinstance(exc, SlackApiError)
                else type(exc).__name__
            )
            detail = f"posted, but attaching the files failed ({error})"
            tell_owner(deps, f"{opts.title} for {period}: {detail}.")
    rec = _record(
        deps.store,
        name,
        period,
        deps.now(),
        status=RunStatus.POSTED,
        channel=channel,
        ts=ts,
        permalink=_permalink(deps, channel, ts),
        lease_until=None,
        detail=detail,
    )
    logger.info("%s %s posted to %s", name, period, channel)
    return rec


def _post_failed(deps, opts, record, reason: str, *, manual) -> RunRecord:
    rec = _record(
        deps.store,
        record.job,
        record.period,
        deps.now(),
        status=RunStatus.FAILED,
        lease_until=None,
        detail=reason,
    )
    logger.warning("%s %s not posted: %s", record.job, record.period, reason)
    if manual:
        raise DatabotError(f"{opts.title} for {record.period} was not posted: {reason}")
    tell_owner(deps, f"{opts.title} for {record.period} was not posted: {reason}.")
    return rec


def _permalink(deps, channel: str, ts: str) -> str | None:
    try:
        return deps.slack.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]
    except Exception as exc:  # noqa: BLE001 - the post is out; a missing link is cosmetic
        logger.warning("no permalink for %s/%s: %s", channel, ts, type(exc).__name__)
        return None


def _find_posted(deps, record: RunRecord) -> tuple[str, str] | None:
    """The message an earlier attempt posted for this (job, period), if Slack has it."""
    try:
        response = deps.slack.conversations_history(
            channel=record.channel,
            # A day of slack for clock skew: the metadata match is what identifies the post.
            oldest=f"{(record.created_at - dt.timedelta(days=1)).timestamp():.6f}",
            include_all_metadata=True,
            limit=200,
        )
    except Exception as exc:  # noqa: BLE001 - cannot tell: post again rather than never
        logger.warning(
            "%s %s: could not check Slack for an earlier post (%s)",
            record.job,
            record.period,
            type(exc).__name__,
        )
        return None
    for message in response.get("messages", []):
        meta = message.get("metadata") or {}
        payload = meta.get("event_payload") or {}
        if (
            meta.get("event_type") == METADATA_EVENT
            and payload.get("job") == record.job
            and payload.get("period") == record.period
        ):
            return response.get("channel") or record.channel, message["ts"]
    return None


def tell_owner(deps: Deps, text: str) -> None:
    """Report a scheduled post that did not go out: never fail silently."""
    owner = deps.settings.owner_channel
    logger.warning("owner notice: %s", text)
    if not owner:
        logger.error("OWNER_CHANNEL is not set, so nobody was told: %s", text)
        return
    try:
        deps.slack.chat_postMessage(channel=owner, text=f":warning: {text}", unfurl_links=False)
    except Exception as exc:  # noqa: BLE001 - last resort is the log
        logger.error("could not tell the owner (%s): %s", type(exc).__name__, text)
