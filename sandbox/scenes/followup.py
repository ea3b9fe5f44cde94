"""Demo scene: a request filed from a Slack thread hears back in that thread as its issue
moves on GitHub: picked up, scheduled into a sprint, a question for the requester,
delivered. Webhooks bring most changes; the close comes by poll only, and its late webhook
says nothing twice. A hostile comment reaches Slack as plain, shortened text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.features import observe_for_followups, request_changed
from bot.followup.poller import poll_comments
from bot.ids import Action, Shortcut
from bot.urgent.poller import poll_once
from sandbox import github_webhooks as hooks
from sandbox.slack_requests import message_shortcut, view_submission

if TYPE_CHECKING:
    from sandbox.demo import DemoHarness

CHANNEL = "C0ANALYTICS"
INPUT = Action.REQUEST_INPUT.value


def _deliver(h: DemoHarness, event: str, payload: dict, delivery: str) -> None:
    response = h.github_webhook(event, payload, delivery=delivery)
    h.say(f"GitHub delivers `{event}.{payload['action']}` ({delivery}) -> HTTP {response.status}")
    h.show_new()


def _poll(h: DemoHarness) -> None:
    issues = poll_once(h.deps, observers=[observe_for_followups])
    comments = poll_comments(h.deps, on_change=request_changed)
    h.say(
        f"the clock polls: issues {'304' if issues.not_modified else '200'}, "
        f"comments {'304' if comments.not_modified else '200'} "
        f"({issues.requests + comments.requests} conditional request(s))"
    )
    h.show_new()


def run(h: DemoHarness) -> None:
    h.section("Request follow-ups: the requester hears every step in the thread")
    h.slack.add_channel(CHANNEL, "analytics")
    h.slack.add_user("U0BOB", name="bob", real_name="Bob Ortiz")
    h.slack.add_user("U0ALICE", name="alice", real_name="Alice Chen")
    root_ts = h.slack.seed_thread(
        CHANNEL, [{"user": "U0BOB", "text": "Which accounts churned in October, and why?"}]
    )
    root = next(m for m in h.slack.messages(CHANNEL) if m["ts"] == root_ts)
    h.say("Bob asks in #analytics; Alice turns his thread into a request.")
    before = len(h.slack.calls("views.update"))
    h.interact(
        message_shortcut(
            Shortcut.THREAD_TO_REQUEST,
            root,
            user_id="U0ALICE",
            trigger_id=h.slack.issue_trigger_id(),
        )
    )
    h.slack.wait_for("views.update", before + 1)
    view = h.slack.views()[-1]
    h.interact(
        view_submission(
            view,
            {"q:end_state": {INPUT: "A churn table per segment."}, "q:why": {INPUT: "QBR."}},
            user_id="U0ALICE",
        )
    )
    h.wait_idle()
    h.show_new()
    issue = next(i for i in h.github.issues() if i["title"].startswith("Which accounts churned"))
    number = issue["number"]
    repo = h.github.repo_json()
    _poll(h)

    h.say(f"On GitHub, ana assigns herself to #{number}.")
    changed = h.github.update_issue(number, assignees=["ana"])
    _deliver(h, "issues", hooks.assigned(changed, "ana", repository=repo), "fu-1")

    h.say("She puts it into the next sprint (milestone).")
    changed = h.github.update_issue(number, milestone="Sprint 49")
    _deliver(h, "issues", hooks.milestoned(changed, repository=repo), "fu-2")

    h.say("She asks Bob a question on the issue.")
    comment = h.github.add_comment(
        number, "@requester should trials that never paid count as churn?", user="ana"
    )
    question = hooks.issue_comment(h.github.issue(number), comment, repository=repo)
    _deliver(h, "issue_comment", question, "fu-3")
    h.say("GitHub redelivers that comment's webhook: nothing is said twice.")
    _deliver(h, "issue_comment", question, "fu-3")

    h.say("Someone pastes a hostile, 60,000-character comment.")
    hostile = h.github.add_comment(
        number,
        "<!channel> <b>look</b> <http://evil.example|http://good.example> @requester\n"
        + "x" * 60_000,
        user="mallory",
    )
    _deliver(
        h,
        "issue_comment",
        hooks.issue_comment(h.github.issue(number), hostile, repository=repo),
        "fu-4",
    )

    h.say("ana closes it with a comment; this time the webhook is lost, the poll sees it.")
    h.github.add_comment(number, "Done: the churn table is in Looker, dashboard 42.", user="ana")
    closed = h.github.update_issue(number, state="closed", by="ana")
    _poll(h)
    h.say("The lost webhook arrives after all: nothing is said twice.")
    _deliver(h, "issues", hooks.closed(closed, repository=repo), "fu-5")
    _poll(h)
