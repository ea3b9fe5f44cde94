"""A loopback Slack Web API that behaves like the real one for what databot uses.

Point slack_sdk at it with `WebClient(token=fake.token, base_url=fake.api_url)`. It answers
like Slack (HTTP 200 with `{"ok": false, "error": ...}` for API errors, 429 + Retry-After
for rate limits), keeps the workspace state a person would see (messages with their
updates and deletions, threads, ephemeral messages, open modals, uploaded files) and
records every call.

Every message `blocks` and modal `view` is checked with `slack_sdk.models` (whose
`to_dict()` enforces Slack's per-element limits) plus the limits those models do not
check (50 blocks per message, 100 per modal, 40,000 characters of text, 24-character
modal titles, unique block ids). A failing payload is answered as Slack would
(`invalid_blocks`, `msg_too_long`, `invalid_arguments`) AND recorded in `violations`,
so a test can assert that no payload was ever rejected.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import logging
import re
import secrets
import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.manifest import load_manifest, manifest_bot_scopes, packaged_manifest
from sandbox import LoopbackServer

if TYPE_CHECKING:
    from sandbox.socket_mode import FakeSocketMode

logger = logging.getLogger(__name__)

# Limits Slack enforces that slack_sdk.models do not (or not for messages).
MESSAGE_MAX_BLOCKS = 50
MODAL_MAX_BLOCKS = 100
TEXT_MAX_CHARS = 40_000
MODAL_TITLE_MAX_CHARS = 24
TRIGGER_TTL_SECONDS = 3.0
# A response_url may be used 5 times within 30 minutes.
RESPONSE_URL_MAX_USES = 5
VIEW_STACK_MAX = 3
REPLIES_PAGE_MAX = 200  # messages per conversations.replies page

# Fields Slack accepts as JSON strings inside form-encoded bodies.
_JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata")
_ID_RE = re.compile(r"^[CGD][A-Z0-9]+$")
_USER_RE = re.compile(r"^[UW][A-Z0-9]+$")


@dataclasses.dataclass(frozen=True)
class SlackCall:
    """One Web API call as the fake received it (token removed, JSON fields decoded)."""

    method: str
    args: dict[str, Any]
    at: dt.datetime
    error: str | None = None  # the error answered, None when ok


@dataclasses.dataclass(frozen=True)
class ResponseCall:
    """One POST to a response_url."""

    url: str
    payload: dict[str, Any]
    at: dt.datetime
    status: int = 200  # what the fake answered


@dataclasses.dataclass(frozen=True)
class Violation:
    """A payload Slack would have rejected."""

    method: str
    error: str
    problems: list[str]
    payload: dict[str, Any]


@dataclasses.dataclass
class UploadedFile:
    id: str
    filename: str
    length: int
    title: str | None = None
    content: bytes | None = None
    alt_txt: str | None = None
    channels: list[str] = dataclasses.field(default_factory=list)
    initial_comment: str | None = None
    thread_ts: str | None = None
    completed: bool = False


class SlackError(Exception):
    def __init__(self, error: str, *, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


# How an answer is lost after Slack acted (`FakeSlack.lose_answer_next`).
LOST_ANSWERS = ("reset", "500", "hang")


@dataclasses.dataclass
class _LostAnswer:
    method: str
    how: str
    seconds: float
    times: int


@dataclasses.dataclass
class _Failure:
    method: str
    error: str
    status: int
    retry_after: int | None
    times: int


# Block types slack_sdk has no model for (or whose model checks too little), with the limits
# Slack documents for them. Written from the documentation, not from our builders, so a
# builder that gets a limit wrong fails a test.
# docs.slack.dev/reference/block-kit/blocks/data-visualization-block
CHARTS_PER_MESSAGE = 2
CHART_TITLE_MAX = 50
CHART_LABEL_MAX = 20
CHART_AXIS_LABEL_MAX = 50
CHART_SERIES = (1, 6)  # line, bar, area
CHART_CATEGORIES = (1, 20)
PIE_SEGMENTS = (1, 12)
# docs.slack.dev/reference/block-kit/blocks/table-block
TABLE_MAX_ROWS = 100
TABLE_MAX_CELLS = 20
TABLES_PER_MESSAGE = 1
TABLE_CELL_TYPES = ("raw_text", "rich_text")

# ---------------------------------------------------------------------------------------
# Payload checks (usable on their own, e.g. on a builder's output)


def _text_problem(where: str, value: Any, limit: int, *, required: bool = True) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, str) or not value:
        return [f"{where}: must be a non-empty string"]
    if len(value) > limit:
        return [f"{where}: must be at most {limit} characters (is {len(value)})"]
    return []


def _count_problem(where: str, items: Any, bounds: tuple[int, int]) -> list[str]:
    low, high = bounds
    if not isinstance(items, list):
        return [f"{where}: must be an array"]
    if not low <= len(items) <= high:
        return [f"{where}: must hold {low}-{high} items (holds {len(items)})"]
    return []


def chart_problems(block: dict[str, Any], where: str = "block") -> list[str]:
    """What Slack rejects in a data_visualization block."""
    known = {"type", "title", "chart", "block_id"}
    problems = [f"{where}: unknown field {k!r}" for k in block if k not in known]
    problems += _text_problem(f"{where}.title", block.get("title"), CHART_TITLE_MAX)
    chart = block.get("chart")
    if not isinstance(chart, dict):
        return [*problems, f"{where}.chart: required object"]
    kind = chart.get("type")
    if kind == "pie":
        segments = chart.get("segments")
        problems += _count_problem(f"{where}.chart.segments", segments, PIE_SEGMENTS)
        for i, seg in enumerate(segments if isinstance(segments, list) else []):
            seg = seg if isinstance(seg, dict) else {}
            problems += _text_problem(
                f"{where}.chart.segments[{i}].label", seg.get("label"), CHART_LABEL_MAX
            )
            if not _number(seg.get("value")) or seg["value"] <= 0:
                problems.append(f"{where}.chart.segments[{i}].value: a positive number")
        return problems
    if kind not in ("line", "bar", "area"):
        return [*problems, f"{where}.chart.type: one of pie, bar, area, line (got {kind!r})"]
    axis = chart.get("axis_config")
    if not isinstance(axis, dict):
        return [*problems, f"{where}.chart.axis_config: required object"]
    categories = axis.get("categories")
    problems += _count_problem(
        f"{where}.chart.axis_config.categories", categories, CHART_CATEGORIES
    )
    categories = categories if isinstance(categories, list) else []
    for i, c in enumerate(categories):
        problems += _text_problem(f"{where}.chart.axis_config.categories[{i}]", c, CHART_LABEL_MAX)
    for key in ("x_label", "y_label"):
        problems += _text_problem(
            f"{where}.chart.axis_config.{key}", axis.get(key), CHART_AXIS_LABEL_MAX, required=False
        )
    series = chart.get("series")
    problems += _count_problem(f"{where}.chart.series", series, CHART_SERIES)
    names = []
    for i, s in enumerate(series if isinstance(series, list) else []):
        s = s if isinstance(s, dict) else {}
        names.append(s.get("name"))
        problems += _text_problem(f"{where}.chart.series[{i}].name", s.get("name"), CHART_LABEL_MAX)
        data = s.get("data")
        problems += _count_problem(f"{where}.chart.series[{i}].data", data, CHART_CATEGORIES)
        for j, point in enumerate(data if isinstance(data, list) else []):
            point = point if isinstance(point, dict) else {}
            at = f"{where}.chart.series[{i}].data[{j}]"
            problems += _text_problem(f"{at}.label", point.get("label"), CHART_LABEL_MAX)
            if point.get("label") not in categories:
                problems.append(f"{at}.label: {point.get('label')!r} is not an axis category")
            if not _number(point.get("value")):
                problems.append(f"{at}.value: must be a finite number")
    if len(set(map(str, names))) != len(names):
        problems.append(f"{where}.chart.series: names must be unique")
    return problems


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value == value
        and abs(value) != float("inf")
    )


def table_problems(block: dict[str, Any], where: str = "block") -> list[str]:
    """What Slack rejects in a table block beyond slack_sdk's own check (rows present)."""
    problems: list[str] = []
    rows = block.get("rows")
    problems += _count_problem(f"{where}.rows", rows, (1, TABLE_MAX_ROWS))
    for i, row in enumerate(rows if isinstance(rows, list) else []):
        problems += _count_problem(f"{where}.rows[{i}]", row, (1, TABLE_MAX_CELLS))
        for j, cell in enumerate(row if isinstance(row, list) else []):
            kind = cell.get("type") if isinstance(cell, dict) else None
            if kind not in TABLE_CELL_TYPES:
                problems.append(f"{where}.rows[{i}][{j}]: cell type {kind!r} not allowed")
            elif kind == "raw_text" and not (isinstance(cell.get("text"), str) and cell["text"]):
                problems.append(f"{where}.rows[{i}][{j}]: raw_text needs text")
    settings = block.get("column_settings")
    if settings is not None:
        problems += _count_problem(f"{where}.column_settings", settings, (0, TABLE_MAX_CELLS))
    return problems


def _duplicate_ids(blocks: list[dict]) -> list[str]:
    problems = []
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if block_id is None:
            continue
        if block_id in seen:
            problems.append(f"blocks[{index}]: duplicate block_id {block_id!r}")
        seen.add(block_id)
        elements = block.get("elements") if block.get("type") == "actions" else None
        action_ids = [e.get("action_id") for e in elements or [] if isinstance(e, dict)]
        action_ids = [a for a in action_ids if a]
        if len(action_ids) != len(set(action_ids)):
            problems.append(f"blocks[{index}]: duplicate action_id in block {block_id!r}")
    return problems


def block_problems(blocks: Any, *, max_blocks: int = MESSAGE_MAX_BLOCKS) -> list[str]:
    """What Slack would reject in a list of blocks; empty when valid."""
    if not isinstance(blocks, list):
        return [f"blocks must be a list, not {type(blocks).__name__}"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    for index, block in enumerate(blocks):
        if not isinstance(block, dict):
            problems.append(f"blocks[{index}]: must be an object")
            continue
        if block.get("type") == "data_visualization":
            problems.extend(chart_problems(block, f"blocks[{index}]"))
            continue
        if block.get("type") == "table":
            problems.extend(table_problems(block, f"blocks[{index}]"))
        try:
            parsed = Block.parse(block)
            if parsed is None:
                problems.append(f"blocks[{index}]: unsupported type {block.get('type')!r}")
                continue
            parsed.to_dict()
        except Exception as exc:  # noqa: BLE001 - any model failure is a rejected block
            problems.append(f"blocks[{index}] ({block.get('type')}): {exc}")
    problems.extend(_duplicate_ids([b for b in blocks if isinstance(b, dict)]))
    kinds = [b.get("type") for b in blocks if isinstance(b, dict)]
    if kinds.count("data_visualization") > CHARTS_PER_MESSAGE:
        problems.append(f"no more than {CHARTS_PER_MESSAGE} data_visualization blocks allowed")
    if kinds.count("table") > TABLES_PER_MESSAGE:
        problems.append(f"no more than {TABLES_PER_MESSAGE} table block allowed")
    return problems


def message_problems(args: dict[str, Any]) -> tuple[str, list[str]] | None:
    """(slack_error, problems) for a message payload Slack would reject, else None."""
    text = args.get("text")
    if isinstance(text, str) and len(text) > TEXT_MAX_CHARS:
        return "msg_too_long", [f"text is {len(text)} characters; Slack allows {TEXT_MAX_CHARS}"]
    if "blocks" in args and args["blocks"] is not None:
        problems = block_problems(args["blocks"])
        if problems:
            return "invalid_blocks", problems
    return None


def view_problems(view: Any) -> list[str]:
    """What Slack would reject in a view (modal or home tab); empty when valid."""
    if not isinstance(view, dict):
        return ["view must be a JSON object"]
    problems: list[str] = []
    kind = view.get("type")
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        problems.append("view must have at least one block")
    else:
        max_blocks = MODAL_MAX_BLOCKS
        problems.extend(block_problems(blocks, max_blocks=max_blocks))
    if kind == "modal":
        title = view.get("title")
        title_text = title.get("text") if isinstance(title, dict) else None
        if not title_text:
            problems.append("modal must have a title")
        elif len(title_text) > MODAL_TITLE_MAX_CHARS:
            problems.append(
                f"title is {len(title_text)} characters; Slack allows {MODAL_TITLE_MAX_CHARS}"
            )
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks or [])
        if has_input and not view.get("submit"):
            problems.append("a modal with input blocks must have a submit button")
    try:
        View(**view).to_dict()
    except Exception as exc:  # noqa: BLE001 - any model failure is a rejected view
        problems.append(f"view: {exc}")
    # One finding per problem even when our check and the model's overlap.
    return list(dict.fromkeys(problems))


# ---------------------------------------------------------------------------------------


def _channel_id_for(name: str, prefix: str = "C") -> str:
    digest = hashlib.sha1(name.encode()).hexdigest().upper()
    return prefix + digest[:10]


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(cursor).decode().split(":", 1)[1])
    except (ValueError, IndexError) as exc:
        raise SlackError("invalid_cursor") from exc


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes")


class FakeSlack(LoopbackServer):
    """Slack Web API on loopback. `api_url` is what WebClient's base_url wants."""

    def __init__(
        self,
        *,
        token: str | None = None,
        team_id: str = "T0SANDBOX",
        team_domain: str = "sandbox",
        bot_user_id: str = "UDATABOT",
        bot_id: str = "BDATABOT",
        app_id: str = "ADATABOT",
        bot_name: str = "databot",
        socket_mode: FakeSocketMode | None = None,
    ) -> None:
        # Without a token, any well-formed bot/user token is accepted (the harness makes up
        # its own); with one, only that token, like a real workspace.
        self.token = token or "xoxb-sandbox-token"
        self.tokens: set[str] | None = {token} if token else None
        self.team_id = team_id
        self._revoked_scopes: set[str] = set()
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.bot_name = bot_name
        # apps.connections.open hands out this server's URLs (Socket Mode).
        self.socket_mode = socket_mode

        self._calls: list[SlackCall] = []
        self._responses: list[ResponseCall] = []
        self.violations: list[Violation] = []
        self._failures: list[_Failure] = []
        self._delays: list[list[Any]] = []  # [method, seconds, times left]
        self._lost: list[_LostAnswer] = []
        self._channels: dict[str, dict[str, Any]] = {}
        self._channel_names: dict[str, str] = {}
        self._users: dict[str, dict[str, Any]] = {}
        # channel -> messages in post order (top level and replies); deleted ones removed.
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._ephemeral: list[dict[str, Any]] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._view_stack: list[str] = []
        self._triggers: dict[str, float] = {}
        self._used_triggers: set[str] = set()
        self._files: dict[str, UploadedFile] = {}
        self._upload_tokens: dict[str, str] = {}
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._last_ts_micros = 0
        self._ids = itertools.count(1)
        super().__init__()
        self.add_user(bot_user_id, name=bot_name, real_name="Databot", is_bot=True)

    # --- URLs ------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Base URL for WebClient (ends with '/', like https://slack.com/api/)."""
        return f"{self.url}/api/"

    # --- seeding -----------------------------------------------------------------------

    def granted_scopes(self) -> list[str]:
        """The scopes the installed app holds: everything manifest.yml asks for, unless a
        test took some away (`revoke_scopes`)."""
        asked = manifest_bot_scopes(load_manifest(packaged_manifest()))
        return sorted(asked - self._revoked_scopes)

    def revoke_scopes(self, *scopes: str) -> None:
        with self._lock:
            self._revoked_scopes.update(scopes)

    def add_channel(
        self,
        channel_id: str | None = None,
        name: str | None = None,
        *,
        is_private: bool = False,
        is_member: bool = True,
    ) -> str:
        """Make a channel known (and its #name resolvable); returns its id.

        `is_member=False`: the bot was never invited. Like Slack, it can still post to a
        public channel (chat:write.public) but not read its history (`not_in_channel`),
        and conversations.list does not show such a private channel."""
        with self._lock:
            if channel_id is None:
                channel_id = _channel_id_for(name or f"channel-{next(self._ids)}")
            name = name or channel_id.lower()
            self._channels[channel_id] = {
                "id": channel_id,
                "name": name,
                "name_normalized": name,
                "is_channel": not is_private,
                "is_group": is_private,
                "is_im": False,
                "is_mpim": False,
                "is_private": is_private,
                "is_archived": False,
                "is_general": False,
                "is_shared": False,
                "is_member": is_member,
                "created": int(time.time()),
                "creator": "U0CREATOR",
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0},
                "num_members": 12,
            }
            self._channel_names[name] = channel_id
            return channel_id

    def archive_channel(self, channel_id: str) -> None:
        """Archive a channel: like Slack, posting there is refused with `is_archived`."""
        with self._lock:
            self._channels[channel_id]["is_archived"] = True

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        tz: str = "America/Los_Angeles",
        is_bot: bool = False,
    ) -> dict[str, Any]:
        name = name or user_id.lower()
        real_name = real_name or name.replace(".", " ").title()
        # No email in the profile: the bot must not depend on users:read.email.
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": real_name,
            "tz": tz,
            "tz_label": "Pacific Standard Time" if tz == "America/Los_Angeles" else tz,
            "tz_offset": -28800 if tz == "America/Los_Angeles" else 0,
            "is_admin": False,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
            "profile": {
                "real_name": real_name,
                "real_name_normalized": real_name,
                "display_name": name,
                "display_name_normalized": name,
                "title": "",
                "team": self.team_id,
                "image_72": f"https://avatars.example/{user_id}_72.png",
            },
        }
        with self._lock:
            self._users[user_id] = user
        return user

    def seed_thread(self, channel: str, messages: list[str | dict[str, Any]]) -> str:
        """Put a thread in `channel` (first message = parent); returns the parent ts.

        Each message is text (posted by user U0SEEDER) or a dict with `text` and
        optionally `user`, `ts`, `blocks`.
        """
        with self._lock:
            channel_id = self._resolve_channel(channel)
            parent_ts: str | None = None
            for item in messages:
                spec = {"text": item} if isinstance(item, str) else dict(item)
                message = {
                    "type": "message",
                    "user": spec.pop("user", "U0SEEDER"),
                    "text": spec.pop("text", ""),
                    "ts": spec.pop("ts", None) or self._next_ts(),
                    "team": self.team_id,
                    **spec,
                }
                if parent_ts is not None:
                    message["thread_ts"] = parent_ts
                    message["parent_user_id"] = self._find(channel_id, parent_ts)["user"]
                self._messages.setdefault(channel_id, []).append(message)
                if parent_ts is None:
                    parent_ts = message["ts"]
                else:
                    self._note_reply(channel_id, parent_ts, message)
            if parent_ts is None:
                raise ValueError("seed_thread needs at least one message")
            return parent_ts

    def user_posts(
        self,
        channel: str,
        user: str,
        text: str = "",
        *,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A person posts in `channel` (in the thread `thread_ts`), as the Slack client would;
        returns the message with its `channel`, for `slack_requests.message_event`. `files`:
        [{"name": ...}] for a file share (subtype file_share, Slack's file objects)."""
        with self._lock:
            channel_id = self._resolve_channel(channel)
            message: dict[str, Any] = {
                "type": "message",
                "user": user,
                "text": text,
                "ts": self._next_ts(),
                "team": self.team_id,
            }
            if files:
                message["subtype"] = "file_share"
                message["upload"] = False
                message["files"] = [
                    {
                        "id": f"F{next(self._ids):08d}",
                        "name": f.get("name", "file"),
                        "title": f.get("title", f.get("name", "file")),
                        "mimetype": f.get("mimetype", "application/octet-stream"),
                        "permalink": f"https://{self.team_domain}.slack.com/files/{user}/"
                        f"F{next(self._ids):08d}/{f.get('name', 'file')}",
                    }
                    for f in files
                ]
            if thread_ts:
                message["thread_ts"] = thread_ts
                message["parent_user_id"] = self._find(channel_id, thread_ts)["user"]
            self._messages.setdefault(channel_id, []).append(message)
            if thread_ts:
                self._note_reply(channel_id, thread_ts, message)
            return {**json.loads(json.dumps(message)), "channel": channel_id}

    def issue_trigger_id(self, valid_for: float = TRIGGER_TTL_SECONDS) -> str:
        """A trigger_id that views.open/push accept once, within `valid_for` seconds."""
        trigger = f"{next(self._ids)}{secrets.randbelow(10**9)}.{time.time_ns() % 10**9}."
        trigger += secrets.token_hex(16)
        with self._lock:
            self._triggers[trigger] = time.monotonic() + valid_for
        return trigger

    def response_url(
        self, channel: str | None = None, *, message_ts: str | None = None, user: str | None = None
    ) -> str:
        """A unique response_url on this server, tied to a channel / message like Slack's."""
        token = secrets.token_urlsafe(18)
        path = f"/actions/{self.team_id}/{next(self._ids)}/{token}"
        with self._lock:
            channel_id = self._resolve_channel(channel) if channel else None
            self._response_urls[path] = {
                "channel": channel_id,
                "message_ts": message_ts,
                "user": user,
                "uses": 0,
            }
        return self.url + path

    # --- failure injection ---------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        status: int | None = None,
        retry_after: int | None = 1,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with `error`.

        status defaults to 429 for "ratelimited" (with Retry-After: retry_after seconds,
        as Slack does) and 200 otherwise (Slack's API errors are HTTP 200). A 5xx status
        answers as Slack's servers do when they fail.
        """
        if status is None:
            status = 429 if error == "ratelimited" else 200
        with self._lock:
            self._failures.append(_Failure(method, error, status, retry_after, times))

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        """Answer the next `times` calls of `method` only after `seconds` (a slow Slack).
        Other calls are answered meanwhile: the wait holds no lock."""
        with self._lock:
            self._delays.append([method, seconds, times])

    def lose_answer_next(
        self, method: str, how: str = "reset", *, seconds: float = 15.0, times: int = 1
    ) -> None:
        """Act on the next `times` calls of `method` (the message is posted, the state
        changes) but lose the answer, the way a caller cannot tell from not acting:

        - "reset": the connection is reset instead of answered;
        - "500": HTTP 500 `internal_error`, as when Slack fails after acting;
        - "hang": the answer comes only after `seconds` (a client with a shorter timeout
          has given up by then).
        """
        if how not in LOST_ANSWERS:
            raise ValueError(f"how must be one of {LOST_ANSWERS}, not {how!r}")
        with self._lock:
            self._lost.append(_LostAnswer(method, how, seconds, times))

    # --- recorded state ----------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[SlackCall]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages as they stand now (updates applied, deletions gone), in post order.

        Each is a copy with `channel` added. Includes thread replies (they carry
        `thread_ts`) and file shares (they carry `files`).
        """
        with self._lock:
            if channel is not None:
                channel_id = self._lookup_channel(channel)
                channels = [channel_id] if channel_id else []
            else:
                channels = list(self._messages)
            found = [{**m, "channel": c} for c in channels for m in self._messages.get(c, [])]
        return sorted(found, key=lambda m: float(m["ts"]))

    def users(self) -> list[dict[str, Any]]:
        """Every user the workspace knows (users.info answers for these)."""
        with self._lock:
            return [json.loads(json.dumps(u)) for u in self._users.values()]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Parent and replies of the thread rooted at ts."""
        return [m for m in self.messages(channel) if m["ts"] == ts or m.get("thread_ts") == ts]

    def ephemeral_messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            channel_id = self._lookup_channel(channel) if channel else None
            return [
                dict(m) for m in self._ephemeral if channel is None or m["channel"] == channel_id
            ]

    def responses(self, url: str | None = None) -> list[ResponseCall]:
        with self._lock:
            return [r for r in self._responses if url is None or r.url == url]

    def views(self) -> list[dict[str, Any]]:
        """Every view opened, pushed or published, as it stands now."""
        with self._lock:
            return [json.loads(json.dumps(v)) for v in self._views.values()]

    def view(self, view_id: str) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._views[view_id]))

    def files(self) -> list[UploadedFile]:
        with self._lock:
            return [dataclasses.replace(f) for f in self._files.values()]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5) -> list[SlackCall]:
        """Block until `count` calls of `method` arrived; returns them. Raises on timeout."""
        return self._wait(lambda: self.calls(method), count, timeout, method)

    def wait_for_responses(self, count: int = 1, timeout: float = 5) -> list[ResponseCall]:
        return self._wait(self.responses, count, timeout, "response_url POST")

    def _wait(self, get: Callable[[], list], count: int, timeout: float, what: str) -> list:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = get()
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} x {what} within {timeout}s, got {len(found)}"
                    )
                self._changed.wait(remaining)

    # --- internals -----------------------------------------------------------------------

    def _next_ts(self) -> str:
        with self._lock:
            micros = max(time.time_ns() // 1000, self._last_ts_micros + 1)
            self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _lookup_channel(self, ref: str | None) -> str | None:
        if not ref:
            return None
        if ref.startswith("#"):
            return self._channel_names.get(ref[1:])
        if ref in self._channels:
            return ref
        if _USER_RE.match(ref):
            return self._dm_channel(ref)
        return self._channel_names.get(ref, ref if _ID_RE.match(ref) else None)

    def _resolve_channel(self, ref: str | None) -> str:
        """Channel id for an id, #name, name or user id (DM), creating unknown channels.

        Real workspaces have the channels a test refers to; the fake makes them exist on
        first use instead of making every test register them.
        """
        if not ref:
            raise SlackError("channel_not_found")
        known = self._lookup_channel(ref)
        if known and known in self._channels:
            return known
        if ref.startswith("#") or not _ID_RE.match(ref):
            name = ref.lstrip("#")
            if not re.match(r"^[a-z0-9_\-]{1,80}$", name):
                raise SlackError("channel_not_found")
            return self.add_channel(_channel_id_for(name), name)
        return self.add_channel(ref, ref.lower(), is_private=ref.startswith("G"))

    def _conversation(self, ref: str | None, *, read: bool = False) -> str:
        """The channel for methods that, in Slack, take only a conversation ID (history,
        replies, info): a #name or a bare name is `channel_not_found` there, unlike
        chat.postMessage. `read`: reading messages needs the bot to be a member."""
        if not ref or not _ID_RE.match(ref):
            raise SlackError("channel_not_found")
        channel_id = self._resolve_channel(ref)
        if read and not self._channels[channel_id].get("is_member", True):
            raise SlackError("not_in_channel")
        return channel_id

    def _dm_channel(self, user_id: str) -> str:
        channel_id = _channel_id_for("dm:" + user_id, "D")
        if channel_id not in self._channels:
            self._channels[channel_id] = {
                "id": channel_id,
                "created": int(time.time()),
                "is_im": True,
                "is_org_shared": False,
                "user": user_id,
                "is_user_deleted": False,
                "priority": 0,
                "is_open": True,
            }
        return channel_id

    def _find(self, channel_id: str, ts: str) -> dict[str, Any]:
        for message in self._messages.get(channel_id, []):
            if message["ts"] == ts:
                return message
        raise SlackError("message_not_found")

    def _note_reply(self, channel_id: str, parent_ts: str, reply: dict[str, Any]) -> None:
        try:
            parent = self._find(channel_id, parent_ts)
        except SlackError:
            return
        parent["thread_ts"] = parent_ts
        parent["reply_count"] = parent.get("reply_count", 0) + 1
        users = parent.setdefault("reply_users", [])
        if reply.get("user") and reply["user"] not in users:
            users.append(reply["user"])
        parent["reply_users_count"] = len(users)
        parent["latest_reply"] = reply["ts"]

    def _bot_message(self, args: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": args.get("text") or "",
            "team": self.team_id,
            "bot_profile": {"id": self.bot_id, "app_id": self.app_id, "name": self.bot_name},
        }
        for key in ("blocks", "attachments", "metadata"):
            if args.get(key) is not None:
                message[key] = args[key]
        return message

    def _check_message(self, method: str, args: dict[str, Any], *, need_content: bool) -> None:
        if need_content and not (args.get("text") or args.get("blocks") or args.get("attachments")):
            raise SlackError("no_text")
        found = message_problems(args)
        if found:
            error, problems = found
            self.violations.append(Violation(method, error, problems, args))
            logger.warning("FakeSlack rejected %s: %s %s", method, error, problems)
            raise SlackError(error, response_metadata={"messages": problems})

    def _check_view(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        problems = view_problems(view)
        if problems:
            self.violations.append(Violation(method, "invalid_arguments", problems, args))
            logger.warning("FakeSlack rejected %s: %s", method, problems)
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
            )
        return view

    def _use_trigger(self, trigger_id: str | None) -> None:
        if not trigger_id or trigger_id not in self._triggers:
            raise SlackError("invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise SlackError("exchanged_trigger_id")
        if time.monotonic() > self._triggers[trigger_id]:
            raise SlackError("expired_trigger_id")
        self._used_triggers.add(trigger_id)

    def _page(self, items: list, args: dict[str, Any], default_limit: int) -> tuple[list, str]:
        limit = int(args.get("limit") or default_limit)
        offset = _decode_cursor(args.get("cursor"))
        page = items[offset : offset + limit]
        next_cursor = _encode_cursor(offset + limit) if offset + limit < len(items) else ""
        return page, next_cursor

    # --- Web API methods ---------------------------------------------------------------

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_domain.title(),
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(args.get("channel"))
        channel = self._channels[channel_id]
        if (
            channel.get("is_private")
            and not channel.get("is_im")
            and not channel.get("is_member", True)
        ):
            raise SlackError("channel_not_found")  # chat:write.public covers public ones only
        if channel.get("is_archived"):
            raise SlackError("is_archived")
        self._check_message("chat.postMessage", args, need_content=True)
        message = self._bot_message(args)
        message["ts"] = self._next_ts()
        thread_ts = args.get("thread_ts")
        if thread_ts:
            message["thread_ts"] = thread_ts
            if _as_bool(args.get("reply_broadcast", False)):
                message["subtype"] = "thread_broadcast"
        self._messages.setdefault(channel_id, []).append(message)
        if thread_ts:
            self._note_reply(channel_id, thread_ts, message)
        return {"channel": channel_id, "ts": message["ts"], "message": dict(message)}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(args.get("channel"))
        user = args.get("user")
        if not user or not _USER_RE.match(user):
            raise SlackError("user_not_in_channel")
        self._check_message("chat.postEphemeral", args, need_content=True)
        message = self._bot_message(args)
        message.update({"ts": self._next_ts(), "channel": channel_id, "user_to": user})
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        self._ephemeral.append(message)
        return {"message_ts": message["ts"]}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(args.get("channel"))
        message = self._find(channel_id, str(args.get("ts")))
        if message.get("bot_id") != self.bot_id:
            raise SlackError("cant_update_message")
        self._check_message("chat.update", args, need_content=False)
        # Like Slack: fields left out keep their value; blocks=[] removes the blocks.
        if args.get("text") is not None:
            message["text"] = args["text"]
        for key in ("blocks", "attachments", "metadata"):
            if key in args and args[key] is not None:
                if args[key] == []:
                    message.pop(key, None)
                else:
                    message[key] = args[key]
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "channel": channel_id,
            "ts": message["ts"],
            "text": message.get("text", ""),
            "message": dict(message),
        }

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(args.get("channel"))
        message = self._find(channel_id, str(args.get("ts")))
        if message.get("bot_id") != self.bot_id:
            raise SlackError("cant_delete_message")
        self._messages[channel_id].remove(message)
        return {"channel": channel_id, "ts": message["ts"]}

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(args.get("channel"))
        message = self._find(channel_id, str(args.get("message_ts")))
        link = (
            f"https://{self.team_domain}.slack.com/archives/{channel_id}/"
            f"p{message['ts'].replace('.', '')}"
        )
        if message.get("thread_ts") and message["thread_ts"] != message["ts"]:
            link += f"?thread_ts={message['thread_ts']}&cid={channel_id}"
        return {"channel": channel_id, "permalink": link}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._conversation(args.get("channel"), read=True)
        ts = str(args.get("ts") or "")
        try:
            parent = self._find(channel_id, ts)
        except SlackError as exc:
            raise SlackError("thread_not_found") from exc
        root = parent.get("thread_ts", ts)
        thread = [
            dict(m)
            for m in self._messages[channel_id]
            if m["ts"] == root or m.get("thread_ts") == root
        ]
        thread = self._time_window(thread, args)
        # Slack's default limit is 1000, but it may return fewer than asked ("we recommend no
        # more than 200 results at a time"): like a large workspace, at most 200 a page, so a
        # client that does not follow next_cursor misses the rest.
        limit = min(int(args.get("limit") or 1000), REPLIES_PAGE_MAX)
        page, next_cursor = self._page(
            self._with_metadata(thread, args), {**args, "limit": limit}, REPLIES_PAGE_MAX
        )
        return {
            "messages": page,
            "has_more": bool(next_cursor),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._conversation(args.get("channel"), read=True)
        top = [
            dict(m)
            for m in self._messages.get(channel_id, [])
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]
        top = self._time_window(top, args)
        top.sort(key=lambda m: float(m["ts"]), reverse=True)
        page, next_cursor = self._page(self._with_metadata(top, args), args, 100)
        return {
            "messages": page,
            "has_more": bool(next_cursor),
            "pin_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    @staticmethod
    def _with_metadata(messages: list[dict], args: dict[str, Any]) -> list[dict]:
        """Like Slack: a message's metadata is returned only when asked for."""
        if _as_bool(args.get("include_all_metadata", False)):
            return messages
        return [{k: v for k, v in m.items() if k != "metadata"} for m in messages]

    @staticmethod
    def _time_window(messages: list[dict], args: dict[str, Any]) -> list[dict]:
        inclusive = _as_bool(args.get("inclusive", False))
        oldest = float(args.get("oldest") or 0)
        latest = float(args["latest"]) if args.get("latest") else None

        def inside(m: dict) -> bool:
            ts = float(m["ts"])
            low = ts >= oldest if inclusive else ts > oldest or oldest == 0
            high = latest is None or (ts <= latest if inclusive else ts < latest)
            return low and high

        return [m for m in messages if inside(m)]

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._conversation(args.get("channel"))
        return {"channel": dict(self._channels[channel_id])}

    def _conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        types = {t.strip() for t in str(args.get("types") or "public_channel").split(",")}
        if not types <= {"public_channel", "private_channel", "mpim", "im"}:
            raise SlackError("invalid_types")
        limit = int(args.get("limit") or 100)
        if limit > 1000:
            raise SlackError("invalid_limit")
        exclude_archived = _as_bool(args.get("exclude_archived", False))

        def listed(channel: dict[str, Any]) -> bool:
            if channel.get("is_im") or channel.get("is_mpim") or "name" not in channel:
                return False  # DMs are listed only for im/mpim, which databot never asks for
            if exclude_archived and channel.get("is_archived"):
                return False
            if channel.get("is_private"):
                # Slack lists only the private channels the bot is in.
                return "private_channel" in types and channel.get("is_member", True)
            return "public_channel" in types

        channels = [dict(c) for c in self._channels.values() if listed(c)]
        page, next_cursor = self._page(channels, {**args, "limit": limit}, 100)
        return {"channels": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = args.get("users") or ""
        if isinstance(users, list):
            users = ",".join(users)
        user_ids = [u.strip() for u in users.split(",") if u.strip()]
        if not user_ids:
            if args.get("channel"):
                return {"channel": {"id": self._resolve_channel(args["channel"])}}
            raise SlackError("users_list_not_supplied")
        if any(not _USER_RE.match(u) for u in user_ids):
            raise SlackError("user_not_found")
        if len(user_ids) == 1:
            existed = _channel_id_for("dm:" + user_ids[0], "D") in self._channels
            channel_id = self._dm_channel(user_ids[0])
            result: dict[str, Any] = {"channel": {"id": channel_id}}
            if existed:
                result.update({"no_op": True, "already_open": True})
            return result
        channel_id = _channel_id_for("mpdm:" + ",".join(sorted(user_ids)), "G")
        self._channels.setdefault(
            channel_id, {"id": channel_id, "is_mpim": True, "is_im": False, "is_private": True}
        )
        return {"channel": {"id": channel_id}}

    def _conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        ref = args.get("channel") or ""
        if not _ID_RE.match(ref):
            raise SlackError("channel_not_found")
        channel_id = self._resolve_channel(ref)
        return {"channel": dict(self._channels[channel_id])}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user") or ""
        if user_id not in self._users:
            if not _USER_RE.match(user_id):
                raise SlackError("user_not_found")
            self.add_user(user_id)
        return {"user": json.loads(json.dumps(self._users[user_id]))}

    def _new_view(self, view: dict[str, Any], previous: str | None) -> dict[str, Any]:
        view_id = f"V{next(self._ids):010d}"
        stored = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": secrets.token_hex(8),
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous,
            "root_view_id": view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        if previous is not None:
            stored["root_view_id"] = self._views[previous]["root_view_id"]
        self._views[view_id] = stored
        return stored

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        self._use_trigger(args.get("trigger_id"))
        view = self._check_view("views.open", args)
        stored = self._new_view(view, None)
        self._view_stack = [stored["id"]]
        return {"view": json.loads(json.dumps(stored))}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        self._use_trigger(args.get("trigger_id"))
        view = self._check_view("views.push", args)
        if len(self._view_stack) >= VIEW_STACK_MAX:
            raise SlackError("push_limit_reached")
        previous = self._view_stack[-1] if self._view_stack else None
        stored = self._new_view(view, previous)
        self._view_stack.append(stored["id"])
        return {"view": json.loads(json.dumps(stored))}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = args.get("view_id")
        external_id = args.get("external_id")
        if not view_id and external_id:
            view_id = next(
                (v["id"] for v in self._views.values() if v["external_id"] == external_id), None
            )
        if not view_id or view_id not in self._views:
            raise SlackError("not_found")
        stored = self._views[view_id]
        if args.get("hash") and args["hash"] != stored["hash"]:
            raise SlackError("hash_conflict")
        view = self._check_view("views.update", args)
        for key in ("type", "blocks", "title", "close", "submit"):
            stored[key] = view.get(key)
        for key, default in (("private_metadata", ""), ("callback_id", ""), ("external_id", "")):
            stored[key] = view.get(key, default)
        stored["hash"] = secrets.token_hex(8)
        return {"view": json.loads(json.dumps(stored))}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user_id") or ""
        if not _USER_RE.match(user_id):
            raise SlackError("user_not_found")
        view = self._check_view("views.publish", args)
        stored = self._new_view(view, None)
        return {"view": json.loads(json.dumps(stored))}

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        length = args.get("length")
        if not filename or length is None or not str(length).isdigit():
            raise SlackError("invalid_arguments")
        file_id = f"F{next(self._ids):010d}"
        upload_token = secrets.token_urlsafe(16)
        self._files[file_id] = UploadedFile(
            file_id, filename, int(length), alt_txt=args.get("alt_txt") or None
        )
        self._upload_tokens[upload_token] = file_id
        return {"upload_url": f"{self.url}/upload/v1/{upload_token}", "file_id": file_id}

    def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments")
        channels: list[str] = []
        if args.get("channel_id"):
            channels.append(self._resolve_channel(args["channel_id"]))
        if args.get("channels"):
            channels += [self._resolve_channel(c) for c in str(args["channels"]).split(",")]
        done = []
        for item in files:
            uploaded = self._files.get(item.get("id", ""))
            if uploaded is None or uploaded.content is None:
                raise SlackError("file_not_found")
            uploaded.title = item.get("title") or uploaded.filename
            uploaded.channels = channels
            uploaded.initial_comment = args.get("initial_comment")
            uploaded.thread_ts = args.get("thread_ts")
            uploaded.completed = True
            done.append(self._file_object(uploaded))
        for channel_id in channels:
            # Slack shares the files as one message from the bot in each channel.
            message = self._bot_message({"text": args.get("initial_comment") or ""})
            message.update({"ts": self._next_ts(), "files": done, "upload": True})
            if args.get("thread_ts"):
                message["thread_ts"] = args["thread_ts"]
            self._messages.setdefault(channel_id, []).append(message)
            if args.get("thread_ts"):
                self._note_reply(channel_id, args["thread_ts"], message)
        return {"files": done}

    def _file_object(self, f: UploadedFile) -> dict[str, Any]:
        return {
            "id": f.id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": f.filename,
            "title": f.title,
            "mimetype": "",
            "filetype": f.filename.rsplit(".", 1)[-1] if "." in f.filename else "",
            "user": self.bot_user_id,
            "size": len(f.content or b""),
            "url_private": f"https://files.slack.com/files-pri/{self.team_id}-{f.id}/{f.filename}",
            "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{f.id}",
        }

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._resolve_channel(args.get("channel"))
        message = self._find(channel_id, str(args.get("timestamp")))
        name = (args.get("name") or "").strip(":")
        if not name:
            raise SlackError("invalid_name")
        reactions = message.setdefault("reactions", [])
        for reaction in reactions:
            if reaction["name"] == name:
                if self.bot_user_id in reaction["users"]:
                    raise SlackError("already_reacted")
                reaction["users"].append(self.bot_user_id)
                reaction["count"] += 1
                return {}
        reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
        return {}

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.socket_mode is None:
            # The fake's own error: the app has Socket Mode turned off in its settings.
            raise SlackError("socket_mode_not_enabled")
        return {"url": self.socket_mode.issue_url()}

    # --- HTTP ------------------------------------------------------------------------------

    _METHODS: dict[str, str] = {
        "auth.test": "_auth_test",
        "chat.postMessage": "_chat_post_message",
        "chat.postEphemeral": "_chat_post_ephemeral",
        "chat.update": "_chat_update",
        "chat.delete": "_chat_delete",
        "chat.getPermalink": "_chat_get_permalink",
        "conversations.replies": "_conversations_replies",
        "conversations.history": "_conversations_history",
        "conversations.info": "_conversations_info",
        "conversations.list": "_conversations_list",
        "conversations.open": "_conversations_open",
        "conversations.join": "_conversations_join",
        "users.info": "_users_info",
        "views.open": "_views_open",
        "views.push": "_views_push",
        "views.update": "_views_update",
        "views.publish": "_views_publish",
        "files.getUploadURLExternal": "_files_get_upload_url",
        "files.completeUploadExternal": "_files_complete_upload",
        "reactions.add": "_reactions_add",
        "apps.connections.open": "_apps_connections_open",
    }

    def _read_args(self) -> tuple[dict[str, Any], str | None, str | None]:
        """(args, token, decode_error) from query string, form, multipart or JSON body."""
        args: dict[str, Any] = request.args.to_dict()
        decode_error = None
        if request.is_json:
            # slack_sdk sends an empty body with a JSON content type for argument-less calls.
            body = request.get_json(silent=True) if request.get_data() else {}
            if isinstance(body, dict):
                args.update(body)
            else:
                decode_error = "invalid_json"
        else:
            args.update(request.form.to_dict())
        token = args.pop("token", None)
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = header[len("Bearer ") :].strip()
        for key in _JSON_FIELDS:
            if isinstance(args.get(key), str):
                try:
                    args[key] = json.loads(args[key]) if args[key] else None
                except json.JSONDecodeError:
                    decode_error = "invalid_blocks" if key == "blocks" else "invalid_arguments"
        return args, token, decode_error

    def _answer(self, status: int, body: dict[str, Any], headers: dict | None = None) -> Response:
        return Response(
            json.dumps(body),
            status=status,
            headers=headers or {},
            content_type="application/json; charset=utf-8",
        )

    def _api(self, method: str) -> Response:
        args, token, decode_error = self._read_args()
        delay = 0.0
        with self._lock:
            for pending in self._delays:
                if pending[0] == method and pending[2] > 0:
                    pending[2] -= 1
                    delay = pending[1]
                    break
        if delay:
            time.sleep(delay)
        with self._lock:
            status, body, headers = self._dispatch(method, args, token, decode_error)
            if token and not token.startswith("xapp-") and body.get("error") != "invalid_auth":
                # Like Slack: every answer to a bot token names the scopes it was granted.
                headers = {**headers, "x-oauth-scopes": ",".join(self.granted_scopes())}
            error = None if body.get("ok") else body.get("error")
            self._calls.append(SlackCall(method, args, dt.datetime.now(dt.UTC), error))
            lost = self._take_lost(method) if body.get("ok") else None
            self._changed.notify_all()
        if lost is not None:
            return self._lose(lost, status, body, headers)
        return self._answer(status, body, headers)

    def _take_lost(self, method: str) -> _LostAnswer | None:
        for lost in self._lost:
            if lost.method == method and lost.times > 0:
                lost.times -= 1
                return lost
        return None

    def _lose(
        self, lost: _LostAnswer, status: int, body: dict[str, Any], headers: dict[str, str]
    ) -> Response:
        """The call was acted on; now lose its answer (outside the lock)."""
        if lost.how == "500":
            return self._answer(500, {"ok": False, "error": "internal_error"})
        if lost.how == "hang":
            time.sleep(lost.seconds)
            return self._answer(status, body, headers)
        # "reset": an RST instead of an answer (SO_LINGER 0 makes close() reset).
        sock = request.environ.get("werkzeug.socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        return Response(b"", status=500)

    def _dispatch(
        self, method: str, args: dict[str, Any], token: str | None, decode_error: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        for failure in self._failures:
            if failure.method == method and failure.times > 0:
                failure.times -= 1
                headers = {}
                if failure.status == 429 and failure.retry_after is not None:
                    headers["Retry-After"] = str(failure.retry_after)
                return failure.status, {"ok": False, "error": failure.error}, headers
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        # An app-level token works for apps.connections.open only, and only it does.
        if (method == "apps.connections.open") != token.startswith("xapp-"):
            return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
        app_token_ok = bool(re.match(r"^xapp-[A-Za-z0-9-]+$", token))
        if not (app_token_ok if token.startswith("xapp-") else self._token_ok(token)):
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if decode_error:
            problems = ["a JSON field (blocks, view, attachments...) is not valid JSON"]
            self.violations.append(Violation(method, decode_error, problems, args))
            return 200, {"ok": False, "error": decode_error}, {}
        handler_name = self._METHODS.get(method)
        if handler_name is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        try:
            result = getattr(self, handler_name)(args)
        except SlackError as exc:
            return exc.status, {"ok": False, "error": exc.error, **exc.extra}, {}
        return 200, {"ok": True, **result}, {}

    def _token_ok(self, token: str) -> bool:
        if self.tokens is not None:
            return token in self.tokens
        return bool(re.match(r"^xox[bpe]-[A-Za-z0-9-]+$", token))

    def _upload(self, upload_token: str) -> Response:
        with self._lock:
            file_id = self._upload_tokens.pop(upload_token, None)
            if file_id is None:
                return Response("not found", status=404)
            self._files[file_id].content = request.get_data()
            self._changed.notify_all()
            size = len(self._files[file_id].content or b"")
        return Response(f"OK - {size}", status=200, content_type="text/plain")

    def _response(self, path: str) -> Response:
        if request.is_json:
            body = request.get_json(silent=True)
        else:
            raw = request.form.get("payload") or request.get_data(as_text=True)
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                body = None
        with self._lock:
            target = self._response_urls.get(path)
            url = self.url + path
            if target is None:
                return Response("expired_url", status=404)
            if not isinstance(body, dict):
                self._responses.append(ResponseCall(url, {}, dt.datetime.now(dt.UTC), 400))
                return Response("invalid_payload", status=400)
            target["uses"] += 1
            if target["uses"] > RESPONSE_URL_MAX_USES:
                return Response("used_url", status=404)
            status, text = self._apply_response(target, body)
            self._responses.append(ResponseCall(url, body, dt.datetime.now(dt.UTC), status))
            self._changed.notify_all()
        return Response(text, status=status, content_type="text/html")

    def _apply_response(self, target: dict[str, Any], body: dict[str, Any]) -> tuple[int, str]:
        channel_id = target["channel"]
        if _as_bool(body.get("delete_original", False)):
            if channel_id and target["message_ts"]:
                try:
                    message = self._find(channel_id, target["message_ts"])
                    self._messages[channel_id].remove(message)
                except SlackError:
                    return 404, "message_not_found"
            return 200, "ok"
        if not (body.get("text") or body.get("blocks") or body.get("attachments")):
            return 400, "no_text"
        found = message_problems(body)
        if found:
            error, problems = found
            self.violations.append(Violation("response_url", error, problems, body))
            return 400, error
        if _as_bool(body.get("replace_original", False)) and channel_id and target["message_ts"]:
            try:
                message = self._find(channel_id, target["message_ts"])
            except SlackError:
                return 404, "message_not_found"
            message["text"] = body.get("text") or ""
            if body.get("blocks") is not None:
                message["blocks"] = body["blocks"]
            else:
                message.pop("blocks", None)
            message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
            return 200, "ok"
        if body.get("response_type") == "in_channel" and channel_id:
            message = self._bot_message(body)
            message["ts"] = self._next_ts()
            if body.get("thread_ts"):
                message["thread_ts"] = body["thread_ts"]
            self._messages.setdefault(channel_id, []).append(message)
            if body.get("thread_ts"):
                self._note_reply(channel_id, body["thread_ts"], message)
            return 200, "ok"
        message = self._bot_message(body)
        message.update({"ts": self._next_ts(), "channel": channel_id, "user_to": target["user"]})
        self._ephemeral.append(message)
        return 200, "ok"

    def _make_app(self) -> Flask:
        app = Flask(f"{__name__}.{id(self)}")

        @app.route("/api/<method>", methods=["GET", "POST"])
        def api(method: str) -> Response:
            return self._api(method)

        @app.post("/upload/v1/<upload_token>")
        def upload(upload_token: str) -> Response:
            return self._upload(upload_token)

        @app.post("/actions/<path:rest>")
        def response_url(rest: str) -> Response:
            return self._response("/actions/" + rest)

        return app
