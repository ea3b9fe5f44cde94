"""Requests as Slack sends them to the app: signed, with realistic bodies.

- `sign(secret, body)`: the one signing helper for the whole suite (Slack's v0 scheme).
- `send(...)` / `send_signed(...)`: POST over real HTTP, answer as (status, headers, body).
- Body builders, shaped as Slack documents them:
  `slash_command` (form body), and the interactivity payloads `global_shortcut`,
  `message_shortcut`, `block_actions`, `view_submission`, `view_closed` (dicts; send them
  with `interactive_body(payload)`, which form-encodes `payload=<json>` like Slack).
- Events API: `event_callback(event)` (the envelope, sent as JSON), with the events
  `message_event(message)` (a message as `FakeSlack.user_posts` or `messages()` holds it),
  `message_changed_event`, `message_deleted_event` and `app_home_opened_event`.

Builders take the message or view the app really sent (from `FakeSlack.messages()` /
`FakeSlack.views()`) and fill in what Slack would: the element's block_id, its type and
the shape of its value, every input's entry in `view.state.values`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, NamedTuple
from urllib.parse import urlencode

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

TEAM_ID = "T0SANDBOX"
TEAM_DOMAIN = "sandbox"
API_APP_ID = "ADATABOT"
USER_ID = "U0ALICE"
# Slack still sends the deprecated verification token; Bolt ignores it.
VERIFICATION_TOKEN = "deprecated-verification-token"


# --- signing -------------------------------------------------------------------------------


def sign(secret: str, body: str | bytes, timestamp: int | None = None) -> dict[str, str]:
    """The two headers Slack adds: X-Slack-Request-Timestamp and X-Slack-Signature.

    signature = "v0=" + hex(HMAC-SHA256(secret, "v0:{timestamp}:{raw body}")).
    """
    if timestamp is None:
        timestamp = int(time.time())
    raw = body.encode("utf-8") if isinstance(body, str) else body
    base = b"v0:" + str(timestamp).encode() + b":" + raw
    digest = hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


class SentResponse(NamedTuple):
    """The app's answer; unpacks as (status, headers, body)."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


# No proxies: these requests only ever go to loopback.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def send(
    url: str,
    body: str | bytes,
    content_type: str = FORM,
    secret: str | None = None,
    timestamp: int | None = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> SentResponse:
    """POST `body` to `url`, signed with `secret` when one is given (an empty or None
    secret sends it unsigned); `headers` are added last, so they can override."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    all_headers = {
        "Content-Type": content_type,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    if secret:
        all_headers.update(sign(secret, raw, timestamp))
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=raw, method="POST", headers=all_headers)
    try:
        with _opener.open(request, timeout=timeout) as response:
            return SentResponse(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as exc:
        return SentResponse(exc.code, dict(exc.headers.items()), exc.read())


def send_signed(
    url: str,
    body: str | bytes,
    *,
    secret: str | None,
    content_type: str = FORM,
    timestamp: int | None = None,
    extra_headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> SentResponse:
    return send(url, body, content_type, secret, timestamp, headers=extra_headers, timeout=timeout)


# --- common parts --------------------------------------------------------------------------


def _trigger_id() -> str:
    # Same shape as Slack's; FakeSlack only accepts ids from FakeSlack.issue_trigger_id().
    return f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def _action_ts() -> str:
    return f"{time.time():.6f}"


def _user(user_id: str, team_id: str) -> dict[str, str]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _team(team_id: str) -> dict[str, str]:
    return {"id": team_id, "domain": TEAM_DOMAIN}


def interactive_body(payload: dict[str, Any]) -> str:
    """How Slack posts interactivity payloads: form-encoded `payload=<json>`."""
    return urlencode({"payload": json.dumps(payload)})


# --- slash commands -------------------------------------------------------------------------


def slash_command(
    command: str,
    text: str = "",
    *,
    user_id: str = USER_ID,
    user_name: str | None = None,
    channel_id: str = "C0ANALYTICS",
    channel_name: str = "analytics",
    team_id: str = TEAM_ID,
    trigger_id: str | None = None,
    response_url: str = "https://hooks.slack.com/commands/T0SANDBOX/1/abc",
    api_app_id: str = API_APP_ID,
) -> str:
    """The form-encoded body Slack POSTs for a slash command."""
    return urlencode(
        {
            "token": VERIFICATION_TOKEN,
            "team_id": team_id,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name or user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or _trigger_id(),
        }
    )


# --- shortcuts ------------------------------------------------------------------------------


def global_shortcut(
    callback_id: str,
    *,
    user_id: str = USER_ID,
    team_id: str = TEAM_ID,
    trigger_id: str | None = None,
) -> dict[str, Any]:
    return {
        "type": "shortcut",
        "token": VERIFICATION_TOKEN,
        "action_ts": _action_ts(),
        "team": _team(team_id),
        "user": _user(user_id, team_id),
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id or _trigger_id(),
    }


def message_shortcut(
    callback_id: str,
    message: dict[str, Any],
    *,
    channel_id: str | None = None,
    channel_name: str = "analytics",
    user_id: str = USER_ID,
    team_id: str = TEAM_ID,
    trigger_id: str | None = None,
    response_url: str = "https://hooks.slack.com/app/T0SANDBOX/1/abc",
) -> dict[str, Any]:
    """`message` as Slack holds it (e.g. from FakeSlack.messages(), which adds `channel`)."""
    channel_id = channel_id or message.get("channel") or "C0ANALYTICS"
    shown = {k: v for k, v in message.items() if k != "channel"}
    shown.setdefault("type", "message")
    return {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": _action_ts(),
        "team": _team(team_id),
        "user": _user(user_id, team_id),
        "channel": {"id": channel_id, "name": channel_name},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id or _trigger_id(),
        "message_ts": message["ts"],
        "message": shown,
        "response_url": response_url,
    }


# --- block elements -------------------------------------------------------------------------


def _elements(blocks: list[dict[str, Any]]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(block_id, element) for every interactive element in blocks."""
    for block in blocks or []:
        block_id = block.get("block_id")
        kind = block.get("type")
        if kind == "actions":
            for element in block.get("elements", []):
                yield block_id, element
        elif kind == "section" and block.get("accessory"):
            yield block_id, block["accessory"]
        elif kind == "input" and block.get("element"):
            yield block_id, block["element"]
        elif kind == "context_actions":
            for element in block.get("elements", []):
                yield block_id, element


def _find_element(
    blocks: list[dict[str, Any]], action_id: str, block_id: str | None = None
) -> tuple[str | None, dict[str, Any]] | None:
    for found_block_id, element in _elements(blocks):
        if element.get("action_id") == action_id and block_id in (None, found_block_id):
            return found_block_id, element
    return None


def _options(element: dict[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options", []))
    return options


def _option(element: dict[str, Any], value: str) -> dict[str, Any]:
    for option in _options(element):
        if option.get("value") == value:
            return {k: option[k] for k in ("text", "value", "description") if k in option}
    # External selects have no options in the view; Slack echoes the chosen one.
    return {"text": {"type": "plain_text", "text": str(value), "emoji": True}, "value": str(value)}


def _date_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def element_value(element_type: str, value: Any, element: dict[str, Any] | None = None) -> dict:
    """The state entry Slack sends for an element of `element_type` holding `value`.

    value: str for text inputs and single selects (the option value), list for multi
    selects and checkboxes, date/"YYYY-MM-DD" for datepickers, None for "left empty".
    A dict that already has a "type" is used as is.
    """
    if isinstance(value, dict) and "type" in value:
        return value
    element = element or {"type": element_type}
    state: dict[str, Any] = {"type": element_type}
    many = value if isinstance(value, list | tuple) else ([] if value is None else [value])
    if element_type in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
        state["value"] = None if value is None else str(value)
    elif element_type in ("static_select", "external_select", "radio_buttons"):
        state["selected_option"] = None if value is None else _option(element, str(value))
    elif element_type in ("multi_static_select", "multi_external_select", "checkboxes"):
        state["selected_options"] = [_option(element, str(v)) for v in many]
    elif element_type == "users_select":
        state["selected_user"] = value
    elif element_type == "multi_users_select":
        state["selected_users"] = list(many)
    elif element_type == "conversations_select":
        state["selected_conversation"] = value
    elif element_type == "multi_conversations_select":
        state["selected_conversations"] = list(many)
    elif element_type == "channels_select":
        state["selected_channel"] = value
    elif element_type == "multi_channels_select":
        state["selected_channels"] = list(many)
    elif element_type == "datepicker":
        state["selected_date"] = _date_text(value)
    elif element_type == "timepicker":
        state["selected_time"] = value
    elif element_type == "datetimepicker":
        state["selected_date_time"] = (
            int(value.timestamp()) if isinstance(value, dt.datetime) else value
        )
    elif element_type == "rich_text_input":
        state["rich_text_value"] = (
            None
            if value is None
            else {
                "type": "rich_text",
                "elements": [
                    {
                        "type": "rich_text_section",
                        "elements": [{"type": "text", "text": str(value)}],
                    }
                ],
            }
        )
    else:
        state["value"] = value
    return state


def _guess_type(value: Any) -> str:
    if isinstance(value, dt.date):
        return "datepicker"
    if isinstance(value, list | tuple):
        return "multi_static_select"
    return "plain_text_input"


def state_values(
    view: dict[str, Any] | None, values: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """`view.state.values` as Slack builds it on submission.

    Every input block of `view` gets an entry (empty when not in `values`), typed by its
    element; `values` is {block_id: {action_id: value}} with values as `element_value`
    takes them. Entries for blocks not in the view are guessed from the value's type.
    """
    values = values or {}
    state: dict[str, dict[str, dict[str, Any]]] = {}
    for block in (view or {}).get("blocks", []):
        if block.get("type") != "input" or not block.get("element"):
            continue
        element = block["element"]
        block_id, action_id = block.get("block_id"), element.get("action_id")
        given = values.get(block_id, {})
        value = given.get(action_id, _initial(element))
        state.setdefault(block_id, {})[action_id] = element_value(element["type"], value, element)
    for block_id, actions in values.items():
        for action_id, value in actions.items():
            if action_id in state.get(block_id, {}):
                continue
            found = _find_element((view or {}).get("blocks", []), action_id, block_id)
            element = found[1] if found else None
            kind = element["type"] if element else _guess_type(value)
            state.setdefault(block_id, {})[action_id] = element_value(kind, value, element)
    return state


def _initial(element: dict[str, Any]) -> Any:
    """What an untouched element submits: its initial value, like Slack."""
    if "initial_value" in element:
        return element["initial_value"]
    if "initial_option" in element:
        return element["initial_option"].get("value")
    if "initial_options" in element:
        return [o.get("value") for o in element["initial_options"]]
    for key in ("initial_date", "initial_time", "initial_user", "initial_channel"):
        if key in element:
            return element[key]
    if "initial_conversation" in element:
        return element["initial_conversation"]
    return None


# --- view payloads -----------------------------------------------------------------------


def _full_view(view: dict[str, Any], team_id: str) -> dict[str, Any]:
    """A view as Slack echoes it back (id, hash, state...), from a view the app sent."""
    full = {
        "id": f"V{secrets.randbelow(10**10):010d}",
        "team_id": team_id,
        "type": "modal",
        "blocks": [],
        "private_metadata": "",
        "callback_id": "",
        "state": {"values": {}},
        "hash": secrets.token_hex(8),
        "title": {"type": "plain_text", "text": "Modal"},
        "clear_on_close": False,
        "notify_on_close": False,
        "close": None,
        "submit": None,
        "previous_view_id": None,
        "root_view_id": None,
        "app_id": API_APP_ID,
        "external_id": "",
        "app_installed_team_id": team_id,
        "bot_id": "BDATABOT",
    }
    full.update(json.loads(json.dumps(view)))
    full["root_view_id"] = full["root_view_id"] or full["id"]
    return full


def view_submission(
    view: dict[str, Any],
    values: dict[str, dict[str, Any]] | None = None,
    *,
    callback_id: str | None = None,
    private_metadata: str | None = None,
    user_id: str = USER_ID,
    team_id: str = TEAM_ID,
    trigger_id: str | None = None,
    response_urls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The payload when a user presses Submit on `view` after filling in `values`.

    `view` is the view the app opened (e.g. FakeSlack.views()[-1]); values is
    {block_id: {action_id: value}}; see `state_values`.
    """
    full = _full_view(view, team_id)
    if callback_id is not None:
        full["callback_id"] = callback_id
    if private_metadata is not None:
        full["private_metadata"] = private_metadata
    full["state"] = {"values": state_values(full, values)}
    return {
        "type": "view_submission",
        "team": _team(team_id),
        "user": _user(user_id, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or _trigger_id(),
        "view": full,
        "response_urls": response_urls or [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_closed(
    view: dict[str, Any], *, user_id: str = USER_ID, team_id: str = TEAM_ID
) -> dict[str, Any]:
    return {
        "type": "view_closed",
        "team": _team(team_id),
        "user": _user(user_id, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "view": _full_view(view, team_id),
        "is_cleared": False,
        "is_enterprise_install": False,
        "enterprise": None,
    }


# --- block actions ---------------------------------------------------------------------------


def _action(
    element: dict[str, Any] | None, action_id: str, block_id: str | None, value: Any
) -> dict[str, Any]:
    kind = element["type"] if element else "button"
    action: dict[str, Any] = {"action_id": action_id, "block_id": block_id, "type": kind}
    if kind == "button":
        action["text"] = (element or {}).get(
            "text", {"type": "plain_text", "text": action_id, "emoji": True}
        )
        chosen = value if value is not None else (element or {}).get("value")
        if chosen is not None:
            action["value"] = chosen
        if element and element.get("style"):
            action["style"] = element["style"]
    elif kind == "overflow":
        action["selected_option"] = _option(element or {}, str(value))
    else:
        state = element_value(kind, value, element)
        state.pop("type")
        action.update(state)
        if element and element.get("placeholder"):
            action["placeholder"] = element["placeholder"]
    action["action_ts"] = _action_ts()
    return action


def block_actions(
    action_id: str,
    value: Any = None,
    *,
    message: dict[str, Any] | None = None,
    view: dict[str, Any] | None = None,
    block_id: str | None = None,
    channel_id: str | None = None,
    channel_name: str = "analytics",
    user_id: str = USER_ID,
    team_id: str = TEAM_ID,
    trigger_id: str | None = None,
    response_url: str | None = None,
    is_ephemeral: bool = False,
) -> dict[str, Any]:
    """The payload when a user clicks / picks element `action_id`.

    Give the `message` (e.g. from FakeSlack.messages()) or the `view` holding the element:
    its block_id, type, button text and value come from there. `value` overrides a
    button's value, or is the option value / date / user picked in a select.
    """
    blocks = (message or view or {}).get("blocks", [])
    found = _find_element(blocks, action_id, block_id)
    if found is None and (message or view):
        raise ValueError(f"no element with action_id {action_id!r} in the given blocks")
    element = found[1] if found else None
    block_id = found[0] if found else block_id
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or _trigger_id(),
        "team": _team(team_id),
        "enterprise": None,
        "is_enterprise_install": False,
        "actions": [_action(element, action_id, block_id, value)],
    }
    if view is not None:
        full = _full_view(view, team_id)
        payload["container"] = {"type": "view", "view_id": full["id"]}
        payload["view"] = full
        payload["state"] = {"values": state_values(full)}
        return payload
    channel_id = channel_id or (message or {}).get("channel") or "C0ANALYTICS"
    payload["container"] = {
        "type": "message",
        "message_ts": (message or {}).get("ts", _action_ts()),
        "channel_id": channel_id,
        "is_ephemeral": is_ephemeral,
    }
    payload["channel"] = {"id": channel_id, "name": channel_name}
    if message is not None and not is_ephemeral:
        payload["message"] = {k: v for k, v in message.items() if k != "channel"}
    payload["state"] = {"values": {}}
    payload["response_url"] = response_url or "https://hooks.slack.com/actions/T0SANDBOX/1/abc"
    return payload


# --- Events API ------------------------------------------------------------------------------


def event_callback(
    event: dict[str, Any], *, team_id: str = TEAM_ID, event_id: str | None = None
) -> dict[str, Any]:
    """An Events API envelope (send as JSON)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": API_APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": "UDATABOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


def message_event(message: dict[str, Any], *, channel_type: str = "channel") -> dict[str, Any]:
    """The `message` event Slack sends for `message` (which carries its `channel`), as
    message.channels (channel_type "channel") or message.groups ("group") deliver it."""
    event = {k: v for k, v in message.items() if k not in ("reply_count", "reply_users")}
    event.setdefault("type", "message")
    event["event_ts"] = message["ts"]
    event["channel_type"] = channel_type
    return event


def message_changed_event(message: dict[str, Any], new_text: str) -> dict[str, Any]:
    """An edit: Slack sends subtype message_changed with the old and new message."""
    edited = {**{k: v for k, v in message.items() if k != "channel"}, "text": new_text}
    edited["edited"] = {"user": message.get("user"), "ts": f"{time.time():.6f}"}
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": message["channel"],
        "ts": f"{time.time():.6f}",
        "event_ts": f"{time.time():.6f}",
        "message": edited,
        "previous_message": {k: v for k, v in message.items() if k != "channel"},
        "channel_type": "channel",
    }


def message_deleted_event(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": message["channel"],
        "ts": f"{time.time():.6f}",
        "deleted_ts": message["ts"],
        "event_ts": f"{time.time():.6f}",
        "previous_message": {k: v for k, v in message.items() if k != "channel"},
        "channel_type": "channel",
    }


def app_home_opened_event(user_id: str = USER_ID, *, tab: str = "home") -> dict[str, Any]:
    return {
        "type": "app_home_opened",
        "user": user_id,
        "channel": "D0" + user_id[1:],
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }
