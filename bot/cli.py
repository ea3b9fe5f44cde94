"""The `databot` command. Builds settings, logging and dependencies once, then runs one
subcommand. Errors a user can fix are printed in plain words, never as a traceback."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable

from pydantic import ValidationError

from bot.errors import ConfigError, DatabotError
from bot.settings import Settings

logger = logging.getLogger(__name__)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"Invalid settings: {problems}") from None


# --- serve ---------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_app
    from bot.checks import require_serve_settings
    from bot.deps import build_deps
    from bot.web import WebServer, build_web

    mode = require_serve_settings(settings)
    deps = build_deps(settings)
    logger.info("opening the warehouse")
    deps.warehouse.query("SELECT 1 AS ok")
    app = build_app(deps)
    stoppers = start_background_workers(deps)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if mode == "socket":
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
            handler.connect()
            # Socket Mode still serves /healthz and the GitHub webhook over HTTP.
            server = WebServer(build_web(None, deps), host=settings.host, port=settings.port)
            server.start()
            logger.info("connected to Slack over Socket Mode; health on port %s", server.port)
            stop.wait()
            handler.close()
            server.stop()
        else:
            server = WebServer(
                build_web(app, deps),
                host=settings.host,
                port=settings.port,
                threads=settings.listener_threads,
            )
            logger.info("serving Slack requests on %s:%s", settings.host, server.port)
            server.start()
            stop.wait()
            server.stop()
    except KeyboardInterrupt:
        pass
    finally:
        for stopper in stoppers:
            stopper()
        deps.close()
    return 0


def start_background_workers(deps) -> list[Callable[[], None]]:
    """Workers that run beside the web process (e.g. the intake outbox retry loop)."""
    stoppers: list[Callable[[], None]] = []
    return stoppers


# --- clock ---------------------------------------------------------------------------


def cmd_clock(args: argparse.Namespace, settings: Settings) -> int:
    logger.info("clock: no scheduled jobs are configured yet")
    return 0


# --- check ---------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.checks import run_checks

    report = run_checks(settings)
    print(report.render())
    return 0 if report.ok else 1


# --- demo ----------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from sandbox.demo import run_demo

    if not args.verbose:
        # The demo prints what the bot sends; log lines would bury it.
        logging.getLogger().setLevel(logging.WARNING)
    return run_demo(settings, interactive=args.interactive)


# --- urgent-poll ---------------------------------------------------------------------


def cmd_urgent_poll(args: argparse.Namespace, settings: Settings) -> int:
    from bot.deps import build_deps
    from bot.urgent_poller import PollLoop, poll_once

    if settings.github_token is None:
        raise ConfigError("Set GITHUB_TOKEN (issues read access to GITHUB_REPO) to poll GitHub.")
    deps = build_deps(settings)
    try:
        if args.once:
            result = poll_once(deps)
            print(
                f"{result.requests} request(s) to GitHub, "
                + ("304 not modified" if result.not_modified else f"{result.issues_seen} issue(s)")
                + f"; recorded {result.recorded or 'nothing'}; Slack {result.synced or 'unchanged'}"
            )
            return 0
        loop = PollLoop(deps).start()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        loop.stop()
        return 0
    finally:
        deps.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="databot", description="Slack bot for the Data & Analytics team."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the bot (Socket Mode if SLACK_APP_TOKEN, else HTTP)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("clock", help="run the scheduler process (one per deployment)")
    p.set_defaults(func=cmd_clock)
    p = sub.add_parser("check", help="validate settings, manifest and catalog")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("demo", help="run the real app on loopback with stand-in Slack/GitHub")
    p.add_argument("-i", "--interactive", action="store_true", help="type slash commands")
    p.set_defaults(func=cmd_demo)
    # Feature subcommands are added below this line.
    p = sub.add_parser(
        "urgent-poll", help="poll GitHub for urgent issues (what `clock` does without webhooks)"
    )
    p.add_argument("--once", action="store_true", help="one poll, print what it did, exit")
    p.set_defaults(func=cmd_urgent_poll)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        from bot.logs import configure_logging

        configure_logging(settings, level=logging.DEBUG if args.verbose else logging.INFO)
        return args.func(args, settings)
    except DatabotError as exc:
        print(f"databot: {exc.user_message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
