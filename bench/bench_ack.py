"""Ack latency under a burst on the embedded warehouse (issue 15): prints ratios measured in
this run, asserts nothing.

    python -m bench ack            (from the repo root; PostgreSQL at 127.0.0.1:5432 optional)

50 concurrent signed `/metric` requests of 10 distinct metric/period pairs, sent over
loopback HTTP to
- a bare Bolt app whose `/metric` listener only acks, served the way `databot serve` serves
  the bot: its own process, waitress through bot.web.WebServer with as many threads as the
  bot's, Bolt's Flask adapter, a listener pool of LISTENER_THREADS, Bolt checking the
  signature, auth.test answered by the stand-in Slack;
- `databot serve` itself on the embedded DuckDB demo warehouse, with a fresh state database
  each round (so its 10 lookups run on DuckDB while the acks go back): the default SQLite
  state database and, when reachable, PostgreSQL.

Every server runs in a process of its own and the stand-in Slack in another, as in a
deployment: the sending threads here share no interpreter with either app, so what is
measured is each app's own cost (the bot's lookups and replies included), not contention
inside this process. One after another in each round, so all see the same machine load.
Figures: p50 and p99 ack of each, per round and pooled over the rounds, and bot / bare
(target p99 1.3x).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.bench_metric import PAIRS, burst, ms, pct
from bench.bench_scale import POSTGRES_URL
from bench.serving import free_port, spawn_serve, wait_healthy
from bot.metric.catalog import load_catalog
from bot.metric.lookup import MetricService
from bot.settings import Settings, utc_now
from bot.warehouse import DuckDBWarehouse
from bot.warehouse_demo import ensure_demo_warehouse

ROUNDS = 10  # pooled p99 over 500 acks: the 5th worst, not the 3rd of 250
REQUESTS = 50
SECRET = "bench-" + secrets.token_hex(8)  # passed to the processes (spawn re-imports this)
SETTINGS = Settings(_env_file=None)
LISTENER_THREADS = SETTINGS.listener_threads  # the bot's pool and web threads, by default
WARM_LOOKUPS = SETTINGS.worker_threads  # one per worker thread, before each measured burst
SLACK_PATH = "/slack/events"


# --------------------------------------------------------------------------- processes


def _slack_process(pipe: Connection) -> None:
    """The stand-in Slack, answering this process's questions over `pipe`."""
    from sandbox.slack_api import FakeSlack

    with FakeSlack() as slack:
        pipe.send(slack.api_url)
        while True:
            ask, arg = pipe.recv()
            if ask == "urls":
                pipe.send([slack.response_url("C0ANALYTICS") for _ in range(arg)])
            elif ask == "answers":  # lookups answered (an answer has a Share button)
                pipe.send(
                    sum(
                        1
                        for u in arg
                        if any("metric_share" in str(r.payload) for r in slack.responses(u))
                    )
                )
            elif ask == "notes":
                pipe.send(
                    sum(
                        1
                        for u in arg
                        for r in slack.responses(u)
                        if "Still working" in (r.payload.get("text") or "")
                    )
                )
            else:
                return


def _bare_process(port: int, api_url: str, secret: str) -> None:
    """A Bolt app whose `/metric` listener only acks, served like `databot serve`."""
    from flask import Flask, request
    from slack_bolt import App
    from slack_bolt.adapter.flask import SlackRequestHandler
    from slack_sdk import WebClient

    from bot.web import WebServer

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    app = App(
        client=WebClient(token="xoxb-bare-" + secrets.token_hex(8), base_url=api_url),
        signing_secret=secret,
        token_verification_enabled=False,
        listener_executor=ThreadPoolExecutor(LISTENER_THREADS),
    )

    @app.command("/metric")
    def metric(ack) -> None:
        ack()

    handler = SlackRequestHandler(app)
    web = Flask("bare")
    web.post(SLACK_PATH)(lambda: handler.handle(request))
    WebServer(web, port=port, threads=LISTENER_THREADS).start()
    while True:
        time.sleep(3600)


def _serve(data_dir: Path, api_url: str, database_url: str) -> tuple[subprocess.Popen, int]:
    """`databot serve` on the demo warehouse in `data_dir`, state in `database_url`."""
    process, port = spawn_serve(data_dir, api_url=api_url, database_url=database_url, secret=SECRET)
    wait_healthy(port, process)
    return process, port


# --------------------------------------------------------------------------- bursts


class Slack:
    """This process's handle on the stand-in Slack process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_slack_process, args=(child,), daemon=True)
        self.process.start()
        self.api_url: str = self.pipe.recv()

    def urls(self, n: int) -> list[str]:
        self.pipe.send(("urls", n))
        return self.pipe.recv()

    def answers(self, urls: list[str]) -> int:
        """How many of `urls` got a lookup's answer (not only a "still working" note)."""
        self.pipe.send(("answers", urls))
        return self.pipe.recv()

    def notes(self, urls: list[str]) -> int:
        self.pipe.send(("notes", urls))
        return self.pipe.recv()

    def close(self) -> None:
        self.pipe.send(("stop", None))
        self.process.join(timeout=10)


def sender(port: int, urls: list[str], text: str | None = None) -> Callable[[int], tuple[Any, str]]:
    """The i-th request of a burst: `/metric text` (else PAIRS[i % 10]) from its own user."""
    from sandbox.slack_requests import send_signed, slash_command

    def send(i: int) -> tuple[Any, str]:
        asked = text if text is not None else PAIRS[i % len(PAIRS)]
        body = slash_command("/metric", asked, user_id=f"U{i:04d}", response_url=urls[i])
        return send_signed(f"http://127.0.0.1:{port}{SLACK_PATH}", body, secret=SECRET), urls[i]

    return send


def bot_burst(slack: Slack, data_dir: Path, database_url: str) -> tuple[list[float], float]:
    """One burst at a fresh `databot serve` (empty lookup cache): the acks, and the seconds
    until every lookup it started was answered."""
    process, port = _serve(data_dir, slack.api_url, database_url)
    try:
        # Warm, as a process that has been up is: imports, Bolt's auth.test, the state
        # database's connections and the listener threads (a burst of `/metric help`,
        # answered in the ack), the worker threads (lookups of other periods, answered
        # before the burst).
        burst(sender(port, slack.urls(REQUESTS), text="help"), REQUESTS)
        warm = slack.urls(WARM_LOOKUPS)
        burst(lambda i: sender(port, warm, text=f"searches {i + 2}d")(i), WARM_LOOKUPS)
        # Answered, not only noted as still working: none may still run in the burst.
        while slack.answers(warm) < WARM_LOOKUPS:
            time.sleep(0.05)
        urls = slack.urls(REQUESTS)
        started = time.perf_counter()
        acks, _ = burst(sender(port, urls), REQUESTS)
        deadline = time.monotonic() + 300
        while slack.answers(urls) < REQUESTS:
            if time.monotonic() > deadline:
                raise TimeoutError("not every lookup was answered")
            time.sleep(0.02)
        return acks, time.perf_counter() - started
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def postgres_schema() -> str | None:
    """A new empty schema on the local PostgreSQL, or None when there is none."""
    try:
        engine = sa.create_engine(POSTGRES_URL)
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    except Exception:  # noqa: BLE001 - a benchmark prints why it could not run
        return None
    return schema


def drop_schemas(schemas: list[str]) -> None:
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        for schema in schemas:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def _line(label: str, acks: list[float], bare: list[float], extra: str = "") -> str:
    return (
        f"{label:<22} p50 {ms(pct(acks, 50)):>9}  p99 {ms(pct(acks, 99)):>9}  "
        f"(p50 {pct(acks, 50) / pct(bare, 50):5.2f}x, p99 {pct(acks, 99) / pct(bare, 99):5.2f}x "
        f"bare){extra}"
    )


def main() -> int:
    schemas: list[str] = []
    print(f"databot ack benchmark ({sys.platform}, Python {sys.version.split()[0]})")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        demo = ensure_demo_warehouse(data_dir, as_of=utc_now())  # what `serve` will open
        print(f"   (demo warehouse for today generated in {time.perf_counter() - started:.0f} s)")
        # The 10 lookups once, untimed, so every round finds the file equally warm.
        warehouse = DuckDBWarehouse(demo, timeout_s=60)
        service = MetricService(load_catalog(), warehouse, SETTINGS, utc_now)
        for text in PAIRS:
            service.answer(service.parse(text))
        warehouse.close()
        probe = postgres_schema()
        if probe is not None:
            schemas.append(probe)
        else:
            print(f"   (PostgreSQL not reachable at {POSTGRES_URL}: SQLite state only)")
        print(
            f"{REQUESTS} concurrent signed /metric, {len(PAIRS)} distinct pairs, embedded DuckDB, "
            f"{ROUNDS} rounds, {LISTENER_THREADS} web and listener threads; load average "
            f"before {_load()} on {os.cpu_count()} cores"
        )
        slack = Slack()
        bare_port = free_port()
        context = multiprocessing.get_context("spawn")
        bare = context.Process(
            target=_bare_process, args=(bare_port, slack.api_url, SECRET), daemon=True
        )
        bare.start()
        pooled: dict[str, list[float]] = {"bare": [], "sqlite": [], "postgres": []}
        try:
            _wait_healthy_bare(bare_port, bare, slack)
            for r in range(ROUNDS):
                figures = {"bare": burst(sender(bare_port, slack.urls(REQUESTS)), REQUESTS)[0]}
                state = data_dir / f"state-{r}.db"
                figures["sqlite"], done = bot_burst(slack, data_dir, f"sqlite:///{state}")
                notes = [f"SQLite lookups answered in {done:.1f} s"]
                if probe is not None:
                    schemas.append(schema := postgres_schema() or "")
                    figures["postgres"], done = bot_burst(
                        slack, data_dir, f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
                    )
                    notes.append(f"PostgreSQL {done:.1f} s")
                print(
                    f"   round {r + 1}: "
                    + " | ".join(
                        f"{name} p50 {ms(pct(a, 50))} p99 {ms(pct(a, 99))}"
                        for name, a in figures.items()
                    )
                    + f" ({', '.join(notes)})"
                )
                for name, a in figures.items():
                    pooled[name] += a
        finally:
            bare.terminate()
            slack.close()
            if schemas:
                drop_schemas(schemas)
    bare_all = pooled["bare"]
    print(f"   all {len(bare_all)} requests of each, pooled:")
    print("   " + _line("bare Bolt (only acks)", bare_all, bare_all))
    print("   " + _line("bot, SQLite state", pooled["sqlite"], bare_all, "  target p99 1.3x"))
    if pooled["postgres"]:
        print("   " + _line("bot, PostgreSQL state", pooled["postgres"], bare_all))
    print(f"   load average after {_load()}")
    return 0


def _wait_healthy_bare(port: int, process: Any, slack: Slack) -> None:
    """Until the bare app answers a signed request (it has no /healthz); then one untimed
    burst, so it is as warm as the bot is when measured."""
    deadline = time.monotonic() + 60
    while True:
        try:
            sender(port, slack.urls(1))(0)
            burst(sender(port, slack.urls(REQUESTS)), REQUESTS)
            return
        except OSError:
            if not process.is_alive() or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
