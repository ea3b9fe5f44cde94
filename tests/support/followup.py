"""Helpers of the request follow-up tests: file a request the way Slack users do (through the
real app), change its issue the way the team does on github.com, and read the replies."""

from __future__ import annotations

import json
import time
from typing import Any

from bot.features import observe_for_followups, request_changed
from bot.followup.poller import poll_comments
from bot.ids import Action, Command, Shortcut
from bot.urgent.poller import poll_once
from sandbox.slack_requests import message_shortcut, view_submission

INPUT = Action.REQUEST_INPUT.value
CHANNEL = "C0ANALYTICS"


def people(bot) -> None:
    bot.slack.add_channel(CHANNEL, "analytics")
    bot.slack.add_user("U0ALICE", name="alice", real_name="Alice Chen")
    bot.slack.add_user("U0BOB", name="bob", real_name="Bob Ortiz")


def _wait_call(bot, method: str, before: int) -> Any:
    call = bot.slack.wait_for(method, before + 1)[before]
    assert call.error is None, call.error
    return call


def file_from_thread(bot, question: str) -> tuple[str, int]:
    """Bob asks in #analytics; Alice turns the thread into a request. (thread ts, issue #)."""
    root_ts = bot.slack.seed_thread(CHANNEL, [{"user": "U0BOB", "text": question}])
    root = next(m for m in bot.slack.messages(CHANNEL) if m["ts"] == root_ts)
    before = len(bot.slack.calls("views.update"))
    bot.interact(
        message_shortcut(
            Shortcut.THREAD_TO_REQUEST,
            root,
            user_id="U0ALICE",
            trigger_id=bot.slack.issue_trigger_id(),
        )
    )
    view = bot.slack.view(_wait_call(bot, "views.update", before).args["view_id"])
    _submit(bot, view)
    issue = next(i for i in bot.github.issues() if i["title"].startswith(question[:40]))
    return root_ts, issue["number"]


def file_from_modal(bot, title: str, user: str = "U0ALICE") -> int:
    """`/data-request TITLE` and Submit: replies go to the requester's DM. Issue number."""
    before = len(bot.slack.calls("views.open"))
    bot.slash(Command.DATA_REQUEST, title, user=user)
    _wait_call(bot, "views.open", before)
    view = bot.slack.views()[-1]
    _submit(bot, view, problem=True, user=user)
    return next(i for i in bot.github.issues() if i["title"] == title)["number"]


def _submit(bot, view: dict, *, problem: bool = False, user: str = "U0ALICE") -> None:
    values = {
        "q:end_state": {INPUT: "A weekly chart."},
        "q:why": {INPUT: "Planning."},
    }
    if problem:
        values["q:problem"] = {INPUT: "What is it?"}
    before = len(bot.deps.work.futures)
    response = bot.interact(view_submission(view, values, user_id=user))
    assert response.status == 200
    deadline = time.monotonic() + 5
    while len(bot.deps.work.futures) <= before:
        assert time.monotonic() < deadline, "the submission was not handed off for filing"
        time.sleep(0.01)
    bot.wait_idle()


def followups(bot, root_ts: str | None = None, *, dm: str | None = None) -> list[dict]:
    """The bot's replies after "Filed #N": in the request's thread, or in the DM."""
    if dm is not None:
        found = [m for m in bot.slack.messages(dm) if m.get("bot_id")]
    else:
        found = [m for m in bot.slack.thread(CHANNEL, root_ts) if m.get("bot_id")]
    return [m for m in found if not m.get("text", "").startswith("Filed #")]


def shown(message: dict) -> str:
    """A message as text a person reads (notification text and blocks)."""
    return message.get("text", "") + " " + json.dumps(message.get("blocks") or [])


def poll(bot, deps=None) -> None:
    """One pass of what the clock runs: the issues listing (urgent poller, with follow-ups
    observing it) and the comments listing. Then wait for the work handed off."""
    deps = deps or bot.deps
    poll_once(deps, observers=[observe_for_followups])
    poll_comments(deps, on_change=request_changed)
    bot.wait_idle()


def hook(bot, event: str, payload: dict, delivery: str | None = None):
    response = bot.github_webhook(event, payload, delivery=delivery)
    bot.wait_idle()
    return response
