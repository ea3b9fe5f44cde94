"""What reaches `/slack/events` from outside: an unverified request causes nothing, a signed
but unreadable one gets 400, a repeat is answered once, and a response_url that is not
Slack's is never called. Every case goes through the real HTTP endpoint of the served app,
with the stand-in Slack and GitHub recording every call they get."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from bot import tables
from bot.store import BatchedClaims
from sandbox.slack_requests import (
    FORM,
    JSON,
    app_home_opened_event,
    global_shortcut,
    interactive_body,
    send,
    sign,
    slash_command,
)

HELP = slash_command("/metric", "help")


def state_rows(bot) -> dict[str, int]:
    with bot.deps.store.engine.connect() as connection:
        return {
            t.name: connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (tables.dedupe_keys, tables.kv, tables.requests, tables.scheduled_runs)
        }


def nothing_happened(bot, before: dict[str, int]) -> None:
    bot.wait_idle()
    assert bot.slack.calls() == [] and bot.slack.responses() == []
    assert bot.github.count() == 0
    assert state_rows(bot) == before


def good_headers(bot, body: str) -> dict[str, str]:
    return sign(bot.signing_secret, body)


NOW = str(int(time.time()))
HEX = "v0=" + "0" * 64
# (X-Slack-Request-Timestamp, X-Slack-Signature); None leaves the header out.
MALFORMED: dict[str, tuple[str | None, str | None]] = {
    "no signature headers": (None, None),
    "no timestamp": (None, HEX),
    "non-numeric timestamp": ("now", HEX),
    "non-ASCII timestamp": ("é1700000000", HEX),
    "huge timestamp": ("9" * 400, HEX),
    "negative timestamp": ("-1700000000", HEX),
    "float timestamp": (f"{time.time():.3f}", HEX),
    "empty timestamp": ("", HEX),
    "non-ASCII signature": (NOW, "v0=é" + "0" * 63),
    "wrong scheme": (NOW, "v1=" + "0" * 64),
    "wrong key": (None, None),  # signed with another secret: see headers_for
    "stale timestamp": (None, None),  # correctly signed 10 minutes ago
}


def headers_for(bot, case: str, body: str) -> dict[str, str]:
    if case == "wrong key":
        return sign("not-the-secret", body)
    if case == "stale timestamp":
        return sign(bot.signing_secret, body, timestamp=int(time.time()) - 600)
    timestamp, signature = MALFORMED[case]
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
    return {k: v for k, v in headers.items() if v is not None}


@pytest.mark.parametrize("case", list(MALFORMED))
@pytest.mark.parametrize(
    "body,content_type",
    [
        (HELP, FORM),
        # An apology would go to this payload's response_url, or an ephemeral to its user.
        (interactive_body({"type": "block_actions", "actions": [{"action_id": "x"}]}), FORM),
        ("payload=this-is-not-json", FORM),
        ("{not json", JSON),
    ],
    ids=["slash", "interaction", "bad-payload", "bad-json"],
)
def test_an_unverified_request_gets_401_and_causes_nothing(bot, case, body, content_type):
    before = state_rows(bot)
    response = send(
        bot.url + "/slack/events", body, content_type, headers=headers_for(bot, case, body)
    )
    assert response.status == 401
    assert body not in response.text  # nothing of the stranger's text is echoed
    nothing_happened(bot, before)


def test_a_rejected_request_is_one_log_line_without_its_body(bot, caplog):
    secret_text = "Alice's salary is 123456"
    body = slash_command("/metric", secret_text)
    with caplog.at_level("DEBUG"):
        response = send(bot.url + "/slack/events", body, headers=sign("wrong", body))
    assert response.status == 401
    mentions = [r for r in caplog.records if "401" in r.getMessage()]
    assert len(mentions) == 1
    assert all("salary" not in r.getMessage() for r in caplog.records)


def nested(levels: int) -> dict:
    """Parseable JSON nested far deeper than any Slack payload."""
    deep: dict = {"type": "block_actions"}
    for _ in range(levels):
        deep = {"type": "block_actions", "x": deep}
    return deep


@pytest.mark.parametrize(
    "body,content_type",
    [
        ("payload=this-is-not-json", FORM),
        ("payload=" + "[" * 100_000, FORM),  # past the JSON parser's recursion limit
        (urlencode({"payload": json.dumps(nested(200))}), FORM),
        ("{not json", JSON),
        (json.dumps(nested(200)), JSON),
    ],
    ids=["not-json", "parser-breaking", "deeply-nested", "bad-event-json", "nested-event"],
)
def test_a_signed_but_unreadable_body_gets_400_and_the_app_stays_healthy(bot, body, content_type):
    before = state_rows(bot)
    response = send(bot.url + "/slack/events", body, content_type, headers=good_headers(bot, body))
    assert response.status == 400
    assert "<html" not in response.text.lower()
    nothing_happened(bot, before)
    answered = bot.post_slack(HELP)
    assert answered.status == 200 and "/metric" in answered.text


def test_an_exact_replay_of_a_signed_command_is_answered_once(bot):
    headers = good_headers(bot, HELP)
    first = send(bot.url + "/slack/events", HELP, headers=headers)
    replay = send(bot.url + "/slack/events", HELP, headers=headers)
    assert first.status == 200 and "/metric" in first.text
    assert replay.status == 200 and "/metric" not in replay.text


def test_an_exact_replay_of_a_lookup_sends_nothing_even_while_the_workers_are_busy(
    make_bot, sqlite_store
):
    # The lookup's claim is made after its ack. The replay's "still working" note, started
    # at its ack, falls due while its work waits for the one busy worker: it must not go
    # out, nor anything else, to the first asker's response URL.
    with make_bot(sqlite_store, metric_still_working_seconds=0.3, worker_threads=1) as bot:
        url = bot.slack.response_url("C0ANALYTICS")
        body = slash_command("/metric", "dau 7d", response_url=url)
        headers = good_headers(bot, body)
        assert send(bot.url + "/slack/events", body, headers=headers).status == 200
        bot.wait_idle()
        (answer,) = bot.slack.responses(url)
        assert "DAU" in json.dumps(answer.payload)
        busy = threading.Event()
        bot.deps.work.submit(busy.wait, 5)  # someone else's slow lookup
        replay = send(bot.url + "/slack/events", body, headers=headers)
        assert (replay.status, replay.text) == (200, "")
        time.sleep(0.8)  # past the note's 0.3 s
        busy.set()
        bot.wait_idle()
        assert bot.slack.responses(url) == [answer]


def test_an_event_whose_claim_failed_is_handled_when_slack_resends_it(bot, monkeypatch):
    # One transient failure of the state database: the event gets a 500 and nothing of it
    # is stored, so Slack's resend is new work, not a repeat.
    real, calls = BatchedClaims.claim, []

    def flaky(self, key):
        calls.append(key)
        if len(calls) == 1:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return real(self, key)

    monkeypatch.setattr(BatchedClaims, "claim", flaky)
    first = bot.event(app_home_opened_event(), event_id="Ev0FLAKY")
    bot.wait_idle()
    assert first.status == 500
    assert bot.slack.calls("views.publish") == []
    retry = bot.event(app_home_opened_event(), event_id="Ev0FLAKY", retry_num=1)
    bot.wait_idle()
    assert retry.status == 200
    assert len(bot.slack.calls("views.publish")) == 1


def test_a_command_that_mentions_payload_is_answered(bot):
    # Bolt reads a form that merely contains the word "payload" as an empty body; the bot
    # hands Bolt its own parse, so this is an ordinary unknown name, not a 404.
    # Unknown as a metric; whether it is an account is answered at the response URL.
    response, url = bot.slash("/metric", "payload")
    bot.wait_idle()
    assert response.status == 200
    (answer,) = bot.slack.responses(url)
    assert "payload" in json.dumps(answer.payload)


def test_a_shortcut_resent_by_slack_opens_one_modal(bot):
    trigger = bot.slack.issue_trigger_id()
    body = interactive_body(global_shortcut("new_data_request", trigger_id=trigger))
    assert bot.post_slack(body).status == 200
    bot.wait_idle()
    retried = bot.post_slack(
        body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    bot.wait_idle()
    assert retried.status == 200
    assert len(bot.slack.calls("views.open")) == 1


class Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self) -> None:
        Recorder.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def internal_service():
    """A server on another loopback address, standing for an internal service."""
    Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()


def test_a_response_url_that_is_not_slacks_is_never_called(bot, internal_service):
    body = slash_command("/metric", "help", response_url=internal_service + "/steal")
    response = bot.post_slack(body)
    bot.wait_idle()
    assert response.status == 400
    assert Recorder.hits == []


def test_an_error_on_a_foreign_response_url_is_not_answered_either(bot, internal_service):
    # A signed lookup whose answer would go to the foreign URL (after the ack, by respond).
    body = slash_command("/metric", "dau 7d", response_url=internal_service + "/steal")
    bot.post_slack(body)
    bot.wait_idle()
    time.sleep(0.2)
    assert Recorder.hits == []


def test_idle_half_sent_connections_do_not_lock_slack_out(bot):
    host, port = bot.server.host, bot.server.port
    idle = []
    try:
        for _ in range(150):
            sock = socket.create_connection((host, port), timeout=5)
            # Headers promise a body that never comes.
            sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{")
            idle.append(sock)
        # Slack's request still gets its answer (the send gives up after 5 s otherwise).
        answered = send(bot.url + "/slack/events", HELP, headers=good_headers(bot, HELP), timeout=5)
        assert answered.status == 200 and "/metric" in answered.text
    finally:
        for sock in idle:
            sock.close()
