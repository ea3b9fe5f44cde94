"""Urgent issues in #analytics: one Slack message per issue, kept current, never repeated.

Three inputs feed this module: GitHub webhooks (bot/urgent/webhook.py), the poller
(bot/urgent/poller.py) and the intake feature, which announces an issue it just filed as
urgent (`announce_issue`, the seam named in bot/features.py). Each hands over a full issue
snapshot; none decides what to post. What the message says is bot/urgent/model.py's
`AlertState`; how it looks, bot/urgent/blocks.py.

The contract, per issue, lives in one `urgent_alerts` row (repo, issue_number):

- `state` is the latest known desired state (`AlertState`, what the message should say),
  written by `record()`. Snapshots older than the stored one are ignored, so a late
  webhook or a slow poll cannot turn a closed alert back to open.
- `state_hash` is the hash of the state the Slack message shows now (NULL before the
  first post). `content_hash(state) != state_hash` means Slack is behind.
- `ts`/`channel` locate the message once posted: later changes are `chat.update`s.
- `lease_until` is held by the one worker talking to Slack for this issue; that worker
  keeps going until Slack shows the latest state, so a change recorded while it works is
  not lost, and nobody else posts meanwhile (two replicas, webhook + poller, retries).

A row is created only when an open issue carries the label; closed or unlabeled issues
never seen as urgent are ignored. Once a row exists, closing, unlabeling, reopening and
relabeling all update that same message.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import IntegrityError

from bot import tables
from bot.github import GitHubIssue
from bot.slack_channels import (
    HISTORY_MAX_PAGES,
    HISTORY_PAGE,
    HistoryTooLong,
    find_message_by_metadata,
)
from bot.slack_channels import channel_id as resolve_channel_id
from bot.slack_text import Message
from bot.urgent.blocks import build_urgent_message
from bot.urgent.model import AlertState, AlertStatus, Recorded, Synced, desired_state

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

# Longer than one Slack call can take (10 s timeout, one 429 retry), so a live worker
# never loses its lease; short enough that a crashed worker's issue is retried soon.
LEASE = dt.timedelta(seconds=120)
# A message still behind its issue after this long is left alone (Slack refused it for a
# week); the issue's next change brings it back.
PENDING_WINDOW = dt.timedelta(days=7)


# --- recording snapshots ------------------------------------------------------------------


def record(
    deps: Deps,
    issue: GitHubIssue,
    *,
    repo: str | None = None,
    closed_by: str | None = None,
    slack_thread: str | None = None,
    gone: AlertStatus | None = None,
) -> Recorded:
    """Store what the message for `issue` should say. Does not talk to Slack.

    `slack_thread`: the thread the issue was filed from, when the caller knows it (intake,
    through `announce_issue`); otherwise the body's link, if any, is used."""
    if issue.pull_request is not None:
        return Recorded.IGNORED
    settings = deps.settings
    repo = repo or settings.github_repo
    desired = desired_state(
        issue,
        repo=repo,
        label=settings.urgent_label,
        closed_by=closed_by,
        slack_thread=slack_thread,
        gone=gone,
    )
    # One retry: two first sightings can race to insert; the loser then updates.
    for _ in range(2):
        try:
            return _record(deps, desired)
        except IntegrityError:
            continue
    return _record(deps, desired)


def _record(deps: Deps, desired: AlertState) -> Recorded:
    table = tables.urgent_alerts
    key = (table.c.repo == desired.repo) & (table.c.issue_number == desired.number)
    now = deps.now()
    with deps.store.engine.begin() as connection:
        row = connection.execute(
            sa.select(table.c.state).where(key).with_for_update()
        ).one_or_none()
        # The day is read under the row lock, so a concurrent `refresh_overdue` cannot be
        # undone by a snapshot whose day was computed before it.
        desired = desired.as_of(deps.settings.today(deps.now()))
        if row is None:
            if desired.status is not AlertStatus.URGENT:
                return Recorded.IGNORED
            connection.execute(
                table.insert().values(
                    repo=desired.repo,
                    issue_number=desired.number,
                    channel=deps.settings.analytics_channel,
                    ts=None,
                    state_hash=None,
                    state=desired.model_dump(mode="json"),
                    lease_until=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            return Recorded.CREATED
        current = AlertState.model_validate(row.state)
        if desired.issue_updated_at < current.issue_updated_at or current.status.gone:
            return Recorded.STALE
        if (
            desired.closed_by is None
            and current.closed_by is not None
            and desired.closed_at == current.closed_at
        ):
            # Webhooks name who closed the issue; the issue list the poller reads doesn't.
            desired = desired.model_copy(update={"closed_by": current.closed_by})
        if desired.slack_thread is None and current.slack_thread is not None:
            # Where the issue came from does not change: a thread intake named (not in the
            # body), or a link since edited out of the body, stays on the message.
            desired = desired.model_copy(update={"slack_thread": current.slack_thread})
        if desired.content_hash() == current.content_hash():
            if desired.issue_updated_at > current.issue_updated_at:
                connection.execute(
                    table.update().where(key).values(state=desired.model_dump(mode="json"))
                )
            return Recorded.UNCHANGED
        connection.execute(
            table.update().where(key).values(state=desired.model_dump(mode="json"), updated_at=now)
        )
        return Recorded.CHANGED


# --- bringing Slack up to date ----------------------------------------------------------------


def sync_alert(deps: Deps, repo: str, number: int) -> Synced:
    """Make the Slack message for one issue show its latest recorded state.

    Safe to call from any number of threads and processes at once: only the lease holder
    talks to Slack, and it loops until nothing is left to do.
    """
    table = tables.urgent_alerts
    key = (table.c.repo == repo) & (table.c.issue_number == number)
    now = deps.now()
    lease = now + LEASE
    with deps.store.engine.begin() as connection:
        taken = connection.execute(
            table.update()
            .where(key)
            .where(sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now))
            .values(lease_until=lease)
        ).rowcount
        exists = taken or connection.execute(sa.select(table.c.repo).where(key)).first()
    if not exists:
        return Synced.MISSING
    if not taken:
        return Synced.BUSY
    result = Synced.CURRENT
    held = True  # until released or lost; otherwise the `finally` below gives it up
    try:
        while True:
            with deps.store.reading() as connection:
                row = connection.execute(sa.select(table).where(key)).one()
            state = AlertState.model_validate(row.state)
            wanted = state.content_hash()
            if wanted != row.state_hash:
                message = build_urgent_message(state, now=deps.now())
                try:
                    channel, ts, posted = _send(deps, row.channel, row.ts, message, state)
                except SlackApiError as exc:
                    error = exc.response.get("error") if exc.response is not None else exc
                    logger.warning(
                        "urgent alert %s#%s: Slack said %s; the next poll retries",
                        repo,
                        number,
                        error,
                    )
                    return Synced.FAILED
                except OSError as exc:  # refused connections and timeouts
                    logger.warning("urgent alert %s#%s: Slack unreachable (%s)", repo, number, exc)
                    return Synced.FAILED
                if not _save_shown(deps, key, lease, channel, ts, wanted, state):
                    # Slack took longer than the lease and another worker may hold it now.
                    # A post stays "in doubt", so whoever syncs next finds this message in
                    # the channel instead of posting a second one.
                    logger.warning(
                        "urgent alert %s#%s: lease lost while talking to Slack; %s not saved, "
                        "the next sync takes over",
                        repo,
                        number,
                        f"new message {ts}" if posted else "update",
                    )
                    return Synced.FAILED
                logger.info(
                    "urgent alert %s#%s %s: %s",
                    repo,
                    number,
                    "posted" if posted else "updated",
                    state.status,
                )
                result = Synced.POSTED if posted or result is Synced.POSTED else Synced.UPDATED
            if _release(deps, key, lease, wanted):
                held = False
                return result
            # A newer state was recorded while we worked: go round again, with the lease
            # extended, so that all the rounds together never outlast it.
            renewed = _renew(deps, key, lease)
            if renewed is None:
                held = False
                logger.warning(
                    "urgent alert %s#%s: lease lost; another worker goes on", repo, number
                )
                return result if result is not Synced.CURRENT else Synced.BUSY
            lease = renewed
    finally:
        if held:
            _release(deps, key, lease, None, force=True)


def _save_shown(
    deps: Deps,
    key,
    lease: dt.datetime,
    channel: str,
    ts: str,
    shown_hash: str,
    state: AlertState,
) -> bool:
    """Record where the message is and what it shows, if we still hold the lease; False
    when we don't (nothing is written). Clears the "post in doubt" marker in the same
    transaction: a crash before this commits leaves the marker for the next attempt."""
    table = tables.urgent_alerts
    with deps.store.engine.begin() as connection:
        saved = connection.execute(
            table.update()
            .where(key)
            .where(table.c.lease_until == lease)
            .values(channel=channel, ts=ts, state_hash=shown_hash, updated_at=deps.now())
        ).rowcount
        if saved:
            connection.execute(
                tables.kv.update()
                .where(tables.kv.c.key == _in_doubt_key(state.repo, state.number))
                .where(tables.kv.c.value != "")
                .values(value="", updated_at=deps.now())
            )
    return bool(saved)


def _renew(deps: Deps, key, lease: dt.datetime) -> dt.datetime | None:
    """Extend our lease from now; None when it is no longer ours."""
    table = tables.urgent_alerts
    renewed = deps.now() + LEASE
    with deps.store.engine.begin() as connection:
        taken = connection.execute(
            table.update()
            .where(key)
            .where(table.c.lease_until == lease)
            .values(lease_until=renewed)
        ).rowcount
    return renewed if taken else None


def _release(deps: Deps, key, lease: dt.datetime, shown_hash: str | None, *, force=False) -> bool:
    """Give up the lease, unless the recorded state moved on from `shown_hash` (then the
    holder keeps it and goes round again). True when released. Reading the state and
    releasing in one transaction is what makes a concurrent `record()` safe: it either
    lands before this read (we go round) or after the release (its own sync takes over)."""
    table = tables.urgent_alerts
    with deps.store.engine.begin() as connection:
        # FOR UPDATE: a concurrent record() waits for this transaction (PostgreSQL; SQLite
        # serialises write transactions anyway).
        row = connection.execute(sa.select(table.c.state).where(key).with_for_update()).one()
        if not force and AlertState.model_validate(row.state).content_hash() != shown_hash:
            return False
        connection.execute(
            table.update().where(key).where(table.c.lease_until == lease).values(lease_until=None)
        )
        return True


# Every alert carries this metadata, so a post whose outcome we never learned (timeout,
# crash right after posting) can be found in the channel instead of posted again.
METADATA_EVENT = "databot_urgent_issue"
# How far before the uncertain attempt to look for it in the channel history (seconds).
IN_DOUBT_WINDOW = 300


def _in_doubt_key(repo: str, number: int) -> str:
    return f"urgent-post-in-doubt:{repo}#{number}"


def _send(
    deps: Deps, channel: str, ts: str | None, message: Message, state: AlertState
) -> tuple[str, str, bool]:
    """Post or update; returns (channel id, ts, whether a new message was posted)."""
    if ts is None:
        found = _find_in_doubt_post(deps, channel, state)
        if found is not None:
            channel, ts = found
            logger.info("urgent alert %s#%s: adopting message %s", state.repo, state.number, ts)
    if ts is not None:
        try:
            response = deps.slack.chat_update(channel=channel, ts=ts, **message.send_kwargs())
            return response["channel"], response["ts"], False
        except SlackApiError as exc:
            # Someone deleted the message: the alert must still be seen, so post it again.
            if exc.response is None or exc.response.get("error") != "message_not_found":
                raise
            logger.info("urgent alert message %s in %s was deleted; posting anew", ts, channel)
    doubt = _in_doubt_key(state.repo, state.number)
    # Written before the call: if we never learn the outcome, the next attempt looks first.
    # Wall-clock time, not deps.now(): it is compared with Slack's message timestamps.
    deps.store.kv_set(doubt, f"{channel} {time.time():.0f}")
    try:
        response = deps.slack.chat_postMessage(
            channel=channel,
            **message.send_kwargs(),
            unfurl_links=False,
            unfurl_media=False,
            metadata={
                "event_type": METADATA_EVENT,
                "event_payload": {"repo": state.repo, "issue": state.number},
            },
        )
    except SlackApiError as exc:
        status = exc.response.status_code if exc.response is not None else 500
        if status < 500:  # Slack answered and refused: certainly not posted
            deps.store.kv_set(doubt, "")
        raise
    # The marker stays until the ts is saved (`_save_shown`, one transaction): dying in
    # between must still leave a trace for the next attempt to look for.
    return response["channel"], response["ts"], True


def _find_in_doubt_post(deps: Deps, channel: str, state: AlertState) -> tuple[str, str] | None:
    """The message an earlier, unconfirmed attempt may have posted for this issue."""
    marker = deps.store.kv_get(_in_doubt_key(state.repo, state.number))
    if not marker:
        return None
    posted_to, _, at = marker.partition(" ")
    try:
        channel_id = resolve_channel_id(deps, posted_to)
    except (SlackApiError, OSError) as exc:
        logger.warning("urgent alert: could not look up %s (%s)", posted_to, exc)
        channel_id = None
    if not channel_id:
        logger.warning(
            "urgent alert %s#%s: an earlier post may have reached %s; set ANALYTICS_CHANNEL "
            "to the channel id so it can be checked. Posting.",
            state.repo,
            state.number,
            posted_to,
        )
        return None
    try:
        ts = find_message_by_metadata(
            deps.slack,
            channel_id,
            event_type=METADATA_EVENT,
            payload={"repo": state.repo, "issue": state.number},
            oldest=int(float(at or 0)) - IN_DOUBT_WINDOW,
        )
    except HistoryTooLong:
        logger.warning(
            "urgent alert %s#%s: an earlier post was not among the last %d messages of %s; posting",
            state.repo,
            state.number,
            HISTORY_MAX_PAGES * HISTORY_PAGE,
            channel_id,
        )
        return None
    except (SlackApiError, OSError) as exc:
        logger.warning(
            "urgent alert %s#%s: could not check history (%s)", state.repo, state.number, exc
        )
        return None
    return (channel_id, ts) if ts is not None else None


def handle_issue(
    deps: Deps,
    issue: GitHubIssue,
    *,
    repo: str | None = None,
    closed_by: str | None = None,
    slack_thread: str | None = None,
    gone: AlertStatus | None = None,
) -> Synced | Recorded:
    """Record a snapshot and bring Slack up to date: the whole path for one change."""
    repo = repo or deps.settings.github_repo
    recorded = record(
        deps, issue, repo=repo, closed_by=closed_by, slack_thread=slack_thread, gone=gone
    )
    if recorded is Recorded.IGNORED:
        return recorded
    # Also for UNCHANGED/STALE: an earlier attempt may have failed to reach Slack.
    return sync_alert(deps, repo, issue.number)


def announce_issue(deps: Deps, number: int, *, slack_thread: str | None = None) -> None:
    """The intake seam: a request just filed as urgent is shown now, not at the next poll
    or webhook. Best effort: those deliver it anyway, and exactly once.

    `slack_thread` is the permalink of the thread it was filed from. Intake also writes it
    into the issue body, where webhooks and polls find it; passing it here keeps it on the
    message even when the body no longer links it."""
    if deps.github is None:
        return
    try:
        handle_issue(deps, deps.github.issue(number), slack_thread=slack_thread)
    except Exception:  # the issue is filed; the alert follows by poll or webhook
        logger.warning("urgent #%s: alert deferred to the poller", number, exc_info=True)


def pending_alerts(deps: Deps, repo: str) -> list[int]:
    """Issues whose message is behind its recorded state and not being worked on.

    Runs on every poll, so it reads only rows that can be behind: never posted, or changed
    within PENDING_WINDOW (every recorded change touches `updated_at`)."""
    table = tables.urgent_alerts
    now = deps.now()
    with deps.store.reading() as connection:
        rows = connection.execute(
            sa.select(table.c.issue_number, table.c.state, table.c.state_hash)
            .where(table.c.repo == repo)
            .where(sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now))
            .where(sa.or_(table.c.state_hash.is_(None), table.c.updated_at >= now - PENDING_WINDOW))
        ).all()
    return [
        row.issue_number
        for row in rows
        if AlertState.model_validate(row.state).content_hash() != row.state_hash
    ]


def overdue_checked_key(repo: str) -> str:
    return f"urgent-overdue-checked:{repo}"


def refresh_overdue(deps: Deps, repo: str) -> list[int]:
    """Mark the alerts whose due date has passed as overdue, so the next sync edits their
    message (and `pending_alerts` lists them: `updated_at` moves). Returns their numbers.

    Called on every poll; the day changes once a day, so only the first call of each
    team-local day reads the alerts. Snapshots recorded later that day get the flag from
    `record()` itself."""
    today = deps.settings.today(deps.now())
    checked = overdue_checked_key(repo)
    if deps.store.kv_get(checked) == today.isoformat():
        return []
    table = tables.urgent_alerts
    with deps.store.reading() as connection:
        rows = connection.execute(
            sa.select(table.c.issue_number, table.c.state).where(table.c.repo == repo)
        ).all()
    behind = [
        row.issue_number
        for row in rows
        if (state := AlertState.model_validate(row.state)).as_of(today).overdue != state.overdue
    ]
    changed = []
    for number in behind:
        key = (table.c.repo == repo) & (table.c.issue_number == number)
        with deps.store.engine.begin() as connection:
            # Re-read under the lock: a snapshot may have been recorded since.
            row = connection.execute(sa.select(table.c.state).where(key).with_for_update()).one()
            state = AlertState.model_validate(row.state)
            refreshed = state.as_of(today)
            if refreshed.overdue == state.overdue:
                continue
            connection.execute(
                table.update()
                .where(key)
                .values(state=refreshed.model_dump(mode="json"), updated_at=deps.now())
            )
            changed.append(number)
    deps.store.kv_set(checked, today.isoformat())
    if changed:
        logger.info("urgent alerts in %s changed overdue on %s: %s", repo, today, changed)
    return changed


def tracked_issue_numbers(deps: Deps, repo: str) -> set[int]:
    table = tables.urgent_alerts
    with deps.store.reading() as connection:
        return set(
            connection.execute(
                sa.select(table.c.issue_number).where(table.c.repo == repo)
            ).scalars()
        )


def alert_states(deps: Deps, repo: str) -> list[AlertState]:
    table = tables.urgent_alerts
    with deps.store.reading() as connection:
        rows = connection.execute(sa.select(table.c.state).where(table.c.repo == repo)).all()
    return [AlertState.model_validate(row.state) for row in rows]
