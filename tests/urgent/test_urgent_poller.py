from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

import bot
from bot.errors import GitHubUnavailable
from bot.github import IssuesClient
from bot.urgent.poller import cursor_key, poll_once
from bot.urgent.webhook import receive
from sandbox.github_api import FakeGitHub
from sandbox.slack_api import FakeSlack
from tests.conftest import Clock
from tests.support.urgent import CHANNEL_NAME, REPO, make_deps, signed, webhook
from tests.test_cli import run_cli

TOKEN = "ghp_poller_test_token"
# The CLI runs in a subprocess: make it import this checkout, not an installed copy.
CHECKOUT = {"PYTHONPATH": str(Path(bot.__file__).resolve().parent.parent)}


@pytest.fixture
def clock() -> Clock:
    # The fake GitHub stamps changes with this clock, and answers with a real `Date`
    # header; starting at the real time keeps the two consistent, as on GitHub.
    return Clock(dt.datetime.now(dt.UTC).replace(microsecond=0))


@pytest.fixture
def github(clock):
    with FakeGitHub(repo=REPO, token=TOKEN, login="dana", now=clock) as fake:
        yield fake


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        fake.add_channel("C0ANALYTICS", CHANNEL_NAME)
        yield fake


@pytest.fixture
def deps(store, slack, github, clock):
    return make_deps(store, slack, clock, github_api_url=github.url, github_token=TOKEN)


def act(github: FakeGitHub, clock: Clock, method: str, path: str, body) -> None:
    """Someone changes the issue on GitHub, a minute after the last change."""
    clock.advance(minutes=1)
    response = requests.request(
        method,
        f"{github.url}/repos/{REPO}{path}",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert response.status_code < 300, response.text


def alerts(slack: FakeSlack) -> list[str]:
    return [m["text"] + " " + json.dumps(m.get("blocks")) for m in slack.messages("C0ANALYTICS")]


def listing_requests(github: FakeGitHub) -> list:
    return github.find_requests("GET", rf"^/repos/{REPO}/issues$")


def seed(github: FakeGitHub, clock: Clock, n: int, *, urgent: tuple[int, ...] = ()) -> None:
    """n issues, all last touched well before now; those numbered in `urgent` are urgent."""

    def factory(i: int) -> dict:
        number = i + 1
        return {
            "title": f"Request {number}",
            "labels": ("urgent",) if number in urgent else ("data-request",),
            "user": "erin",
        }

    github.add_many_issues(
        n,
        factory=factory,
        start=clock() - dt.timedelta(days=400),
        spacing=dt.timedelta(days=399) / max(n, 1),
    )


def test_first_poll_posts_open_urgent_issues_only(deps, github, slack, clock):
    seed(github, clock, 30, urgent=(3, 9))
    github.create_issue(
        "Fixed already",
        labels=["urgent"],
        state="closed",
        created_at=clock() - dt.timedelta(days=2),
        updated_at=clock() - dt.timedelta(days=1),
    )
    result = poll_once(deps)
    assert result.requests == 1
    posted = alerts(slack)
    assert len(posted) == 2
    assert any("#3 Request 3" in m for m in posted) and any("#9 Request 9" in m for m in posted)
    assert deps.store.kv_get(cursor_key(REPO)) is not None


def test_unchanged_repo_costs_one_conditional_request_answered_304(deps, github, slack, clock):
    seed(github, clock, 50, urgent=(7,))
    poll_once(deps)  # first start: lists the open urgent issues
    assert poll_once(deps).issues_seen == 0  # first incremental poll: nothing since
    used = github.rate_limit_used
    for _ in range(3):
        clock.advance(minutes=1)
        result = poll_once(deps)
        assert result.requests == 1 and result.not_modified
    assert [r.status for r in listing_requests(github)[-3:]] == [304, 304, 304]
    assert github.rate_limit_used == used  # 304s are free
    assert len(slack.calls("chat.postMessage")) == 1


def test_one_change_in_a_repo_of_5000_issues_costs_constant_requests(deps, github, slack, clock):
    seed(github, clock, 5000, urgent=(17,))
    poll_once(deps)  # first start: only the open urgent issues are listed
    assert len(listing_requests(github)) == 1

    act(github, clock, "POST", "/issues/4321/labels", {"labels": ["urgent"]})
    before = len(github.requests)
    result = poll_once(deps)
    assert result.requests == 1  # one page, the one changed issue: not 50 pages of 100
    assert result.issues_seen == 1
    assert len(github.requests) - before == 1
    assert any("#4321 Request 4321" in m for m in alerts(slack))

    # Settled: the next poll's answer is the same issue again, so the ETag still matches.
    assert poll_once(deps).not_modified


def test_close_unlabel_relabel_and_reopen_update_the_same_message(deps, github, slack, clock):
    seed(github, clock, 20, urgent=(5,))
    poll_once(deps)
    [first] = slack.messages("C0ANALYTICS")

    act(github, clock, "POST", "/issues/5/assignees", {"assignees": ["bob"]})
    poll_once(deps)
    assert "assigned to @bob" in alerts(slack)[0]

    act(github, clock, "PATCH", "/issues/5", {"state": "closed"})
    result = poll_once(deps)
    # The listing does not say who closed it; one extra request to the issue does.
    assert result.requests == 2
    assert "closed by @dana after" in alerts(slack)[0]

    act(github, clock, "PATCH", "/issues/5", {"state": "open"})
    poll_once(deps)
    assert "🚨 Urgent issue" in alerts(slack)[0]

    act(github, clock, "DELETE", "/issues/5/labels/urgent", None)
    poll_once(deps)  # the issue no longer matches labels=urgent; it is still seen
    assert "no longer urgent" in alerts(slack)[0]

    act(github, clock, "POST", "/issues/5/labels", {"labels": ["urgent"]})
    poll_once(deps)
    [message] = slack.messages("C0ANALYTICS")
    assert message["ts"] == first["ts"]
    assert "🚨 Urgent issue" in alerts(slack)[0]
    assert len(slack.calls("chat.postMessage")) == 1


def test_issues_that_are_not_urgent_are_not_posted(deps, github, slack, clock):
    seed(github, clock, 10)
    poll_once(deps)
    act(github, clock, "PATCH", "/issues/2", {"title": "Just a normal request"})
    act(github, clock, "PATCH", "/issues/3", {"state": "closed"})
    result = poll_once(deps)
    assert result.issues_seen == 2
    assert result.requests == 1  # nothing tracked was closed: no extra lookups
    assert slack.calls() == []


def test_webhook_and_poller_together_post_once(deps, github, slack, clock):
    seed(github, clock, 10)
    poll_once(deps)
    act(github, clock, "POST", "/issues/4/labels", {"labels": ["urgent"]})
    payload = webhook("labeled", github.issue(4), label="urgent")
    assert receive(deps, *signed(payload, delivery="d-1"))[0] == 202
    result = poll_once(deps)
    assert result.issues_seen == 1 and result.recorded == {"unchanged": 1}
    assert len(slack.calls("chat.postMessage")) == 1
    assert slack.calls("chat.update") == []


def test_reconciliation_poll_catches_a_dropped_webhook(deps, github, slack, clock):
    seed(github, clock, 10)
    poll_once(deps)
    act(github, clock, "POST", "/issues/4/labels", {"labels": ["urgent"]})
    receive(deps, *signed(webhook("labeled", github.issue(4), label="urgent"), delivery="d-1"))
    # GitHub closes the issue, but the delivery never arrives (and is never retried).
    act(github, clock, "PATCH", "/issues/4", {"state": "closed"})
    poll_once(deps)
    assert "closed by @dana" in alerts(slack)[0]
    assert len(slack.calls("chat.postMessage")) == 1


def test_github_failure_keeps_the_cursor_and_the_next_poll_catches_up(deps, github, slack, clock):
    seed(github, clock, 10)
    poll_once(deps)
    cursor = deps.store.kv_get(cursor_key(REPO))
    act(github, clock, "POST", "/issues/6/labels", {"labels": ["urgent"]})
    github.fail_next("GET", status=502)
    with pytest.raises(GitHubUnavailable) as raised:
        poll_once(deps)
    assert "GitHub answered 502" in raised.value.user_message
    assert deps.store.kv_get(cursor_key(REPO)) == cursor
    assert slack.calls() == []
    poll_once(deps)
    assert len(alerts(slack)) == 1


@pytest.mark.parametrize("primary", [False, True])
def test_rate_limited_poller_waits_as_asked_before_calling_again(
    deps, github, slack, clock, primary
):
    seed(github, clock, 10)
    poll_once(deps)
    act(github, clock, "POST", "/issues/6/labels", {"labels": ["urgent"]})
    github.rate_limit_next(retry_after=1, primary=primary, method="GET")
    with pytest.raises(GitHubUnavailable) as limited:
        poll_once(deps)
    assert "rate limit reached" in limited.value.user_message
    calls = len(github.requests)
    with pytest.raises(GitHubUnavailable) as waiting:
        poll_once(deps)  # too soon: GitHub is not called at all
    assert "waiting" in waiting.value.user_message
    assert len(github.requests) == calls
    time.sleep(1.1 if not primary else 2.1)  # the primary limit resets on a whole second
    poll_once(deps)
    assert len(alerts(slack)) == 1


def test_slack_failure_is_retried_by_the_next_poll_even_when_github_says_304(
    deps, github, slack, clock
):
    seed(github, clock, 10)
    poll_once(deps)
    act(github, clock, "POST", "/issues/2/labels", {"labels": ["urgent"]})
    slack.fail_next("chat.postMessage", "internal_error")
    first = poll_once(deps)
    assert first.synced == {"failed": 1}
    assert alerts(slack) == []
    second = poll_once(deps)
    assert second.not_modified and second.synced == {"posted": 1}
    assert len(alerts(slack)) == 1


def test_quiet_urgent_issue_turns_overdue_once_the_day_after_its_due_date(
    deps, github, slack, clock
):
    """Nothing changes on GitHub; only the day does (in the team's time zone)."""
    tz = deps.settings.tz
    today = clock().astimezone(tz).date()
    next_midnight = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    github.create_issue(
        "Board deck numbers",
        f"Due: {today.isoformat()}",
        labels=["urgent"],
        created_at=clock() - dt.timedelta(hours=1),
    )
    poll_once(deps)
    assert "(overdue)" not in alerts(slack)[0]

    clock.set(next_midnight - dt.timedelta(minutes=1))
    assert poll_once(deps).synced == {}
    clock.set(next_midnight + dt.timedelta(minutes=1))
    assert poll_once(deps).synced == {"updated": 1}
    [message] = alerts(slack)
    assert f"due {today:%a %b %-d, %Y} (overdue)" in message
    for _ in range(3):  # later polls that day and the next: nothing more to say
        clock.advance(hours=9)
        assert poll_once(deps).synced == {}
    assert len(slack.calls("chat.update")) == 1


def test_burst_of_changes_pages_through_only_the_changed_issues(deps, github, slack, clock):
    seed(github, clock, 1000)
    poll_once(deps)
    clock.advance(minutes=1)
    # 120 urgent issues filed at once (e.g. an incident): more than one page of 100.
    github.add_many_issues(
        120,
        factory=lambda i: {"title": f"Incident {i}", "labels": ["urgent"]},
        start=clock(),
        spacing=dt.timedelta(seconds=1),
    )
    clock.advance(minutes=3)
    result = poll_once(deps)
    assert result.issues_seen == 120
    assert result.requests == 2  # ceil(120 / 100) pages, whatever the size of the repo
    assert len(slack.calls("chat.postMessage")) == 120


def test_two_replicas_polling_at_once_post_once(store, github, slack, clock):
    seed(github, clock, 10, urgent=(3,))
    replicas = [
        make_deps(store, slack, clock, github_api_url=github.url, github_token=TOKEN)
        for _ in range(4)
    ]
    barrier = threading.Barrier(len(replicas))
    errors: list[BaseException] = []

    def run(deps) -> None:
        try:
            barrier.wait()
            poll_once(deps, client=IssuesClient(github.url, TOKEN))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(slack.calls("chat.postMessage")) == 1


# --- databot urgent-poll ---------------------------------------------------------------------


def test_urgent_poll_command_polls_once_and_says_what_it_did(github, slack, clock, tmp_path):
    seed(github, clock, 5, urgent=(2,))
    env = {
        **CHECKOUT,
        "DATA_DIR": str(tmp_path),
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_API_URL": github.url,
        "GITHUB_REPO": REPO,
        "SLACK_BOT_TOKEN": "xoxb-cli-test",
        "SLACK_API_URL": slack.api_url,
        "ANALYTICS_CHANNEL": "#analytics",
    }
    first = run_cli("urgent-poll", "--once", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "1 request(s) to GitHub, 1 issue(s)" in first.stdout
    assert len(alerts(slack)) == 1
    assert TOKEN not in first.stdout + first.stderr


def test_urgent_poll_command_explains_missing_token_and_github_failures(github, tmp_path):
    missing = run_cli(
        "urgent-poll", "--once", env={**CHECKOUT, "DATA_DIR": str(tmp_path)}, cwd=tmp_path
    )
    assert missing.returncode == 2
    assert "GITHUB_TOKEN" in missing.stderr and "Traceback" not in missing.stderr

    env = {**CHECKOUT, "DATA_DIR": str(tmp_path), "GITHUB_TOKEN": TOKEN}
    env["GITHUB_API_URL"] = github.url
    github.fail_next("GET", status=502, times=5)
    failed = run_cli("urgent-poll", "--once", env=env, cwd=tmp_path)
    assert failed.returncode == 2
    assert "GitHub answered 502" in failed.stderr and "Traceback" not in failed.stderr


def test_wrong_repo_or_token_is_explained(deps, github):
    github.fail_next("GET", status=404)
    with pytest.raises(GitHubUnavailable) as raised:
        poll_once(deps)
    assert "check GITHUB_REPO" in raised.value.user_message
    assert TOKEN not in raised.value.user_message + str(raised.value)


def test_clock_process_polls_for_urgent_issues(github, slack, clock, tmp_path):
    seed(github, clock, 5, urgent=(4,))
    env = {
        **CHECKOUT,
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_"))},
        "DATA_DIR": str(tmp_path),
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_API_URL": github.url,
        "GITHUB_REPO": REPO,
        "SLACK_BOT_TOKEN": "xoxb-clock-test",
        "SLACK_API_URL": slack.api_url,
        "ANALYTICS_CHANNEL": "#analytics",
        "DEMO_WAREHOUSE": "true",  # no GCP_PROJECT: clock needs the demo asked for
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "clock"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        slack.wait_for("chat.postMessage", timeout=120)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert any("#4 Request 4" in m for m in alerts(slack))
    assert "scheduled urgent-poll: every 60s" in stderr
