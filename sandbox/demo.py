"""`databot demo`: the main job on embedded defaults, for a newcomer with no Slack, GitHub
or Google account. It serves the real app on loopback and drives it the way Slack would
(correctly signed requests), printing every message the bot sends as a person would read it.

Each feature adds a scene (`sandbox/scenes/<feature>.py`, `run(h: DemoHarness)`) to SCENES;
the first paragraph of the scene module's docstring is its title in `databot demo --list`.

stdout holds only the story: while the demo runs, log lines go to a file in DATA_DIR
(`demo.log`, named at the start).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import logging
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from bot.errors import InputError
from bot.logs import configure_logging
from bot.render import render_message, render_view
from bot.settings import Settings
from bot.warehouse_demo import ensure_demo_warehouse
from sandbox.harness import BotHarness

# Scene modules in the order the demo plays them.
SCENES: list[str] = [
    "metric",
    "intake",
    "urgent",
    "followup",
    "sprint",
    "cody",
    "loop",
    "subscriptions",
]


LOG_FILE = "demo.log"

# Told about every message and modal the demo prints (the payload as Slack holds it, and
# where it is: see `Shown`), so `databot demo -i` can number their buttons.
ShownListener = Callable[["Shown"], None]


class Shown:
    """A message or modal the demo printed, and what a click on it needs to name."""

    def __init__(
        self,
        kind: str,  # "message" (in a channel), "ephemeral", or "view"
        payload: dict[str, Any],
        *,
        channel: str | None = None,
        view_id: str | None = None,
    ) -> None:
        self.kind = kind
        self.payload = payload
        self.channel = channel
        self.view_id = view_id


class DemoHarness(BotHarness):
    """BotHarness that narrates: `say` for the narrator, `show_new` for what the bot sent."""

    def __init__(self, *, out: TextIO = sys.stdout, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.out = out
        self._seen_calls = 0
        self._seen_responses = 0
        self.on_shown: ShownListener | None = None

    def _shown(self, shown: Shown) -> None:
        if self.on_shown is not None:
            self.on_shown(shown)

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
            self._shown(Shown("ephemeral" if kind == "ephemeral" else "message", payload))
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
            kind = "ephemeral" if method == "chat.postEphemeral" else "message"
            self._shown(Shown(kind, args, channel=args.get("channel")))
        elif method in ("views.open", "views.update", "views.push"):
            view = args.get("view")
            print(f"\n--- modal ({method}) ---", file=self.out)
            print(render_view(view), file=self.out)
            self._shown(Shown("view", view, view_id=args.get("view_id")))
        elif method == "files.completeUploadExternal":
            print(f"\n--- file uploaded to {args.get('channel_id', '?')} ---", file=self.out)


def scene_titles() -> dict[str, str]:
    """Scene name -> its title (the first paragraph of the scene module's docstring)."""
    titles = {}
    for name in SCENES:
        doc = (importlib.import_module(f"sandbox.scenes.{name}").__doc__ or "").strip()
        first = " ".join(doc.split("\n\n")[0].split())  # the first paragraph, on one line
        title = first.removeprefix("Demo scene:").strip()
        titles[name] = textwrap.shorten(title, 90, placeholder="…")
    return titles


def chosen_scenes(names: list[str] | None) -> list[str]:
    """The scenes asked for, in the order asked; an unknown name is an InputError whose
    one line lists the scenes."""
    unknown = [n for n in names or [] if n not in SCENES]
    if unknown:
        raise InputError(
            f"no demo scene called {unknown[0]!r}; the scenes are: {', '.join(SCENES)}"
        )
    return list(names or [])


def run_demo(
    settings: Settings,
    *,
    interactive: bool = False,
    scenes: list[str] | None = None,
    list_scenes: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    """Play `scenes` (default: all of them; with `interactive`, none unless asked), then
    with `interactive` hand the keyboard to the person."""
    if list_scenes:
        for name, title in scene_titles().items():
            print(f"{name:<10} {title}", file=out)
        return 0
    playing = chosen_scenes(scenes) or ([] if interactive else list(SCENES))
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    # A fresh state file each run, so the demo can be replayed; the warehouse is cached.
    state = data_dir / "demo-state.db"
    state.unlink(missing_ok=True)
    log = (data_dir / LOG_FILE).resolve()
    with logs_to_file(settings, log):
        print(
            "databot demo: the real app on loopback, with stand-in Slack and GitHub servers.\n"
            f"Log lines go to {log}",
            file=out,
        )
        prepare_warehouse(data_dir, out)
        with DemoHarness(
            out=out,
            data_dir=data_dir,
            database_url=f"sqlite:///{state.resolve()}",
            now=lambda: dt.datetime.now(dt.UTC),
        ) as h:
            h.say(f"bot listening on {h.url}/slack/events (requests are signed like Slack's)")
            for name in playing:
                play_scene(h, name)
            if interactive:
                from sandbox.demo_session import DemoSession

                DemoSession(h, history=data_dir / ".demo-history").run()
    return 0


def play_scene(h: DemoHarness, name: str) -> None:
    module = importlib.import_module(f"sandbox.scenes.{name}")
    module.run(h)
    h.show_new()


@contextlib.contextmanager
def logs_to_file(settings: Settings, path: Path) -> Iterator[None]:
    """Every log record (and Python warning) goes to `path` while the demo runs, with the
    same format and redaction as the CLI's; the CLI's handlers are back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with open(path, "w", encoding="utf-8") as stream:
        configure_logging(settings, level=level or logging.INFO, stream=stream)
        logging.captureWarnings(True)
        try:
            yield
        finally:
            logging.captureWarnings(False)
            for handler in list(root.handlers):
                root.removeHandler(handler)
            for handler in handlers:
                root.addHandler(handler)
            root.setLevel(level)


def prepare_warehouse(data_dir: Path, out: TextIO) -> None:
    """Generate today's demo warehouse before the bot needs it, on one progress line (it
    takes a while the first time each day; after that the file is reused)."""
    started = time.monotonic()
    live = out.isatty()
    said = False

    def progress(step: str, number: int, total: int) -> None:
        nonlocal said
        if live:
            print(
                f"\rGenerating the demo warehouse (once a day): {number}/{total} {step}...\033[K",
                end="",
                file=out,
                flush=True,
            )
        else:
            head = "" if said else "Generating the demo warehouse (once a day): "
            print(f"{head}{number}/{total} {step}... ", end="", file=out, flush=True)
        said = True

    ensure_demo_warehouse(data_dir, as_of=dt.datetime.now(dt.UTC), progress=progress)
    if said:
        done = f"done in {time.monotonic() - started:.0f} s."
        print(
            f"\rGenerating the demo warehouse (once a day): {done}\033[K" if live else done,
            file=out,
        )
