from __future__ import annotations

import datetime as dt
import io
import re
import threading
from dataclasses import replace

import pytest
import sqlalchemy as sa

from bot import tables
from bot.github import GitHubIssue
from bot.slack_text import Message
from bot.urgent import alerts as urgent
from bot.urgent.alerts import (
    LEASE,
    announce_issue,
    handle_issue,
    pending_alerts,
    record,
    sync_alert,
)
from bot.urgent.blocks import build_urgent_digest, build_urgent_message, format_duration
from bot.urgent.model import (
    AlertStatus,
    Recorded,
    Synced,
    desired_state,
    find_due_date,
    find_slack_thread,
)
from sandbox.demo import DemoHarness
from sandbox.scenes import urgent as scene
from sandbox.slack_api import FakeSlack
from tests.conftest import TEST_NOW
from tests.support.urgent import CHANNEL_NAME, REPO, issue_json, make_deps

OPENED = TEST_NOW - dt.timedelta(hours=5)


def issue(**kwargs) -> GitHubIssue:
    kwargs.setdefault("created_at", OPENED)
    return GitHubIssue.model_validate(issue_json(**kwargs))


def state_of(gh_issue: GitHubIssue, **kwargs):
    return desired_state(gh_issue, repo=REPO, label="urgent", **kwargs)


def as_parts(message: Message) -> tuple[str, list[dict]]:
    return message.text, message.blocks


def all_text(text: str, blocks: list[dict]) -> str:
    """Every mrkdwn string of a message, the way Slack would parse it."""
    found = [text]

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return "\n".join(found)


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        fake.add_channel("C0ANALYTICS", CHANNEL_NAME)
        yield fake


@pytest.fixture
def deps(store, slack, clock):
    return make_deps(store, slack, clock)


def alert_messages(slack: FakeSlack) -> list[dict]:
    return slack.messages("C0ANALYTICS")


# --- what the message says ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "labels", "expected"),
    [
        ("open", ("urgent",), AlertStatus.URGENT),
        ("open", ("bug", "Urgent"), AlertStatus.URGENT),  # GitHub labels match case-blind
        ("open", ("bug",), AlertStatus.NOT_URGENT),
        ("closed", ("urgent",), AlertStatus.CLOSED),
        ("closed", (), AlertStatus.CLOSED),
    ],
)
def test_status_follows_state_and_label(state, labels, expected):
    closed_at = TEST_NOW if state == "closed" else None
    assert state_of(issue(state=state, labels=labels, closed_at=closed_at)).status is expected


@pytest.mark.parametrize(
    ("body", "due"),
    [
        ("Due: 2026-12-01\nmore text", dt.date(2026, 12, 1)),
        ("**Due date:** Dec 4, 2026", dt.date(2026, 12, 4)),
        ("Deadline - 7 January 2027", dt.date(2027, 1, 7)),
        ("We need it.\nNeeded by: December 15th, 2026", dt.date(2026, 12, 15)),
        ("### Problem\n\nx\n\n### Due date\n\n2026-11-30\n\n### Why\n\ny", dt.date(2026, 11, 30)),
        ("### Timeline\n\nBefore the board meeting on Dec 2, 2026", dt.date(2026, 12, 2)),
        ("### Due date\n\n_No response_\n\n### Why\n\n2026-01-01 was the launch", None),
        ("### Needed by\n\n_No response_\n\n### Slack thread\n\n> Due: 2026-12-24", None),
        ("Data since 2026-01-01 looks wrong", None),  # a date, but not a due date
        ("Due: whenever", None),
        ("Due: 2026-02-30", None),  # not a real day
        ("", None),
    ],
)
def test_due_date_is_read_from_the_body(body, due):
    assert find_due_date(body) == due


def test_slack_thread_link_is_found_in_the_body_but_not_lookalikes():
    body = (
        "From Slack: https://acme.slack.com/archives/C0ANALYTICS/p1763900000000100"
        "?thread_ts=1763900000.000100&cid=C0ANALYTICS\n"
    )
    assert find_slack_thread(body) == (
        "https://acme.slack.com/archives/C0ANALYTICS/p1763900000000100"
        "?thread_ts=1763900000.000100&cid=C0ANALYTICS"
    )
    assert find_slack_thread("see https://acme.slack.com.evil.example/archives/C1/p1") is None
    assert find_slack_thread("no link here") is None


def test_slack_thread_lookalike_domains_are_not_linked():
    assert find_slack_thread("https://evil.example/slack.com/archives/C1/p1763900000000100") is None


def test_alert_shows_title_link_author_assignees_labels_age_due_and_thread():
    body = "Due: 2026-11-25\nhttps://acme.slack.com/archives/C0ANALYTICS/p1763900000000100"
    state = state_of(
        issue(
            number=12,
            title="Revenue dashboard is empty",
            labels=("urgent", "bug"),
            assignees=("bob", "carol"),
            body=body,
        )
    )
    message = build_urgent_message(state, now=TEST_NOW)
    text, blocks = message.text, message.blocks
    shown = all_text(text, blocks)
    assert "<https://github.com/acme/analytics/issues/12|#12 Revenue dashboard is empty>" in shown
    assert "@alice" in shown
    assert "@bob, @carol" in shown
    assert "`bug`" in shown and "`urgent`" in shown
    # Slack renders the date (for each reader, always current); old clients see the fallback.
    assert f"<!date^{int(OPENED.timestamp())}^{{date_short_pretty}} at {{time}}|" in shown
    assert "Nov 23 13:00 UTC, 5h ago>" in shown  # opened 5 hours before TEST_NOW
    assert "due Wed Nov 25, 2026" in shown
    assert "<https://acme.slack.com/archives/C0ANALYTICS/p1763900000000100|Slack thread>" in shown
    assert text.startswith("🚨 Urgent issue: #12 Revenue dashboard is empty")


def test_unassigned_and_overdue_are_called_out():
    state = state_of(issue(body="Due: 2026-11-20")).as_of(dt.date(2026, 11, 23))
    shown = all_text(*as_parts(build_urgent_message(state, now=TEST_NOW)))
    assert "*unassigned*" in shown
    assert "due Fri Nov 20, 2026 (overdue)" in shown


@pytest.mark.parametrize(
    ("today", "overdue"),
    [(dt.date(2026, 11, 20), False), (dt.date(2026, 11, 21), True)],  # due Fri Nov 20
)
def test_urgent_issue_is_overdue_from_the_day_after_its_due_date(today, overdue):
    state = state_of(issue(body="Due: 2026-11-20")).as_of(today)
    shown = all_text(*as_parts(build_urgent_message(state, now=TEST_NOW)))
    assert ("(overdue)" in shown) is overdue


def test_closed_issue_is_never_overdue():
    closed = issue(body="Due: 2026-11-20", state="closed", closed_at=TEST_NOW)
    state = state_of(closed).as_of(dt.date(2026, 11, 23))
    assert "(overdue)" not in all_text(*as_parts(build_urgent_message(state, now=TEST_NOW)))


@pytest.mark.parametrize(
    "title",
    [
        "<!channel> revenue is down",
        "ask <@U123> about <!here>",
        "<https://evil.example|click here> for the fix",
        "<!subteam^S0ANALYSTS> & <#C0GENERAL>",
    ],
)
def test_title_with_slack_markup_pings_nobody_and_links_nowhere(title):
    state = state_of(issue(title=title, author="mallory"))
    message = build_urgent_message(state, now=TEST_NOW)
    text, blocks = message.text, message.blocks
    shown = all_text(text, blocks)
    # The only <...> constructs Slack will interpret are the ones we made.
    for construct in re.findall(r"<([^>]*)>", shown):
        assert construct.startswith(("https://github.com/acme/analytics/issues/", "!date^")), (
            construct
        )
    assert "<!channel>" not in shown and "<@U123>" not in shown and "<!here>" not in shown
    assert "&lt;" in shown  # shown to people as the literal characters


def test_closed_message_says_who_closed_it_and_after_how_long():
    closed = issue(state="closed", closed_at=OPENED + dt.timedelta(hours=3))
    message = build_urgent_message(state_of(closed, closed_by="dana"), now=TEST_NOW)
    text, blocks = message.text, message.blocks
    shown = all_text(text, blocks)
    assert "✅ closed by @dana after 3h" in shown
    assert "~<https://github.com/" in shown  # struck through: no longer needs attention


def test_closed_as_not_planned_is_not_shown_as_done():
    closed = GitHubIssue.model_validate(
        {
            **issue_json(
                state="closed", created_at=OPENED, closed_at=OPENED + dt.timedelta(hours=1)
            ),
            "state_reason": "not_planned",
        }
    )
    text = build_urgent_message(state_of(closed, closed_by="dana"), now=TEST_NOW).text
    assert text.startswith("⛔ closed as not planned by @dana after 1h")


def test_unlabeled_message_says_no_longer_urgent():
    message = build_urgent_message(state_of(issue(labels=("bug",))), now=TEST_NOW)
    text, blocks = message.text, message.blocks
    assert "no longer urgent" in all_text(text, blocks)


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(0.5, "under a minute"), (45, "45m"), (90, "1h 30m"), (180, "3h"), (26 * 60, "1d 2h")],
)
def test_durations_read_naturally(minutes, expected):
    assert format_duration(dt.timedelta(minutes=minutes)) == expected


def test_long_titles_fit_slack_limits():
    state = state_of(issue(title="x" * 256, body="Due: 2026-12-01"))
    blocks = build_urgent_message(state, now=TEST_NOW).blocks  # to_dict() enforces limits
    assert "…" in blocks[0]["text"]["text"]


def test_many_long_labels_and_assignees_stay_within_slack_limits():
    labels = tuple(f"label-{i:02d}-" + "x" * 40 for i in range(100))
    assignees = tuple(f"analyst-{i}-" + "y" * 28 for i in range(10))
    state = state_of(issue(labels=labels, assignees=assignees, title="t" * 256))
    blocks = build_urgent_message(state, now=TEST_NOW).blocks
    for block in blocks:
        for element in block.get("elements", [block.get("text")]):
            assert len(element["text"]) <= 3000
    assert "+90 more" in blocks[1]["elements"][0]["text"]


def test_digest_lists_issues_oldest_first():
    states = [
        state_of(issue(number=n, title=f"issue {n}", created_at=TEST_NOW - dt.timedelta(hours=h)))
        for n, h in ((1, 5), (2, 30), (3, 9))
    ]
    message = build_urgent_digest(states, hours=4, now=TEST_NOW)
    text, blocks = message.text, message.blocks
    assert text == "⏰ 3 urgent issues still unassigned after more than 4h"
    order = [re.search(r"#(\d+) issue", b["text"]["text"]).group(1) for b in blocks[1:]]
    assert order == ["2", "3", "1"]


# --- posting exactly once, keeping it current ----------------------------------------------


def test_first_urgent_sighting_posts_one_message_in_the_channel(deps, slack):
    assert handle_issue(deps, issue()) is Synced.POSTED
    messages = alert_messages(slack)
    assert len(messages) == 1
    assert "Revenue dashboard is empty" in messages[0]["text"]
    # The same snapshot again (a redelivery, the poller) changes nothing in Slack.
    assert handle_issue(deps, issue()) is Synced.CURRENT
    assert len(slack.calls("chat.postMessage")) == 1
    assert slack.calls("chat.update") == []


def test_issue_that_never_was_urgent_is_never_posted(deps, slack):
    assert handle_issue(deps, issue(labels=("bug",))) is Recorded.IGNORED
    closed = issue(state="closed", closed_at=TEST_NOW)  # labeled, but already done
    assert handle_issue(deps, closed) is Recorded.IGNORED
    assert slack.calls() == []


def test_lifecycle_updates_the_same_message_in_place(deps, slack, clock):
    def at(hours: float, **kwargs) -> GitHubIssue:
        return issue(updated_at=OPENED + dt.timedelta(hours=hours), **kwargs)

    steps = [
        (at(0), "🚨 Urgent issue", {}),
        (at(1, assignees=("bob",)), "@bob", {}),
        (
            at(2, assignees=("bob",), title="Revenue dashboard empty since Monday"),
            "since Monday",
            {},
        ),
        (
            at(3, state="closed", assignees=("bob",), closed_at=OPENED + dt.timedelta(hours=3)),
            "closed by @bob after 3h",
            {"closed_by": "bob"},
        ),
        (at(4, assignees=("bob",)), "🚨 Urgent issue", {}),  # reopened
        (at(5, labels=("bug",), assignees=("bob",)), "no longer urgent", {}),
        (at(6, labels=("bug", "urgent"), assignees=("bob",)), "🚨 Urgent issue", {}),  # relabeled
    ]
    for snapshot, expected, extra in steps:
        handle_issue(deps, snapshot, **extra)
        messages = alert_messages(slack)
        assert len(messages) == 1
        assert expected in all_text(messages[0]["text"], messages[0]["blocks"])
    assert len(slack.calls("chat.postMessage")) == 1
    assert len(slack.calls("chat.update")) == len(steps) - 1
    assert {c.args["ts"] for c in slack.calls("chat.update")} == {messages[0]["ts"]}


def test_older_snapshot_cannot_undo_a_newer_one(deps, slack):
    handle_issue(deps, issue(updated_at=OPENED))
    closed_at = OPENED + dt.timedelta(hours=2)
    handle_issue(
        deps,
        issue(state="closed", closed_at=closed_at, updated_at=closed_at),
        closed_by="bob",
    )
    late = issue(assignees=("carol",), updated_at=OPENED + dt.timedelta(hours=1))
    assert record(deps, late) is Recorded.STALE
    assert handle_issue(deps, late) is Synced.CURRENT
    assert "closed by @bob" in alert_messages(slack)[0]["text"]


def test_closer_named_by_a_webhook_survives_a_poll_that_does_not_name_it(deps, slack):
    closed_at = OPENED + dt.timedelta(hours=1)
    closed = issue(state="closed", closed_at=closed_at, updated_at=closed_at)
    handle_issue(deps, issue())
    handle_issue(deps, closed, closed_by="bob")
    assert record(deps, closed) is Recorded.UNCHANGED  # poll: same issue, no closer known
    assert "closed by @bob" in alert_messages(slack)[0]["text"]


def test_slack_failure_is_retried_later_without_a_second_post(deps, slack):
    slack.fail_next("chat.postMessage", "internal_error")
    assert handle_issue(deps, issue()) is Synced.FAILED
    assert alert_messages(slack) == []
    assert pending_alerts(deps, REPO) == [7]
    assert sync_alert(deps, REPO, 7) is Synced.POSTED
    assert pending_alerts(deps, REPO) == []
    assert sync_alert(deps, REPO, 7) is Synced.CURRENT
    assert len(alert_messages(slack)) == 1


def test_deleted_message_is_posted_again_on_the_next_change(deps, slack):
    handle_issue(deps, issue())
    ts = alert_messages(slack)[0]["ts"]
    deps.slack.chat_delete(channel="C0ANALYTICS", ts=ts)
    assert handle_issue(deps, issue(assignees=("bob",), updated_at=TEST_NOW)) is Synced.POSTED
    [message] = alert_messages(slack)
    assert message["ts"] != ts and "@bob" in message["text"] + str(message["blocks"])


def test_restart_does_not_post_again(store, slack, clock):
    first = make_deps(store, slack, clock)
    handle_issue(first, issue())
    again = make_deps(store, slack, clock)  # a new process on the same state database
    assert handle_issue(again, issue()) is Synced.CURRENT
    assert len(slack.calls("chat.postMessage")) == 1


def test_concurrent_sightings_post_exactly_once_and_end_on_the_newest_state(store, slack, clock):
    """Webhook redeliveries, the poller and a second replica all at once."""
    deps = make_deps(store, slack, clock)
    snapshots = [
        issue(assignees=("bob",) if i % 2 else (), updated_at=OPENED + dt.timedelta(minutes=i))
        for i in range(12)
    ]
    newest = snapshots[-1]
    barrier = threading.Barrier(len(snapshots))
    errors: list[BaseException] = []

    def sighting(snapshot: GitHubIssue) -> None:
        try:
            barrier.wait()
            handle_issue(deps, snapshot)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sighting, args=(s,)) for s in snapshots]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(slack.calls("chat.postMessage")) == 1
    # Whoever held the lease kept going until Slack showed the newest snapshot.
    [message] = alert_messages(slack)
    assert ("@bob" in all_text(message["text"], message["blocks"])) == bool(newest.assignees)
    assert pending_alerts(deps, REPO) == []
    with store.engine.connect() as connection:
        leases = connection.execute(sa.select(tables.urgent_alerts.c.lease_until)).scalars().all()
    assert leases == [None]


def test_post_whose_answer_was_lost_is_found_not_repeated(deps, slack, monkeypatch):
    """Slack posted the message but the answer never came back (timeout, crash)."""
    real_post = deps.slack.chat_postMessage

    def post_then_lose_answer(**kwargs):
        real_post(**kwargs)
        raise TimeoutError("The read operation timed out")

    deps.settings.analytics_channel = "C0ANALYTICS"
    monkeypatch.setattr(deps.slack, "chat_postMessage", post_then_lose_answer)
    assert handle_issue(deps, issue()) is Synced.FAILED
    monkeypatch.undo()

    assert handle_issue(deps, issue(assignees=("bob",), updated_at=TEST_NOW)) is Synced.UPDATED
    [message] = alert_messages(slack)
    assert "@bob" in all_text(message["text"], message["blocks"])
    assert len(slack.calls("chat.postMessage")) == 1
    assert handle_issue(deps, issue(assignees=("bob",), updated_at=TEST_NOW)) is Synced.CURRENT


def test_refused_post_is_simply_retried(deps, slack):
    slack.fail_next("chat.postMessage", "channel_not_found")
    assert handle_issue(deps, issue()) is Synced.FAILED
    assert sync_alert(deps, REPO, 7) is Synced.POSTED
    assert slack.calls("conversations.history") == []  # Slack said no: nothing to look for
    assert len(alert_messages(slack)) == 1


class OneIssueGitHub:
    """deps.github for `announce_issue`: GitHub answering with one issue."""

    def __init__(self, answer: GitHubIssue) -> None:
        self.answer = answer

    def issue(self, number: int) -> GitHubIssue:
        assert number == self.answer.number
        return self.answer


def test_issue_filed_from_a_slack_thread_links_back_to_it(deps, slack):
    """Intake names the thread when it announces the issue (the seam in bot/features.py);
    the link stays when the body does not carry it, also through later changes."""
    permalink = "https://acme.slack.com/archives/C0ANALYTICS/p1763900000000100"
    filed = issue(body="no link in the body")
    announce_issue(replace(deps, github=OneIssueGitHub(filed)), 7, slack_thread=permalink)
    [message] = alert_messages(slack)
    assert f"<{permalink}|Slack thread>" in all_text(message["text"], message["blocks"])

    assert handle_issue(deps, issue(assignees=("bob",), updated_at=TEST_NOW)) is Synced.UPDATED
    [message] = alert_messages(slack)
    shown = all_text(message["text"], message["blocks"])
    assert "assigned to @bob" in shown and f"<{permalink}|Slack thread>" in shown


@pytest.mark.parametrize(
    ("gone", "wording"),
    [(AlertStatus.DELETED, "issue deleted"), (AlertStatus.TRANSFERRED, "moved to another")],
)
def test_deleted_or_transferred_issue_says_so_and_stays_so(deps, slack, gone, wording):
    handle_issue(deps, issue())
    assert handle_issue(deps, issue(updated_at=TEST_NOW), gone=gone) is Synced.UPDATED
    # A late poll still listing the issue (or a redelivered label event) cannot revive it.
    assert record(deps, issue(updated_at=TEST_NOW + dt.timedelta(minutes=1))) is Recorded.STALE
    [message] = alert_messages(slack)
    assert wording in message["text"]


def test_change_recorded_while_another_worker_posts_is_not_lost(deps, slack, monkeypatch):
    """Replica A is posting (Slack is slow); replica B records a newer state meanwhile and
    leaves the Slack side to A, which must show B's state before letting go."""
    real_post = deps.slack.chat_postMessage
    in_flight, proceed = threading.Event(), threading.Event()

    def slow_post(**kwargs):
        in_flight.set()
        proceed.wait(5)
        return real_post(**kwargs)

    monkeypatch.setattr(deps.slack, "chat_postMessage", slow_post)
    first = threading.Thread(target=handle_issue, args=(deps, issue()))
    first.start()
    assert in_flight.wait(5)
    assert handle_issue(deps, issue(assignees=("bob",), updated_at=TEST_NOW)) is Synced.BUSY
    proceed.set()
    first.join(10)

    [message] = alert_messages(slack)
    assert "assigned to @bob" in all_text(message["text"], message["blocks"])
    assert len(slack.calls("chat.postMessage")) == 1
    assert len(slack.calls("chat.update")) == 1
    assert pending_alerts(deps, REPO) == []


@pytest.mark.parametrize("due", [dt.date(2026, 12, 3), None])
def test_issues_filed_by_intake_show_their_due_date_and_thread(due):
    """The body the intake feature writes is read back here: the two must agree."""
    from bot.intake.forms import builtin_forms
    from bot.intake.issue import render_issue
    from bot.intake.model import Source, Submission, ThreadMessage

    permalink = "https://sandbox.slack.com/archives/C0ANALYTICS/p1763900000000100"
    submission = Submission(
        form=builtin_forms()[0],
        title="Board deck numbers look wrong",
        answers={"problem": "ARR is off", "end_state": "Fixed numbers", "why": "Board"},
        urgent=True,
        due_date=due,
        requester_id="U0ALICE",
        submitted_by="U0ALICE",
        source=Source.MESSAGE,
        channel_id="C0ANALYTICS",
        thread_ts="1763900000.000100",
        thread=[ThreadMessage(user="U0ALICE", ts="1763900000.000100", text="Due: 2027-01-01")],
    )
    draft = render_issue(submission, "req-1", permalink=permalink)
    assert find_due_date(draft.body) == due
    assert find_slack_thread(draft.body) == permalink


def test_demo_scene_shows_alert_update_in_place_and_no_repeat(tmp_path, sqlite_store, warehouse):
    out = io.StringIO()
    with DemoHarness(out=out, data_dir=tmp_path, store=sqlite_store, warehouse=warehouse) as h:
        scene.run(h)
        posts = h.slack.calls("chat.postMessage")
        assert h.slack.violations == []
    shown = out.getvalue()
    assert "✅ closed by @bob after 3h" in shown
    assert "GitHub delivers `issues.closed` (delivery-3) -> HTTP 200" in shown  # redelivery
    assert "304 Not Modified" in shown
    assert len(posts) == 2  # the labeled issue and the hostile one; updates edit in place


class Crash(BaseException):
    """The process dying: no `except` in the code under test catches it."""


def test_crash_right_after_posting_does_not_post_a_second_alert(deps, slack, clock, monkeypatch):
    """Slack answered the post, then the process died before saving where the message is."""
    real_send = urgent._send

    def send_then_die(*args, **kwargs):
        real_send(*args, **kwargs)
        raise Crash

    monkeypatch.setattr(urgent, "_send", send_then_die)
    with pytest.raises(Crash):
        handle_issue(deps, issue())
    monkeypatch.undo()
    clock.advance(seconds=LEASE.total_seconds() + 1)  # a dead worker's lease runs out

    assert sync_alert(deps, REPO, 7) is Synced.UPDATED
    assert len(alert_messages(slack)) == 1
    assert len(slack.calls("chat.postMessage")) == 1


def take_over_lease(deps) -> None:
    """Another replica claims the issue's lease, as it may once the lease has expired."""
    with deps.store.engine.begin() as connection:
        connection.execute(tables.urgent_alerts.update().values(lease_until=deps.now() + LEASE))


def test_worker_that_lost_its_lease_during_a_post_leaves_the_message_to_be_found(
    deps, slack, clock, monkeypatch
):
    """Slack took longer than the lease, and another replica took the issue over."""
    real_post = deps.slack.chat_postMessage

    def post_slower_than_the_lease(**kwargs):
        response = real_post(**kwargs)
        clock.advance(seconds=LEASE.total_seconds() + 1)
        take_over_lease(deps)
        return response

    monkeypatch.setattr(deps.slack, "chat_postMessage", post_slower_than_the_lease)
    assert handle_issue(deps, issue()) is Synced.FAILED  # not POSTED: nothing was saved
    monkeypatch.undo()
    clock.advance(seconds=LEASE.total_seconds() + 1)  # the other replica died too

    assert sync_alert(deps, REPO, 7) is Synced.UPDATED
    assert len(alert_messages(slack)) == 1
    assert len(slack.calls("chat.postMessage")) == 1


def test_worker_busy_longer_than_the_lease_keeps_it_and_ends_on_the_newest_state(
    deps, slack, clock, monkeypatch
):
    """Each Slack round fits in the lease, but all rounds together do not: changes keep
    arriving while the worker is busy. Nobody else may take over halfway (their update
    and ours would land in either order)."""
    round_time = LEASE * 0.8
    real_post, real_update = deps.slack.chat_postMessage, deps.slack.chat_update
    others: list = []

    def slow_post(**kwargs):
        clock.advance(seconds=round_time.total_seconds())
        others.append(handle_issue(deps, issue(assignees=("bob",), updated_at=TEST_NOW)))
        return real_post(**kwargs)

    newest = [issue(assignees=("carol",), updated_at=TEST_NOW + dt.timedelta(minutes=1))]

    def slow_update(**kwargs):
        if newest:  # during the first update only, a newer change arrives
            clock.advance(seconds=round_time.total_seconds())
            others.append(handle_issue(deps, newest.pop()))
        return real_update(**kwargs)

    monkeypatch.setattr(deps.slack, "chat_postMessage", slow_post)
    monkeypatch.setattr(deps.slack, "chat_update", slow_update)
    assert handle_issue(deps, issue()) is Synced.POSTED

    [message] = alert_messages(slack)
    assert "assigned to @carol" in all_text(message["text"], message["blocks"])
    assert others == [Synced.BUSY, Synced.BUSY]
    assert pending_alerts(deps, REPO) == []


def test_post_in_doubt_is_found_in_a_busy_channel(deps, slack, monkeypatch):
    """The answer to the post was lost, and the channel has been busy since."""
    real_post = deps.slack.chat_postMessage

    def post_then_lose_answer(**kwargs):
        real_post(**kwargs)
        raise TimeoutError("The read operation timed out")

    monkeypatch.setattr(deps.slack, "chat_postMessage", post_then_lose_answer)
    assert handle_issue(deps, issue()) is Synced.FAILED
    monkeypatch.undo()
    for i in range(450):
        slack.seed_thread("C0ANALYTICS", [f"chatter {i}"])

    assert handle_issue(deps, issue(assignees=("bob",), updated_at=TEST_NOW)) is Synced.UPDATED
    assert len(slack.calls("chat.postMessage")) == 1
    [alert] = [m for m in alert_messages(slack) if m.get("metadata")]
    assert "@bob" in all_text(alert["text"], alert["blocks"])


PACIFIC = dt.timezone(dt.timedelta(hours=-8))  # the team's zone (the default) in November


def test_alert_turns_overdue_the_day_after_its_due_date_in_the_team_time_zone(deps, slack, clock):
    due_tomorrow = issue(body="Due: 2026-11-24")  # TEST_NOW is Mon Nov 23 in Pacific time
    handle_issue(deps, due_tomorrow)
    clock.set(dt.datetime(2026, 11, 24, 23, 59, tzinfo=PACIFIC))  # Nov 25 in UTC already
    assert handle_issue(deps, due_tomorrow) is Synced.CURRENT
    assert "(overdue)" not in alert_messages(slack)[0]["blocks"][1]["elements"][0]["text"]

    clock.set(dt.datetime(2026, 11, 25, 0, 1, tzinfo=PACIFIC))
    assert handle_issue(deps, due_tomorrow) is Synced.UPDATED
    [message] = alert_messages(slack)
    assert "due Tue Nov 24, 2026 (overdue)" in all_text(message["text"], message["blocks"])
