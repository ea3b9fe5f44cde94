"""`databot demo`: the main job on embedded defaults, for a newcomer with no Slack, GitHub
or Google account. It serves the real app on loopback and drives it the way Slack would
(correctly signed requests), printing every message the bot sends as a person would read it.

Each feature adds a scene (`sandbox/scenes/<feature>.py`, `run(h: DemoHarness)`) to SCENES.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
from pathlib import Path
from typing import Any, TextIO

from bot.render import render_message, render_view
from bot.settings import Settings
from sandbox.harness import BotHarness

# Scene modules in the order the demo plays them.
SCENES: list[str] = [
    "metric",
    "intake",
    "urgent",
    "followup",
    "sprint",
    "cody",
]


class DemoHarness(BotHarness):
    """BotHarness that narrates: `say` for the narrator, `show_new` for what the bot sent."""

    def __init__(self, *, out: TextIO = sys.stdout, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.out = out
        self._seen_calls = 0
        self._seen_responses = 0

    def say(self, text: str) -> None:
        print(f"\n>>> {text}", file=self.out)

    def section(self, title: str) -> None:
        print(f"\n{'=' * 72}\n{title}\n{'=' * 72}", file=self.out)

    def show_new(self, *, wait: bool = True) -> None:
        """Print everything the bot sent to Slack since the last call."""
        if wait:
            self.wait_idle()
        calls = self.slack.calls()
        for call in calls[self._seen_calls :]:
            self._print_call(call.method, call.args)
        self._seen_calls = len(calls)
        responses = self.slack.responses()
        for response in responses[self._seen_responses :]:
            payload = response.payload
            kind = payload.get("response_type", "ephemeral")
            heading = "only visible to you" if kind == "ephemeral" else "in channel"
            print(f"\n--- reply ({heading}) ---", file=self.out)
            print(render_message(payload), file=self.out)
        self._seen_responses = len(responses)

    def _print_call(self, method: str, args: dict[str, Any]) -> None:
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
            where = args.get("channel", "?")
            label = {
                "chat.postMessage": f"message in {where}",
                "chat.postEphemeral": f"only visible to {args.get('user')} in {where}",
                "chat.update": f"message in {where} updated",
            }[method]
            if args.get("thread_ts"):
                label += " (thread reply)"
            print(f"\n--- {label} ---", file=self.out)
            print(render_message(args), file=self.out)
        elif method in ("views.open", "views.update", "views.push"):
            view = args.get("view")
            print(f"\n--- modal ({method}) ---", file=self.out)
            print(render_view(view), file=self.out)
        elif method == "files.completeUploadExternal":
            print(f"\n--- file uploaded to {args.get('channel_id', '?')} ---", file=self.out)


def run_demo(settings: Settings, *, interactive: bool = False, out: TextIO = sys.stdout) -> int:
    data_dir = Path(settings.data_dir)
    # A fresh state file each run, so the demo can be replayed; the warehouse is cached.
    state = data_dir / "demo-state.db"
    state.unlink(missing_ok=True)
    print(
        "databot demo: the real app on loopback, with stand-in Slack and GitHub servers.\n"
        "The warehouse is the embedded DuckDB demo data (generated on first run).",
        file=out,
    )
    with DemoHarness(
        out=out,
        data_dir=data_dir,
        database_url=f"sqlite:///{state.resolve()}",
        now=lambda: dt.datetime.now(dt.UTC),
    ) as h:
        h.say(f"bot listening on {h.url}/slack/events (requests are signed like Slack's)")
        for name in SCENES:
            module = importlib.import_module(f"sandbox.scenes.{name}")
            module.run(h)
            h.show_new()
        if interactive:
            _interactive(h)
    return 0


def _interactive(h: DemoHarness) -> None:
    print(
        "\nType a slash command (e.g. `/metric dau 7d`), or `quit`.",
        file=h.out,
    )
    while True:
        try:
            line = input("slack> ").strip()
        except EOFError:
            break
        if line in ("quit", "exit"):
            break
        if not line.startswith("/"):
            print("Slash commands start with /, e.g. /metric help", file=h.out)
            continue
        command, _, text = line.partition(" ")
        response, _ = h.slash(command, text)
        if response.status != 200:
            print(f"(HTTP {response.status}) {response.text}", file=h.out)
        if response.body and response.headers.get("Content-Type", "").startswith(
            "application/json"
        ):
            print(render_message(response.json()), file=h.out)
        h.show_new()
