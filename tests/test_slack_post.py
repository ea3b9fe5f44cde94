"""Every message the bot may send again after a retry reaches Slack once, even when Slack
posted it and the answer was lost: the connection reset after the post, HTTP 500 after the
post, or no answer before the client's timeout (bot/slack_post.py).

Through the real app on loopback (FakeSlack, FakeGitHub), one test per message kind and
fault shape; the filed reply also on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.ids import Command, Job
from bot.intake import outbox as intake
from bot.intake.filing import FILED_DM_KEY, FILED_KEY, NOTICE_KEY, drain_outbox
from bot.intake.model import Status
from bot.scheduling import clock as scheduling_clock
from bot.scheduling import runner, runs
from bot.scheduling.job import NotReady, Post
from bot.scheduling.runs import RunStatus
from bot.slack_post import DUE_KEY, EVENT_TYPE, sent_message
from sandbox.slack_requests import view_submission
from tests.intake.test_intake_flow import answer, open_from_thread, submit

SHAPES = ["reset", "500", "hang"]
OWNER = "U0OWNER"
PT = ZoneInfo("America/Los_Angeles")
# Seconds: above a loaded CI machine's slowest answer, so only the "hang" shape hits it.
CLIENT_TIMEOUT = 4.0
HANG_SECONDS = 6.0


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request):
    name = "sqlite_store" if request.param == "sqlite" else "postgres_store"
    return request.getfixturevalue(name)


def started(make_bot, store, **overrides):
    return make_bot(
        store,
        github_retry_backoff_seconds=0,
        owner_channel=OWNER,
        not_ready_retry_minutes=30,
        not_ready_give_up_minutes=120,
        **overrides,
    )


def seed(bot) -> None:
    bot.slack.add_channel("C0ANALYTICS", "analytics")
    bot.slack.add_channel(name="cody-numbers")
    bot.slack.add_user("U0ALICE", name="alice", real_name="Alice Chen")
    bot.slack.add_user("U0BOB", name="bob", real_name="Bob Ortiz")
    # A short client timeout so "hang" costs seconds, not the production 10 s.
    bot.deps.slack.timeout = CLIENT_TIMEOUT


def lose_next_post(bot, how: str) -> None:
    bot.slack.lose_answer_next("chat.postMessage", how, seconds=HANG_SECONDS)


def keyed(messages: list[dict], key: str) -> list[dict]:
    """The bot's messages carrying `key` in their metadata."""
    return [
        m
        for m in messages
        if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE
        and m["metadata"]["event_payload"] == {"key": key}
    ]


def bot_messages(bot, channel: str) -> list[dict]:
    return [m for m in bot.slack.messages(channel) if m.get("bot_id")]


def thread_request(bot) -> tuple[str, intake.RequestRow]:
    root_ts = bot.slack.seed_thread(
        "C0ANALYTICS", [{"user": "U0BOB", "text": "Weekly searches by deployment type?"}]
    )
    root = next(m for m in bot.slack.messages("C0ANALYTICS") if m["ts"] == root_ts)
    view = open_from_thread(bot, root)
    submit(bot, view_submission(view, answer(**{"q:end_state": "e", "q:why": "w"})))
    [row] = intake.list_requests(bot.deps)
    return root_ts, row


def command_request(bot) -> intake.RequestRow:
    bot.slash(Command.DATA_REQUEST, "Seats by plan", user="U0ALICE")
    view = bot.slack.wait_for("views.open") and bot.slack.views()[-1]
    submit(
        bot, view_submission(view, answer(**{"q:problem": "p", "q:end_state": "e", "q:why": "w"}))
    )
    [row] = intake.list_requests(bot.deps)
    return row


def retry_later(bot, clock, **delta) -> None:
    clock.advance(**delta)
    drain_outbox(bot.deps)


# --- intake: the "Filed #N" reply -------------------------------------------------------


@pytest.mark.parametrize("how", SHAPES)
def test_filed_thread_reply_whose_answer_was_lost_is_found_not_posted_again(
    make_bot, any_store, clock, how
):
    with started(make_bot, any_store) as bot:
        seed(bot)
        lose_next_post(bot, how)
        root, row = thread_request(bot)
        assert intake.get_request(bot.deps, row.id).notified_at is None  # answer lost

        retry_later(bot, clock, seconds=31)
        retry_later(bot, clock, minutes=5)

        replies = [m for m in bot.slack.thread("C0ANALYTICS", root) if m.get("bot_id")]
        assert len(replies) == 1 and replies[0]["text"].startswith("Filed #1:")
        assert keyed(replies, FILED_KEY.format(id=row.id)) == replies
        assert intake.get_request(bot.deps, row.id).notified_at is not None
        looked = bot.slack.calls("conversations.replies")[-1].args
        assert looked["ts"] == root and looked["include_all_metadata"] in (True, "1", "true")
        assert bot.slack.violations == []


@pytest.mark.parametrize("how", SHAPES)
def test_filed_dm_whose_answer_was_lost_is_found_not_posted_again(
    make_bot, sqlite_store, clock, how
):
    with started(make_bot, sqlite_store) as bot:
        seed(bot)
        lose_next_post(bot, how)
        row = command_request(bot)
        assert intake.get_request(bot.deps, row.id).notified_at is None

        retry_later(bot, clock, seconds=31)

        dms = bot_messages(bot, "U0ALICE")
        assert len(dms) == 1 and dms[0]["text"].startswith("Filed #1:")
        assert keyed(dms, FILED_KEY.format(id=row.id)) == dms
        assert intake.get_request(bot.deps, row.id).notified_at is not None
        assert bot.slack.calls("conversations.open")


@pytest.mark.parametrize("how", SHAPES)
def test_filed_dm_fallback_whose_answer_was_lost_is_not_followed_by_a_thread_reply(
    make_bot, sqlite_store, clock, how
):
    with started(make_bot, sqlite_store) as bot:
        seed(bot)
        # The thread's channel refuses the reply (archived meanwhile): the link goes by DM,
        # and that DM's answer is lost. By the retry the channel accepts posts again.
        bot.slack.fail_next("chat.postMessage", "is_archived")
        lose_next_post(bot, how)
        root, row = thread_request(bot)

        retry_later(bot, clock, seconds=31)
        retry_later(bot, clock, minutes=5)

        filed = [
            m
            for m in bot_messages(bot, row.requester_id) + bot.slack.thread("C0ANALYTICS", root)
            if m.get("bot_id") and m["text"].startswith("Filed")
        ]
        assert len(filed) == 1 and filed[0]["channel"].startswith("D")
        assert keyed(filed, FILED_DM_KEY.format(id=row.id)) == filed
        assert intake.get_request(bot.deps, row.id).notified_at is not None


# --- intake: the queued and failed notices ------------------------------------------------


@pytest.mark.parametrize("how", SHAPES)
def test_queued_notice_whose_answer_was_lost_is_confirmed_once(make_bot, sqlite_store, clock, how):
    with started(make_bot, sqlite_store) as bot:
        seed(bot)
        bot.github.fail_next("POST", r"/issues$", status=503, times=10)
        lose_next_post(bot, how)
        row = command_request(bot)
        key = NOTICE_KEY.format(kind="queued", id=row.id)
        assert sent_message(bot.deps, key) is None  # not known to be out

        for _ in range(3):
            retry_later(bot, clock, minutes=2)

        notes = bot_messages(bot, "U0ALICE")
        assert [m["text"] for m in notes] == ["Request queued: Seats by plan"]
        assert keyed(notes, key) == notes
        assert sent_message(bot.deps, key).ts == notes[0]["ts"]
        assert bot.deps.store.kv_get(DUE_KEY.format(key=key)) is None  # nothing left to do
        assert intake.get_request(bot.deps, row.id).status is Status.QUEUED


@pytest.mark.parametrize("how", SHAPES)
def test_failed_notice_whose_answer_was_lost_is_confirmed_once(make_bot, sqlite_store, clock, how):
    with started(make_bot, sqlite_store) as bot:
        seed(bot)
        bot.github.fail_next("POST", r"/issues$", status=422)
        lose_next_post(bot, how)
        row = command_request(bot)
        assert intake.get_request(bot.deps, row.id).status is Status.FAILED
        key = NOTICE_KEY.format(kind="failed", id=row.id)

        retry_later(bot, clock, minutes=2)
        retry_later(bot, clock, minutes=5)

        notes = bot_messages(bot, "U0ALICE")
        assert [m["text"] for m in notes] == ["Request not filed: Seats by plan"]
        assert keyed(notes, key) == notes
        assert sent_message(bot.deps, key).ts == notes[0]["ts"]
        assert bot.deps.store.kv_get(DUE_KEY.format(key=key)) is None


def test_a_notice_slack_refused_for_a_moment_is_posted_by_a_later_pass(
    make_bot, sqlite_store, clock
):
    with started(make_bot, sqlite_store) as bot:
        seed(bot)
        bot.github.fail_next("POST", r"/issues$", status=503, times=10)
        bot.slack.fail_next("chat.postMessage", "ratelimited", retry_after=0, times=3)
        row = command_request(bot)
        assert bot_messages(bot, "U0ALICE") == []
        retry_later(bot, clock, minutes=2)
        notes = bot_messages(bot, "U0ALICE")
        assert [m["text"] for m in notes] == ["Request queued: Seats by plan"]
        # Slack answered "no" before: nothing to look for, so it did not look.
        assert bot.slack.calls("conversations.history") == []
        assert sent_message(bot.deps, NOTICE_KEY.format(kind="queued", id=row.id))


# --- the runner: the owner's notices and the "late" notice -------------------------------


class ScriptedJob:
    """A job whose build answers from a script (the last answer repeats)."""

    id = Job.CODY_DAILY
    title = "Cody Pro daily"
    channel = "#cody-numbers"

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.builds = 0

    def period_for(self, run_at: dt.datetime, tz) -> str | None:
        return run_at.astimezone(tz).date().isoformat()

    def build(self, deps, period: str):
        answer = self.answers[min(self.builds, len(self.answers) - 1)]
        self.builds += 1
        return answer


@pytest.mark.parametrize("how", SHAPES)
def test_owner_notice_whose_answer_was_lost_is_found_not_posted_again(
    make_bot, sqlite_store, clock, how
):
    with started(make_bot, sqlite_store) as bot:
        seed(bot)
        job = ScriptedJob(Post(channel="#cody-numbers", text="Cody Pro: 120"))
        bot.slack.fail_next("chat.postMessage", "not_in_channel")  # the post is refused
        lose_next_post(bot, how)  # ... and the owner notice's answer is lost
        record = runner.run_period(bot.deps, job, "2026-11-22")
        assert record.status is RunStatus.FAILED

        for _ in range(3):
            clock.advance(minutes=2)
            scheduling_clock.sweep(bot.deps, [job])

        told = bot_messages(bot, OWNER)
        assert [m["text"] for m in told] == [
            ":warning: Cody Pro daily for 2026-11-22 was not posted: Slack said not_in_channel."
        ]
        key = runner.OWNER_KEY.format(job="cody-daily", period="2026-11-22", what="failed-1")
        assert keyed(told, key) == told
        assert sent_message(bot.deps, key).ts == told[0]["ts"]


@pytest.mark.parametrize("how", SHAPES)
def test_late_notice_whose_answer_was_lost_is_found_not_posted_again(
    make_bot, sqlite_store, clock, how
):
    with started(make_bot, sqlite_store) as bot:
        seed(bot)
        clock.set(dt.datetime(2026, 11, 23, 8, 0, tzinfo=PT))
        job = ScriptedJob(NotReady(reason="ssc.subscriptions has data through Nov 21"))
        runner.run_period(bot.deps, job, "2026-11-22")
        for step in range(8):  # every 30 min to 12:00; give-up (and the notice) at 10:00
            if step == 3:
                lose_next_post(bot, how)
            clock.advance(minutes=30)
            scheduling_clock.sweep(bot.deps, [job])

        notices = bot_messages(bot, "#cody-numbers")
        assert len(notices) == 1 and "is late" in notices[0]["text"]
        key = runner.NOTICE_KEY.format(job="cody-daily", period="2026-11-22")
        assert keyed(notices, key) == notices
        notice = runs.get_run(bot.deps.store, "cody-daily", "2026-11-22:notice")
        assert notice.status is RunStatus.POSTED and notice.ts == notices[0]["ts"]
        assert bot_messages(bot, OWNER) == []  # no false "the notice failed"
