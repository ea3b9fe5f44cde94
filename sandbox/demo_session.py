"""`databot demo -i`: the person at the keyboard is Alice in #analytics. What they type goes
to the real app as Slack would send it (signed requests), and what the bot sends back is
printed as Slack shows it:

- a slash command (`/metric dau 7d`); a command the app does not have gets a plain answer
  listing the ones it has (Slack itself refuses unknown commands: the bot never sees them);
- `click N`: every button the bot shows is numbered `[N]` under its message or modal;
- a modal the bot opens (the request modal) is filled in field by field, the way Slack's
  client would: required fields must be answered, dates must be dates, options are picked
  by number; then it is submitted. Errors the bot answers with are shown next to their
  field and only those fields are asked again: nothing typed is lost.

Line editing and history come from the standard `readline` module where Python has it
(not on every platform: without it, plain input still works). History is kept in DATA_DIR.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from bot.ids import Command
from bot.manifest import load_manifest, packaged_manifest
from bot.render import mrkdwn, render_message, render_view
from sandbox.demo import SCENES, DemoHarness, Shown, play_scene, scene_titles
from sandbox.harness import ANALYTICS_CHANNEL
from sandbox.slack_requests import (
    USER_ID,
    _initial,
    block_actions,
    global_shortcut,
    state_values,
    view_submission,
)

CANCEL = "!cancel"
CLEAR = "-"
TEXT_INPUTS = ("plain_text_input", "email_text_input", "url_text_input", "number_input")
SINGLE_SELECTS = ("static_select", "external_select", "radio_buttons")
MULTI_SELECTS = ("multi_static_select", "multi_external_select", "checkboxes")
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


def help_text() -> str:
    commands = ", ".join(c.value for c in Command)
    return (
        f"Slash commands: {commands} (e.g. `/metric dau 7d`, `/metric help`).\n"
        "Also: `click N` (the button numbered [N]), `shortcut [N]` (the ⚡ shortcuts menu), "
        "`scenes`, `play NAME`, `help`, `quit`.\n"
        "In a modal each field is asked in turn: Enter keeps what is shown, "
        f"`{CLEAR}` clears it, `{CANCEL}` closes the modal."
    )


class Cancelled(Exception):
    """The person closed the modal."""


@dataclasses.dataclass(frozen=True)
class Button:
    text: str
    action_id: str
    block_id: str | None
    shown: Shown
    url: str | None = None  # a link button: Slack opens it, and still tells the app


def _readline() -> ModuleType | None:
    try:
        import readline  # optional: not on every platform (e.g. Windows)
    except ImportError:
        return None
    return readline


def buttons_in(blocks: list[dict[str, Any]]) -> list[tuple[str | None, dict[str, Any]]]:
    """(block_id, button) for every button in `blocks`, in reading order."""
    found = []
    for block in blocks or []:
        elements = block.get("elements", []) if block.get("type") == "actions" else []
        if block.get("accessory"):
            elements = [block["accessory"]]
        found += [(block.get("block_id"), e) for e in elements if e.get("type") == "button"]
    return found


class DemoSession:
    def __init__(
        self,
        h: DemoHarness,
        *,
        history: Path | None = None,
        stdin: TextIO | None = None,
        user: str = USER_ID,
        channel: str = ANALYTICS_CHANNEL,
    ) -> None:
        self.h = h
        self.out = h.out
        self.stdin = stdin or sys.stdin
        self.user = user
        self.channel = channel
        self.history = history
        self.tty = self.stdin.isatty()
        self.readline = _readline() if self.tty else None
        self.buttons: dict[int, Button] = {}
        self.modals: list[Shown] = []  # modals shown since the last action
        self.filling = False

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        self.h.slack.add_channel(self.channel, "analytics")
        for user_id, name, real_name in (
            ("U0ALICE", "alice", "Alice Chen"),
            ("U0BOB", "bob", "Bob Ortiz"),
            ("U0CAROL", "carol", "Carol Diaz"),
        ):
            self.h.slack.add_user(user_id, name=name, real_name=real_name)
        self.h.on_shown = self.offer
        self.say(f"\nYou are @{self._name(self.user)} in #analytics.\n{help_text()}")
        if self.tty and self.readline is None:
            self.say("(No line editing: this Python has no readline module.)")
        self._load_history()
        try:
            while True:
                try:
                    line = self.read("slack> ").strip()
                except EOFError:
                    break
                if line in ("quit", "exit"):
                    break
                if line:
                    try:
                        self.handle(line)
                    except EOFError:  # input ended in the middle of a modal
                        break
        finally:
            self.h.on_shown = None
            self._save_history()

    def handle(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        if word.startswith("/"):
            self.slash(word, rest.strip())
        elif word == "click":
            self.click(rest.strip())
        elif word == "shortcut":
            self.shortcut(rest.strip())
        elif word == "help":
            self.say(help_text())
        elif word == "scenes":
            for name, title in scene_titles().items():
                self.say(f"  {name:<10} {title}")
        elif word == "play":
            if rest.strip() not in SCENES:
                self.say(f"No scene {rest.strip()!r}. Scenes: {', '.join(SCENES)}.")
                return
            play_scene(self.h, rest.strip())
            self.modals.clear()  # the scene filled in its own modals
        else:
            self.say(f"Slack would not know what to do with “{line}”.\n{help_text()}")

    # --- what the person does ------------------------------------------------------------

    def slash(self, command: str, text: str) -> None:
        if command not in {c.value for c in Command}:
            # Slack answers this itself; the app is never asked.
            self.say(
                f"{command} is not a command here. Commands: "
                f"{', '.join(c.value for c in Command)} (`/metric help` lists the metrics)."
            )
            return
        response, _ = self.h.slash(command, text, user=self.user, channel=self.channel)
        self._answer(response)

    def shortcut(self, which: str) -> None:
        """The global shortcuts of the manifest (Slack's ⚡ menu): list them, or run one."""
        shortcuts = [
            s
            for s in load_manifest(packaged_manifest()).get("features", {}).get("shortcuts", [])
            if s.get("type") == "global"
        ]
        number = int(which) if which.isdigit() else None
        if number is None or not 1 <= number <= len(shortcuts):
            listed = "   ".join(f"[{n}] {s['name']}" for n, s in enumerate(shortcuts, start=1))
            self.say(f"shortcuts: {listed}   (`shortcut N`)")
            return
        chosen = shortcuts[number - 1]
        self.say(f"(you pick “{chosen['name']}” from the shortcuts menu)")
        payload = global_shortcut(
            chosen["callback_id"], user_id=self.user, trigger_id=self.h.slack.issue_trigger_id()
        )
        self._answer(self.h.interact(payload))

    def click(self, which: str) -> None:
        number = int(which) if which.isdigit() else None
        button = self.buttons.get(number) if number is not None else None
        if button is None:
            shown = ", ".join(f"[{n}]" for n in self.buttons) or "none yet"
            self.say(f"Click which button? `click N`, N one of the numbers shown: {shown}.")
            return
        shown = button.shown
        common: dict[str, Any] = {
            "block_id": button.block_id,
            "user_id": self.user,
            "trigger_id": self.h.slack.issue_trigger_id(),
        }
        if shown.kind == "view":
            view = self.h.slack.view(shown.view_id) if shown.view_id else shown.payload
            payload = block_actions(button.action_id, view=view, **common)
        else:
            channel = shown.channel or self.channel
            message = shown.payload if shown.kind == "ephemeral" else self._stored(shown)
            payload = block_actions(
                button.action_id,
                message=message,
                channel_id=message.get("channel") or channel,
                is_ephemeral=shown.kind == "ephemeral",
                response_url=self.h.slack.response_url(channel),
                **common,
            )
        self.say(f"(you click “{button.text}”)")
        if button.url:
            self.say(f"(Slack opens {button.url} in your browser)")
        self._answer(self.h.interact(payload), link=button.url is not None)

    def _answer(self, response: Any, *, link: bool = False) -> None:
        """What the ack said, then everything the bot sent after it; then any modal."""
        if response.status == 404:
            if not link:  # a link button needs no listener: the link is what it does
                self.say("(the bot has nothing for that)")
        elif response.status != 200:
            self.say(f"(the bot answered HTTP {response.status})")
        elif response.body and response.headers.get("Content-Type", "").startswith(
            "application/json"
        ):
            body = response.json()
            if body.get("text") or body.get("blocks"):
                self.say("\n--- reply (only visible to you) ---")
                self.say(render_message(body))
                self.offer(Shown("ephemeral", body, channel=self.channel))
        self.h.show_new()
        self._fill_opened_modal()

    # --- buttons ------------------------------------------------------------------------

    def offer(self, shown: Shown) -> None:
        """Number the buttons of what was just printed; remember a modal to fill in."""
        if shown.kind == "view" and not self.filling:
            self.modals.append(shown)
        listed = []
        for block_id, element in buttons_in(shown.payload.get("blocks") or []):
            number = len(self.buttons) + 1
            text = mrkdwn(str((element.get("text") or {}).get("text", "")))
            self.buttons[number] = Button(
                text, str(element.get("action_id")), block_id, shown, element.get("url")
            )
            listed.append(f"[{number}] {text}")
        if listed:
            self.say("buttons: " + "   ".join(listed) + "   (`click N`)")

    def _stored(self, shown: Shown) -> dict[str, Any]:
        """The channel message as Slack holds it (with its ts), for a click on it."""
        blocks = shown.payload.get("blocks")
        for message in reversed(self.h.slack.messages()):
            if message.get("blocks") == blocks:
                return message
        return {**shown.payload, "channel": shown.channel or self.channel}

    # --- modals -------------------------------------------------------------------------

    def _fill_opened_modal(self) -> None:
        modals, self.modals = self.modals, []
        if not modals:
            return
        view_id = modals[-1].view_id or self._view_id(modals[-1].payload)
        if view_id is None:
            return
        view = self.h.slack.view(view_id)
        if view.get("submit") and any(b.get("type") == "input" for b in view.get("blocks", [])):
            self.fill(view_id)

    def _view_id(self, payload: dict[str, Any]) -> str | None:
        views = self.h.slack.views()
        same = [v for v in views if v.get("blocks") == payload.get("blocks")]
        chosen = same[-1] if same else (views[-1] if views else None)
        return chosen["id"] if chosen else None

    def fill(self, view_id: str) -> None:
        view = self.h.slack.view(view_id)
        title = (view.get("title") or {}).get("text", "")
        self.say(
            f"\nFilling in “{title}”: Enter keeps what is shown, `{CLEAR}` clears it, "
            f"`{CANCEL}` closes the modal."
        )
        values: dict[str, Any] = {}
        asked: set[str] = set()
        self.filling = True
        try:
            while True:
                changed = False
                for block in inputs(view):
                    block_id = block["block_id"]
                    if block_id in asked:
                        continue
                    element = block["element"]
                    before = values.get(block_id, _initial(element))
                    values[block_id] = self.ask(block, before)
                    asked.add(block_id)
                    if block.get("dispatch_action") and values[block_id] != before:
                        view = self._dispatch(view, block, values)
                        changed = True
                        break
                if changed:
                    continue
                errors = self._submit(view, values)
                if not errors:
                    return
                self.say("\nThe modal did not close; Slack shows, under each field:")
                labels = {b["block_id"]: label(b) for b in inputs(view)}
                for block_id, message in errors.items():
                    self.say(f"  {labels.get(block_id, block_id)}: {message}")
                asked -= set(errors)
        except Cancelled:
            self.say("(modal closed; nothing was sent)")
        finally:
            self.filling = False

    def _state(self, view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """{block_id: {action_id: value}} of what is typed, for the view's inputs."""
        return {
            block["block_id"]: {block["element"]["action_id"]: values[block["block_id"]]}
            for block in inputs(view)
            if block["block_id"] in values
        }

    def _dispatch(
        self, view: dict[str, Any], block: dict[str, Any], values: dict[str, Any]
    ) -> dict[str, Any]:
        """A select that dispatches its action (the request type): Slack tells the app at
        once, with what is typed so far; the app updates the modal."""
        element = block["element"]
        payload = block_actions(
            element["action_id"],
            values[block["block_id"]],
            view=view,
            block_id=block["block_id"],
            user_id=self.user,
        )
        state = {"values": state_values(payload["view"], self._state(view, values))}
        payload["view"]["state"] = state
        payload["state"] = state
        self.h.interact(payload)
        self.h.show_new()
        return self.h.slack.view(view["id"])

    def _submit(self, view: dict[str, Any], values: dict[str, Any]) -> dict[str, str]:
        """Press Submit; the errors the app answered with, by block id (none: closed)."""
        self.say("(you press “{}”)".format((view.get("submit") or {}).get("text", "Submit")))
        payload = view_submission(view, self._state(view, values), user_id=self.user)
        response = self.h.interact(payload)
        body = response.json() if response.body else None
        if response.status != 200:
            self.say(f"(the bot answered HTTP {response.status}; the modal stays open)")
            return {}
        action = (body or {}).get("response_action")
        if action == "errors":
            return dict(body["errors"])
        if action in ("update", "push"):
            self.say(f"\n--- modal ({action}d by the submission) ---")
            self.say(render_view(body["view"]))
            self.offer(Shown("view", body["view"], view_id=view["id"]))
        self.h.show_new()
        return {}

    # --- asking for one field, as Slack's client would take it ---------------------------

    def ask(self, block: dict[str, Any], current: Any) -> Any:
        element = block["element"]
        kind = element.get("type")
        required = not block.get("optional")
        head = label(block) + ("" if required else " (optional)")
        hint = (block.get("hint") or {}).get("text")
        self.say(f"\n{head}" + (f" — {hint}" if hint else ""))
        while True:
            if kind in TEXT_INPUTS:
                value = self._ask_text(element, current)
            elif kind in SINGLE_SELECTS or kind in MULTI_SELECTS:
                value = self._ask_options(element, current, many=kind in MULTI_SELECTS)
            elif kind in ("users_select", "multi_users_select"):
                value = self._ask_users(current, many=kind == "multi_users_select")
            elif kind == "datepicker":
                value = self._ask_date(current)
            else:
                self.say(f"  ({kind} cannot be set from a terminal; left as it is)")
                return current
            if value is _AGAIN:
                continue
            if required and value in (None, "", []):
                self.say("  This field is required.")
                continue
            return value

    def _line(self, prompt: str, prefill: str = "") -> str:
        line = self.read(prompt, prefill).strip()
        if line == CANCEL:
            raise Cancelled
        return line

    def _ask_text(self, element: dict[str, Any], current: Any) -> Any:
        if element.get("multiline"):
            if current:
                self.say("  now: " + str(current).replace("\n", "\n       "))
            self.say("  (several lines; an empty line ends)")
            lines = []
            while line := self._line("  > " if lines else "  text> "):
                lines.append(line)
            if not lines:
                return current
            text = "\n".join(lines)
        else:
            if current and not self.readline:
                self.say(f"  now: {current}")
            text = self._line("  text> ", str(current or ""))
            if not text:
                return current
        return None if text == CLEAR else text

    def _ask_options(self, element: dict[str, Any], current: Any, *, many: bool) -> Any:
        options = list(element.get("options") or [])
        for group in element.get("option_groups") or []:
            options += group.get("options", [])
        chosen = set(current or []) if many else {current}
        for n, option in enumerate(options, start=1):
            mark = "*" if option.get("value") in chosen else " "
            self.say(f"  {mark}{n}. {mrkdwn(option['text']['text'])}")
        prompt = "  numbers> " if many else "  number> "
        line = self._line(prompt)
        if not line:
            return current
        if line == CLEAR:
            return [] if many else None
        picked = []
        for word in re.split(r"[,\s]+", line) if many else [line]:
            match = _pick(options, word)
            if match is None:
                self.say(f"  “{word}” is not one of 1–{len(options)}.")
                return _AGAIN
            picked.append(match)
        return picked if many else picked[0]

    def _ask_users(self, current: Any, *, many: bool) -> Any:
        people = {u["name"]: u["id"] for u in self.h.slack.users() if not u.get("is_bot")}
        now = current if isinstance(current, list) else [current] if current else []
        if now:
            self.say("  now: " + " ".join("@" + self._name(u) for u in now))
        self.say("  people: " + " ".join("@" + name for name in people))
        line = self._line("  people> " if many else "  person> ")
        if not line:
            return current
        if line == CLEAR:
            return [] if many else None
        ids = []
        for word in line.replace(",", " ").split():
            user = word if _USER_ID.match(word) else people.get(word.lstrip("@").lower())
            if user is None:
                self.say(f"  No one called {word} here.")
                return _AGAIN
            ids.append(user)
        return ids if many else ids[0]

    def _ask_date(self, current: Any) -> Any:
        if current:
            self.say(f"  now: {current}")
        line = self._line("  date (YYYY-MM-DD)> ")
        if not line:
            return current
        if line == CLEAR:
            return None
        try:
            return dt.date.fromisoformat(line).isoformat()
        except ValueError:
            self.say("  Slack's date picker takes a date like 2026-12-24.")
            return _AGAIN

    # --- terminal ------------------------------------------------------------------------

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def read(self, prompt: str, prefill: str = "") -> str:
        """One line typed by the person. On a terminal with readline: editable, with
        history, `prefill` already in the line. Elsewhere (a pipe, a script) the line is
        echoed, so the output reads like the session it was."""
        if self.tty:
            if self.readline is not None and prefill:
                rl = self.readline
                rl.set_startup_hook(lambda: rl.insert_text(prefill))
            try:
                return input(prompt)
            finally:
                if self.readline is not None:
                    self.readline.set_startup_hook(None)
        print(prompt, end="", file=self.out, flush=True)
        line = self.stdin.readline()
        if not line:
            print(file=self.out)
            raise EOFError
        print(line.rstrip("\n"), file=self.out)
        return line.rstrip("\n")

    def _name(self, user_id: str) -> str:
        return next((u["name"] for u in self.h.slack.users() if u["id"] == user_id), user_id)

    def _load_history(self) -> None:
        if self.readline is not None and self.history is not None:
            try:
                self.readline.read_history_file(self.history)
            except OSError:
                pass  # no history yet

    def _save_history(self) -> None:
        if self.readline is not None and self.history is not None:
            try:
                self.readline.set_history_length(500)
                self.readline.write_history_file(self.history)
            except OSError:
                pass  # a read-only folder: history is a convenience


_AGAIN = object()  # the answer could not be used: ask the same field again


def inputs(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in view.get("blocks", []) if b.get("type") == "input" and b.get("element")]


def label(block: dict[str, Any]) -> str:
    return str((block.get("label") or {}).get("text", block.get("block_id", "")))


def _pick(options: list[dict[str, Any]], word: str) -> str | None:
    """The value of the option numbered `word` (1-based), or whose text is `word`."""
    if word.isdigit() and 1 <= int(word) <= len(options):
        return str(options[int(word) - 1]["value"])
    for option in options:
        if mrkdwn(option["text"]["text"]).lower() == word.lower():
            return str(option["value"])
    return None
