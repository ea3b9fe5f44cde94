"""Request follow-ups end to end: a request filed through the real app (signed Slack
requests over HTTP), its issue changed on the stand-in GitHub the way the team changes it,
the change seen by a signed webhook or by the poller, and the replies read from the
stand-in Slack."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from bot import tables
from bot.app import build_app
from bot.deps import build_deps
from bot.features import (
    observe_for_followups,
    request_changed,
    urgent_poll_loop,
    urgent_poll_once,
)
from bot.followup import replies
from bot.followup.poller import poll_comments
from bot.followup.poller import run_poll as run_followup_poll
from bot.github import GitHubIssue
from bot.intake.filing import drain_outbox
from bot.intake.outbox import filed_requests
from bot.slack_text import escape_mrkdwn
from bot.urgent.poller import run_poll as run_urgent_poll
from bot.web import WebServer, build_web
from sandbox import github_webhooks as hooks
from sandbox.slack_requests import message_event
from tests.support.followup import (
    CHANNEL,
    file_from_modal,
    file_from_thread,
    followups,
    hook,
    people,
    poll,
    shown,
)


@pytest.fixture
def bot(make_bot, store):
    """The bot on loopback, on SQLite and on PostgreSQL state."""
    with make_bot(store, github_retry_backoff_seconds=0) as h:
        people(h)
        yield h


def _changes(bot, number: int, clock, *, via) -> list[tuple[str, str]]:
    """Make each change of issue #number on GitHub, one at a time, and let `via` (a
    function of (event, payload)) bring it to the bot; returns, per change, its name and
    what the requester read for it."""
    gh = bot.github
    repo = gh.repo_json()
    told: list[tuple[str, str]] = []

    def step(name: str, event: str, payload_of) -> None:
        clock.advance(minutes=5)
        payload = payload_of()
        via(event, payload)
        told.append((name, payload["issue"]["html_url"]))

    step(
        "assigned",
        "issues",
        lambda: hooks.assigned(
            gh.update_issue(number, assignees=["ana"]), "ana", repository=repo, sender="ana"
        ),
    )
    step(
        "scheduled",
        "issues",
        lambda: hooks.milestoned(gh.update_issue(number, milestone="Sprint 48"), repository=repo),
    )

    def question():
        comment = gh.add_comment(number, "@requester which deployment types count?", user="ana")
        return hooks.issue_comment(gh.issue(number), comment, repository=repo)

    step("comment", "issue_comment", question)
    step(
        "urgent",
        "issues",
        lambda: hooks.labeled(
            gh.update_issue(number, labels=["data-request", "urgent"]), "urgent", repository=repo
        ),
    )

    def delivered():
        gh.add_comment(number, "Done: the dashboard is at looker/42.", user="ana")
        clock.advance(seconds=2)
        return hooks.closed(gh.update_issue(number, state="closed", by="ana"), repository=repo)

    step("delivered", "issues", delivered)
    step(
        "reopened",
        "issues",
        lambda: hooks.reopened(gh.update_issue(number, state="open"), repository=repo),
    )

    def not_planned():
        gh.add_comment(number, "Out of scope this quarter, sorry.", user="ana")
        clock.advance(seconds=2)
        issue = gh.update_issue(number, state="closed", state_reason="not_planned", by="ana")
        return hooks.closed(issue, repository=repo)

    step("not-planned", "issues", not_planned)
    return told


# What the requester reads for each change (words a person would look for).
SAYS = {
    "assigned": ["ana", "picked this up"],
    "scheduled": ["Sprint 48"],
    "comment": ["ana", "which deployment types count?"],
    "urgent": ["urgent"],
    "delivered": ["Delivered", "Done: the dashboard is at looker/42."],
    "reopened": ["reopened"],
    "not-planned": ["not planned", "Out of scope this quarter, sorry."],
}


def test_each_change_reaches_the_thread_by_webhook_then_by_poll_once_each(bot, clock):
    root, number = file_from_thread(bot, "How many searches per week per deployment type?")
    poll(bot)  # the clock's first poll: cursors start here
    counts: list[int] = []
    deliveries: list[tuple[str, dict, str]] = []

    def by_webhook(event: str, payload: dict) -> None:
        delivery = f"d-{len(deliveries)}"
        assert hook(bot, event, payload, delivery).status in (200, 202)
        deliveries.append((event, payload, delivery))
        counts.append(len(followups(bot, root)))

    steps = _changes(bot, number, clock, via=by_webhook)
    said = followups(bot, root)
    assert counts == list(range(1, len(steps) + 1))  # one reply per change, as it happens
    for (name, _url), message in zip(steps, said, strict=True):
        for words in SAYS[name]:
            assert words in shown(message), (name, shown(message))
        assert "<@U0BOB>" in message["blocks"][0]["text"]["text"]  # the requester is told
    # GitHub redelivers every one, and the poller sees them all: nothing more is said.
    for event, payload, delivery in deliveries:
        assert hook(bot, event, payload, delivery).text == "duplicate delivery\n"
    poll(bot)
    assert len(followups(bot, root)) == len(steps)

    # A second request, whose changes only the poller sees (no webhook at all).
    root2, number2 = file_from_thread(bot, "Which accounts churned in October?")
    poll(bot)
    counts2: list[int] = []

    def by_poll_only(event: str, payload: dict) -> None:
        poll(bot)
        counts2.append(len(followups(bot, root2)))
        deliveries.append((event, payload, f"late-{len(deliveries)}"))

    steps2 = _changes(bot, number2, clock, via=by_poll_only)
    assert counts2 == list(range(1, len(steps2) + 1))
    for (name, _url), message in zip(steps2, followups(bot, root2), strict=True):
        for words in SAYS[name]:
            assert words in shown(message), (name, shown(message))
    # The webhooks arrive late (GitHub was slow): nothing is said twice.
    for event, payload, delivery in deliveries[len(steps) :]:
        hook(bot, event, payload, delivery)
    assert len(followups(bot, root2)) == len(steps2)
    assert len(followups(bot, root)) == len(steps)
    assert bot.slack.violations == []


def test_a_request_from_the_modal_hears_in_the_requesters_dm(bot, clock):
    number = file_from_modal(bot, "Cody churn by cohort", user="U0ALICE")
    clock.advance(minutes=1)
    issue = bot.github.update_issue(number, assignees=["ana"])
    hook(bot, "issues", hooks.assigned(issue, "ana", repository=bot.github.repo_json()))
    [reply] = followups(bot, dm="U0ALICE")
    assert "picked this up" in shown(reply) and "Cody churn by cohort" in shown(reply)
    assert "<@U0ALICE>" not in shown(reply)  # a DM notifies by itself


def test_an_unchanged_repo_costs_one_conditional_request_for_issues_and_one_for_comments(
    bot, clock
):
    file_from_thread(bot, "How many searches per week per deployment type?")
    poll(bot)
    poll(bot)  # the cursors settle on what GitHub last answered
    before = len(bot.github.requests)
    clock.advance(minutes=1)
    poll(bot)
    made = bot.github.requests[before:]
    assert sorted(r.path for r in made) == [
        "/repos/acme/analytics/issues",
        "/repos/acme/analytics/issues/comments",
    ]
    assert [r.status for r in made] == [304, 304]


def test_hostile_comment_reaches_slack_escaped_and_shortened_with_a_link(bot, clock):
    root, number = file_from_thread(bot, "How many searches per week per deployment type?")
    hostile = (
        "<!channel> <b>bold</b> <script>alert(1)</script> <http://evil.example|http://good.example>"
        " @requester please look & reply.\n" + "x" * 60_000
    )
    clock.advance(minutes=1)
    comment = bot.github.add_comment(number, hostile, user="mallory")
    repo = bot.github.repo_json()
    hook(
        bot,
        "issue_comment",
        hooks.issue_comment(bot.github.issue(number), comment, repository=repo),
    )
    [reply] = followups(bot, root)
    sent = shown(reply)
    for raw in ("<!channel>", "<b>", "<script>", "<http://evil.example|"):
        assert raw not in sent
    quoted = reply["blocks"][1]["text"]["text"]
    assert escape_mrkdwn("<!channel> <b>bold</b>") in quoted
    assert escape_mrkdwn("<http://evil.example|http://good.example>") in quoted
    assert len(quoted) < 3000 and "…" in quoted
    link = reply["blocks"][2]["elements"][0]["text"]
    assert link == f"<{comment['html_url']}|Read the rest on GitHub>"
    assert bot.slack.violations == []


@pytest.mark.parametrize(
    ("mode", "told"), [("questions", [False, True, True]), ("all", [True, True, True])]
)
def test_comments_told_by_setting_all_or_only_questions(make_bot, sqlite_store, clock, mode, told):
    with make_bot(sqlite_store, followup_comments=mode) as bot:
        people(bot)
        root, number = file_from_thread(bot, "How many searches per week per deployment type?")
        repo = bot.github.repo_json()
        said = []
        for text, labels in (
            ("Looking into it.", ["data-request"]),
            ("Could you say which teams? @requester", ["data-request"]),
            ("Which quarter do you need?", ["data-request", "needs-info"]),
        ):
            clock.advance(minutes=1)
            bot.github.update_issue(number, labels=labels)
            comment = bot.github.add_comment(number, text, user="ana")
            payload = hooks.issue_comment(bot.github.issue(number), comment, repository=repo)
            before = len(followups(bot, root))
            hook(bot, "issue_comment", payload)
            said.append(any(text in shown(m) for m in followups(bot, root)[before:]))
        assert said == told


def test_a_change_kind_turned_off_is_not_told(make_bot, sqlite_store, clock):
    kinds = ["scheduled", "comment", "delivered", "not-planned", "reopened", "urgent"]
    with make_bot(sqlite_store, followup_changes=kinds) as bot:
        people(bot)
        root, number = file_from_thread(bot, "How many searches per week per deployment type?")
        repo = bot.github.repo_json()
        clock.advance(minutes=1)
        hook(
            bot,
            "issues",
            hooks.assigned(
                bot.github.update_issue(number, assignees=["ana"]), "ana", repository=repo
            ),
        )
        assert followups(bot, root) == []
        clock.advance(minutes=1)
        hook(
            bot,
            "issues",
            hooks.milestoned(
                bot.github.update_issue(number, milestone="Sprint 9"), repository=repo
            ),
        )
        [reply] = followups(bot, root)
        assert "Sprint 9" in shown(reply)


def test_an_issue_databot_did_not_file_is_ignored(bot, clock):
    poll(bot)
    issue = bot.github.create_issue("Filed by hand on github.com", user="ana")
    clock.advance(minutes=1)
    changed = bot.github.update_issue(issue["number"], assignees=["ana"])
    response = hook(
        bot, "issues", hooks.assigned(changed, "ana", repository=bot.github.repo_json())
    )
    assert response.status in (200, 202)
    comment = bot.github.add_comment(issue["number"], "@requester hi", user="ana")
    response = hook(
        bot,
        "issue_comment",
        hooks.issue_comment(
            bot.github.issue(issue["number"]), comment, repository=bot.github.repo_json()
        ),
    )
    assert response.text == "ignored: not a request databot filed\n"
    poll(bot)
    assert bot.slack.calls("chat.postMessage") == []


def test_slack_down_queues_the_reply_and_sends_it_once_when_back(bot, clock):
    root, number = file_from_thread(bot, "How many searches per week per deployment type?")
    bot.slack.fail_next("chat.postMessage", "internal_error", status=503, times=1)
    clock.advance(minutes=1)
    issue = bot.github.update_issue(number, assignees=["ana"])
    hook(bot, "issues", hooks.assigned(issue, "ana", repository=bot.github.repo_json()))
    assert followups(bot, root) == []
    replies.redeliver(bot.deps)  # too early: the retry waits a minute
    assert followups(bot, root) == []
    clock.advance(minutes=2)
    assert replies.redeliver(bot.deps) == 1
    clock.advance(minutes=10)
    replies.redeliver(bot.deps)
    [reply] = followups(bot, root)
    assert "picked this up" in shown(reply)


def test_a_lost_answer_is_found_in_the_thread_not_posted_twice(bot, clock):
    root, number = file_from_thread(bot, "How many searches per week per deployment type?")
    bot.slack.lose_answer_next("chat.postMessage", "reset")
    clock.advance(minutes=1)
    issue = bot.github.update_issue(number, assignees=["ana"])
    hook(bot, "issues", hooks.assigned(issue, "ana", repository=bot.github.repo_json()))
    clock.advance(minutes=2)
    replies.redeliver(bot.deps)
    clock.advance(minutes=10)
    replies.redeliver(bot.deps)
    assert len(followups(bot, root)) == 1


def test_an_older_view_of_the_issue_changes_nothing(bot, clock):
    root, number = file_from_thread(bot, "How many searches per week per deployment type?")
    repo = bot.github.repo_json()
    clock.advance(minutes=1)
    assigned_view = bot.github.update_issue(number, assignees=["ana"])
    clock.advance(minutes=1)
    closed_view = bot.github.update_issue(number, state="closed", by="ana")
    hook(bot, "issues", hooks.closed(closed_view, repository=repo))
    hook(bot, "issues", hooks.assigned(assigned_view, "ana", repository=repo))  # late
    said = [shown(m) for m in followups(bot, root)]
    assert len(said) == 2
    assert "picked this up" in said[0] and "Delivered" in said[1]
    assert not any("reopened" in s for s in said)


# --- exactly once across replicas (PostgreSQL) ---------------------------------------------


def test_two_app_instances_a_redelivery_and_a_poller_race_and_tell_each_change_once(bot_pg, clock):
    bot = bot_pg
    people(bot)
    root, number = file_from_thread(bot, "How many searches per week per deployment type?")
    poll(bot)
    # A second replica: its own process state (Deps, app, HTTP server), the same database
    # and the same Slack and GitHub.
    other = build_deps(bot.settings, store=bot.deps.store, warehouse=bot.deps.warehouse, now=clock)
    other = dataclasses.replace(other, work=bot.deps.work)  # so wait_idle covers it
    second = WebServer(build_web(build_app(other), other)).start()
    try:
        repo = bot.github.repo_json()
        clock.advance(minutes=1)
        issue = bot.github.update_issue(number, assignees=["ana"], milestone="Sprint 48")
        comment = bot.github.add_comment(number, "@requester which quarter?", user="ana")
        assigned = hooks.assigned(issue, "ana", repository=repo)
        commented = hooks.issue_comment(issue, comment, repository=repo)
        secret = bot.settings.github_webhook_secret.get_secret_value()
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []

        def to_second(event: str, payload: dict, delivery: str) -> None:
            hooks.send_webhook(
                second.url + "/github/webhook", event, payload, secret=secret, delivery=delivery
            )

        racers = [
            lambda: bot.github_webhook("issues", assigned, delivery="d-assigned"),
            lambda: to_second("issues", assigned, "d-assigned"),  # the same delivery
            lambda: bot.github_webhook("issue_comment", commented, delivery="d-comment"),
            lambda: to_second("issue_comment", commented, "d-comment-redelivered"),
            lambda: poll(bot, other),
            lambda: replies.observe_issues(other, [GitHubIssue.model_validate(issue)]),
        ]

        def run(fn) -> None:
            try:
                barrier.wait()
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(fn,)) for fn in racers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        bot.wait_idle()
    finally:
        second.stop()
    assert errors == []
    said = [shown(m) for m in followups(bot, root)]
    assert len(said) == 3, said
    assert sum("picked this up" in s for s in said) == 1
    assert sum("Sprint 48" in s for s in said) == 1
    assert sum("which quarter?" in s for s in said) == 1


def test_many_threads_observing_one_change_tell_it_once(bot_pg, clock):
    bot = bot_pg
    people(bot)
    root, number = file_from_thread(bot, "How many searches per week per deployment type?")
    clock.advance(minutes=1)
    issue = GitHubIssue.model_validate(bot.github.update_issue(number, state="closed"))
    row = filed_requests(bot.deps, [number])[number]
    barrier = threading.Barrier(8)

    def observe() -> None:
        barrier.wait()
        replies.observe_issue(bot.deps, row, issue)

    threads = [threading.Thread(target=observe) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bot.wait_idle()
    [reply] = followups(bot, root)
    assert "Delivered" in shown(reply)


def test_comments_poll_tells_a_comment_once_even_when_listed_again(bot, clock):
    root, number = file_from_thread(bot, "How many searches per week per deployment type?")
    poll(bot)
    clock.advance(minutes=1)
    bot.github.add_comment(number, "@requester which quarter?", user="ana")
    poll_comments(bot.deps)
    poll_comments(bot.deps)  # `since` is inclusive: the same comment is listed again
    bot.wait_idle()
    assert len(followups(bot, root)) == 1
    assert bot.slack.messages(CHANNEL)  # and the thread is where it went


def test_a_thread_reply_mirrored_to_github_is_not_told_back_to_the_thread(make_bot, store, clock):
    """The two directions meet: Bob's reply becomes a GitHub comment, and neither the poller
    nor the issue_comment webhook for that comment sends it back into his thread."""
    with make_bot(store, github_retry_backoff_seconds=0, thread_mirror_channels=[CHANNEL]) as bot:
        people(bot)
        root_ts, number = file_from_thread(bot, "Which plans churn fastest?")
        poll(bot)
        reply = bot.slack.user_posts(CHANNEL, "U0BOB", "Only paid plans, please", thread_ts=root_ts)
        assert bot.event(message_event(reply)).status == 200
        bot.wait_idle()
        [mirrored] = [c for c in bot.github.comments(number) if "in Slack:" in c["body"]]
        clock.advance(minutes=1)
        poll(bot)
        hook(
            bot,
            "issue_comment",
            hooks.issue_comment(
                bot.github.issue(number), mirrored, repository=bot.github.repo_json()
            ),
        )
        assert followups(bot, root_ts) == []
        # A comment by the team on the same issue still is told, once.
        clock.advance(minutes=1)
        bot.github.add_comment(number, "@requester which quarter?", user="ana")
        poll(bot)
        assert len(followups(bot, root_ts)) == 1


# --- routing, unreachable threads, drawing limits ----------------------------------------

ANA = {"github": "ana", "slack": "U0ANA", "name": "Ana Lopez"}


def test_routing_assignment_is_not_told_back_as_picked_up(make_bot, sqlite_store, clock):
    """The requester was told "Ana Lopez, on support this week, has it" in the Filed reply.
    Databot's own assignment at creation is not a team change: no "ana picked this up"."""
    with make_bot(sqlite_store, support_analysts=[ANA], support_routing="assign") as bot:
        people(bot)
        poll(bot)  # the clock's first poll: cursors start here
        root, number = file_from_thread(bot, "How many searches per week per deployment type?")
        assert [a["login"] for a in bot.github.issue(number)["assignees"]] == ["ana"]
        clock.advance(minutes=1)
        poll(bot)  # the new issue shows up in the changed-issues listing
        said = [shown(m) for m in followups(bot, root)]
        assert not any("picked this up" in s for s in said), said


def test_routing_assignment_webhook_at_creation_is_not_told(make_bot, sqlite_store, clock):
    """GitHub sends `issues.assigned` for assignees given at creation: same expectation."""
    with make_bot(sqlite_store, support_analysts=[ANA], support_routing="assign") as bot:
        people(bot)
        root, number = file_from_thread(bot, "How many searches per week per deployment type?")
        issue = bot.github.issue(number)
        hook(bot, "issues", hooks.assigned(issue, "ana", repository=bot.github.repo_json()))
        said = [shown(m) for m in followups(bot, root)]
        assert not any("picked this up" in s for s in said), said


def test_a_comment_of_many_short_lines_does_not_jam_the_comment_poller(
    make_bot, sqlite_store, clock
):
    """FOLLOWUP_EXCERPT_CHARS=2000 is allowed; a comment of short paragraphs quoted line by
    line outgrows Slack's 3,000-character section. It must still be told (cut), and above
    all the comments after it must still be told by the poller."""
    with make_bot(sqlite_store, followup_excerpt_chars=2000, followup_comments="all") as bot:
        people(bot)
        root, number = file_from_thread(bot, "How many searches per week per deployment type?")
        poll(bot)
        clock.advance(minutes=1)
        bot.github.add_comment(number, "ok\n\n" * 600, user="ana")
        run_followup_poll(bot.deps, request_changed)  # the clock's job (never raises)
        bot.wait_idle()
        clock.advance(minutes=1)
        bot.github.add_comment(number, "Which quarter do you need?", user="ana")
        run_followup_poll(bot.deps, request_changed)
        bot.wait_idle()
        said = [shown(m) for m in followups(bot, root)]
        assert any("Which quarter do you need?" in s for s in said), said
        assert len(said) == 2, said


def test_a_closing_comment_is_told_once_by_webhooks(make_bot, sqlite_store, clock):
    """ "Close with comment" sends issue_comment.created, then issues.closed. With
    FOLLOWUP_COMMENTS=all the requester should read the closing words once (with
    "Delivered"), not once as a comment and again with the close."""
    with make_bot(sqlite_store, followup_comments="all") as bot:
        people(bot)
        root, number = file_from_thread(bot, "How many searches per week per deployment type?")
        repo = bot.github.repo_json()
        clock.advance(minutes=1)
        comment = bot.github.add_comment(number, "Done: the dashboard is at looker/42.", user="ana")
        hook(
            bot,
            "issue_comment",
            hooks.issue_comment(bot.github.issue(number), comment, repository=repo),
        )
        clock.advance(seconds=2)
        closed = bot.github.update_issue(number, state="closed", by="ana")
        hook(bot, "issues", hooks.closed(closed, repository=repo))
        said = [shown(m) for m in followups(bot, root)]
        assert sum("looker/42" in s for s in said) == 1, said
        [close] = [m for m in followups(bot, root) if "Delivered" in shown(m)]
        assert comment["html_url"] in str(close.get("blocks")), close  # links to the comment


def test_a_closing_comment_that_cannot_be_drawn_does_not_stop_other_requests(
    make_bot, sqlite_store, clock
):
    """The same overflow in a closing comment is raised inside the urgent poller's observer:
    the listing's cursor stops, and every issue after it in the listing is never told."""
    with make_bot(sqlite_store, followup_excerpt_chars=2000) as bot:
        people(bot)
        poll(bot)
        root1, n1 = file_from_thread(bot, "How many searches per week per deployment type?")
        root2, n2 = file_from_thread(bot, "Which accounts churned in October?")
        poll(bot)
        clock.advance(minutes=1)
        bot.github.add_comment(n1, "ok\n\n" * 600, user="ana")
        clock.advance(seconds=2)
        bot.github.update_issue(n1, state="closed", by="ana")
        clock.advance(minutes=1)
        bot.github.update_issue(n2, assignees=["ana"])
        run_urgent_poll(bot.deps, observers=[observe_for_followups])
        bot.wait_idle()
        assert any("picked this up" in shown(m) for m in followups(bot, root2))


def test_unassignable_routing_login_still_files_the_request(make_bot, sqlite_store, clock):
    """GitHub answers 422 `Value ... cannot be set for field assignees` when the analyst in
    SUPPORT_ANALYSTS cannot be assigned (typo, left the org, no repo access). The request
    must still be filed (unassigned, or with a mention) rather than fail for good."""
    gone = {"github": "ana-left", "slack": "U0ANA", "name": "Ana Lopez"}
    with make_bot(sqlite_store, support_analysts=[gone], github_retry_backoff_seconds=0) as bot:
        people(bot)
        bot.github.fail_next(
            "POST",
            r"^/repos/[^/]+/[^/]+/issues$",
            status=422,
            body={
                "message": "Validation Failed",
                "errors": [
                    {
                        "value": "ana-left",
                        "resource": "Issue",
                        "field": "assignees",
                        "code": "invalid",
                    }
                ],
            },
        )
        try:
            file_from_thread(bot, "How many searches per week per deployment type?")
        except StopIteration:
            pass

        clock.advance(minutes=5)
        drain_outbox(bot.deps)
        bot.wait_idle()
        assert len(bot.github.issues()) == 1


def test_a_thread_databot_can_no_longer_post_in_falls_back_to_the_dm(make_bot, sqlite_store, clock):
    """Intake sends "Filed #N" by DM when the thread is unreachable (archived channel, bot
    removed). A follow-up is the same kind of message: it must not be dropped for good."""
    with make_bot(sqlite_store) as bot:
        people(bot)
        root, number = file_from_thread(bot, "How many searches per week per deployment type?")
        requester = "U0BOB"
        bot.slack.archive_channel("C0ANALYTICS")
        clock.advance(minutes=1)
        issue = bot.github.update_issue(number, assignees=["ana"])
        hook(bot, "issues", hooks.assigned(issue, "ana", repository=bot.github.repo_json()))
        for _ in range(3):
            clock.advance(minutes=10)
            replies.redeliver(bot.deps)
        dms = [
            c.args
            for c in bot.slack.calls("chat.postMessage")
            if c.args.get("channel") == requester and c.error is None
        ]
        assert sum("picked this up" in str(a.get("text")) for a in dms) == 1, dms


def test_databot_urgent_poll_does_not_swallow_follow_ups(bot_pg, clock):
    """`databot urgent-poll [--once]` (README: the poller "alone") moves the cursor it shares
    with follow-ups: a change it lists is told too (no webhooks: Socket Mode)."""

    bot = bot_pg
    assert urgent_poll_loop(bot.deps).observers  # the loop hands its listing on as well
    people(bot)
    poll(bot)
    root, number = file_from_thread(bot, "How many searches per week per deployment type?")
    poll(bot)
    clock.advance(minutes=1)
    bot.github.update_issue(number, assignees=["ana"])
    urgent_poll_once(bot.deps)  # what `databot urgent-poll --once` runs
    clock.advance(minutes=1)
    poll(bot)  # the clock's next poll
    assert any("picked this up" in shown(m) for m in followups(bot, root))


def test_a_request_filed_before_follow_ups_does_not_replay_old_changes(
    make_bot, sqlite_store, clock
):
    """After the upgrade, an old request (no follow-up record) that was picked up and closed
    long ago is not told "picked this up" and "Delivered" now; later changes are told."""

    with make_bot(sqlite_store) as bot:
        people(bot)
        root, number = file_from_thread(bot, "How many searches per week per deployment type?")
        with bot.deps.store.engine.begin() as connection:  # as before follow-ups existed
            connection.execute(tables.followup_issues.delete())
        repo = bot.github.repo_json()
        clock.advance(minutes=1)
        issue = bot.github.update_issue(number, assignees=["ana"], state="closed", by="ana")
        hook(bot, "issues", hooks.closed(issue, repository=repo))
        assert followups(bot, root) == []
        clock.advance(minutes=1)
        reopened = bot.github.update_issue(number, state="open", by="ana")
        hook(bot, "issues", hooks.reopened(reopened, repository=repo))
        said = [shown(m) for m in followups(bot, root)]
        assert len(said) == 1 and "reopened" in said[0], said


def test_a_login_github_cannot_assign_files_the_request_with_a_mention(
    make_bot, sqlite_store, clock, caplog
):
    """The stand-in refuses, like GitHub, a login that is no collaborator: the request is
    filed unassigned, the analyst is mentioned instead, and the log names the setting."""
    gone = {"github": "ana-left", "slack": "U0ANA", "name": "Ana Lopez"}
    with make_bot(sqlite_store, support_analysts=[gone], support_routing="assign") as bot:
        people(bot)
        bot.github.assignable = {"ana", "ben"}
        root, number = file_from_thread(bot, "How many searches per week per deployment type?")
        issue = bot.github.issue(number)
        assert issue["assignees"] == []
        assert "@ana-left" in issue["body"]
        assert "SUPPORT_ANALYSTS" in caplog.text
        assert any(f"#{number}" in str(m.get("text")) for m in bot.slack.messages("C0ANALYTICS"))
