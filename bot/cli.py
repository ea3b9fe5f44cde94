"""The `databot` command. Builds settings, logging and dependencies once, then runs one
subcommand. Errors a user can fix are printed in plain words, never as a traceback."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import importlib.metadata
import json
import logging
import os
import re
import signal
import sys
import threading
import typing
from collections.abc import Callable

from pydantic import ValidationError
from pydantic_settings import SettingsError

from bot.errors import ConfigError, DatabotError, InputError
from bot.settings import Settings

logger = logging.getLogger(__name__)


def load_settings() -> Settings:
    """Settings from the environment; a bad one is a ConfigError whose one line names each
    variable and what is wrong with it (never its value: it may be a secret)."""
    try:
        return Settings()
    except SettingsError as exc:
        # pydantic-settings parses JSON settings before validation and stops at the first.
        raise ConfigError(f"Invalid settings: {_unparsable_setting(exc)}") from None
    except ValidationError as exc:
        problems = "; ".join(_setting_problem(err) for err in exc.errors())
        raise ConfigError(f"Invalid settings: {problems}") from None


JSON_KINDS = {list: ("list", '["C0123ABCD"]'), dict: ("object", '{"sprint-digest": "0 9 * * mon"}')}


def _unparsable_setting(exc: SettingsError) -> str:
    match = re.search(r'field "(\w+)"', str(exc))
    if match is None:
        return str(exc).splitlines()[0]
    name = match.group(1)
    field = Settings.model_fields.get(name)
    kind = typing.get_origin(field.annotation) if field else None
    what, example = JSON_KINDS.get(kind, ("value", ""))  # type: ignore[arg-type]
    return f"{name.upper()}: not valid JSON (give a JSON {what}{example and ', e.g. ' + example})"


def _setting_problem(err) -> str:
    name = ".".join(str(p) for p in err["loc"]).upper()
    message = " ".join(str(err["msg"]).removeprefix("Value error, ").split())
    return f"{name}: {message}" if name else message


# --- serve ---------------------------------------------------------------------------

SHUTDOWN_GRACE_SECONDS = 20.0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_app
    from bot.checks import require_serve_settings, require_warehouse_settings
    from bot.deps import build_deps
    from bot.features import start_web_workers
    from bot.web import WebServer, build_web

    mode = require_serve_settings(settings)
    require_warehouse_settings(settings)
    deps = build_deps(settings)
    logger.info("opening the warehouse")
    deps.warehouse.query("SELECT 1 AS ok")
    app = build_app(deps)
    stoppers = start_web_workers(deps)
    worker_checks = {"outbox_worker": outbox_worker_check}
    # What start-up made (modules, catalog, clients: about 200k objects) lives as long as
    # the process: out of the collector's sight, a full collection no longer stalls every
    # request in flight for 100 ms or more (measured under a burst of acks).
    gc.collect()
    gc.freeze()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if mode == "socket":
            from bot.app import build_socket_mode_handler

            assert settings.slack_app_token is not None  # mode == "socket" means it is set
            handler = build_socket_mode_handler(app, settings.slack_app_token.get_secret_value())
            connect_socket_mode(handler)
            # Socket Mode still serves /healthz, /readyz, /metrics and the GitHub webhook.
            checks = {**worker_checks, "socket_mode": socket_mode_check(handler)}
            server = WebServer(
                build_web(None, deps, checks=checks), host=settings.host, port=settings.port
            )
            server.start()
            logger.info("connected to Slack over Socket Mode; health on port %s", server.port)
            stop.wait()
            handler.close()
            server.stop()
        else:
            server = WebServer(
                build_web(app, deps, checks=worker_checks),
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
        # Requests acked before the stop still get their answers (a deploy sends SIGTERM
        # and allows about 30 s before SIGKILL; waitress took up to 5 of them).
        finished = deps.finish_work(SHUTDOWN_GRACE_SECONDS)
        for stopper in stoppers:
            stopper()
        deps.close()
        if not finished:
            # Python would still wait for the worker threads at exit, past the grace the
            # platform gives before SIGKILL: end now, logs flushed.
            logging.shutdown()
            os._exit(0)
    return 0


def outbox_worker_check() -> str | None:
    """Readiness: the intake outbox thread `serve` started is still running."""
    alive = any(t.name == "databot-outbox" and t.is_alive() for t in threading.enumerate())
    return None if alive else "the outbox worker thread has stopped"


def socket_mode_check(handler) -> Callable[[], str | None]:
    def check() -> str | None:
        return None if handler.client.is_connected() else "Socket Mode is not connected"

    return check


def connect_socket_mode(handler) -> None:
    """Open the Socket Mode connection; a token Slack refuses is a ConfigError, not a
    traceback (apps.connections.open answers e.g. invalid_auth, not_allowed_token_type)."""
    from slack_sdk.errors import SlackApiError

    try:
        handler.connect()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        raise ConfigError(
            f"Slack refused to open a Socket Mode connection ({error or exc}): check that "
            "SLACK_APP_TOKEN is the app-level token (xapp-...) with connections:write and "
            "that Socket Mode is turned on for the app."
        ) from None


# --- clock ---------------------------------------------------------------------------


def cmd_clock(args: argparse.Namespace, settings: Settings) -> int:
    from bot.checks import require_warehouse_settings
    from bot.deps import build_deps
    from bot.features import build_jobs, schedule_clock_extras
    from bot.scheduling.clock import Clock

    require_warehouse_settings(settings)
    deps = build_deps(settings)
    clock = Clock(deps, build_jobs(deps))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if not clock.entries:
        logger.warning("clock: no job is enabled and scheduled (see JOB_SCHEDULES)")
    for line in clock.schedule_lines():  # the lines `databot check` prints
        logger.info("clock: %s", line)
    clock.start()
    schedule_clock_extras(clock.scheduler, deps)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        clock.stop()
        deps.close()
    return 0


# --- scheduled posts: post, posts, sprint ----------------------------------------------


def _day(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-23") from None


def cmd_post(args: argparse.Namespace, settings: Settings) -> int:
    from bot.deps import build_deps
    from bot.features import build_jobs, find_job
    from bot.scheduling import runner, runs
    from bot.scheduling.clock import manual_period
    from bot.scheduling.job import NotReady, Skip
    from bot.scheduling.runs import RunStatus

    deps = build_deps(settings)
    try:
        jobs = build_jobs(deps)
        job = find_job(jobs, args.job, deps)
        if job is None:
            names = ", ".join(str(j.id) for j in jobs)
            raise InputError(
                f"No job called {args.job!r}. Jobs: {names}; subscriptions and alerts "
                "are sub-N and alert-N (`databot subscriptions` lists them)."
            )
        period = manual_period(deps, job, args.date)
        if args.dry_run:
            result = runner.preview(deps, job, period)
            if isinstance(result, NotReady):
                print(f"{job.id} {period}: not ready: {result.reason}")
                return 1
            if isinstance(result, Skip):
                print(f"{job.id} {period}: nothing to post: {result.reason}")
                return 0
            print(render_post(result, f"{job.id} {period} (dry run: not posted)"))
            return 0
        record = runner.run_period(deps, job, period, manual=True)
        if record is None:
            # Not ours: said at once, never waited for (claims do not block).
            record = runs.get_run(deps.store, str(job.id), period)
            print(held_line(str(job.id), period, record, settings.tz))
            return 0
        link = f" {record.permalink}" if record.permalink else ""
        print(f"{job.id} {period}: {record.status}{link}")
        if record.detail:
            print(f"  {record.detail}")
        return 0 if record.status in (RunStatus.POSTED, RunStatus.WAITING) else 1
    finally:
        deps.close()


def held_line(job: str, period: str, record, tz) -> str:
    """What `databot post` says when the period is not its to run: done, or held by another
    run (a clock, another `databot post`) until its lease ends (shown in `tz`)."""
    from bot.scheduling.runs import RunStatus

    if record is None:
        return f"{job} {period} is already taken; nothing posted."
    until = f"{record.lease_until.astimezone(tz):%H:%M %Z}" if record.lease_until else "?"
    if record.status == RunStatus.RUNNING:
        return (
            f"{job} {period} is already running in another process (its lease ends {until}); "
            "nothing posted. `databot posts` shows how it ends."
        )
    if record.status == RunStatus.WAITING:
        return (
            f"{job} {period} is already waiting: another run retries it at {until}; nothing posted."
        )
    where = f": {record.permalink}" if record.permalink else ""
    return f"{job} {period} is already {record.status}{where}; nothing posted."


def render_post(post, title: str) -> str:
    """A post as a person reads it in Slack."""
    from bot.render import render_message

    lines = [f"== {title} -> {post.channel}"]
    lines.append(render_message({"text": post.text, "blocks": post.blocks}))
    lines += [f"[file: {f.filename} ({len(f.content):,} bytes) {f.title}]" for f in post.files]
    return "\n".join(lines)


def cmd_posts(args: argparse.Namespace, settings: Settings) -> int:
    from bot.scheduling.runs import list_runs
    from bot.settings import utc_now
    from bot.store import Store
    from bot.telemetry import CLOCK_HEARTBEAT_KEY

    store = Store(settings.state_url)
    try:
        store.migrate()
        records = list_runs(store, job=args.job, limit=args.limit)
        beat = store.kv_get(CLOCK_HEARTBEAT_KEY)
    finally:
        store.close()
    if args.json:
        print_json({"runs": [dataclasses.asdict(r) for r in records], "clock_heartbeat": beat})
        return 0
    if not records:
        print("No scheduled runs recorded yet.")
    else:
        print(render_runs(records, settings.tz))
    print(clock_line(beat, utc_now()))
    return 0


def print_json(value: object) -> None:
    """`--json`: one JSON document on stdout (dates and enums as strings)."""
    print(json.dumps(value, default=str, indent=2, ensure_ascii=False))


def clock_line(beat: str | None, now) -> str:
    """When the clock process last swept: a dead scheduler shows here."""
    if not beat:
        return "clock: no clock process has run against this database yet"
    ago = int((now - dt.datetime.fromisoformat(beat)).total_seconds())
    state = "" if ago < 180 else " (is `databot clock` running?)"
    return f"clock: last swept {ago // 60} min {ago % 60} s ago{state}"


def render_runs(records, tz) -> str:
    """`databot posts`: did it go out? One line per (job, period), newest first."""
    header = ("WHEN", "JOB", "PERIOD", "STATUS", "CHANNEL", "LINK / WHY")
    rows = [
        (
            f"{r.updated_at.astimezone(tz):%Y-%m-%d %H:%M}",
            r.job,
            r.period,
            r.status,
            r.channel or "-",
            " ".join(x for x in (r.permalink, r.detail) if x) or "-",
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)) + "  " + row[5]
        for row in [header, *rows]
    )


def cmd_sprint(args: argparse.Namespace, settings: Settings) -> int:
    from bot.deps import build_deps
    from bot.sprints.calendar import render_sprints
    from bot.sprints.jobs import load_calendar

    deps = build_deps(settings)
    try:
        day = args.date or deps.today()
        calendar = load_calendar(deps)
        if args.json:
            sprints = dict(zip(("previous", "current", "next"), calendar.around(day), strict=True))
            print_json(
                {
                    "as_of": day,
                    "source": calendar.source,
                    **{
                        name: {
                            "name": s.name,
                            "start": s.start,
                            "end": s.end,
                            "milestone": s.milestone,
                        }
                        for name, s in sprints.items()
                    },
                }
            )
        else:
            print(render_sprints(calendar, day))
    finally:
        deps.close()
    return 0


def cmd_support(args: argparse.Namespace, settings: Settings) -> int:
    """This week's and next week's support analyst (weeks Monday to Sunday in TIMEZONE)."""
    import datetime as dt

    from bot.support.model import render_support, support_week

    day = args.date or settings.today()
    this = support_week(settings, day)
    upcoming = support_week(settings, this.end + dt.timedelta(days=1))
    if args.json:
        print_json(
            {
                "as_of": day,
                "timezone": settings.timezone,
                **{
                    name: {
                        "start": week.start,
                        "end": week.end,
                        "analyst": week.analyst.model_dump() if week.analyst else None,
                    }
                    for name, week in (("this_week", this), ("next_week", upcoming))
                },
            }
        )
    else:
        print(render_support(this, upcoming))
    return 0


def add_support_commands(sub) -> None:
    p = sub.add_parser("support", help="print who is on support this week and next week")
    p.add_argument("--date", type=_day, help="as of this day (default: today)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_support)


def add_schedule_commands(sub) -> None:
    p = sub.add_parser("post", help="run a scheduled job now (once per period), or preview it")
    p.add_argument("job", help="job id, e.g. sprint-digest")
    p.add_argument("--date", type=_day, help="the day to run it for (default: latest due)")
    p.add_argument("--dry-run", action="store_true", help="print the message; post nothing")
    p.set_defaults(func=cmd_post)
    p = sub.add_parser("posts", help="list scheduled runs: did it go out?")
    p.add_argument("--job", help="only this job")
    p.add_argument("--limit", type=int, default=30)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_posts)
    p = sub.add_parser("sprint", help="print the current, previous and next sprint")
    p.add_argument("--date", type=_day, help="as of this day (default: today)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_sprint)


# --- check ---------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.checks import run_checks
    from bot.deps import make_slack_client
    from bot.github import make_github
    from bot.online_checks import run_online_checks

    report = run_checks(settings)
    if args.online:
        run_online_checks(
            settings, report, slack=make_slack_client(settings), github=make_github(settings)
        )
    print(report.render())
    return 0 if report.ok else 1


# --- demo ----------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    # The demo lives with the stand-ins (sandbox/), which plug it in through an entry point
    # (pyproject.toml, "databot.commands"): the app itself never imports the sandbox.
    plugins = {e.name: e for e in importlib.metadata.entry_points(group="databot.commands")}
    if "demo" not in plugins:
        raise ConfigError("The demo is not installed: reinstall databot (it ships sandbox/).")
    run_demo = plugins["demo"].load()
    # The demo prints what the bot sends; it sends log lines to a file it names.
    return run_demo(
        settings, interactive=args.interactive, scenes=args.scene, list_scenes=args.list
    )


# --- metric --------------------------------------------------------------------------


def cmd_metric(args: argparse.Namespace, settings: Settings) -> int:
    """The /metric lookup from a terminal. Whoever runs this holds warehouse credentials,
    so revenue metrics are not refused here."""
    from bot.metric.cli import print_metric_lookup

    return print_metric_lookup(settings, " ".join(args.words), as_json=args.json)


# --- subscriptions -----------------------------------------------------------------


def cmd_subscriptions(args: argparse.Namespace, settings: Settings) -> int:
    from bot.deps import build_deps
    from bot.subscriptions.cli import change_by_operator, render_subscriptions, subscription_rows

    deps = build_deps(settings)
    try:
        for action in ("pause", "resume", "delete"):
            job = getattr(args, action, None)
            if job is not None:
                try:
                    print(change_by_operator(deps, action, job).replace("`", ""))
                except InputError as exc:
                    print(exc.user_message.replace("`", ""), file=sys.stderr)
                    return 2
                return 0
        rows = subscription_rows(deps)
    finally:
        deps.close()
    if args.json:
        print_json({"subscriptions": rows})
    else:
        print(render_subscriptions(rows, settings.tz))
    return 0


# --- rollups -------------------------------------------------------------------------


def cmd_rollups(args: argparse.Namespace, settings: Settings) -> int:
    """Each rollup's coverage (which days lookups read from it)."""
    from bot.metric.rollups import coverage_lines
    from bot.warehouse import make_warehouse

    warehouse = make_warehouse(settings) if settings.rollup_dataset else None
    try:
        print("\n".join(coverage_lines(warehouse, settings.rollup_dataset)))
    finally:
        if warehouse is not None:
            warehouse.close()
    return 0


# --- urgent-poll ---------------------------------------------------------------------


def cmd_urgent_poll(args: argparse.Namespace, settings: Settings) -> int:
    from bot.deps import build_deps
    from bot.features import urgent_poll_loop, urgent_poll_once

    if settings.github_token is None:
        raise ConfigError("Set GITHUB_TOKEN (issues read access to GITHUB_REPO) to poll GitHub.")
    deps = build_deps(settings)
    try:
        if args.once:
            # Follow-ups read the same listing: the cursor it moves is theirs too.
            result = urgent_poll_once(deps)
            print(
                f"{result.requests} request(s) to GitHub, "
                + ("304 not modified" if result.not_modified else f"{result.issues_seen} issue(s)")
                + f"; recorded {result.recorded or 'nothing'}; Slack {result.synced or 'unchanged'}"
            )
            return 0
        loop = urgent_poll_loop(deps).start()
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


# --- requests (intake outbox) --------------------------------------------------------


def cmd_requests(args: argparse.Namespace, settings: Settings) -> int:
    from bot.deps import build_deps
    from bot.intake import outbox as intake
    from bot.intake.filing import drain_outbox
    from bot.intake.mirror import drain_replies
    from bot.intake.model import Status

    deps = build_deps(settings)
    try:
        if args.retry:
            row = intake.requeue(deps, args.retry)
            if row is None:
                print(f"databot: no request with id {args.retry}", file=sys.stderr)
                return 1
            print(f"{row.id}: {row.status}")
        if args.drain or args.retry:
            report = drain_outbox(deps)
            print(
                f"filed {report.filed}, replies sent {report.notified}, "
                f"still queued {report.still_queued}, failed {report.failed}"
            )
            if args.drain and (mirrored := drain_replies(deps)):
                print(f"thread replies mirrored to GitHub: {mirrored}")
        statuses = None if args.all else [Status.QUEUED, Status.FAILED]
        rows = intake.list_requests(deps, statuses)
        if args.json:
            print_json({"requests": [r.model_dump(mode="json", exclude={"payload"}) for r in rows]})
        else:
            print(intake.render_request_list(rows, deps.now()))
    finally:
        deps.close()
    return 0


def installed_version() -> str:
    try:
        return importlib.metadata.version("databot")
    except importlib.metadata.PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="databot", description="Slack bot for the Data & Analytics team."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"databot {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the bot (Socket Mode if SLACK_APP_TOKEN, else HTTP)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("clock", help="run the scheduler process (one per deployment)")
    p.set_defaults(func=cmd_clock)
    p = sub.add_parser("check", help="validate settings, manifest and catalog")
    p.add_argument(
        "--online", action="store_true", help="also ask Slack and GitHub (token, scopes, access)"
    )
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("demo", help="run the real app on loopback with stand-in Slack/GitHub")
    p.add_argument(
        "-i",
        "--interactive",
        action="store_true",
        help="type slash commands, click buttons, fill in modals yourself",
    )
    p.add_argument(
        "--scene",
        action="append",
        metavar="NAME",
        help="play only this scene (repeatable); --list names them",
    )
    p.add_argument("--list", action="store_true", help="list the scenes and exit")
    p.set_defaults(func=cmd_demo)
    # Feature subcommands are added below this line.
    p = sub.add_parser("metric", help="look up a metric, e.g. `databot metric dau 30d`")
    p.add_argument("words", nargs="*", help="NAME [PERIOD] [for ACCOUNT], or `help`")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_metric)
    p = sub.add_parser("rollups", help="show which days the metric rollups cover")
    p.set_defaults(func=cmd_rollups)
    p = sub.add_parser(
        "subscriptions", help="list metric subscriptions and alerts (next run, last result)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    change = p.add_mutually_exclusive_group()
    for action in ("pause", "resume", "delete"):
        change.add_argument(
            f"--{action}", metavar="JOB", help=f"{action} one (sub-N or alert-N), as an operator"
        )
    p.set_defaults(func=cmd_subscriptions)
    p = sub.add_parser(
        "urgent-poll", help="poll GitHub for urgent issues (what `clock` does without webhooks)"
    )
    p.add_argument("--once", action="store_true", help="one poll, print what it did, exit")
    p.set_defaults(func=cmd_urgent_poll)
    p = sub.add_parser("requests", help="list queued and failed data requests (intake outbox)")
    p.add_argument("--all", action="store_true", help="include requests already filed")
    p.add_argument("--retry", metavar="ID", help="queue a failed request again and file it now")
    p.add_argument("--drain", action="store_true", help="file every request that is due now")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_requests)
    add_schedule_commands(sub)
    add_support_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        from bot.logs import configure_logging

        configure_logging(settings, level=logging.DEBUG if args.verbose else settings.log_level)
        return args.func(args, settings)
    except DatabotError as exc:
        print(f"databot: {exc.user_message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
