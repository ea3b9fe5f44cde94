"""The whole bot on loopback: stand-in Slack and GitHub servers, the real app served over
real HTTP by waitress, and a sender that signs requests exactly as Slack does.

Used by the test suite and by `databot demo`, so both exercise the same paths production
uses (HTTP endpoint, signature check, Bolt dispatch, Web API calls over HTTP).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot.deps import Deps, build_deps
from bot.settings import Settings
from bot.store import Store
from bot.warehouse import Warehouse
from sandbox import slack_requests
from sandbox.github_api import FakeGitHub
from sandbox.slack_api import FakeSlack
from sandbox.slack_requests import send_signed

ANALYTICS_CHANNEL = "C0ANALYTICS"
# waitress threads serving the app (bench/bench_ack.py serves a bare Bolt app alike).
WEB_THREADS = 16


class TrackingExecutor(Executor):
    """Wraps an executor so tests and the demo can wait until what it runs is done. Used
    for deps.work and for Bolt's listener executor."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self.futures: list[Future] = []  # every one submitted, in order

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            future = self.inner.submit(fn, *args, **kwargs)
            self.futures.append(future)
        return future

    def pending(self) -> int:
        with self._lock:
            return sum(not f.done() for f in self.futures)

    def wait_idle(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while pending := self.pending():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{pending} background tasks still running")
            time.sleep(0.01)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class BotHarness:
    """Start with `with BotHarness(...) as bot:`; `bot.slack` / `bot.github` are the fakes."""

    def __init__(
        self,
        *,
        data_dir: Path,
        store: Store | None = None,
        warehouse: Warehouse | None = None,
        now: Callable[[], dt.datetime] | None = None,
        **settings_overrides: Any,
    ) -> None:
        self.data_dir = Path(data_dir)
        self._store = store
        self._warehouse = warehouse
        self._now = now
        self._overrides = settings_overrides
        self.signing_secret = secrets.token_hex(16)
        self.slack = FakeSlack()
        self.github = FakeGitHub(now=now) if now is not None else FakeGitHub()
        self.deps: Deps | None = None
        self.listeners: TrackingExecutor | None = None
        self.server = None

    # --- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> BotHarness:
        from bot.app import build_app
        from bot.web import WebServer, build_web

        self.slack.start()
        self.github.start()
        values: dict[str, Any] = {
            "slack_bot_token": "xoxb-sandbox-" + secrets.token_hex(8),
            "slack_signing_secret": self.signing_secret,
            "slack_api_url": self.slack.url.rstrip("/") + "/api/",
            "slack_response_url_hosts": ["127.0.0.1", "hooks.slack.com"],
            "github_token": "ghp_sandbox" + secrets.token_hex(16),
            "github_api_url": self.github.url,
            "github_repo": "acme/analytics",
            "github_webhook_secret": "whsec-" + secrets.token_hex(8),
            "analytics_channel": ANALYTICS_CHANNEL,
            "data_dir": self.data_dir,
            "database_url": None,
            # PyGithub paces requests for the real API; the stand-in needs no pacing.
            "github_seconds_between_requests": 0,
            "github_seconds_between_writes": 0,
            # The stand-in bot runs on the embedded demo warehouse unless told otherwise.
            "demo_warehouse": True,
        }
        values.update(self._overrides)
        self.settings = Settings(_env_file=None, **values)
        self.deps = build_deps(
            self.settings, warehouse=self._warehouse, store=self._store, now=self._now
        )
        self.deps.work = TrackingExecutor(self.deps.work)
        self.listeners = TrackingExecutor(
            ThreadPoolExecutor(
                self.settings.listener_threads, thread_name_prefix="databot-listener"
            )
        )
        self.app = build_app(self.deps, listener_executor=self.listeners)
        self.server = WebServer(build_web(self.app, self.deps), threads=WEB_THREADS).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.wait_idle(timeout=10)
        except TimeoutError:
            pass
        if self.server is not None:
            self.server.stop()
        if self.listeners is not None:
            self.listeners.shutdown(wait=False, cancel_futures=True)
        if self.deps is not None:
            self.deps.work.shutdown(wait=False, cancel_futures=True)
            if self._warehouse is None:
                self.deps.warehouse.close()
            if self._store is None:
                self.deps.store.close()
        self.slack.stop()
        self.github.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def wait_idle(self, timeout: float = 30) -> None:
        """Wait until every listener has finished and so has the work they handed off.

        Bolt runs a listener on its pool (except those in the request's own thread:
        handlers.AckInline) and may answer before it is done, so when a response arrives
        the listener may still be about to submit work: wait for the listeners first, then for
        deps.work, and again until both are idle at once (a request sent meanwhile
        starts another listener)."""
        deadline = time.monotonic() + timeout
        while True:
            self.listeners.wait_idle(max(0.0, deadline - time.monotonic()))
            self.deps.work.wait_idle(max(0.0, deadline - time.monotonic()))
            if not self.listeners.pending() and not self.deps.work.pending():
                return

    # --- Slack -> bot ----------------------------------------------------------------
    def post_slack(
        self,
        body: str,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        secret: str | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        status, response_headers, response_body = send_signed(
            self.url + "/slack/events",
            body,
            secret=self.signing_secret if secret is None else secret,
            content_type=content_type,
            timestamp=timestamp,
            extra_headers=headers,
        )
        return Response(status, response_headers, response_body)

    def slash(
        self,
        command: str,
        text: str = "",
        *,
        user: str = slack_requests.USER_ID,
        channel: str = ANALYTICS_CHANNEL,
        channel_name: str = "analytics",
    ) -> tuple[Response, str]:
        """Send a slash command; returns the HTTP response and its response_url."""
        response_url = self.slack.response_url(channel, user=user)
        body = slack_requests.slash_command(
            command,
            text,
            user_id=user,
            channel_id=channel,
            channel_name=channel_name,
            trigger_id=self.slack.issue_trigger_id(),
            response_url=response_url,
        )
        return self.post_slack(body), response_url

    def interact(self, payload: dict[str, Any]) -> Response:
        """Send an interactivity payload (shortcut, block action, view submission)."""
        return self.post_slack(slack_requests.interactive_body(payload))

    def shortcut(self, callback_id: str, *, user: str = slack_requests.USER_ID) -> Response:
        return self.interact(
            slack_requests.global_shortcut(
                callback_id, user_id=user, trigger_id=self.slack.issue_trigger_id()
            )
        )

    def message_shortcut(
        self, callback_id: str, message: dict[str, Any], *, user: str = slack_requests.USER_ID
    ) -> Response:
        return self.interact(
            slack_requests.message_shortcut(
                callback_id,
                message,
                user_id=user,
                trigger_id=self.slack.issue_trigger_id(),
                response_url=self.slack.response_url(),
            )
        )

    def submit_view(
        self,
        view: dict[str, Any],
        values: dict[str, dict[str, Any]] | None = None,
        *,
        user: str = slack_requests.USER_ID,
    ) -> Response:
        """Press Submit on `view` (as the app opened it) after filling in `values`."""
        return self.interact(slack_requests.view_submission(view, values, user_id=user))

    def click(
        self,
        action_id: str,
        value: Any = None,
        *,
        message: dict[str, Any] | None = None,
        view: dict[str, Any] | None = None,
        user: str = slack_requests.USER_ID,
        channel: str | None = None,
        is_ephemeral: bool = False,
        response_url: str | None = None,
    ) -> Response:
        return self.interact(
            slack_requests.block_actions(
                action_id,
                value,
                message=message,
                view=view,
                user_id=user,
                channel_id=channel,
                trigger_id=self.slack.issue_trigger_id(),
                response_url=response_url or self.slack.response_url(),
                is_ephemeral=is_ephemeral,
            )
        )

    def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> Response:
        """Deliver an Events API event (signed JSON, as Slack sends it). Slack resends an
        event it got no 200 for with the same event_id and `X-Slack-Retry-Num`."""
        envelope = slack_requests.event_callback(event, event_id=event_id)
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return self.post_slack(
            json.dumps(envelope), content_type=slack_requests.JSON, headers=headers
        )

    def github_webhook(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        delivery: str | None = None,
        secret: str | None = None,
    ) -> Response:
        from sandbox.github_webhooks import send_webhook

        status, headers, body = send_webhook(
            self.url + "/github/webhook",
            event,
            payload,
            secret=(
                self.settings.github_webhook_secret.get_secret_value() if secret is None else secret
            ),
            delivery=delivery,
        )
        return Response(status, headers, body)
