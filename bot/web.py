"""The HTTP surface: Slack's request URL, GitHub's webhook, and a health check.

Served by waitress (a production WSGI server) in `databot serve`, and on an ephemeral
loopback port in tests and the demo.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, jsonify, request
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.flask.handler import to_flask_response
from slack_bolt.request.internals import build_context
from slack_sdk.errors import SlackApiError
from waitress.server import create_server

from bot.deps import Deps
from bot.features import receive_github_webhook
from bot.slack_gate import DELIVERY, VERIFIED, Rejected, SlackGate
from bot.telemetry import CONTENT_TYPE, ReadinessCheck, surface_of

logger = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
GITHUB_PATH = "/github/webhook"

# Slack bodies are small; a cap keeps a hostile client from making us buffer gigabytes.
MAX_BODY_BYTES = 1024 * 1024


# A readiness answer is reused this long: probes come every few seconds, and the warehouse
# and Slack checks cost a call each.
READY_CACHE_SECONDS = 30.0


def cached(check: ReadinessCheck, seconds: float = READY_CACHE_SECONDS) -> ReadinessCheck:
    """`check`, asked again only after `seconds` (its last answer in between)."""
    last: list[tuple[float, str | None]] = []
    lock = threading.Lock()

    def run() -> str | None:
        with lock:
            if last and time.monotonic() - last[0][0] < seconds:
                return last[0][1]
        answer = check()
        with lock:
            last[:] = [(time.monotonic(), answer)]
        return answer

    return run


def standard_checks(deps: Deps) -> dict[str, ReadinessCheck]:
    """What every databot process needs to do its work: the state database, the
    warehouse, Slack accepting the bot token."""

    def state() -> str | None:
        with deps.store.reading() as connection:
            connection.execute(sa.text("SELECT 1"))
        return None

    def warehouse() -> str | None:
        deps.warehouse.query("SELECT 1 AS ok")
        return None

    def slack() -> str | None:
        deps.slack.auth_test()
        return None

    return {"state_database": state, "warehouse": cached(warehouse), "slack": cached(slack)}


def readiness(checks: Mapping[str, ReadinessCheck]) -> dict[str, str]:
    """name -> "ok" or what is wrong (a short reason, never a secret or a traceback)."""
    report = {}
    for name, check in checks.items():
        try:
            problem = check()
        except Exception as exc:  # noqa: BLE001 - a failing dependency is the answer here
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else None
            problem = f"{type(exc).__name__}" + (f": {error}" if error else "")
        report[name] = "ok" if problem is None else problem
    return report


class GateRequest(BoltRequest):
    """A request the gate verified and parsed, as Bolt's request: Bolt reads the gate's
    parse instead of its own. Bolt's reads a form that merely contains the word "payload"
    (`/metric help payload`) as empty, so such a command went unanswered; and one parse
    of each body is half the cost of two."""

    def __init__(
        self,
        *,
        raw_body: str,
        body: dict[str, Any],
        query: str,
        headers: dict[str, str | Sequence[str]],
        context: dict[str, Any],
    ) -> None:
        super().__init__(body="", query=query, headers=headers, context=context)
        self.raw_body = raw_body  # what Bolt's own signature check reads
        self.body = body
        build_context(self.context, body)


def build_web(
    app: App | None, deps: Deps, *, checks: Mapping[str, ReadinessCheck] | None = None
) -> Flask:
    """`checks`: readiness checks beyond the standard ones (serve adds the outbox worker
    and, in Socket Mode, the connection)."""
    web = Flask("databot")
    web.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    ready_checks = {**standard_checks(deps), **(checks or {})}

    @web.get("/readyz")
    def readyz():
        report = readiness(ready_checks)
        ok = all(v == "ok" for v in report.values())
        if not ok:
            logger.warning("not ready: %s", {k: v for k, v in report.items() if v != "ok"})
        return jsonify(ok=ok, checks=report), 200 if ok else 503

    @web.get("/metrics")
    def metrics():
        return Response(deps.telemetry.exposition(), mimetype=CONTENT_TYPE)

    @web.get("/healthz")
    def healthz():
        try:
            with deps.store.reading() as connection:
                connection.execute(sa.text("SELECT 1"))
        except Exception:
            logger.exception("health check: state database unreachable")
            return jsonify(ok=False, state="unreachable"), 503
        return jsonify(ok=True)

    if app is not None:
        secret = deps.settings.slack_signing_secret
        gate = (
            SlackGate(
                deps.store,
                secret.get_secret_value(),
                on_repeat=lambda surface: deps.telemetry.slack_requests.labels(
                    surface, "repeat"
                ).inc(),
            )
            if secret
            else None
        )

        @web.post(SLACK_PATH)
        def slack_events():
            # Counted as an ack in progress until the answer to Slack is ready (ack_first).
            with deps.acks.acking():
                return admit_and_dispatch()

        def admit_and_dispatch() -> Response:
            started = time.monotonic()
            surface = "unverified"
            body = request.get_data(cache=False)
            headers: dict[str, str | Sequence[str]] = {
                k.lower(): v for k, v in request.headers.items()
            }
            try:
                if gate is None:
                    raise Rejected(401, "SLACK_SIGNING_SECRET is not set")
                parsed, delivery = gate.admit({k: str(v) for k, v in headers.items()}, body)
                surface = surface_of(parsed)
            except Rejected as exc:
                # One line, never the body: it is a stranger's text.
                logger.warning(
                    "Slack request %s: %s (from %s)", exc.status, exc.reason, request.remote_addr
                )
                deps.telemetry.slack_requests.labels(surface, str(exc.status)).inc()
                return Response(exc.reason + "\n", status=exc.status, mimetype="text/plain")
            bolt_request = GateRequest(
                raw_body=body.decode("utf-8"),
                body=parsed,
                query=request.query_string.decode("utf-8", "replace"),
                headers=headers,
                context={VERIFIED: True, DELIVERY: delivery},
            )
            answer = app.dispatch(bolt_request)
            try:
                if (
                    delivery is not None
                    and answer.status == 200
                    and answer.body
                    and not delivery.first()
                ):
                    # The ack carries an answer (help, a form's errors): a repeat gets none.
                    answer = BoltResponse(status=200, body="")
            except Exception:
                logger.exception("could not claim a Slack delivery: answered 500")
                answer = BoltResponse(status=500, body="state database unavailable\n")
            response = to_flask_response(answer)
            # Bolt returns once the listener acked: this is the ack latency Slack sees.
            seconds = time.monotonic() - started
            if delivery is None or not delivery.repeat:  # a repeat is counted as one
                deps.telemetry.slack_requests.labels(surface, str(response.status_code)).inc()
            deps.telemetry.ack_seconds.labels(surface).observe(seconds)
            logger.info("slack %s -> %s in %.0f ms", surface, response.status_code, seconds * 1000)
            return response

    @web.post(GITHUB_PATH)
    def github_webhook():
        status, text = receive_github_webhook(
            deps, dict(request.headers), request.get_data(cache=False)
        )
        return Response(text, status=status, mimetype="text/plain")

    return web


# waitress reads requests in its event loop and hands only complete ones to its threads, so
# a slow or idle client holds a connection, not a thread. The connection limit (waitress'
# default is 100) is what idle sockets can exhaust; idle ones are closed after the channel
# timeout, checked every cleanup interval. What must sit in front in production (a proxy
# or load balancer with its own limits) is in the README's security section.
CONNECTION_LIMIT = 1000
CHANNEL_TIMEOUT_SECONDS = 15
CLEANUP_INTERVAL_SECONDS = 5


class WebServer:
    """waitress in a background thread; `port=0` picks a free port (see `.port`)."""

    def __init__(
        self,
        web: Flask,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        threads: int = 8,
        connection_limit: int = CONNECTION_LIMIT,
        channel_timeout: float = CHANNEL_TIMEOUT_SECONDS,
    ) -> None:
        self._server = create_server(
            web,
            host=host,
            port=port,
            threads=threads,
            connection_limit=connection_limit,
            channel_timeout=channel_timeout,
            cleanup_interval=min(CLEANUP_INTERVAL_SECONDS, channel_timeout),
            ident="databot",
        )
        self.host = host
        self.port = self._server.effective_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> WebServer:
        self._thread = threading.Thread(target=self._server.run, name="databot-web", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Let in-flight requests finish, then close every socket from inside the server's
        own loop thread (closing them from here races its select() call); the loop ends
        when none are left."""
        server = self._server
        server.task_dispatcher.shutdown(timeout=5)

        def close_all() -> None:
            for channel in list(server._map.values()):
                channel.close()

        try:
            server.trigger.pull_trigger(close_all)
        except OSError:  # the loop already closed its trigger: nothing left to close
            pass
        if self._thread is not None:
            self._thread.join(timeout=5)
