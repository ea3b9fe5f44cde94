"""The thread talks back: a reply in a request's Slack thread becomes one comment on its
GitHub issue, through the real app (signed Events API callbacks) and the stand-ins."""

from __future__ import annotations

import re
import threading

import pytest

from bot.app import build_socket_mode_handler
from bot.deps import build_deps
from bot.intake import outbox
from bot.intake.filing import drain_outbox
from bot.intake.markdown import github_markdown
from bot.intake.mirror import drain_replies, mirror_status, render_reply_comment
from bot.intake.model import REPLY_MARKER, ThreadReply
from sandbox.slack_requests import (
    event_callback,
    message_changed_event,
    message_deleted_event,
    message_event,
    view_submission,
)
from sandbox.socket_mode import FakeSocketMode
from tests.intake.test_intake_flow import answer, open_from_thread, seed_request_thread, submit

CHANNEL = "C0ANALYTICS"
COMMENTS = r"^/repos/[^/]+/[^/]+/issues/\d+/comments$"


def _people(h) -> None:
    h.slack.add_channel(CHANNEL, "analytics")
    h.slack.add_channel("C0OTHER", "other")
    h.slack.add_user("U0ALICE", name="alice", real_name="Alice Chen")
    h.slack.add_user("U0BOB", name="bob", real_name="Bob Ortiz")
    h.slack.add_user("U0CAROL", name="carol", real_name="Carol Diaz")


@pytest.fixture
def bot(make_bot, sqlite_store):
    with make_bot(sqlite_store, thread_mirror_channels=[CHANNEL]) as h:
        _people(h)
        yield h


@pytest.fixture
def bot_pg(make_bot, postgres_store):
    with make_bot(postgres_store, thread_mirror_channels=[CHANNEL]) as h:
        _people(h)
        yield h


def file_from_thread(bot) -> tuple[dict, dict]:
    """A request filed from a thread in #analytics: (the thread's root message, the issue)."""
    root = seed_request_thread(bot)
    view = open_from_thread(bot, root)
    submit(bot, view_submission(view, answer(**{"q:end_state": "chart", "q:why": "planning"})))
    [issue] = bot.github.issues()
    return root, issue


def reply(bot, root: dict, text: str, user: str = "U0BOB", **kwargs) -> dict:
    return bot.slack.user_posts(CHANNEL, user, text, thread_ts=root["ts"], **kwargs)


def mirrored(bot, number: int) -> list[str]:
    return [c["body"] for c in bot.github.comments(number) if "databot-slack-reply" in c["body"]]


def deliver(bot, message: dict, **kwargs):
    response = bot.event(message_event(message), **kwargs)
    assert response.status == 200
    bot.wait_idle()
    return response


def test_a_reply_in_the_thread_becomes_one_escaped_comment_with_a_link(bot):
    root, issue = file_from_thread(bot)
    # As Slack sends what was typed: "<" and "&" entity-encoded, a mention as <@U...>.
    text = (
        "Can we split it by region? @data-team see #12 &lt;b&gt;asap&lt;/b&gt; &amp; cc <@U0CAROL>"
    )
    message = reply(bot, root, text)
    deliver(bot, message)

    [body] = mirrored(bot, issue["number"])
    permalink = (
        f"https://sandbox.slack.com/archives/{CHANNEL}/p{message['ts'].replace('.', '')}"
        f"?thread_ts={root['ts']}&cid={CHANNEL}"
    )
    # Independently: Slack's text as a person reads it, then GitHub-escaped.
    plain = "Can we split it by region? @data-team see #12 <b>asap</b> & cc @Carol Diaz"
    assert body == (
        f"<!-- {REPLY_MARKER.format(channel=CHANNEL, ts=message['ts'])} -->\n"
        f"Bob Ortiz in Slack: {github_markdown(plain)}\n\n"
        f"— [the message in Slack]({permalink})\n"
    )
    assert "@data-team" not in body and "<b>" not in body and "#12" not in body
    # The bot's own "Filed #N" reply in the thread was never mirrored.
    assert len(bot.github.comments(issue["number"])) == 1


def test_slack_retries_of_the_event_make_one_comment(bot_pg):
    bot = bot_pg
    root, issue = file_from_thread(bot)
    message = reply(bot, root, "Adding: weekly is fine.")
    deliver(bot, message, event_id="Ev0RETRY1")
    again = deliver(bot, message, event_id="Ev0RETRY1", retry_num=1)
    # A retry gets an empty 200 and does nothing (counted as a repeat on /metrics).
    assert (again.status, again.text) == (200, "")
    metrics = bot.deps.telemetry.exposition().decode()
    assert 'databot_slack_requests_total{outcome="repeat",surface="event"} 1.0' in metrics
    # The same message under another event id (e.g. a second subscription, a replay over
    # Socket Mode): stored once by its (channel, ts).
    deliver(bot, message, event_id="Ev0OTHER")
    assert len(mirrored(bot, issue["number"])) == 1
    assert bot.github.count("POST", f"/repos/acme/analytics/issues/{issue['number']}/comments") == 1


def test_concurrent_deliveries_of_one_reply_make_one_comment(bot_pg):
    bot = bot_pg
    root, issue = file_from_thread(bot)
    message = reply(bot, root, "Same message, delivered many times at once.")
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def send(n: int) -> None:
        barrier.wait()
        statuses.append(bot.event(message_event(message), event_id=f"Ev0RACE{n}").status)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bot.wait_idle()
    assert statuses == [200] * 6
    assert len(mirrored(bot, issue["number"])) == 1


def test_a_lost_answer_to_the_comment_post_is_not_posted_twice(bot_pg, clock):
    bot = bot_pg
    root, issue = file_from_thread(bot)
    message = reply(bot, root, "One more detail: exclude test instances.")
    bot.github.lose_response_next("POST", COMMENTS)
    deliver(bot, message)
    # GitHub made the comment but its answer was lost: the bot does not know yet.
    assert len(mirrored(bot, issue["number"])) == 1
    assert mirror_status(bot.deps, CHANNEL, message["ts"]) == "queued"

    clock.advance(minutes=5)
    # A restarted process and the running one retry at once: one adopts, nobody re-posts.
    restarted = build_deps(
        bot.settings, store=bot.deps.store, warehouse=bot.deps.warehouse, now=clock
    )
    workers = [threading.Thread(target=drain_replies, args=(d,)) for d in (bot.deps, restarted)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    restarted.work.shutdown(wait=False)
    assert mirror_status(bot.deps, CHANNEL, message["ts"]) == "posted"
    assert len(mirrored(bot, issue["number"])) == 1
    assert bot.github.count("POST", f"/repos/acme/analytics/issues/{issue['number']}/comments") == 1


def test_a_github_outage_queues_the_reply_and_it_is_posted_once_later(bot, clock):
    root, issue = file_from_thread(bot)
    message = reply(bot, root, "Posted while GitHub is down.")
    bot.github.fail_next("POST", COMMENTS, status=503, times=3)
    deliver(bot, message)
    assert mirrored(bot, issue["number"]) == []
    assert mirror_status(bot.deps, CHANNEL, message["ts"]) == "queued"
    assert drain_replies(bot.deps) == 0  # not due yet: backoff
    for _ in range(3):
        clock.advance(hours=1)
        drain_replies(bot.deps)
    assert mirror_status(bot.deps, CHANNEL, message["ts"]) == "posted"
    [body] = mirrored(bot, issue["number"])
    assert "Posted while GitHub is down." in body


def test_edits_deletions_bot_messages_and_other_threads_are_not_mirrored(bot):
    root, issue = file_from_thread(bot)
    message = reply(bot, root, "original")
    deliver(bot, message)
    bot.event(message_changed_event(message, "edited text"))
    bot.event(message_deleted_event(message))
    # A bot's message in the thread (another app, or databot itself).
    bot_message = {**reply(bot, root, "I am a bot"), "bot_id": "B0OTHER"}
    bot.event(message_event(bot_message))
    # A thread databot did not file, and a channel that is not mirrored.
    other_root = bot.slack.seed_thread(CHANNEL, [{"user": "U0BOB", "text": "unrelated"}])
    bot.event(message_event(bot.slack.user_posts(CHANNEL, "U0BOB", "x", thread_ts=other_root)))
    elsewhere = bot.slack.seed_thread("C0OTHER", [{"user": "U0BOB", "text": "hi"}])
    bot.event(message_event(bot.slack.user_posts("C0OTHER", "U0BOB", "y", thread_ts=elsewhere)))
    bot.wait_idle()
    bodies = mirrored(bot, issue["number"])
    assert len(bodies) == 1 and "original" in bodies[0]
    assert not any("edited text" in b or "I am a bot" in b for b in bodies)
    assert len(bot.github.issues()) == 1  # the other threads' replies went nowhere


def test_a_file_or_an_emoji_only_reply_is_mirrored_as_a_link(bot):
    root, issue = file_from_thread(bot)
    shared = reply(bot, root, "", files=[{"name": "regions[v2].csv"}])
    emoji = reply(bot, root, ":tada: :+1:")
    deliver(bot, shared)
    deliver(bot, emoji)
    file_body, emoji_body = mirrored(bot, issue["number"])
    link = re.compile(r"\]\((https://sandbox\.slack\.com/archives/C0ANALYTICS/p\d+\?[^)]*)\)")
    assert "Bob Ortiz in Slack: [shared regions\\[v2\\].csv](" in file_body
    assert shared["ts"].replace(".", "") in link.search(file_body).group(1)
    assert "Bob Ortiz in Slack: [:tada: :+1:](" in emoji_body
    assert emoji["ts"].replace(".", "") in link.search(emoji_body).group(1)


def test_mirroring_is_off_unless_the_channel_is_listed(make_bot, sqlite_store):
    with make_bot(sqlite_store) as bot:
        _people(bot)
        root, issue = file_from_thread(bot)
        deliver(bot, reply(bot, root, "not mirrored: THREAD_MIRROR_CHANNELS is empty"))
        assert bot.github.comments(issue["number"]) == []


def test_a_reply_before_the_issue_exists_waits_and_is_posted_once_filed(bot, clock):
    bot.github.fail_next("POST", r"^/repos/[^/]+/[^/]+/issues$", status=503)
    root = seed_request_thread(bot)
    view = open_from_thread(bot, root)
    submit(bot, view_submission(view, answer(**{"q:end_state": "chart", "q:why": "planning"})))
    assert bot.github.issues() == []
    message = reply(bot, root, "Asked before the issue exists.")
    deliver(bot, message)
    assert mirror_status(bot.deps, CHANNEL, message["ts"]) == "queued"
    clock.advance(minutes=5)
    drain_outbox(bot.deps)
    drain_replies(bot.deps)
    [issue] = bot.github.issues()
    [body] = mirrored(bot, issue["number"])
    assert "Asked before the issue exists." in body
    assert outbox.request_for_thread(bot.deps, CHANNEL, root["ts"]).issue_number == issue["number"]


def test_a_reply_that_outgrows_a_comment_once_escaped_is_cut_with_a_pointer_to_slack(bot):
    root, issue = file_from_thread(bot)
    # 39,000 characters (Slack allows 40,000); every "@a" grows 7 characters for GitHub.
    deliver(bot, reply(bot, root, "@a " * 13_000))
    [body] = mirrored(bot, issue["number"])
    assert len(body) <= 65_536
    assert "the whole message is in Slack" in body


def test_over_socket_mode_the_same_listener_mirrors_a_reply_once_despite_retries(bot):
    """Socket Mode has no HTTP gate: Slack's retried envelope (retry_attempt 1) reaches the
    listener again, and the state database keeps it to one comment."""
    root, issue = file_from_thread(bot)
    with FakeSocketMode() as socket_mode:
        bot.slack.socket_mode = socket_mode
        handler = build_socket_mode_handler(bot.app, "xapp-1-ADATABOT-1-thread-test")
        handler.connect()
        try:
            socket_mode.wait_connected()
            message = reply(bot, root, "Over the socket: add Q4 too.")
            envelope = event_callback(message_event(message), event_id="Ev0SOCKET")
            first = socket_mode.send_event(envelope)
            socket_mode.wait_ack(first)
            retry = socket_mode.send(
                "events_api",
                envelope,
                accepts_response_payload=False,
                retry_attempt=1,
                retry_reason="timeout",
            )
            socket_mode.wait_ack(retry)
            bot.wait_idle()
        finally:
            handler.close()
    [body] = mirrored(bot, issue["number"])
    assert "Over the socket: add Q4 too." in body


# --- escaping, and requests filed again -------------------------------------------------


def _unescaped(body: str, target: str) -> list[int]:
    """Positions where `target` starts with a `]` that CommonMark reads as a real bracket
    (preceded by an even number of backslashes)."""
    found = []
    for m in re.finditer(re.escape(target), body):
        i, slashes = m.start() - 1, 0
        while i >= 0 and body[i] == "\\":
            slashes += 1
            i -= 1
        if slashes % 2 == 0:
            found.append(m.start())
    return found


def test_a_file_title_cannot_make_a_disguised_link_on_github():
    shared = ThreadReply.model_validate(
        {
            "channel": "C0ANALYTICS",
            "ts": "1700000001.000200",
            "thread_ts": "1700000000.000100",
            "user": "U0BOB",
            "subtype": "file_share",
            "text": "",
            "files": [{"name": "q.csv", "title": "report\\](https://evil.example/login) [x"}],
        }
    )
    body = render_reply_comment(
        shared,
        REPLY_MARKER.format(channel="C0ANALYTICS", ts="1700000001.000200"),
        "https://acme.slack.com/archives/C0ANALYTICS/p1700000001000200",
        lambda uid: "Bob Ortiz",
    )
    assert _unescaped(body, "](https://evil.example") == [], body


def test_gh_dash_references_are_broken_like_hash_references():
    """GitHub autolinks GH-123 to issue #123 (and cross-references it) just like #123."""
    out = github_markdown("same as GH-12 and #12")
    assert "#12" not in out.replace("#&#8203;12", "")
    assert "GH-12" not in out, out


def test_a_reply_to_a_request_that_failed_then_was_refiled_reaches_github(make_bot, sqlite_store):
    """GitHub refused the request (bad token, 401): it is FAILED and "the team can file it
    again". A thread reply meanwhile must not be dropped for good: once the request is
    requeued and filed, the reply becomes its comment ("nothing lost")."""
    with make_bot(sqlite_store, thread_mirror_channels=["C0ANALYTICS"]) as bot:
        bot.slack.add_channel("C0ANALYTICS", "analytics")
        for uid, name in (("U0ALICE", "Alice Chen"), ("U0BOB", "Bob Ortiz"), ("U0CAROL", "Carol")):
            bot.slack.add_user(uid, real_name=name)
        bot.github.fail_next("POST", r"^/repos/[^/]+/[^/]+/issues$", status=401)
        root = seed_request_thread(bot)
        view = open_from_thread(bot, root)
        submit(bot, view_submission(view, answer(**{"q:end_state": "chart", "q:why": "planning"})))
        [row] = outbox.list_requests(bot.deps)
        assert row.status.value == "failed", row.status
        msg = bot.slack.user_posts("C0ANALYTICS", "U0BOB", "Only paid plans", thread_ts=root["ts"])
        assert bot.event(message_event(msg)).status == 200
        bot.wait_idle()
        assert mirror_status(bot.deps, "C0ANALYTICS", msg["ts"]) == "queued"
        outbox.requeue(bot.deps, row.id)
        drain_outbox(bot.deps)
        drain_replies(bot.deps)
        [issue] = bot.github.issues()
        bodies = [c["body"] for c in bot.github.comments(issue["number"])]
        status = mirror_status(bot.deps, "C0ANALYTICS", msg["ts"])
        assert any("Only paid plans" in b for b in bodies), (status, bodies)
