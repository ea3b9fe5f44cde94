"""Slack channels by ID. Slack's read methods (conversations.history, .replies, .info) take
only conversation IDs, while settings may name a channel (`#analytics`); every feature that
must find its own earlier message resolves the name here, once, cached in the store."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

CHANNEL_CACHE_TTL = dt.timedelta(hours=24)
CHANNEL_CACHE_KEY = "slack:channel-id:{name}"
CHANNEL_LIST_MAX_PAGES = 50  # x 1000 channels
CONVERSATION_ID = re.compile(r"^[CGD][A-Z0-9]+$")


def channel_id(deps: Deps, channel: str) -> str | None:
    """The conversation ID of `channel`: an ID as is, a `#name` (or bare name) looked up with
    conversations.list (public and private channels; needs channels:read) and cached in kv.
    None when Slack does not list it, or for a user ID (a DM)."""
    if CONVERSATION_ID.match(channel):
        return channel
    if re.match(r"^[UW][A-Z0-9]+$", channel):
        return None
    name = channel.removeprefix("#").lower()
    key = CHANNEL_CACHE_KEY.format(name=name)
    now = deps.now()
    cached = deps.store.kv_get(key)
    if cached:
        entry = json.loads(cached)
        if dt.datetime.fromisoformat(entry["at"]) + CHANNEL_CACHE_TTL > now:
            return entry["id"]
    found = list_channel_id(deps.slack, name)
    if found:
        deps.store.kv_set(key, json.dumps({"id": found, "at": now.isoformat()}))
    return found


def is_listed(deps: Deps, channel: str | None, entries: list[str]) -> bool:
    """Whether conversation `channel` (an ID) is one of `entries`, channel IDs or `#names`
    as settings hold them (REVENUE_CHANNELS): the one place such a list is matched, so
    every surface agrees. A name is resolved with `channel_id` (cached). Slack errors
    propagate: a name that cannot be looked up right now is not known to be another
    channel, and the caller retries or says so; it is False only when the name resolved
    to another channel, or to none."""
    known = listed_as_given(channel, entries)
    if known is not None:
        return known
    for entry in entries:
        if not CONVERSATION_ID.match(entry) and channel_id(deps, entry) == channel:
            return True
    return False


def listed_as_given(channel: str | None, entries: list[str]) -> bool | None:
    """`is_listed` as far as it can be told without resolving a `#name` (no Slack call,
    no state database: what an ack may wait for); None when only resolving one can tell."""
    if not channel:
        return False
    if channel in entries:
        return True
    if any(not CONVERSATION_ID.match(entry) for entry in entries):
        return None
    return False


def list_channel_id(slack: WebClient, name: str) -> str | None:
    """The id of channel `name` (without #) as conversations.list shows it; no cache."""
    cursor = None
    for _ in range(CHANNEL_LIST_MAX_PAGES):
        response = slack.conversations_list(
            types="public_channel,private_channel",
            exclude_archived=True,
            limit=1000,
            cursor=cursor,
        )
        channels: list[dict[str, Any]] = response.get("channels", [])
        for channel in channels:
            if channel.get("name") == name:
                return channel["id"]
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    logger.warning(
        "stopped looking for #%s after %d pages of channels", name, CHANNEL_LIST_MAX_PAGES
    )
    return None


# --- our own earlier messages ----------------------------------------------------------
#
# Every message whose post may have an unknown outcome (timeout, connection reset, a 5xx
# after Slack acted, a crash right after posting) carries message metadata naming what it
# is. Before posting again, the sender looks for it here instead of posting twice.

HISTORY_PAGE = 200  # Slack's advised maximum per conversations.history call
HISTORY_MAX_PAGES = 10  # 2,000 messages: hours of a busy channel since the attempt


class HistoryTooLong(Exception):
    """More messages since `oldest` than the bound allows: nobody knows whether ours is
    among the rest. The caller decides (the runner asks a person; urgent alerts post)."""


def find_message_by_metadata(
    slack: WebClient,
    channel: str,
    *,
    event_type: str,
    payload: Mapping[str, Any],
    oldest: float,
    thread_ts: str | None = None,
    max_pages: int = HISTORY_MAX_PAGES,
) -> str | None:
    """The ts of the newest message in `channel` (a conversation ID: channel, private
    channel or DM) since `oldest` (epoch seconds) whose metadata has `event_type` and every
    key/value of `payload`; None when Slack shows there is none. With `thread_ts`, the
    thread's replies are searched (conversations.replies) instead of the channel's top
    level (conversations.history). Slack errors (SlackApiError, OSError) propagate: the
    caller knows whether not being able to look is transient for it."""
    cursor = None
    for _ in range(max_pages):
        if thread_ts is None:
            response = slack.conversations_history(
                channel=channel,
                oldest=f"{oldest:.6f}",
                include_all_metadata=True,
                limit=HISTORY_PAGE,
                cursor=cursor,
            )
        else:
            response = slack.conversations_replies(
                channel=channel,
                ts=thread_ts,
                oldest=f"{oldest:.6f}",
                include_all_metadata=True,
                limit=HISTORY_PAGE,
                cursor=cursor,
            )
        messages: list[dict[str, Any]] = response.get("messages", [])
        newest_first = sorted(messages, key=lambda m: float(m.get("ts", 0)), reverse=True)
        for message in newest_first:
            meta = message.get("metadata") or {}
            found = meta.get("event_payload") or {}
            if meta.get("event_type") == event_type and all(
                found.get(k) == v for k, v in payload.items()
            ):
                return str(message["ts"])
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    raise HistoryTooLong(f"more than {max_pages * HISTORY_PAGE} messages in {channel} to check")
