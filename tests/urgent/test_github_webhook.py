from __future__ import annotations

import datetime as dt
import json
import threading
from urllib.parse import urlencode

import pytest
import requests

from bot.urgent.webhook import receive, verify_signature
from bot.web import GITHUB_PATH, WebServer, build_web
from sandbox import github_webhooks as hooks
from sandbox.harness import ANALYTICS_CHANNEL
from sandbox.slack_api import FakeSlack
from tests.conftest import TEST_NOW
from tests.support.urgent import CHANNEL_NAME, issue_json, make_deps, signed, webhook

OPENED = TEST_NOW - dt.timedelta(hours=3)


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        fake.add_channel("C0ANALYTICS", CHANNEL_NAME)
        yield fake


@pytest.fixture
def deps(store, slack, clock):
    return make_deps(store, slack, clock)


@pytest.fixture
def server(deps):
    web = WebServer(build_web(None, deps)).start()
    yield web
    web.stop()


def post(server: WebServer, headers: dict, body: bytes) -> requests.Response:
    return requests.post(server.url + GITHUB_PATH, headers=headers, data=body, timeout=10)


def shown(slack: FakeSlack) -> list[str]:
    """Each alert message as text a person reads (notification text + block text)."""
    return [m["text"] + " " + json.dumps(m.get("blocks")) for m in slack.messages("C0ANALYTICS")]


def at(minutes: float) -> dt.datetime:
    return OPENED + dt.timedelta(minutes=minutes)


def test_signature_check_matches_githubs_documented_example():
    # docs.github.com "Validating webhook deliveries", test values.
    secret = b"It's a Secret to Everybody"
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert verify_signature(secret, b"Hello, World!", header)
    assert not verify_signature(secret, b"Hello, World?", header)
    assert not verify_signature(secret, b"Hello, World!", header.replace("sha256=", "sha1="))
    assert not verify_signature(secret, b"Hello, World!", None)


def test_labeled_issue_is_posted_over_http(server, slack):
    issue = issue_json(created_at=OPENED, updated_at=at(1))
    response = post(server, *signed(webhook("labeled", issue, label="urgent"), delivery="d-1"))
    assert response.status_code == 202
    [message] = shown(slack)
    assert "Revenue dashboard is empty" in message
    assert "https://github.com/acme/analytics/issues/7" in message


@pytest.mark.parametrize(
    "tamper",
    ["missing", "wrong secret", "body changed", "sha1 header", "empty"],
)
def test_bad_or_missing_signature_is_401_and_posts_nothing(deps, slack, tamper):
    issue = issue_json(created_at=OPENED)
    headers, body = signed(webhook("opened", issue), delivery="d-bad")
    if tamper == "missing":
        del headers["X-Hub-Signature-256"]
    elif tamper == "wrong secret":
        headers, body = signed(webhook("opened", issue), delivery="d-bad", secret="guess")
    elif tamper == "body changed":
        body = body.replace(b"Revenue", b"Ravenue")
    elif tamper == "sha1 header":
        headers["X-Hub-Signature-256"] = headers["X-Hub-Signature-256"].replace("sha256", "sha1")
    else:
        headers["X-Hub-Signature-256"] = ""
    assert receive(deps, headers, body)[0] == 401
    assert slack.calls() == []
    # The delivery id was not used up by the forgery: the genuine delivery still counts.
    assert receive(deps, *signed(webhook("opened", issue), delivery="d-bad"))[0] == 202
    assert len(shown(slack)) == 1


def test_forged_delivery_over_http_is_401(server, slack):
    headers, body = signed(webhook("opened", issue_json(created_at=OPENED)), delivery="d-1")
    headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    response = post(server, headers, body)
    assert response.status_code == 401
    assert slack.calls() == []


def test_redelivered_webhook_changes_nothing(server, slack):
    issue = issue_json(created_at=OPENED)
    headers, body = signed(webhook("opened", issue), delivery="d-1")
    assert post(server, headers, body).status_code == 202
    again = post(server, headers, body)  # GitHub's "Redeliver" reuses the delivery id
    assert again.status_code == 200
    assert "duplicate" in again.text
    # A different delivery carrying the same issue state (e.g. two hooks) posts nothing new.
    assert post(server, *signed(webhook("opened", issue), delivery="d-2")).status_code == 202
    assert len(slack.calls("chat.postMessage")) == 1
    assert slack.calls("chat.update") == []


def test_each_issue_event_keeps_the_one_message_current(server, slack):
    """opened -> assigned -> edited -> closed -> reopened -> unlabeled -> labeled."""
    base = {"created_at": OPENED}
    steps = [
        (webhook("opened", issue_json(**base, updated_at=at(0))), "🚨 Urgent issue"),
        (
            webhook("assigned", issue_json(**base, assignees=("bob",), updated_at=at(10))),
            "assigned to @bob",
        ),
        (
            webhook(
                "edited",
                issue_json(
                    **base, assignees=("bob",), title="Exec dashboard down", updated_at=at(20)
                ),
                changes={"title": {"from": "Revenue dashboard is empty"}},
            ),
            "Exec dashboard down",
        ),
        (
            webhook(
                "closed",
                issue_json(
                    **base,
                    assignees=("bob",),
                    title="Exec dashboard down",
                    state="closed",
                    closed_at=OPENED + dt.timedelta(hours=2),
                    updated_at=OPENED + dt.timedelta(hours=2),
                ),
                sender="bob",
            ),
            "✅ closed by @bob after 2h",
        ),
        (
            webhook(
                "reopened",
                issue_json(
                    **base, assignees=("bob",), title="Exec dashboard down", updated_at=at(130)
                ),
            ),
            "🚨 Urgent issue",
        ),
        (
            webhook(
                "unlabeled",
                issue_json(
                    **base,
                    assignees=("bob",),
                    title="Exec dashboard down",
                    labels=(),
                    updated_at=at(140),
                ),
                label="urgent",
            ),
            "no longer urgent",
        ),
        (
            webhook(
                "labeled",
                issue_json(
                    **base, assignees=("bob",), title="Exec dashboard down", updated_at=at(150)
                ),
                label="urgent",
            ),
            "🚨 Urgent issue",
        ),
    ]
    for index, (payload, expected) in enumerate(steps):
        response = post(server, *signed(payload, delivery=f"d-{index}"))
        assert response.status_code == 202, response.text
        [message] = shown(slack)
        assert expected in message, (payload["action"], message)
    assert len(slack.calls("chat.postMessage")) == 1
    assert len(slack.calls("chat.update")) == len(steps) - 1


def test_issue_without_the_label_is_not_posted(deps, slack):
    plain = issue_json(labels=("bug",), created_at=OPENED)
    status, text = receive(deps, *signed(webhook("opened", plain), delivery="d-1"))
    assert (status, text.strip()) == (200, "not urgent")
    status, _ = receive(deps, *signed(webhook("unlabeled", plain, label="x"), delivery="d-2"))
    assert status == 200
    assert slack.calls() == []


def test_configured_label_name_is_used(store, slack, clock):
    deps = make_deps(store, slack, clock, urgent_label="P0")
    urgent = issue_json(labels=("urgent",), created_at=OPENED)
    receive(deps, *signed(webhook("opened", urgent), delivery="d-1"))
    assert slack.calls() == []
    p0 = issue_json(labels=("P0",), created_at=OPENED, updated_at=at(1))
    receive(deps, *signed(webhook("labeled", p0, label="P0"), delivery="d-2"))
    assert len(shown(slack)) == 1


@pytest.mark.parametrize(
    ("event", "payload", "status"),
    [
        ("ping", {"zen": "Keep it logically awesome.", "hook_id": 42}, 200),
        ("push", {"ref": "refs/heads/main"}, 202),
        ("issue_comment", {"action": "created"}, 202),
    ],
)
def test_other_events_are_acknowledged_and_ignored(deps, slack, event, payload, status):
    assert receive(deps, *signed(payload, delivery="d-1", event=event))[0] == status
    assert slack.calls() == []


def test_other_repositories_and_actions_are_ignored(deps, slack):
    elsewhere = issue_json(created_at=OPENED, repo="acme/website")
    payload = webhook("opened", elsewhere, repo="acme/website")
    assert receive(deps, *signed(payload, delivery="d-1"))[0] == 202
    milestoned = webhook("milestoned", issue_json(created_at=OPENED))
    assert receive(deps, *signed(milestoned, delivery="d-2"))[0] == 202
    assert slack.calls() == []


def test_signed_but_unreadable_payload_is_400(deps, slack):
    headers, _ = signed({}, delivery="d-1")
    for body in (b"not json", json.dumps({"action": "opened"}).encode()):
        headers, body = _resign(headers, body)
        status, text = receive(deps, headers, body)
        assert status == 400 and "unreadable" in text
    assert slack.calls() == []


def test_form_encoded_deliveries_are_accepted(deps, slack):
    payload = webhook("opened", issue_json(created_at=OPENED))
    headers, _ = signed(payload, delivery="d-1")
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers, body = _resign(headers, body)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    assert receive(deps, headers, body)[0] == 202
    assert len(shown(slack)) == 1


def test_webhooks_off_without_a_secret(store, slack, clock):
    deps = make_deps(store, slack, clock, github_webhook_secret=None)
    status, text = receive(
        deps, *signed(webhook("opened", issue_json(created_at=OPENED)), delivery="d")
    )
    assert status == 404 and "GITHUB_WEBHOOK_SECRET" in text
    assert slack.calls() == []


def test_markup_in_a_title_pings_nobody(server, slack):
    issue = issue_json(
        title="<!channel> <@U123> see <https://evil.example|click>", created_at=OPENED
    )
    post(server, *signed(webhook("opened", issue), delivery="d-1"))
    [message] = slack.messages("C0ANALYTICS")
    everything = message["text"] + json.dumps(message["blocks"])
    assert "<!channel>" not in everything
    assert "<@U123>" not in everything
    assert "<https://evil.example" not in everything
    assert "&lt;!channel&gt;" in message["text"]


def test_concurrent_redeliveries_post_once(server, slack):
    issue = issue_json(created_at=OPENED)
    deliveries = [signed(webhook("opened", issue), delivery=f"d-{i % 3}") for i in range(9)]
    barrier = threading.Barrier(len(deliveries))
    statuses: list[int] = []

    def deliver(headers, body) -> None:
        barrier.wait()
        statuses.append(post(server, headers, body).status_code)

    threads = [threading.Thread(target=deliver, args=d) for d in deliveries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 6 + [202] * 3  # three distinct delivery ids
    assert len(slack.calls("chat.postMessage")) == 1


def _resign(headers: dict, body: bytes) -> tuple[dict, bytes]:
    import hashlib
    import hmac

    from tests.support.urgent import SECRET

    headers = dict(headers)
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers["X-Hub-Signature-256"] = "sha256=" + digest
    return headers, body


def test_end_to_end_label_then_close_then_redelivery(bot):
    """The whole bot (its HTTP server, work pool, FakeGitHub, FakeSlack), as in the demo."""
    token = bot.settings.github_token.get_secret_value()
    number = bot.github.create_issue("Exec dashboard down", labels=["dashboard"], user="alice")[
        "number"
    ]
    issue_api = f"{bot.github.url}/repos/acme/analytics/issues/{number}"
    auth = {"Authorization": f"Bearer {token}"}
    requests.post(issue_api + "/labels", json={"labels": ["urgent"]}, headers=auth, timeout=10)
    labeled = hooks.labeled(bot.github.issue(number), "urgent", sender="alice")
    assert bot.github_webhook("issues", labeled, delivery="d-1").status == 202
    bot.wait_idle()
    [alert] = bot.slack.messages(ANALYTICS_CHANNEL)
    assert "Exec dashboard down" in alert["text"]

    requests.patch(issue_api, json={"state": "closed"}, headers=auth, timeout=10)
    closed = hooks.closed(bot.github.issue(number), sender="bob")
    assert bot.github_webhook("issues", closed, delivery="d-2").status == 202
    bot.wait_idle()
    [alert] = bot.slack.messages(ANALYTICS_CHANNEL)
    assert "closed by @bob" in alert["text"]

    calls = len(bot.slack.calls())
    assert bot.github_webhook("issues", closed, delivery="d-2").status == 200
    assert bot.github_webhook("issues", labeled, delivery="d-1").status == 200
    bot.wait_idle()
    assert len(bot.slack.calls()) == calls
    assert bot.slack.violations == []


@pytest.mark.parametrize(("action", "wording"), [("deleted", "deleted"), ("transferred", "moved")])
def test_deleted_or_transferred_issue_updates_its_message(deps, slack, action, wording):
    issue = issue_json(created_at=OPENED)
    receive(deps, *signed(webhook("opened", issue), delivery="d-1"))
    assert receive(deps, *signed(webhook(action, issue), delivery="d-2"))[0] == 202
    [message] = shown(slack)
    assert wording in message
    assert len(slack.calls("chat.postMessage")) == 1


def test_concurrent_deliveries_through_the_whole_bot_on_postgres_post_once(bot_pg):
    """Ten different deliveries about one issue at once (replicas, redeliveries, hooks),
    through the real HTTP server and work pool, state on PostgreSQL."""
    base = issue_json(created_at=OPENED)
    payloads = [
        webhook("assigned", {**base, "assignees": [{"login": f"analyst{i}"}], "updated_at": iso})
        for i, iso in enumerate(
            (OPENED + dt.timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ") for m in range(10)
        )
    ]
    barrier = threading.Barrier(len(payloads))
    statuses: list[int] = []

    def deliver(index: int) -> None:
        barrier.wait()
        response = bot_pg.github_webhook("issues", payloads[index], delivery=f"d-{index}")
        statuses.append(response.status)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bot_pg.wait_idle()
    assert statuses == [202] * len(payloads)
    assert len(bot_pg.slack.calls("chat.postMessage")) == 1
    [message] = bot_pg.slack.messages(ANALYTICS_CHANNEL)
    assert "assigned to @analyst9" in json.dumps(message["blocks"])  # the newest snapshot
