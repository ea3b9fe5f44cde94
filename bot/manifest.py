"""Keeps manifest.yml and the code in step: every slash command, shortcut and scope the
code uses is in the manifest, and nothing more."""

from __future__ import annotations

import re
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

import yaml

from bot.ids import Command, Event, Shortcut

ROOT = Path(__file__).resolve().parent.parent

# Web API methods the code calls -> the bot scope each needs (api.slack.com/methods).
METHOD_SCOPES: dict[str, str | None] = {
    "chat_postMessage": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_update": "chat:write",
    "chat_delete": "chat:write",
    "chat_getPermalink": None,
    "conversations_replies": "channels:history",  # groups:history for private channels
    "conversations_history": "channels:history",
    # A DM's conversation ID, to look for a DM whose answer was lost (bot/slack_post.py).
    "conversations_open": "im:write",
    # Scheduled posts resolve a configured #name to the ID history needs (bot/scheduling/runner.py).
    "conversations_list": "channels:read",  # groups:read for private channels
    "conversations_info": "channels:read",
    "users_info": "users:read",
    "files_upload_v2": "files:write",
    "views_open": None,
    "views_update": None,
    "views_push": None,
    "views_publish": None,
}
# Scopes that follow from features rather than from one method call.
IMPLIED_SCOPES = {
    "commands": "slash commands and shortcuts",
    "chat:write.public": "posting to #analytics without being invited first",
    "groups:history": "turning threads in private channels into requests, and the "
    "message.groups event (replies in their threads)",
    "groups:read": "finding a private channel a scheduled post goes to by its #name",
    "im:history": "finding its own DM whose answer was lost before sending it again",
    "app_mentions:read": "answering `@databot dau 7d` (the app_mention event)",
}


def packaged_manifest() -> Traversable:
    """bot/manifest.yml, the copy of the top-level manifest.yml that ships in the package
    (tests/test_manifest.py keeps the two identical)."""
    return resources.files("bot").joinpath("manifest.yml")


def load_manifest(path: Path | Traversable) -> dict:
    return yaml.safe_load(path.read_text())


def methods_used(roots: tuple[Path, ...] = (ROOT / "bot", ROOT / "handlers")) -> set[str]:
    pattern = re.compile(r"\.(" + "|".join(METHOD_SCOPES) + r")\(")
    found: set[str] = set()
    for root in roots:
        for path in root.rglob("*.py"):
            found.update(pattern.findall(path.read_text()))
    return found


def required_scopes() -> set[str]:
    return {s for m in methods_used() if (s := METHOD_SCOPES[m])} | {"commands"}


def manifest_bot_scopes(manifest: dict) -> set[str]:
    """The bot scopes manifest.yml asks Slack for."""
    return set(manifest.get("oauth_config", {}).get("scopes", {}).get("bot", []))


def manifest_problems(path: Path | Traversable) -> list[str]:
    if not path.is_file():
        return [f"{path.name} not found"]
    try:
        manifest = load_manifest(path)
    except yaml.YAMLError as exc:
        return [f"{path.name} is not valid YAML: {exc}"]
    features = manifest.get("features", {})
    problems: list[str] = []

    commands = {c["command"] for c in features.get("slash_commands", [])}
    code_commands = {c.value for c in Command}
    if missing := code_commands - commands:
        problems.append(f"commands handled in code but not in the manifest: {sorted(missing)}")
    if extra := commands - code_commands:
        problems.append(f"commands in the manifest that no code handles: {sorted(extra)}")

    shortcuts = {s["callback_id"] for s in features.get("shortcuts", [])}
    code_shortcuts = {s.value for s in Shortcut}
    if missing := code_shortcuts - shortcuts:
        problems.append(f"shortcuts handled in code but not in the manifest: {sorted(missing)}")
    if extra := shortcuts - code_shortcuts:
        problems.append(f"shortcuts in the manifest that no code handles: {sorted(extra)}")

    scopes = set(manifest.get("oauth_config", {}).get("scopes", {}).get("bot", []))
    if missing := required_scopes() - scopes:
        problems.append(f"scopes the code needs but the manifest lacks: {sorted(missing)}")
    if extra := scopes - required_scopes() - set(IMPLIED_SCOPES):
        problems.append(f"scopes in the manifest that no code uses: {sorted(extra)}")

    subscribed = set(
        (manifest.get("settings", {}).get("event_subscriptions") or {}).get("bot_events") or []
    )
    code_events = {e.value for e in Event}
    if missing := code_events - subscribed:
        problems.append(f"events handled in code but not in the manifest: {sorted(missing)}")
    if extra := subscribed - code_events:
        problems.append(f"events in the manifest that no code handles: {sorted(extra)}")
    app_home = features.get("app_home") or {}
    if Event.APP_HOME_OPENED.value in code_events and not app_home.get("home_tab_enabled"):
        problems.append("app_home.home_tab_enabled must be true for the Home tab")
    if Event.APP_MENTION.value in subscribed and "app_mentions:read" not in scopes:
        problems.append("the app_mention event needs the app_mentions:read scope")

    interactivity = manifest.get("settings", {}).get("interactivity", {})
    if (shortcuts or code_shortcuts) and not interactivity.get("is_enabled"):
        problems.append("interactivity must be enabled for shortcuts, modals and buttons")
    return problems
