"""The HTTP surface, through real HTTP on loopback: signatures, health, the error path."""

from __future__ import annotations

import logging
import re
import time
import urllib.request

import pytest

from bot.ids import Command


def test_health_check_reports_ok(bot):
    with urllib.request.urlopen(bot.url + "/healthz", timeout=5) as response:
        assert response.status == 200
        assert b'"ok":true' in response.read().replace(b" ", b"")


@pytest.mark.parametrize(
    "tamper",
    ["missing", "wrong-secret", "stale", "body-changed"],
)
def test_unsigned_or_badly_signed_requests_get_401_and_cause_nothing(bot, tamper):
    from urllib.parse import urlencode

    body = urlencode(
        {
            "command": Command.METRIC.value,
            "text": "help",
            "user_id": "U1",
            "channel_id": "C1",
            "response_url": bot.slack.response_url(),
            "trigger_id": "1.2.3",
            "team_id": "T1",
        }
    )
    if tamper == "missing":
        request = urllib.request.Request(
            bot.url + "/slack/events",
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            urllib.request.urlopen(request, timeout=5)
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
    elif tamper == "wrong-secret":
        status = bot.post_slack(body, secret="not-the-secret").status
    elif tamper == "stale":
        status = bot.post_slack(body, timestamp=int(time.time()) - 6 * 60).status
    else:
        from sandbox.slack_requests import sign

        headers = sign(bot.signing_secret, body)
        status = bot.post_slack(body + "x", headers=headers, secret="").status
    assert status == 401
    time.sleep(0.2)
    assert bot.slack.calls() == [] or all(c.method == "auth.test" for c in bot.slack.calls())
    assert bot.slack.responses() == []


def test_crashed_listener_apologises_with_a_reference_and_logs_the_traceback_once(bot, caplog):
    def explode(ack, body):
        ack()
        raise RuntimeError("kaboom in a listener")

    bot.app.command("/boom")(explode)
    with caplog.at_level(logging.ERROR):
        response, response_url = bot.slash("/boom", "now")
        assert response.status == 200
        replies = bot.slack.wait_for_responses(1)
    text = replies[0].payload["text"]
    ref = re.search(r"ref `([0-9a-f]{8})`", text).group(1)
    assert "Sorry" in text and "kaboom" not in text
    tracebacks = [r for r in caplog.records if r.exc_info and "kaboom" in str(r.exc_info[1])]
    assert len(tracebacks) == 1
    assert ref in tracebacks[0].getMessage()


def test_a_blank_webhook_secret_disables_webhooks_instead_of_accepting_empty_key_signatures(
    make_bot, sqlite_store
):
    from sandbox.github_webhooks import opened

    with make_bot(sqlite_store, github_webhook_secret="  ") as bot:
        assert bot.settings.github_webhook_secret is None
        issue = bot.github.create_issue("Data down", "", labels=["urgent"])
        # Signed with the very key the blank setting would have meant.
        response = bot.github_webhook("issues", opened(issue), secret="  ")
        assert response.status in (401, 404)
        bot.wait_idle()
        assert bot.slack.calls("chat.postMessage") == []
