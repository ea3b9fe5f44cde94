"""What an operator watches databot by: Prometheus metrics (`GET /metrics`, prometheus-client)
and the readiness checks behind `GET /readyz`.

One `Telemetry` per process (a field of `Deps`), with its own registry, so two apps in one
test process do not add up. Counters are incremented where the thing happens (the HTTP
gate, the warehouse wrapper); state that lives in the database (the intake outbox, the
record of scheduled runs, the clock's heartbeat) is read at scrape time by a collector, so
every replica reports the same numbers and nothing has to be kept in step.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot import tables
from bot.errors import WarehouseTooCostly
from bot.settings import utc_now
from bot.store import Store
from bot.warehouse import embedded

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# kv key the clock process writes on every sweep (once a minute); `/readyz` of `serve` and
# `databot posts` show its age, so a dead scheduler is visible from the web process.
CLOCK_HEARTBEAT_KEY = "clock:heartbeat"
# Ack latency buckets around Slack's 3-second limit.
ACK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
# Dry-run estimates: 1 MiB .. 1 TiB, around the default 50 GiB cap.
BYTE_BUCKETS = tuple(float(2**n) for n in (20, 24, 27, 30, 32, 34, 35, 36, 37, 38, 40))


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.slack_requests = Counter(
            "databot_slack_requests",
            "Requests to /slack/events by surface and outcome (HTTP status, or repeat: a "
            "delivery already handled; one found after its ack is also counted by status).",
            ["surface", "outcome"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "databot_slack_ack_seconds",
            "Time from receiving a Slack request to the ack going back.",
            ["surface"],
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.slack_api_errors = Counter(
            "databot_slack_api_errors",
            "Failed Slack Web API attempts by method and Slack's error code (`channel_not_found`,"
            " `ratelimited`, `http_503`) or the transport error (`TimeoutError`, `URLError`).",
            ["method", "error"],
            registry=self.registry,
        )
        self.github_api_errors = Counter(
            "databot_github_api_errors",
            "Failed GitHub calls by gateway operation and HTTP status (`404`, `502`) or the "
            "transport error (`ConnectionError`, `ReadTimeout`).",
            ["operation", "status"],
            registry=self.registry,
        )
        self.warehouse_queries = Counter(
            "databot_warehouse_queries",
            "Warehouse queries by backend and outcome.",
            ["backend", "outcome"],
            registry=self.registry,
        )
        self.warehouse_seconds = Histogram(
            "databot_warehouse_query_seconds",
            "Warehouse query duration.",
            ["backend"],
            registry=self.registry,
        )
        self.warehouse_estimated_bytes = Histogram(
            "databot_warehouse_estimated_bytes",
            "Bytes a query would scan by its BigQuery dry run (every query is priced first).",
            ["backend"],
            buckets=BYTE_BUCKETS,
            registry=self.registry,
        )
        self.warehouse_bytes = Counter(
            "databot_warehouse_bytes",
            "Bytes BigQuery billed (or processed) for the queries it ran.",
            ["backend"],
            registry=self.registry,
        )
        self.warehouse_refused = Counter(
            "databot_warehouse_refused_queries",
            "Queries not sent because their dry run was over BIGQUERY_MAX_BYTES_BILLED.",
            ["backend"],
            registry=self.registry,
        )
        self.lookup_cache = Counter(
            "databot_lookup_cache",
            "Lookup results by where they came from: hit (the cache), shared (waited for "
            "the same query in flight, here or on another replica), miss (ran the query).",
            ["result"],
            registry=self.registry,
        )
        self._state: StateCollector | None = None

    def watch_state(self, store: Store) -> None:
        """Report the database-held state (outbox, scheduled runs, clock) at scrape time."""
        if self._state is None:
            self._state = StateCollector(store)
            self.registry.register(self._state)

    def slack_error(self, method: str, error: str) -> None:
        self.slack_api_errors.labels(method, error).inc()

    def github_error(self, operation: str, status: str) -> None:
        self.github_api_errors.labels(operation, status).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def surface_of(parsed: Mapping[str, Any]) -> str:
    """The Slack surface a request came from, for labels: a small fixed set."""
    if "command" in parsed:
        return "command"
    kind = parsed.get("type")
    return {
        "block_actions": "action",
        "shortcut": "shortcut",
        "message_action": "shortcut",
        "view_submission": "view",
        "view_closed": "view",
        "event_callback": "event",
        "url_verification": "url_verification",
    }.get(str(kind), "other")


class StateCollector(Collector):
    """Gauges read from the state database when Prometheus scrapes."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        now = utc_now()
        r = tables.requests.c
        runs = tables.scheduled_runs.c
        with self.store.reading() as connection:
            queued = connection.execute(
                sa.select(sa.func.count(), sa.func.min(r.created_at)).where(r.status == "queued")
            ).one()
            by_status = connection.execute(
                sa.select(runs.job, runs.status, sa.func.count()).group_by(runs.job, runs.status)
            ).all()
            beat = connection.execute(
                sa.select(tables.kv.c.value).where(tables.kv.c.key == CLOCK_HEARTBEAT_KEY)
            ).scalar()
        depth = GaugeMetricFamily(
            "databot_outbox_depth", "Data requests stored but not on GitHub yet."
        )
        depth.add_metric([], queued[0])
        yield depth
        oldest = GaugeMetricFamily(
            "databot_outbox_oldest_age_seconds",
            "Age of the oldest data request not on GitHub yet (0 when none).",
        )
        oldest.add_metric([], (now - queued[1]).total_seconds() if queued[1] else 0.0)
        yield oldest
        scheduled = GaugeMetricFamily(
            "databot_scheduled_runs",
            "Scheduled runs recorded, by job and status (posted, waiting, skipped, failed...).",
            labels=["job", "status"],
        )
        for job, status, count in by_status:
            scheduled.add_metric([job, status], count)
        yield scheduled
        age = GaugeMetricFamily(
            "databot_clock_heartbeat_age_seconds",
            "Seconds since the clock process last swept (absent: no clock has run).",
        )
        if beat:
            age.add_metric([], (now - dt.datetime.fromisoformat(beat)).total_seconds())
        yield age


class SlackErrorCounter(RetryHandler):
    """Counts every failed Slack Web API attempt; never asks for a retry itself.

    A retry handler because slack_sdk consults its retry handlers on every answer (an HTTP
    200 with `ok: false` too) and on every transport error, and because Bolt copies the
    client's retry handlers into the WebClient it builds per request: listeners' calls are
    counted as well as `deps.slack`'s. First in the list, so a handler that retries (a 429)
    cannot hide the attempt from it; each retried attempt counts once.
    """

    def __init__(self, telemetry: Telemetry) -> None:
        super().__init__(max_retry_count=0)
        self._telemetry = telemetry

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        code = slack_error_code(response, error)
        if code is not None:
            method = urlparse(request.url).path.rsplit("/", 1)[-1] or "unknown"
            self._telemetry.slack_error(method, code)
        return False


def slack_error_code(response: HttpResponse | None, error: Exception | None) -> str | None:
    """Slack's `error` field of a failed answer, `http_<status>` when it names none, the
    exception's type when Slack did not answer; None for a successful answer."""
    if response is None:
        return type(error).__name__ if error is not None else None
    body = response.body
    if not body and response.data:
        try:
            body = json.loads(response.data)
        except ValueError:
            body = None
    if isinstance(body, dict) and body.get("ok") is False:
        return str(body.get("error") or f"http_{response.status_code}")
    if response.status_code >= 400:
        return f"http_{response.status_code}"
    return None


class InstrumentedWarehouse:
    """The warehouse, counting and timing every query (the Warehouse protocol)."""

    def __init__(self, inner: Any, telemetry: Telemetry) -> None:
        self._inner = inner
        self._telemetry = telemetry
        if hasattr(inner, "on_bytes"):
            # BigQuery reports what each query costs (dry-run estimate, bytes billed).
            inner.on_bytes = self._bytes

    def _bytes(self, kind: str, n: int) -> None:
        backend = self.name
        if kind == "estimated":
            self._telemetry.warehouse_estimated_bytes.labels(backend).observe(n)
        elif kind == "processed":
            self._telemetry.warehouse_bytes.labels(backend).inc(n)
        elif kind == "refused":
            self._telemetry.warehouse_refused.labels(backend).inc()

    @property
    def name(self) -> str:
        # A label only: stand-ins in tests may not name themselves.
        return str(getattr(self._inner, "name", "warehouse"))

    @property
    def embedded(self) -> bool:
        return embedded(self._inner)

    def query(self, sql: str, params: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
        backend = self.name
        started = time.monotonic()
        outcome = "error"
        try:
            rows: list[dict[str, Any]] = self._inner.query(sql, params, **kwargs)
            outcome = "ok"
            return rows
        except WarehouseTooCostly:
            outcome = "refused"
            raise
        finally:
            self._telemetry.warehouse_queries.labels(backend, outcome).inc()
            self._telemetry.warehouse_seconds.labels(backend).observe(time.monotonic() - started)

    def close(self) -> None:
        self._inner.close()


ReadinessCheck = Callable[[], str | None]  # None when fine, else what is wrong
