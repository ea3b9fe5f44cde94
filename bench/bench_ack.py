"""Ack latency under a burst on the embedded warehouse (issue 15): prints ratios measured in
this run, asserts nothing.

    python -m bench ack            (from the repo root; PostgreSQL at 127.0.0.1:5432 optional)

50 concurrent signed `/metric` requests of 10 distinct metric/period pairs, sent to
- a bare Bolt app whose `/metric` listener only acks, served the way the bot is: waitress
  through bot.web.WebServer with the harness's threads, Bolt's Flask adapter, a listener
  pool of LISTENER_THREADS, Bolt checking the signature, auth.test answered by a stand-in;
- the bot (sandbox.harness.BotHarness: the real app on the embedded DuckDB demo warehouse,
  a fresh state database each round, so its 10 lookups run on DuckDB while the acks go
  back), with its default SQLite state database and, when reachable, on PostgreSQL;
one after another in each round, so all see the same machine load. Figures: p50 and p99
ack of each, per round and pooled over the rounds, and bot / bare (target p99 1.3x).
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.bench_metric import PAIRS, burst, ms, pct, slash_metric
from bench.bench_scale import AS_OF, POSTGRES_URL, now
from bot.metric.catalog import load_catalog
from bot.metric.lookup import MetricService
from bot.settings import Settings
from bot.warehouse import DuckDBWarehouse
from bot.warehouse_demo import ensure_demo_warehouse

ROUNDS = 5
REQUESTS = 50
LISTENER_THREADS = Settings(_env_file=None).listener_threads  # the bot's pool, by default


class BareBolt:
    """A Bolt app with one `/metric` listener that only acks, served like the bot."""

    def __init__(self) -> None:
        from sandbox.slack_api import FakeSlack

        self.secret = secrets.token_hex(16)
        # Bolt asks auth.test once (then caches it), as the bot does of its stand-in Slack.
        self.slack = FakeSlack()
        self.server = None

    def __enter__(self) -> BareBolt:
        from flask import Flask, request
        from slack_bolt import App
        from slack_bolt.adapter.flask import SlackRequestHandler
        from slack_sdk import WebClient

        from bot.web import SLACK_PATH, WebServer
        from sandbox.harness import WEB_THREADS

        self.slack.start()
        token = "xoxb-bare-" + secrets.token_hex(8)
        app = App(
            client=WebClient(token=token, base_url=self.slack.api_url),
            signing_secret=self.secret,
            token_verification_enabled=False,
            listener_executor=ThreadPoolExecutor(LISTENER_THREADS),
        )

        @app.command("/metric")
        def metric(ack) -> None:
            ack()

        handler = SlackRequestHandler(app)
        web = Flask("bare")
        web.post(SLACK_PATH)(lambda: handler.handle(request))
        self.server = WebServer(web, threads=WEB_THREADS).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.server is not None:
            self.server.stop()
        self.slack.stop()

    def send(self, i: int) -> tuple[Any, str]:
        from bot.web import SLACK_PATH
        from sandbox.slack_requests import send_signed, slash_command

        url = "https://hooks.slack.com/commands/T0SANDBOX/1/bare"
        body = slash_command("/metric", PAIRS[i % len(PAIRS)], user_id=f"U{i:04d}")
        return send_signed(self.server.url + SLACK_PATH, body, secret=self.secret), url


def bot_burst(data_dir: Path, warehouse, **settings: Any) -> tuple[list[float], float]:
    """One burst at a fresh bot (empty lookup cache): the acks, and the seconds until
    every lookup it started was done."""
    from sandbox.harness import BotHarness

    with BotHarness(data_dir=data_dir, warehouse=warehouse, now=now, **settings) as bot:
        bot.slash("/metric", "help")  # warm up the HTTP path once
        bot.wait_idle()
        started = time.perf_counter()
        acks, _ = burst(slash_metric(bot), REQUESTS)
        bot.wait_idle(timeout=300)
        return acks, time.perf_counter() - started


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
    # waitress logs a line per queued request when its threads are all busy: the burst's norm.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    demo = ensure_demo_warehouse(Path(".databot") / "test-cache", as_of=AS_OF)
    warehouse = DuckDBWarehouse(demo, timeout_s=60)
    schemas: list[str] = []
    try:
        print(f"databot ack benchmark ({sys.platform}, Python {sys.version.split()[0]})")
        # The 10 lookups once, untimed, so every bot round finds DuckDB equally warm.
        service = MetricService(load_catalog(), warehouse, Settings(_env_file=None), now)
        for text in PAIRS:
            service.answer(service.parse(text))
        probe = postgres_schema()
        postgres = probe is not None
        if probe is not None:
            schemas.append(probe)
        else:
            print(f"   (PostgreSQL not reachable at {POSTGRES_URL}: SQLite state only)")
        print(
            f"{REQUESTS} concurrent signed /metric, {len(PAIRS)} distinct pairs, embedded DuckDB, "
            f"{ROUNDS} rounds; load average before {_load()} on {os.cpu_count()} cores"
        )
        pooled: dict[str, list[float]] = {"bare": [], "sqlite": [], "postgres": []}
        with BareBolt() as bare, tempfile.TemporaryDirectory() as tmp:
            bare.send(0)  # warm up the HTTP path once
            for r in range(ROUNDS):
                figures = {"bare": burst(bare.send, REQUESTS)[0]}
                acks, done = bot_burst(Path(tmp) / f"s{r}", warehouse)
                figures["sqlite"] = acks
                notes = [f"SQLite lookups done {done:.1f} s"]
                if postgres:
                    schemas.append(schema := postgres_schema() or "")
                    acks, done = bot_burst(
                        Path(tmp) / f"p{r}",
                        warehouse,
                        database_url=f"{POSTGRES_URL}?options=-csearch_path%3D{schema}",
                    )
                    figures["postgres"] = acks
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
        bare_all = pooled["bare"]
        print(f"   all {len(bare_all)} requests of each, pooled:")
        print("   " + _line("bare Bolt (only acks)", bare_all, bare_all))
        print("   " + _line("bot, SQLite state", pooled["sqlite"], bare_all, "  target p99 1.3x"))
        if postgres:
            print("   " + _line("bot, PostgreSQL state", pooled["postgres"], bare_all))
        print(f"   load average after {_load()}")
    finally:
        warehouse.close()
        if schemas:
            drop_schemas(schemas)
    return 0


if __name__ == "__main__":
    sys.exit(main())
