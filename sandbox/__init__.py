"""Loopback stand-ins for Slack and GitHub, used by the test suite and by `databot demo`.

Each fake is a real HTTP server on 127.0.0.1 with an ephemeral port, so the real clients
(slack_sdk's WebClient, PyGithub) talk to it unchanged through their `base_url`:

    with FakeSlack() as slack, FakeGitHub() as github:
        client = WebClient(token=slack.token, base_url=slack.api_url)
        gh = Github(base_url=github.url, auth=Auth.Token(github.token), ...)

- `sandbox.slack_api.FakeSlack`: Slack Web API + response_url capture.
- `sandbox.github_api.FakeGitHub`: stateful GitHub REST API (issues, labels, search...).
- `sandbox.slack_requests`: Slack request signing and realistic payload bodies.
- `sandbox.github_webhooks`: GitHub `issues` webhook payloads and signatures.
- `bot.render`: Block Kit as a person reads it in Slack.
"""

from __future__ import annotations

import logging
import threading
from typing import Self

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

logger = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    # Tests and the demo print what matters; an access-log line per request is noise.
    def log_request(self, *args: object, **kwargs: object) -> None:
        pass

    # A stand-in with a controlled clock (FakeGitHub's `now`) sends its own Date header, the
    # clock its timestamps are on, as the real API's are on its server's: then that one is
    # the only Date. Otherwise the wall clock's, as http.server sends it.
    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        self._dated = False

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "date":
            self._dated = True
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        if not getattr(self, "_dated", True):
            super().send_header("Date", self.date_time_string())
        super().end_headers()


class LoopbackServer:
    """A Flask app served on 127.0.0.1:<ephemeral port> from a daemon thread.

    Subclasses build their app in `_make_app()` and keep their recorded state under
    `self._lock` (the server is threaded: requests arrive concurrently).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._server: BaseWSGIServer | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self.app: Flask = self._make_app()

    def _make_app(self) -> Flask:  # pragma: no cover - abstract
        raise NotImplementedError

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=_QuietHandler
        )
        self._port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("%s listening on %s", type(self).__name__, self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        """The bound port; still known after stop() so recorded state stays readable."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:53211."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()


def __getattr__(name: str):
    # Lazy re-exports: `from sandbox import FakeSlack` without importing every fake.
    if name == "FakeSlack":
        from sandbox.slack_api import FakeSlack

        return FakeSlack
    if name == "FakeGitHub":
        from sandbox.github_api import FakeGitHub

        return FakeGitHub
    raise AttributeError(name)


__all__ = ["FakeGitHub", "FakeSlack", "LoopbackServer"]
