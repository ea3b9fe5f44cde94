"""`databot serve` as deployed (settings from the environment, waitress, real signals)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from sandbox.slack_api import FakeSlack
from sandbox.slack_requests import send, slash_command
from tests.support.checkout import spawn_serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    # Generous: the first start builds the demo warehouse, slow on a loaded 2-core machine.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("serve exited early: " + process.stderr.read())
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError("serve did not become healthy")


def serve_for(slack: FakeSlack, data_dir, port: int, **settings: str) -> subprocess.Popen:
    """`databot serve` talking to `slack`, with this file's token and signing secret."""
    return spawn_serve(
        data_dir,
        port,
        SLACK_BOT_TOKEN="xoxb-serve-test",
        SLACK_SIGNING_SECRET="serve-secret",
        SLACK_API_URL=slack.api_url,
        **settings,
    )


def test_serve_answers_health_checks_rejects_unsigned_requests_and_stops_on_sigterm(tmp_path):
    port = free_port()
    with FakeSlack() as slack:
        process = serve_for(slack, tmp_path, port)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, process)
            body = slash_command("/metric", "help")
            assert send(url + "/slack/events", body, secret="wrong").status == 401
            assert send(url + "/slack/events", body).status == 401
            signed = send(url + "/slack/events", body, secret="serve-secret")
            assert signed.status != 401
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
        logs = process.stderr.read()
        assert "xoxb-serve-test" not in logs and "serve-secret" not in logs
        assert "serving Slack requests" in logs


def test_lookups_acked_before_a_sigterm_are_still_answered(tmp_path):
    # A deploy stops the old process with SIGTERM: lookups it acked (here queued behind one
    # worker) are answered before it exits, not dropped.
    port = free_port()
    with FakeSlack() as slack:
        process = serve_for(
            slack, tmp_path, port, SLACK_RESPONSE_URL_HOSTS='["127.0.0.1"]', WORKER_THREADS="1"
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, process)
            urls = []
            for text in ("dau 7d", "wau last week", "searches 30d"):
                urls.append(slack.response_url("C0ANALYTICS"))
                body = slash_command("/metric", text, response_url=urls[-1])
                assert send(url + "/slack/events", body, secret="serve-secret").status == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
        answered = [slack.responses(u) for u in urls]
    assert all(answered), process.stderr.read()[-2000:]
    assert all("metric_share" in str(r[-1].payload) for r in answered)
