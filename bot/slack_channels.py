"""Slack channels by ID. Slack's read methods (conversations.history, .replies, .info) take
only conversation IDs, while settings may name a channel (`#analytics`); every feature that
must find its own earlier message resolves the name here, once, cached in the store."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

logger = logging.getLogger(__name__)

CHANNEL_CACHE_TTL = dt.timedelta(hours=24)
CHANNEL_CACHE_KEY = "slack:channel-id:{name}"
CHANNEL_LIST_MAX_PAGES = 50  # x 1000 channels
CONVERSATION_ID = re.compile(r"^[CGD][A-Z0-9]+$")


def channel_id(deps, channel: str) -> str | None:
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
    found = _list_channel(deps, name)
    if found:
        deps.store.kv_set(key, json.dumps({"id": found, "at": now.isoformat()}))
    return found


def _list_channel(deps, name: str) -> str | None:
    cursor = None
    for _ in range(CHANNEL_LIST_MAX_PAGES):
        response = deps.slack.conversations_list(
            types="public_channel,private_channel",
            exclude_archived=True,
            limit=1000,
            cursor=cursor,
        )
        for channel in response.get("channels", []):
            if channel.get("name") == name:
                return channel["id"]
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    logger.warning(
        "stopped looking for #%s after %d pages of channels", name, CHANNEL_LIST_MAX_PAGES
    )
    return None
