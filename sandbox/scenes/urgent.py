"""Demo scene: an issue labeled `urgent` on GitHub appears in #analytics at once, the one
message follows the issue (assigned, closed), a redelivered webhook changes nothing, a
hostile title pings nobody, and the poller (for deployments without webhooks) costs one
conditional request when nothing changed."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import requests

from sandbox import github_webhooks as hooks

if TYPE_CHECKING:
    from sandbox.demo import DemoHarness


def _github(h: DemoHarness, method: str, path: str, body) -> None:
    """A person changes the issue on github.com (here: the stand-in GitHub)."""
    response = requests.request(
        method,
        f"{h.github.url}/repos/{h.settings.github_repo}{path}",
        json=body,
        headers={"Authorization": f"Bearer {h.settings.github_token.get_secret_value()}"},
        timeout=10,
    )
    response.raise_for_status()


def _deliver(h: DemoHarness, payload: dict, delivery: str) -> None:
    response = h.github_webhook("issues", payload, delivery=delivery)
    h.say(f"GitHub delivers `issues.{payload['action']}` ({delivery}) -> HTTP {response.status}")


def run(h: DemoHarness) -> None:
    from bot.urgent.poller import poll_once

    h.section("Urgent issues in #analytics")
    repo = h.settings.github_repo
    now = h.deps.now()
    number = h.github.create_issue(
        "Exec revenue dashboard shows no data since Monday",
        body=(
            "The board deck is built from this dashboard.\n\n"
            f"Due: {(now + dt.timedelta(days=1)).date().isoformat()}\n\n"
            "From Slack: https://sandbox.slack.com/archives/C0ANALYTICS/p1763900000000100"
        ),
        labels=["dashboard"],
        user="alice",
        created_at=now - dt.timedelta(hours=3),
        updated_at=now - dt.timedelta(hours=3),
    )["number"]

    h.say(f"On GitHub, alice's issue {repo}#{number} gets the `urgent` label.")
    _github(h, "POST", f"/issues/{number}/labels", {"labels": ["urgent"]})
    labeled = hooks.labeled(h.github.issue(number), "urgent", sender="alice")
    _deliver(h, labeled, "delivery-1")
    h.show_new()

    h.say("bob assigns himself: the same message is updated, not a new one.")
    _github(h, "POST", f"/issues/{number}/assignees", {"assignees": ["bob"]})
    _deliver(h, hooks.assigned(h.github.issue(number), "bob", sender="bob"), "delivery-2")
    h.show_new()

    h.say("bob closes the issue.")
    _github(h, "PATCH", f"/issues/{number}", {"state": "closed"})
    closed = hooks.closed(h.github.issue(number), sender="bob")
    _deliver(h, closed, "delivery-3")
    h.show_new()

    h.say("GitHub redelivers the `closed` webhook (someone pressed Redeliver).")
    _deliver(h, closed, "delivery-3")
    h.show_new()
    h.say("...nothing was posted or changed: one message per issue.")

    h.say("An issue whose title tries to ping everyone is shown as plain text.")
    hostile = h.github.create_issue(
        "<!channel> <@U0CEO> click <https://evil.example|here>", labels=["urgent"], user="mallory"
    )
    _deliver(h, hooks.opened(hostile, sender="mallory"), "delivery-4")
    h.show_new()

    h.say(
        "Without webhooks (Socket Mode, firewalls) the clock process polls GitHub instead; "
        "with webhooks it still polls, slowly, for deliveries that never arrived."
    )
    posts_before = len(h.slack.calls("chat.postMessage"))
    # GitHub's `since` is inclusive, so the issues updated last come back once more before
    # the answer settles; from then on an unchanged repo answers 304 (free of rate limit).
    for attempt in range(5):
        result = poll_once(h.deps)
        answer = "304 Not Modified" if result.not_modified else f"{result.issues_seen} issue(s)"
        h.say(f"poll {attempt + 1}: {result.requests} request(s) to GitHub, {answer}")
        if result.not_modified:
            break
    h.show_new()
    missed = len(h.slack.calls("chat.postMessage")) - posts_before
    if missed:
        h.say(
            f"...the poller found {missed} urgent issue(s) no webhook told us about (filed "
            "earlier in this demo) and posted each once; the others were not posted again."
        )
    else:
        h.say("...the poller saw the same issues the webhooks did and posted nothing twice.")
