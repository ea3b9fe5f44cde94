"""What an operator watches: `/readyz` goes unready when a dependency breaks, `/metrics`
is scraped like Prometheus does, `databot posts` shows whether the clock is alive."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.cli import clock_line
from bot.features import beat
from bot.telemetry import CLOCK_HEARTBEAT_KEY


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_ready_when_every_dependency_answers(bot):
    status, body = get(bot.url + "/readyz")
    assert status == 200
    report = json.loads(body)
    assert report["ok"] is True
    assert report["checks"] == {"state_database": "ok", "warehouse": "ok", "slack": "ok"}


def test_unready_when_slack_refuses_the_token(bot):
    bot.slack.fail_next("auth.test", "invalid_auth")
    status, body = get(bot.url + "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["slack"] == "SlackApiError: invalid_auth"


def test_unready_when_the_state_database_is_gone(bot):
    bot.deps.store.engine.dispose()
    original = bot.deps.store.engine.connect

    def refuse(*args, **kwargs):
        raise ConnectionError("state database down")

    bot.deps.store.engine.connect = refuse  # type: ignore[method-assign]
    try:
        status, body = get(bot.url + "/readyz")
    finally:
        bot.deps.store.engine.connect = original  # type: ignore[method-assign]
    assert status == 503
    assert json.loads(body)["checks"]["state_database"] == "ConnectionError"


def test_unready_when_the_warehouse_fails(make_bot, sqlite_store):
    class Broken:
        name = "duckdb"

        def query(self, *args, **kwargs):
            raise OSError("warehouse file gone")

        def close(self):
            pass

    with make_bot(sqlite_store) as harness:
        harness.deps.warehouse._inner = Broken()
        status, body = get(harness.url + "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["warehouse"] == "OSError"


def test_metrics_count_slack_requests_and_warehouse_queries_and_show_the_outbox(bot):
    assert bot.slash("/metric", "help")[0].status == 200
    assert bot.slash("/metric", "dau 7d")[0].status == 200
    bot.wait_idle()
    bot.post_slack("token=x", headers={"X-Slack-Signature": "v0=bad"})  # unsigned: 401
    status, text = get(bot.url + "/metrics")
    assert status == 200
    found = samples(text)
    assert (
        found[("databot_slack_requests_total", (("outcome", "200"), ("surface", "command")))] == 2
    )
    assert (
        found[("databot_slack_requests_total", (("outcome", "401"), ("surface", "unverified")))]
        == 1
    )
    assert found[("databot_slack_ack_seconds_count", (("surface", "command"),))] == 2
    queries = sum(v for (name, _), v in found.items() if name == "databot_warehouse_queries_total")
    assert queries >= 1
    assert found[("databot_outbox_depth", ())] == 0


def test_the_clock_heartbeat_shows_in_metrics_and_posts(bot, clock):
    assert "no clock process" in clock_line(None, clock())
    beat(bot.deps)
    assert bot.deps.store.kv_get(CLOCK_HEARTBEAT_KEY) == clock().isoformat()
    clock.advance(minutes=5)
    line = clock_line(bot.deps.store.kv_get(CLOCK_HEARTBEAT_KEY), clock())
    assert line == "clock: last swept 5 min 0 s ago (is `databot clock` running?)"


def api_errors(bot, name: str) -> dict[tuple, float]:
    """`name`'s samples scraped over HTTP, by their labels."""
    status, text = get(bot.url + "/metrics")
    assert status == 200
    return {labels: v for (sample, labels), v in samples(text).items() if sample == name}


def test_slack_api_errors_are_counted_by_method_and_slack_error_code(bot):
    bot.slack.fail_next("auth.test", "invalid_auth")
    assert get(bot.url + "/readyz")[0] == 503
    # A 429 the client retried (and then got through) still counts: Slack refused once.
    bot.slack.fail_next("auth.test", "ratelimited", retry_after=0)
    assert get(bot.url + "/readyz")[0] == 200
    # A listener's call goes through the client Bolt builds per request: counted too.
    bot.slack.fail_next("views.open", "expired_trigger_id")
    assert bot.slash("/data-request", "churn by plan")[0].status == 200
    bot.wait_idle()
    assert [c.error for c in bot.slack.calls("views.open")] == ["expired_trigger_id"]
    errors = api_errors(bot, "databot_slack_api_errors_total")
    assert errors == {
        (("error", "invalid_auth"), ("method", "auth.test")): 1,
        (("error", "ratelimited"), ("method", "auth.test")): 1,
        (("error", "expired_trigger_id"), ("method", "views.open")): 1,
    }


def test_a_slack_server_error_counts_by_its_http_status(bot):
    bot.slack.fail_next("auth.test", "internal_error", status=503)
    assert get(bot.url + "/readyz")[0] == 503
    errors = api_errors(bot, "databot_slack_api_errors_total")
    assert errors == {(("error", "internal_error"), ("method", "auth.test")): 1}


def test_github_api_errors_are_counted_by_operation_and_status(make_bot, sqlite_store):
    from bot.ids import Action, RequestBlock, Shortcut
    from sandbox.slack_requests import global_shortcut, view_submission

    with make_bot(sqlite_store, github_retry_backoff_seconds=0) as bot:
        bot.github.fail_next("POST", r"/issues$", status=503)
        bot.interact(global_shortcut(Shortcut.NEW_REQUEST, trigger_id=bot.slack.issue_trigger_id()))
        bot.slack.wait_for("views.open")
        view = bot.slack.views()[-1]
        typed = {RequestBlock.TITLE: "Churn", "q:problem": "p", "q:end_state": "e", "q:why": "w"}
        values = {block: {Action.REQUEST_INPUT.value: v} for block, v in typed.items()}
        assert bot.interact(view_submission(view, values)).status == 200
        deadline = time.monotonic() + 10  # filing runs after the ack
        while not bot.github.count("POST", r"/issues$") and time.monotonic() < deadline:
            time.sleep(0.01)
        bot.wait_idle()
        assert bot.github.count("POST", r"/issues$") == 1  # refused with 503, not re-sent
        errors = api_errors(bot, "databot_github_api_errors_total")
    assert errors == {(("operation", "create_issue"), ("status", "503")): 1}


def test_the_urgent_pollers_github_errors_are_counted_too(bot):
    from bot.errors import GitHubUnavailable
    from bot.urgent.poller import poll_once

    bot.github.fail_next("GET", r"/issues$", status=502)
    with pytest.raises(GitHubUnavailable):
        poll_once(bot.deps)
    errors = api_errors(bot, "databot_github_api_errors_total")
    assert errors == {(("operation", "list_issues"), ("status", "502")): 1}


def test_a_slack_answer_that_never_came_counts_as_its_transport_error(bot):
    bot.slack.lose_answer_next("auth.test", "reset")
    assert get(bot.url + "/readyz")[0] == 503
    errors = api_errors(bot, "databot_slack_api_errors_total")
    [(labels, count)] = errors.items()
    assert dict(labels)["method"] == "auth.test" and count == 1
    # The exception's type (the kind of failure), never a message with addresses in it.
    assert re.fullmatch(r"[A-Za-z]+(Error|Disconnected|Exception)", dict(labels)["error"])
