"""`databot serve` in Socket Mode (SLACK_APP_TOKEN set): the real process, connected to a
loopback Socket Mode server through slack_sdk's built-in client."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from sandbox.slack_api import FakeSlack
from sandbox.slack_requests import slash_command
from sandbox.socket_mode import FakeSocketMode
from tests.support.checkout import spawn_serve
from tests.test_serve import free_port, wait_healthy

APP_TOKEN = "xapp-1-ADATABOT-1-socket-test"
CATALOG = Path(__file__).resolve().parents[1] / "bot" / "metric" / "metrics.yml"


def all_text(payload: dict) -> str:
    parts = [payload.get("text") or ""]
    for block in payload.get("blocks") or []:
        parts.append((block.get("text") or {}).get("text", ""))
        parts.extend(e.get("text", "") for e in block.get("elements") or [])
    return "\n".join(parts)


def test_serve_in_socket_mode_answers_metric_help_in_the_ack_and_stops_on_sigterm(tmp_path):
    metric_names = [m["name"] for m in yaml.safe_load(CATALOG.read_text())["metrics"]]
    with FakeSocketMode() as socket_mode, FakeSlack(socket_mode=socket_mode) as slack:
        port = free_port()
        process = spawn_serve(
            tmp_path,
            port,
            SLACK_BOT_TOKEN="xoxb-socket-test",
            SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_API_URL=slack.api_url,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}", process)
            socket_mode.wait_connected()
            # Over the socket a slash command carries the fields Slack form-encodes over HTTP.
            fields = {k: v[0] for k, v in parse_qs(slash_command("/metric", "help")).items()}
            envelope_id = socket_mode.send_slash_command(fields)
            ack = socket_mode.wait_ack(envelope_id)
            assert ack.payload is not None, "the help must come back in the ack"
            text = all_text(ack.payload)
            assert ack.payload.get("response_type") == "ephemeral"
            assert "/metric" in text
            assert all(f"`{name}`" in text for name in metric_names)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
        logs = process.stderr.read()
    opened = slack.calls("apps.connections.open")
    assert opened and all(c.error is None for c in opened)
    assert not socket_mode.rejected
    assert APP_TOKEN not in logs and "xoxb-socket-test" not in logs
    assert "Socket Mode" in logs


def test_connection_urls_need_an_app_token_and_work_once():
    with FakeSocketMode() as socket_mode, FakeSlack(socket_mode=socket_mode) as slack:
        bot = WebClient(token="xoxb-socket-test", base_url=slack.api_url)
        with pytest.raises(SlackApiError) as refused:
            bot.apps_connections_open(app_token="xoxb-socket-test")
        assert refused.value.response["error"] == "not_allowed_token_type"
        url = bot.apps_connections_open(app_token=APP_TOKEN)["url"]
        with connect(url) as first:
            assert json.loads(first.recv(timeout=5))["type"] == "hello"
        with pytest.raises(InvalidStatus):
            connect(url)
        assert socket_mode.rejected


def test_serve_with_an_app_token_slack_refuses_says_so_without_a_traceback(tmp_path):
    with FakeSocketMode() as socket_mode, FakeSlack(socket_mode=socket_mode) as slack:
        process = spawn_serve(
            tmp_path,
            free_port(),
            SLACK_BOT_TOKEN="xoxb-socket-test",
            # Shaped like an app-level token, but not one Slack issued.
            SLACK_APP_TOKEN="xapp-revoked_token",
            SLACK_API_URL=slack.api_url,
        )
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "invalid_auth" in stderr and "SLACK_APP_TOKEN" in stderr
    assert "Traceback" not in stderr and "xapp-revoked_token" not in stderr


def test_serve_with_a_bot_token_as_the_app_token_stops_before_calling_slack(tmp_path):
    with FakeSlack() as slack:
        process = spawn_serve(
            tmp_path,
            free_port(),
            SLACK_BOT_TOKEN="xoxb-socket-test",
            # A bot token pasted where the app-level token belongs.
            SLACK_APP_TOKEN="xoxb-pasted-by-mistake",
            SLACK_API_URL=slack.api_url,
        )
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert stderr.strip().splitlines() == [
        "databot: Invalid settings: SLACK_APP_TOKEN: must be the app-level token starting "
        "with xapp- (the bot "
        "token, xoxb-, goes in SLACK_BOT_TOKEN)"
    ]
    assert slack.calls() == []
