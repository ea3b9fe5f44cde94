"""Posting a message once under a key, even when Slack's answer is lost.

A chat.postMessage can reach Slack and post while its answer never arrives (connection
reset after the post, HTTP 500 after the post, no answer before the client's timeout).
Posting again on such an error is a second message. The contract, for every message the
bot may send again after a retry (intake replies and DMs, notices to the owner, ...):

- The caller names the message with a key K, unique to that one message and stable across
  retries and processes (e.g. `intake:filed:<request id>`).
- `post_once(deps, K, channel=..., thread_ts=..., **message)` writes an "in doubt" marker
  (kv `slack-post:K`: where, and since when) in the state database BEFORE the call, and
  posts with message metadata `{"event_type": "databot_message", "event_payload":
  {"key": K}}`. On success the marker records the conversation ID and ts ("sent").
- A later call under K (any process) with the marker still in doubt first looks for the
  message by its metadata: in the thread (conversations.replies) for a thread reply, in the
  channel's history (conversations.history) for a top-level post, in the DM (opened with
  conversations.open) for a user ID; it adopts the message it finds instead of posting. A
  "sent" marker is adopted without asking Slack.
- An error Slack answered (an API error with HTTP status below 500: `channel_not_found`,
  `ratelimited`, ...) means Slack did not post: the marker says so and the next call posts
  without looking. Any other failure may have posted: the marker stays in doubt.
- When Slack cannot be asked (a 5xx or an unreachable Slack during the look) the error is
  raised and nothing is posted: the caller retries later. When the look is refused for
  good (e.g. `not_in_channel`: databot may post to public channels it cannot read) or the
  history is too long to search, the message is posted again, with a warning: a second
  notice is better than none.
- Callers keep one sender per key at a time (their own lease or claim). For messages that
  have no retry loop of their own, `deliver()` is fire-and-forget: a message whose outcome
  is unknown, or that Slack refused for a moment, stays due (kv `slack-post-due:K`, with the
  message) and `redeliver_due(deps, prefix)`, called by the feature's background loop,
  retries it with backoff, one process per message (a compare-and-set on the due row).

Scheduled posts (bot/scheduling/runner.py) and urgent alerts (bot/urgent/alerts.py) keep
their own keys and metadata event types (renaming them would break exactly-once across a
deploy) and share the lookup, `bot.slack_channels.find_message_by_metadata`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from slack_sdk.errors import SlackApiError

from bot import tables
from bot.slack_channels import HistoryTooLong, channel_id, find_message_by_metadata

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

EVENT_TYPE = "databot_message"
MARKER_KEY = "slack-post:{key}"
DUE_KEY = "slack-post-due:{key}"
# How far before the in-doubt attempt the look starts (seconds): clock skew between us and
# Slack. The metadata match, not the time, identifies the message.
LOOK_BACK_SECONDS = 300
# deliver(): first retry after 60 s (longer than the client's timeout, so a retry never
# races an attempt still waiting for its answer), doubling to 30 min, 10 tries in all.
REDELIVER_FIRST_SECONDS = 60.0
REDELIVER_MAX_SECONDS = 30 * 60.0
REDELIVER_MAX_TRIES = 10
# Refusals a later try may get past; any other refusal is final.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Refusals that say the conversation cannot be posted in any more (archived, databot
# removed, the thread deleted): a message queued with a `fallback` goes there instead.
UNREACHABLE_ERRORS = frozenset(
    {"channel_not_found", "is_archived", "not_in_channel", "thread_not_found"}
)
FALLBACK_SUFFIX = ":dm"
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


@dataclass(frozen=True)
class Sent:
    """Where the message is: conversation ID and ts."""

    channel: str
    ts: str
    adopted: bool = False  # posted by an earlier attempt, not by this call


def slack_error(exc: BaseException) -> str:
    """Slack's error code, or the exception's type when Slack did not answer."""
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    return type(exc).__name__


def outcome_unknown(exc: BaseException) -> bool:
    """Whether Slack may have acted although the call raised: no answer (timeout,
    connection error) or a 5xx. An API error Slack answered below 500 did not act."""
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return exc.response.status_code >= 500
    return True


def transient(exc: BaseException) -> bool:
    """Whether trying again later may succeed."""
    return outcome_unknown(exc) or slack_error(exc) in TRANSIENT_ERRORS


def metadata(key: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"key": key}}


def post_once(
    deps: Deps, key: str, *, channel: str, thread_ts: str | None = None, **message: Any
) -> Sent:
    """Post `message` (chat.postMessage keyword arguments) to `channel` (a conversation ID,
    a `#name` or a user ID for a DM), in the thread `thread_ts` if given, unless an
    earlier attempt under `key` posted it: then that message is returned (`adopted`).
    Raises what chat.postMessage raised; `outcome_unknown(exc)` says whether it may be out.
    """
    marker = _read(deps, key)
    if marker is not None and marker.get("state") == "sent":
        return Sent(marker["channel"], marker["ts"], adopted=True)
    if marker is not None and marker.get("state") == "doubt":
        found = _look(deps, key, marker)
        if found is not None:
            logger.info("slack post %s: adopting message %s from an earlier attempt", key, found)
            _write(deps, key, {**marker, "state": "sent", "channel": found.channel, "ts": found.ts})
            return found
    # Written before the call. Wall-clock time: it is compared with Slack's timestamps; the
    # earliest attempt's, so a look after several lost answers covers them all.
    since = min(time.time(), float(marker["at"])) if marker and "at" in marker else time.time()
    doubt = {"state": "doubt", "channel": channel, "thread_ts": thread_ts, "at": since}
    _write(deps, key, doubt)
    try:
        response = deps.slack.chat_postMessage(
            channel=channel, thread_ts=thread_ts, metadata=metadata(key), **message
        )
    except Exception as exc:
        if not outcome_unknown(exc):
            _write(deps, key, {**doubt, "state": "refused", "error": slack_error(exc)})
        raise
    sent = Sent(str(response["channel"]), str(response["ts"]))
    _write(deps, key, {**doubt, "state": "sent", "channel": sent.channel, "ts": sent.ts})
    return sent


def attempted(deps: Deps, key: str) -> bool:
    """Whether a post under `key` was tried (whatever came of it)."""
    return _read(deps, key) is not None


def sent_message(deps: Deps, key: str) -> Sent | None:
    """Where the message posted under `key` is, when that is known."""
    marker = _read(deps, key)
    if marker is None or marker.get("state") != "sent":
        return None
    return Sent(marker["channel"], marker["ts"])


def deliver(
    deps: Deps, key: str, *, channel: str, thread_ts: str | None = None, **message: Any
) -> Sent | None:
    """`post_once` for a message without a retry loop of its own: never raises. When the
    post may or may not be out, or Slack refused it for a moment, the message stays due and
    `redeliver_due` tries it again (looking first). None when it is not known to be out."""
    due = {
        "channel": channel,
        "thread_ts": thread_ts,
        "message": message,
        "tries": 1,
        "next_at": (deps.now() + dt.timedelta(seconds=REDELIVER_FIRST_SECONDS)).isoformat(),
    }
    deps.store.kv_set(DUE_KEY.format(key=key), json.dumps(due))
    return _attempt(deps, key, due)


def queue(
    connection: sa.Connection,
    key: str,
    *,
    now: dt.datetime,
    channel: str,
    thread_ts: str | None = None,
    fallback: str | None = None,
    **message: Any,
) -> None:
    """Make `message` due at once under `key`, inside the caller's transaction, so the
    message is stored together with whatever decided to send it (a crash right after the
    commit loses nothing). `redeliver_due(deps, key)` sends it; until then, and after a
    failed try, it is retried like a `deliver` whose outcome was unknown. `fallback` (a
    user ID): where it goes instead, once, under `key + ":dm"`, when Slack says the
    conversation is unreachable (UNREACHABLE_ERRORS)."""
    due = {
        "channel": channel,
        "thread_ts": thread_ts,
        "message": message,
        "tries": 0,
        "next_at": now.isoformat(),
    }
    if fallback is not None:
        due["fallback"] = fallback
    connection.execute(
        tables.kv.insert().values(
            key=DUE_KEY.format(key=key), value=json.dumps(due), updated_at=now
        )
    )


def redeliver_due(deps: Deps, prefix: str) -> int:
    """Try again every message `deliver` left due whose key starts with `prefix` and whose
    time has come; returns how many are out now. Safe in any number of processes at once:
    a compare-and-set on the due row hands each try to one of them."""
    table = tables.kv
    now = deps.now()
    with deps.store.reading() as connection:
        rows = connection.execute(
            sa.select(table.c.key, table.c.value).where(
                table.c.key.startswith(DUE_KEY.format(key=prefix), autoescape=True)
            )
        ).all()
    delivered = 0
    for row in rows:
        key = row.key.removeprefix(DUE_KEY.format(key=""))
        due = json.loads(row.value)
        if dt.datetime.fromisoformat(due["next_at"]) > now:
            continue
        tries = int(due["tries"]) + 1
        wait = min(REDELIVER_FIRST_SECONDS * 2 ** (tries - 1), REDELIVER_MAX_SECONDS)
        taken = {**due, "tries": tries, "next_at": (now + dt.timedelta(seconds=wait)).isoformat()}
        with deps.store.engine.begin() as connection:
            ours = connection.execute(
                table.update()
                .where(table.c.key == row.key, table.c.value == row.value)
                .values(value=json.dumps(taken), updated_at=now)
            ).rowcount
        if ours and _attempt(deps, key, taken) is not None:
            delivered += 1
    return delivered


def _attempt(deps: Deps, key: str, due: dict[str, Any]) -> Sent | None:
    try:
        sent = post_once(
            deps, key, channel=due["channel"], thread_ts=due["thread_ts"], **due["message"]
        )
    except Exception as exc:  # noqa: BLE001 - kept due, or given up and logged
        error = slack_error(exc)
        if error in UNREACHABLE_ERRORS and due.get("fallback"):
            return _fall_back(deps, key, due, error)
        if transient(exc) and int(due["tries"]) < REDELIVER_MAX_TRIES:
            logger.warning(
                "slack post %s: not confirmed (%s); try %s, trying again later",
                key,
                error,
                due["tries"],
            )
            return None
        logger.error(
            "slack post %s: gave up after %s tries (%s); it was not posted to %s",
            key,
            due["tries"],
            error,
            due["channel"],
        )
        _drop_due(deps, key)
        return None
    _drop_due(deps, key)
    return sent


def _fall_back(deps: Deps, key: str, due: dict[str, Any], error: str) -> Sent | None:
    """The conversation is gone for databot: the message goes to `due["fallback"]` (a DM)
    under its own key, made due before the first is dropped (a crash between loses
    nothing; the DM's own marker keeps it to one message)."""
    dm_key = key + FALLBACK_SUFFIX
    logger.info("slack post %s: %s, sending it to %s instead", key, error, due["fallback"])
    dm_due = {
        "channel": due["fallback"],
        "thread_ts": None,
        "message": due["message"],
        "tries": 1,
        "next_at": (deps.now() + dt.timedelta(seconds=REDELIVER_FIRST_SECONDS)).isoformat(),
    }
    deps.store.kv_set(DUE_KEY.format(key=dm_key), json.dumps(dm_due))
    _drop_due(deps, key)
    return _attempt(deps, dm_key, dm_due)


def _drop_due(deps: Deps, key: str) -> None:
    with deps.store.engine.begin() as connection:
        connection.execute(tables.kv.delete().where(tables.kv.c.key == DUE_KEY.format(key=key)))


def _read(deps: Deps, key: str) -> dict[str, Any] | None:
    value = deps.store.kv_get(MARKER_KEY.format(key=key))
    return json.loads(value) if value else None


def _write(deps: Deps, key: str, marker: dict[str, Any]) -> None:
    deps.store.kv_set(MARKER_KEY.format(key=key), json.dumps(marker))


def _look(deps: Deps, key: str, marker: dict[str, Any]) -> Sent | None:
    """The message an attempt in doubt posted, or None when Slack shows there is none (or
    cannot be searched for good: then posting again is the lesser harm). Raises when Slack
    cannot be asked for now."""
    where = marker["channel"]
    try:
        conversation = _conversation(deps, where)
        if conversation is None:
            logger.warning(
                "slack post %s: cannot read %s to look for an earlier attempt; posting", key, where
            )
            return None
        ts = find_message_by_metadata(
            deps.slack,
            conversation,
            event_type=EVENT_TYPE,
            payload={"key": key},
            oldest=float(marker["at"]) - LOOK_BACK_SECONDS,
            thread_ts=marker.get("thread_ts"),
        )
    except HistoryTooLong:
        logger.warning("slack post %s: too many messages in %s to look; posting", key, where)
        return None
    except Exception as exc:
        if transient(exc):
            raise
        logger.warning(
            "slack post %s: could not look in %s (%s); posting", key, where, slack_error(exc)
        )
        return None
    return Sent(conversation, ts, adopted=True) if ts is not None else None


def _conversation(deps: Deps, channel: str) -> str | None:
    """The conversation ID whose messages show a post to `channel`: a DM's for a user ID
    (conversations.open), else the channel's (bot.slack_channels.channel_id)."""
    if _USER_ID.match(channel):
        return str(deps.slack.conversations_open(users=channel)["channel"]["id"])
    return channel_id(deps, channel)
