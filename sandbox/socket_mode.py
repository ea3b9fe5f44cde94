"""A loopback Slack Socket Mode server that slack_sdk's built-in client connects to unchanged.

Socket Mode as Slack runs it: the app calls `apps.connections.open` with its `xapp-` token
and gets a single-use `wss://wss-primary.slack.com/link/?ticket=...` URL; Slack greets
each connection with `{"type": "hello", ...}`, then pushes envelopes
`{"envelope_id", "type", "payload", "accepts_response_payload"}` and waits for the app to
ack each one with `{"envelope_id", "payload"?}` (a slash command's or a modal's reply
travels in that ack payload). Slack pings the socket, answers the client's pings, and
sends `{"type": "disconnect", ...}` before it recycles a connection.

Wire it to `FakeSlack(socket_mode=server)` so `apps.connections.open` hands out this
server's URLs. slack_sdk's built-in client speaks plain `ws://` to any port but 443 ("only
for library testing", says its source), so no TLS is needed on loopback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import secrets
import threading
import uuid
from http import HTTPStatus
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

logger = logging.getLogger(__name__)

# Slack's envelope types as they appear on the socket.
SLASH_COMMANDS = "slash_commands"
INTERACTIVE = "interactive"
EVENTS_API = "events_api"


@dataclasses.dataclass(frozen=True)
class Ack:
    """What the app sent back for one envelope (payload None when it acked with nothing)."""

    envelope_id: str
    payload: dict[str, Any] | None
    at: dt.datetime


class FakeSocketMode:
    """Socket Mode on ws://127.0.0.1:<ephemeral port>, one app connection at a time in use
    (the newest), recording every ack. Thread-safe: the test thread pushes envelopes while
    the server threads read the acks."""

    def __init__(self, *, app_id: str = "ADATABOT") -> None:
        self.app_id = app_id
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._tickets: set[str] = set()
        self._connections: list[ServerConnection] = []
        self._acks: list[Ack] = []
        self._sent: list[dict[str, Any]] = []
        self.rejected: list[str] = []  # handshakes refused (unknown or reused ticket)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = serve(
            self._serve_connection,
            "127.0.0.1",
            0,
            process_request=self._check_ticket,
            compression=None,
        )
        self._port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"FakeSocketMode-{self._port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.close()
        server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeSocketMode is not started")
        return self._port

    def issue_url(self) -> str:
        """A single-use connection URL, as `apps.connections.open` returns."""
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    # --- what a test does -------------------------------------------------------------------

    @property
    def connected(self) -> int:
        """How many app connections are open now."""
        with self._lock:
            return len(self._connections)

    def wait_connected(self, timeout: float = 10) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._connections, timeout):
                raise TimeoutError("no app connected over Socket Mode")

    def send(
        self,
        type_: str,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool = True,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
    ) -> str:
        """Push one envelope to the newest connection; returns its envelope_id."""
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "type": type_,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if type_ == EVENTS_API:
            # Events API envelopes always carry these (0 / null on the first delivery).
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        with self._lock:
            if not self._connections:
                raise RuntimeError("no app is connected over Socket Mode")
            connection = self._connections[-1]
            self._sent.append(envelope)
        connection.send(json.dumps(envelope))
        return envelope["envelope_id"]

    def send_slash_command(self, fields: dict[str, str]) -> str:
        """A slash command: `fields` are what Slack would form-encode over HTTP."""
        return self.send(SLASH_COMMANDS, dict(fields))

    def send_interactive(self, payload: dict[str, Any]) -> str:
        """A block action, shortcut or view submission (the decoded `payload` JSON)."""
        return self.send(INTERACTIVE, payload)

    def send_event(self, event_callback: dict[str, Any]) -> str:
        """An Events API `event_callback` body."""
        return self.send(EVENTS_API, event_callback, accepts_response_payload=False)

    def disconnect_all(self, reason: str = "refresh_requested") -> None:
        """Ask every connection to reconnect, as Slack does before recycling a host."""
        message = json.dumps({"type": "disconnect", "reason": reason, "debug_info": {}})
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.send(message)

    def wait_ack(self, envelope_id: str, timeout: float = 10) -> Ack:
        """The app's ack for `envelope_id` (Slack retries an envelope not acked in 3 s; a
        test asserts on the time itself when it matters)."""
        with self._changed:
            found = self._changed.wait_for(lambda: self._find_ack(envelope_id), timeout)
        if not found:
            raise TimeoutError(f"no ack for envelope {envelope_id}")
        return found

    @property
    def acks(self) -> list[Ack]:
        with self._lock:
            return list(self._acks)

    @property
    def sent(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._sent)

    def _find_ack(self, envelope_id: str) -> Ack | None:
        return next((a for a in self._acks if a.envelope_id == envelope_id), None)

    # --- server side ------------------------------------------------------------------------

    def _check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        ticket = (parse_qs(urlsplit(request.path).query).get("ticket") or [""])[0]
        with self._lock:
            if ticket in self._tickets:
                self._tickets.discard(ticket)  # single use, like Slack's
                return None
            self.rejected.append(request.path)
        return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid ticket\n")

    def _serve_connection(self, connection: ServerConnection) -> None:
        hello = {
            "type": "hello",
            "num_connections": self.connected + 1,
            "debug_info": {
                "host": "applink-sandbox",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }
        with self._changed:
            self._connections.append(connection)
            self._changed.notify_all()
        try:
            connection.send(json.dumps(hello))
            for message in connection:
                self._record(message)
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                self._connections.remove(connection)
                self._changed.notify_all()

    def _record(self, message: str | bytes) -> None:
        try:
            body = json.loads(message)
        except (TypeError, ValueError):
            logger.warning("socket mode: ignored a frame that is not JSON")
            return
        envelope_id = body.get("envelope_id") if isinstance(body, dict) else None
        if not envelope_id:
            logger.warning("socket mode: ignored a message without envelope_id")
            return
        with self._changed:
            self._acks.append(Ack(envelope_id, body.get("payload"), dt.datetime.now(dt.UTC)))
            self._changed.notify_all()
