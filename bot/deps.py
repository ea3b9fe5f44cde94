"""The application's dependencies, built once (by the CLI, or by a test) and passed down."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.ack_first import AckFirst
from bot.github import GitHubGateway, make_github
from bot.settings import Settings, utc_now
from bot.store import Store
from bot.telemetry import InstrumentedWarehouse, SlackErrorCounter, Telemetry
from bot.warehouse import Warehouse, embedded, make_warehouse

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Deps:
    settings: Settings
    store: Store
    warehouse: Warehouse
    slack: WebClient
    github: GitHubGateway | None
    work: ThreadPoolExecutor
    now: Callable[[], dt.datetime] = utc_now
    telemetry: Telemetry = field(default_factory=Telemetry)
    acks: AckFirst = field(default_factory=AckFirst)
    # Long-lived objects of the features (caches, clients), one per type: see `service`.
    # `dataclasses.replace(deps, services={})` gives a copy with fresh ones.
    services: dict[type, Any] = field(default_factory=dict)
    _services_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def service(self, kind: type[T], build: Callable[[], T]) -> T:
        """The process's one `kind`, built by `build` on first use (thread-safe). Keyed by
        type, so a feature gets its own typed object back and Deps names no feature."""
        with self._services_lock:
            found = self.services.get(kind)
            if found is None:
                found = self.services[kind] = build()
            return found

    def today(self) -> dt.date:
        """Today in the team's time zone (settings.timezone)."""
        return self.now().astimezone(self.settings.tz).date()

    def finish_work(self, timeout: float) -> bool:
        """Let the work already handed over finish (answers whose ack went out: a lookup,
        a mirrored reply), for at most `timeout` seconds; no new work is taken. False when
        some was still unfinished (`close` then drops what has not started)."""
        finished = threading.Event()

        def drain() -> None:
            self.work.shutdown(wait=True)
            finished.set()

        threading.Thread(target=drain, name="databot-drain", daemon=True).start()
        if finished.wait(timeout):
            return True
        logger.warning("stopping with work after the ack unfinished after %.0f s", timeout)
        return False

    def close(self) -> None:
        self.work.shutdown(wait=False, cancel_futures=True)
        self.warehouse.close()
        self.store.close()


def make_slack_client(settings: Settings, telemetry: Telemetry | None = None) -> WebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    # Only 429s are retried (Slack did not act on them). The SDK's default also re-sends
    # on connection errors, after the request may have reached Slack: for chat.postMessage
    # that is a duplicate post, so callers decide (the scheduled-post runner checks first).
    # With telemetry, a first handler counts every failed attempt (it never retries).
    counter = [SlackErrorCounter(telemetry)] if telemetry is not None else []
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[*counter, RateLimitErrorRetryHandler(max_retry_count=2)],
    )


class LazyWarehouse:
    """Opens the warehouse on first use: commands that never query (check, requests, ...)
    do not pay for it. `serve` opens it before accepting requests, so the first lookup
    does not wait for the demo data to be generated."""

    def __init__(self, factory: Callable[[], Warehouse]) -> None:
        self._factory = factory
        self._inner: Warehouse | None = None
        self._lock = threading.Lock()
        # Handed on to the warehouse when it opens (BigQuery reports bytes through it).
        self.on_bytes: Callable[[str, int], None] | None = None

    @property
    def inner(self) -> Warehouse:
        with self._lock:
            if self._inner is None:
                self._inner = self._factory()
                if self.on_bytes is not None and hasattr(self._inner, "on_bytes"):
                    self._inner.on_bytes = self.on_bytes
            return self._inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def embedded(self) -> bool:
        return embedded(self.inner)

    def query(self, sql: str, params: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
        return self.inner.query(sql, params, **kwargs)

    def close(self) -> None:
        with self._lock:
            if self._inner is not None:
                self._inner.close()


def build_deps(
    settings: Settings,
    *,
    warehouse: Warehouse | None = None,
    store: Store | None = None,
    now: Callable[[], dt.datetime] | None = None,
    migrate: bool = True,
) -> Deps:
    store = store or Store(settings.state_url)
    if migrate:
        store.migrate()
    telemetry = Telemetry()
    telemetry.watch_state(store)
    inner = warehouse or LazyWarehouse(lambda: make_warehouse(settings))
    return Deps(
        settings=settings,
        store=store,
        warehouse=InstrumentedWarehouse(inner, telemetry),
        telemetry=telemetry,
        slack=make_slack_client(settings, telemetry),
        github=make_github(settings, on_error=telemetry.github_error),
        work=ThreadPoolExecutor(settings.worker_threads, thread_name_prefix="databot-work"),
        now=now or utc_now,
    )
