"""Runs a scheduled job for one period, exactly once: claim -> build -> post -> record.

The `scheduled_runs` row (bot/scheduling/runs.py), keyed (job, period), is claimed with an
INSERT that fails on conflict before anything is built or posted, so two clock processes, a
restart or a manual `databot post` racing the clock cannot post twice. A claim carries a
lease: a run whose process died mid-way (status running, lease expired) is taken over by the
next sweep, after checking Slack for a message it may already have posted (the message
carries the key in its metadata). Retries (NotReady, failed builds) keep the row in
`waiting` with `lease_until` as the next attempt time; a conditional UPDATE hands each retry
to exactly one process.

Before posting, the run records the conversation ID it posts to (a configured `#name` is
resolved with conversations.list, cached in `kv`): Slack's history method takes only IDs.
If a post's outcome is unknown (timeout, connection error, Slack 5xx) the row stays running,
so recovery checks Slack before posting again; a run that cannot check (e.g. the bot
posts to a public channel it was never invited to, so it may not read it) is not re-posted
blindly: it is recorded as failed with "may have been posted" and the owner is told.

Every write of an outcome is fenced by `attempts` (`runs.finish`): a process that outlived
its lease (slow build) leaves alone a run another process took over.

A run that cannot post tells the owner (settings.owner_channel); every outcome is in the
table, which `databot posts` lists.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.errors import DatabotError
from bot.scheduling import runs
from bot.scheduling.job import JobOptions, NotReady, Post, ScheduledJob, Skip
from bot.scheduling.runs import LEASE, NOTICE_SUFFIX, RunRecord, RunStatus
from bot.slack_channels import (
    CONVERSATION_ID,
    HistoryTooLong,
    channel_id,
    find_message_by_metadata,
)
from bot.slack_post import deliver, outcome_unknown, post_once, redeliver_due, slack_error
from bot.slack_text import DEMO_DATA_NOTE, demo_data_block

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

METADATA_EVENT = "databot_scheduled_post"
# Keys of the runner's other messages (bot/slack_post.py: posted once, also when Slack's
# answer is lost). Owner notices are redelivered by the clock's sweep.
NOTICE_KEY = "scheduled-notice:{job}:{period}"
OWNER_KEY = "scheduled-owner:{job}:{period}:{what}"
OWNER_PREFIX = "scheduled-owner:"
# Slack errors after which a later check may succeed: keep the run and check again.
_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable"}
)


def run_period(
    deps: Deps, job: ScheduledJob, period: str, *, manual: bool = False
) -> RunRecord | None:
    """Run `job` for `period` unless it is done or another process has it.

    Returns the record as this run left it, or None when it was not ours to run (the caller
    can read the current record with `runs.get_run`). `manual` (databot post) may re-run a
    period that failed or was skipped, and reports errors to the person instead of the owner.
    """
    name = str(job.id)
    now = deps.now()
    retake = frozenset({RunStatus.FAILED, RunStatus.SKIPPED}) if manual else frozenset()
    claimed = runs.claim(deps.store, name, period, now, retake=retake)
    if claimed is None:
        return None
    record, before = claimed
    opts = JobOptions.of(job, deps.settings)

    if record.channel and before in (RunStatus.RUNNING, RunStatus.FAILED):
        # The last attempt chose a channel and may have posted: it died mid-post, its
        # post timed out, or (rows written before this check existed) a timeout was
        # recorded as failed. Look before posting again.
        try:
            found = _find_posted(deps, record, record.channel)
        except _CannotCheck as exc:
            return _cannot_check(deps, opts, record, exc, manual=manual)
        if found is not None:
            channel, ts = found
            logger.info("%s %s was posted before a crash; recording it", name, period)
            return runs.record(
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
        result = _build(deps, job, period)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded and reported
        return _build_failed(deps, job, opts, record, exc, manual=manual)

    if isinstance(result, NotReady):
        return _not_ready(deps, job, opts, record, result, manual=manual)
    if isinstance(result, Skip):
        logger.info("%s %s: nothing to post (%s)", name, period, result.reason)
        rec = runs.finish(
            deps.store,
            record,
            deps.now(),
            status=RunStatus.SKIPPED,
            lease_until=None,
            channel=None,
            detail=f"nothing to post: {result.reason}",
        )
        return rec or runs.read_run(deps.store, name, period)
    return _post(deps, job, opts, record, result, manual=manual)


def preview(deps: Deps, job: ScheduledJob, period: str) -> Post | NotReady | Skip:
    """`--dry-run`: build only; nothing is claimed, posted or recorded."""
    return _build(deps, job, period)


def _build(deps: Deps, job: ScheduledJob, period: str) -> Post | NotReady | Skip:
    """The job's post; one built from the demo warehouse is marked as demo data."""
    result = job.build(deps, period)
    reads_warehouse = JobOptions.of(job, deps.settings).reads_warehouse
    if isinstance(result, Post) and reads_warehouse and deps.settings.uses_demo_warehouse:
        if result.blocks:
            return result.model_copy(update={"blocks": [*result.blocks, demo_data_block()]})
        return result.model_copy(update={"text": f"{result.text}\n{DEMO_DATA_NOTE}"})
    return result


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
        rec = runs.finish(
            deps.store,
            record,
            now,
            status=RunStatus.WAITING,
            lease_until=next_at,
            channel=None,
            detail=f"attempt {record.attempts} failed: {reason}; retrying",
        )
        return rec or runs.read_run(deps.store, name, period)
    return _fail(
        deps,
        opts,
        record,
        detail=f"could not build the message: {reason}",
        manual_text=f"failed: {reason}",
        owner_text=f"was not posted: {reason}",
        manual=manual,
        cause=exc,
    )


def _not_ready(deps, job, opts, record, result: NotReady, *, manual) -> RunRecord:
    name, period, now = str(job.id), record.period, deps.now()
    give_up_at = record.created_at + opts.give_up_after
    end_of_day = _end_of_day(deps, record.created_at)
    next_at = min(now + opts.retry_every, end_of_day)
    if now >= end_of_day:
        rec = runs.finish(
            deps.store,
            record,
            now,
            status=RunStatus.SKIPPED,
            lease_until=None,
            channel=None,
            detail=f"not ready by the end of the day: {result.reason}",
        )
        if rec is None:
            return runs.read_run(deps.store, name, period)
        tell_owner(
            deps,
            f"{opts.title} for {period} was not posted: the data was not ready "
            f"by the end of the day ({result.reason}).",
            key=OWNER_KEY.format(job=name, period=period, what="not-ready"),
        )
        return rec
    # Recorded before the notice: a run taken over meanwhile may have posted the numbers,
    # and a "late" notice after them would be wrong.
    rec = runs.finish(
        deps.store,
        record,
        now,
        status=RunStatus.WAITING,
        lease_until=next_at,
        channel=None,
        detail=f"not ready: {result.reason}",
    )
    if rec is None:
        return runs.read_run(deps.store, name, period)
    if now >= give_up_at:
        _post_notice_once(deps, job, opts, period, result)
    logger.info("%s %s not ready (%s); next try %s", name, period, result.reason, next_at)
    return rec


def _post_notice_once(deps, job, opts, period: str, result: NotReady) -> None:
    name, now = str(job.id), deps.now()
    notice_period = period + NOTICE_SUFFIX
    if runs.claim(deps.store, name, notice_period, now) is None:
        return
    channel = result.channel or getattr(job, "channel", None) or deps.settings.owner_channel
    if not channel:
        runs.record(
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
        sent = post_once(
            deps,
            NOTICE_KEY.format(job=name, period=period),
            channel=channel,
            text=text,
            unfurl_links=False,
        )
    except Exception as exc:  # noqa: BLE001 - unknown outcomes are retried, refusals reported
        if outcome_unknown(exc):
            # It may be out: the notice row keeps its lease, and whichever run takes it over
            # after that looks for the notice in Slack before posting it.
            logger.warning(
                "%s %s: the 'late' notice may have been posted (%s); checking later",
                name,
                period,
                slack_error(exc),
            )
            return
        error = slack_error(exc)
        runs.record(
            deps.store,
            name,
            notice_period,
            now,
            status=RunStatus.FAILED,
            lease_until=None,
            detail=f"Slack said {error}",
        )
        tell_owner(
            deps,
            f"The 'late' notice for {opts.title} {period} failed: Slack said {error}.",
            key=OWNER_KEY.format(job=name, period=period, what="notice-failed"),
        )
        return
    runs.record(
        deps.store,
        name,
        notice_period,
        now,
        status=RunStatus.POSTED,
        channel=sent.channel,
        ts=sent.ts,
        permalink=_permalink(deps, sent.channel, sent.ts),
        lease_until=None,
        detail=f"not ready: {result.reason}",
    )


def _post(deps, job, opts, record, post: Post, *, manual) -> RunRecord:
    name, period = str(job.id), record.period
    # Posted to, and recorded as, the conversation ID: only an ID lets a later process
    # read the channel's history to find this message.
    target = _target_channel(deps, post.channel)
    # Written before posting: if this process dies mid-post, the next one knows where to
    # look for the message before posting again.
    if not runs.still_ours(deps.store, record, deps.now(), channel=target[:50]):
        logger.warning("%s %s: another process took this run over; not posting", name, period)
        return runs.read_run(deps.store, name, period)
    try:
        response = deps.slack.chat_postMessage(
            channel=target,
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
        if exc.response.status_code >= 500:  # Slack failed mid-request: it may have posted
            return _post_unknown(
                deps, record, post.channel, f"Slack answered HTTP {exc.response.status_code}"
            )
        return _post_failed(deps, opts, record, f"Slack said {error}", manual=manual)
    except Exception as exc:
        # The request may have reached Slack and the message gone out: not "not posted".
        logger.error("%s %s: posting failed", name, period, exc_info=exc)
        return _post_unknown(
            deps, record, post.channel, f"could not reach Slack ({type(exc).__name__})"
        )
    channel, ts = response["channel"], response["ts"]
    detail = None
    if post.files:
        try:
            deps.slack.files_upload_v2(
                channel=channel,
                thread_ts=ts,
                file_uploads=[
                    {
                        "content": f.content,
                        "filename": f.filename,
                        "title": f.title,
                        **({"alt_txt": f.alt_text} if f.alt_text else {}),
                    }
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
            tell_owner(
                deps,
                f"{opts.title} for {period}: {detail}.",
                key=OWNER_KEY.format(job=name, period=period, what=f"files-{record.attempts}"),
            )
    rec = runs.record(
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
    """Slack refused the post (an API error): it is certainly not out."""
    logger.warning("%s %s not posted: %s", record.job, record.period, reason)
    return _fail(
        deps,
        opts,
        record,
        detail=reason,
        manual_text=f"was not posted: {reason}",
        owner_text=f"was not posted: {reason}.",
        manual=manual,
    )


def _fail(
    deps, opts, record, *, detail: str, manual_text: str, owner_text: str, manual: bool, cause=None
) -> RunRecord:
    """Record the run as failed, if it is still ours, and tell a person: the one running
    `databot post` by hand (an error), or the owner. The channel is cleared: a re-run
    posts without looking for an earlier message first."""
    rec = runs.finish(
        deps.store,
        record,
        deps.now(),
        status=RunStatus.FAILED,
        lease_until=None,
        channel=None,
        detail=detail,
    )
    if rec is None:
        return runs.read_run(deps.store, record.job, record.period)
    if manual:
        raise DatabotError(f"{opts.title} for {record.period} {manual_text}") from cause
    tell_owner(
        deps,
        f"{opts.title} for {record.period} {owner_text}",
        key=OWNER_KEY.format(job=record.job, period=record.period, what=f"failed-{rec.attempts}"),
    )
    return rec


def _post_unknown(deps, record, channel: str, reason: str) -> RunRecord:
    """The post may or may not be out. The run stays running with its channel, so when its
    lease expires the sweep (or `databot post`) checks Slack before posting again."""
    rec = runs.finish(
        deps.store,
        record,
        deps.now(),
        detail=f"{reason}; it may have been posted: after {LEASE.seconds // 60} min databot "
        f"checks {channel} and posts it only if it is not there",
    )
    logger.warning("%s %s: %s; will check Slack before retrying", record.job, record.period, reason)
    return rec or runs.read_run(deps.store, record.job, record.period)


class _CannotCheck(Exception):
    """Slack's history could not be read, so whether a post went out is unknown."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


def _cannot_check(deps, opts, record, exc: _CannotCheck, *, manual) -> RunRecord:
    name, period, now = record.job, record.period, deps.now()
    where = _channel_label(deps, record.channel)
    logger.warning("%s %s: could not check %s for an earlier post: %s", name, period, where, exc)
    if exc.transient and now < _end_of_day(deps, record.created_at):
        # Keep the run (and its claim's fresh lease): the sweep checks again later.
        rec = runs.finish(
            deps.store,
            record,
            now,
            detail=f"could not check {where} for an earlier post ({exc.reason}); trying again",
        )
        return rec or runs.read_run(deps.store, name, period)
    detail = (
        f"may have been posted: databot could not check {where} ({exc.reason}). "
        f"Check {where}; if it is not there, `databot post {name}` posts it."
    )
    # The channel is cleared (in _fail): a person has been asked to look, so a re-run posts.
    return _fail(
        deps, opts, record, detail=detail, manual_text=detail, owner_text=detail, manual=manual
    )


def _target_channel(deps, channel: str) -> str:
    """The conversation ID to post `channel` to; the configured value when Slack does not
    list it (e.g. a private channel databot is not in: posting then fails clearly)."""
    try:
        found = channel_id(deps, channel)
    except Exception as exc:  # noqa: BLE001 - posting by name still works; only recovery suffers
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
        logger.warning("could not look up %s (%s); posting by name", channel, error)
        return channel
    if found is None:
        logger.warning("%s is not a channel databot can list; posting by name", channel)
        return channel
    return found


def _channel_label(deps, channel: str | None) -> str:
    """`#name` for messages to people (best effort: the ID when Slack will not say)."""
    if not channel or not CONVERSATION_ID.match(channel):
        return channel or "the channel"
    try:
        return "#" + deps.slack.conversations_info(channel=channel)["channel"]["name"]
    except Exception:  # noqa: BLE001 - a label is not worth failing for
        return channel


def _permalink(deps, channel: str, ts: str) -> str | None:
    try:
        return deps.slack.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]
    except Exception as exc:  # noqa: BLE001 - the post is out; a missing link is cosmetic
        logger.warning("no permalink for %s/%s: %s", channel, ts, type(exc).__name__)
        return None


def _find_posted(deps, record: RunRecord, recorded: str) -> tuple[str, str] | None:
    """(channel ID, ts) of the message an earlier attempt posted for this (job, period) to
    the channel it `recorded`; None when Slack's history shows there is none. Raises
    _CannotCheck when the history cannot be read (then nobody knows, and posting again
    could duplicate it)."""
    try:
        # Rows written before channels were resolved hold the configured #name.
        channel = channel_id(deps, recorded)
    except SlackApiError as exc:
        error = exc.response.get("error", "error")
        raise _CannotCheck(f"Slack said {error}", transient=error in _TRANSIENT_ERRORS) from exc
    except Exception as exc:
        raise _CannotCheck(f"could not reach Slack ({type(exc).__name__})", transient=True) from exc
    if channel is None:
        raise _CannotCheck(f"{recorded} is not a channel databot can list", transient=False)
    try:
        ts = find_message_by_metadata(
            deps.slack,
            channel,
            event_type=METADATA_EVENT,
            payload={"job": record.job, "period": record.period},
            # A day of slack for clock skew: the metadata match identifies the post.
            oldest=(record.created_at - dt.timedelta(days=1)).timestamp(),
        )
    except SlackApiError as exc:
        # not_in_channel: databot posts to public channels without joining them
        # (chat:write.public) but may only read the history of channels it is in.
        error = exc.response.get("error", "error")
        transient = error in _TRANSIENT_ERRORS or exc.response.status_code >= 500
        raise _CannotCheck(f"Slack said {error}", transient=transient) from exc
    except HistoryTooLong as exc:
        raise _CannotCheck(
            "too many messages in the channel to check them all", transient=False
        ) from exc
    except Exception as exc:
        raise _CannotCheck(f"could not reach Slack ({type(exc).__name__})", transient=True) from exc
    return (channel, ts) if ts is not None else None


def tell_owner(deps: Deps, text: str, *, key: str) -> None:
    """Report a scheduled post that did not go out: never fail silently. Posted once under
    `key` (OWNER_KEY): a notice whose post may not have gone out is tried again by the
    clock's sweep (`redeliver_owner_notices`), which looks for it in Slack first."""
    owner = deps.settings.owner_channel
    logger.warning("owner notice: %s", text)
    if not owner:
        logger.error("OWNER_CHANNEL is not set, so nobody was told: %s", text)
        return
    if deliver(deps, key, channel=owner, text=f":warning: {text}", unfurl_links=False) is None:
        logger.error("could not tell the owner yet (retried by the sweep): %s", text)


def redeliver_owner_notices(deps: Deps) -> int:
    """Owner notices whose post may not have gone out, tried again (after looking)."""
    return redeliver_due(deps, OWNER_PREFIX)
