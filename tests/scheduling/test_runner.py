"""The runner: one post per (job, period), whatever races, crashes and retries happen.

Runs on SQLite and PostgreSQL (the `store` fixture) against the loopback Slack API.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from slack_sdk import WebClient

from bot import tables
from bot.deps import Deps
from bot.errors import DatabotError, GitHubUnavailable
from bot.ids import Job
from bot.scheduling import runner, runs
from bot.scheduling.job import NotReady, Post, PostFile, Skip
from bot.scheduling.runs import RunStatus
from bot.settings import Settings
from sandbox.slack_api import FakeSlack

PT = ZoneInfo("America/Los_Angeles")
OWNER = "U0OWNER"


def pacific(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PT).astimezone(dt.UTC)


class ScriptedJob:
    """A job whose build answers from a script (one answer per call, last one repeats)."""

    id = Job.CODY_DAILY
    title = "Cody Pro daily"
    channel = "#cody-numbers"

    def __init__(self, *answers) -> None:
        self.answers = list(answers) or [self.post()]
        self.builds = 0
        self.lock = threading.Lock()

    @staticmethod
    def post(
        text: str = "Cody Pro: 120 active subscribers", channel: str = "#cody-numbers", **kw
    ) -> Post:
        return Post(channel=channel, text=text, **kw)

    def period_for(self, run_at: dt.datetime, tz) -> str | None:
        return run_at.astimezone(tz).date().isoformat()

    def build(self, deps, period: str):
        with self.lock:
            answer = self.answers[min(self.builds, len(self.answers) - 1)]
            self.builds += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        fake.add_channel(name="cody-numbers")  # the workspace has the configured channel
        yield fake


class ResponseLost(WebClient):
    """A WebClient whose next `lose` chat.postMessage calls reach Slack (the message goes
    out) but whose answer never arrives, like a read timeout."""

    lose = 0

    def chat_postMessage(self, **kwargs):
        response = super().chat_postMessage(**kwargs)
        if self.lose:
            self.lose -= 1
            raise TimeoutError("The read operation timed out")
        return response


@pytest.fixture
def deps(store, slack, clock):
    settings = Settings(
        _env_file=None,
        owner_channel=OWNER,
        not_ready_retry_minutes=30,
        not_ready_give_up_minutes=120,
    )
    d = Deps(
        settings=settings,
        store=store,
        warehouse=None,
        slack=ResponseLost(token=slack.token, base_url=slack.api_url),
        github=None,
        work=ThreadPoolExecutor(2),
        now=clock,
    )
    yield d
    d.work.shutdown()


def channel_posts(slack: FakeSlack, channel: str = "#cody-numbers") -> list[dict]:
    return [m for m in slack.messages(channel) if not m.get("thread_ts")]


def owner_messages(slack: FakeSlack) -> list[str]:
    return [m["text"] for m in slack.messages(OWNER)]


def test_a_period_is_posted_once_and_recorded_with_its_link(deps, slack):
    job = ScriptedJob()
    record = runner.run_period(deps, job, "2026-11-22")
    again = runner.run_period(deps, job, "2026-11-22")

    posts = channel_posts(slack)
    assert [p["text"] for p in posts] == ["Cody Pro: 120 active subscribers"]
    assert again is None and job.builds == 1
    assert record.status == RunStatus.POSTED
    assert record.ts == posts[0]["ts"]
    assert record.permalink.endswith("p" + posts[0]["ts"].replace(".", ""))
    assert runs.get_run(deps.store, "cody-daily", "2026-11-22").status == RunStatus.POSTED


def test_a_period_with_nothing_to_post_is_recorded_skipped_and_not_built_again(deps, slack):
    job = ScriptedJob(Skip(reason="no urgent issue is unassigned"))
    record = runner.run_period(deps, job, "2026-11-22")
    again = runner.run_period(deps, job, "2026-11-22")

    assert channel_posts(slack) == [] and owner_messages(slack) == []
    assert record.status == RunStatus.SKIPPED
    assert record.detail == "nothing to post: no urgent issue is unassigned"
    assert again is None and job.builds == 1


def test_the_next_period_is_a_new_post(deps, slack):
    job = ScriptedJob()
    runner.run_period(deps, job, "2026-11-22")
    runner.run_period(deps, job, "2026-11-23")
    assert len(channel_posts(slack)) == 2


def test_racing_processes_post_a_period_once(deps, slack):
    job = ScriptedJob()
    start = threading.Barrier(8)

    def race():
        start.wait()
        return runner.run_period(deps, job, "2026-11-22")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: race(), range(8)))

    assert len(channel_posts(slack)) == 1
    assert sum(r is not None for r in results) == 1


def test_a_run_that_died_before_posting_is_taken_over_after_its_lease(deps, slack, clock):
    job = ScriptedJob()
    # A process claimed the period and chose the channel, then died.
    assert runs.claim(deps.store, "cody-daily", "2026-11-22", clock()) is not None
    runs.record(deps.store, "cody-daily", "2026-11-22", clock(), channel="#cody-numbers")

    assert runner.run_period(deps, job, "2026-11-22") is None  # lease still held
    clock.advance(minutes=16)
    record = runner.run_period(deps, job, "2026-11-22")

    assert record.status == RunStatus.POSTED and record.attempts == 2
    assert len(channel_posts(slack)) == 1


def crash_after_posting(
    deps, clock, channel: str | None, status=RunStatus.RUNNING, period="2026-11-22"
) -> None:
    """The row as a process left it when it died after chat.postMessage went out: still
    running (no ts, no link), with the channel it wrote before posting."""
    with deps.store.engine.begin() as connection:
        connection.execute(
            tables.scheduled_runs.update()
            .where(tables.scheduled_runs.c.period == period)
            .values(status=status, channel=channel, ts=None, permalink=None, lease_until=clock())
        )


@pytest.mark.parametrize("saved", ["as configured", "as its id"])
def test_a_run_that_died_after_posting_is_recorded_not_posted_again(deps, slack, clock, saved):
    job = ScriptedJob()
    first = runner.run_period(deps, job, "2026-11-22")
    # Rows written before channels were resolved hold the #name as configured.
    channel_id = channel_posts(slack)[0]["channel"]
    crash_after_posting(deps, clock, "#cody-numbers" if saved == "as configured" else channel_id)
    clock.advance(minutes=16)
    record = runner.run_period(deps, job, "2026-11-22")

    assert len(channel_posts(slack)) == 1
    assert record.status == RunStatus.POSTED and record.ts == first.ts
    assert record.channel == channel_id and record.permalink == first.permalink
    assert job.builds == 1


def test_the_run_records_the_channel_id_before_posting_and_caches_the_lookup(deps, slack):
    job = ScriptedJob()
    seen = []

    def record_at_post(**kwargs):
        seen.append(
            runs.get_run(deps.store, "cody-daily", kwargs["metadata"]["event_payload"]["period"])
        )
        return WebClient.chat_postMessage(deps.slack, **kwargs)

    deps.slack.chat_postMessage = record_at_post
    runner.run_period(deps, job, "2026-11-22")
    runner.run_period(deps, job, "2026-11-23")

    channel_id = channel_posts(slack)[0]["channel"]
    assert [r.channel for r in seen] == [channel_id, channel_id]
    assert [r.status for r in seen] == [RunStatus.RUNNING, RunStatus.RUNNING]
    assert len(slack.calls("conversations.list")) == 1


def test_a_crash_in_a_channel_databot_cannot_read_is_not_posted_blindly(deps, slack, clock):
    # databot posts to #analytics without being in it (chat:write.public), so it may not
    # read its history after a crash: it cannot tell whether the post went out.
    slack.add_channel(name="analytics", is_member=False)
    job = ScriptedJob(ScriptedJob.post(channel="#analytics"))
    assert runs.claim(deps.store, "cody-daily", "2026-11-22", clock()) is not None
    crash_after_posting(deps, clock, "#analytics")
    clock.advance(minutes=16)

    record = runner.run_period(deps, job, "2026-11-22")

    assert channel_posts(slack, "#analytics") == []
    assert record.status == RunStatus.FAILED
    assert "may have been posted" in record.detail and "Check #analytics" in record.detail
    assert "not_in_channel" in record.detail
    [told] = owner_messages(slack)
    assert "may have been posted" in told and "#analytics" in told
    assert runs.due_retries(deps.store, clock() + dt.timedelta(hours=1)) == []

    # The owner looked, found nothing, and posts it by hand.
    redo = runner.run_period(deps, job, "2026-11-22", manual=True)
    assert redo.status == RunStatus.POSTED
    assert len(channel_posts(slack, "#analytics")) == 1


def test_a_manual_run_that_cannot_check_the_channel_tells_the_person(deps, slack, clock):
    slack.add_channel(name="analytics", is_member=False)
    job = ScriptedJob(ScriptedJob.post(channel="#analytics"))
    runner.run_period(deps, job, "2026-11-22")
    crash_after_posting(deps, clock, "#analytics")
    clock.advance(minutes=16)

    with pytest.raises(DatabotError, match=r"may have been posted.*Check #analytics"):
        runner.run_period(deps, job, "2026-11-22", manual=True)
    assert len(channel_posts(slack, "#analytics")) == 1
    assert owner_messages(slack) == []


def test_a_post_whose_answer_was_lost_is_checked_not_failed_nor_posted_twice(deps, slack, clock):
    deps.slack.lose = 1  # the message goes out, the answer times out
    job = ScriptedJob()
    first = runner.run_period(deps, job, "2026-11-22")

    channel_id = channel_posts(slack)[0]["channel"]
    assert first.status == RunStatus.RUNNING and first.channel == channel_id
    assert "may have been posted" in first.detail
    assert owner_messages(slack) == []
    assert runner.run_period(deps, job, "2026-11-22", manual=True) is None  # lease held

    clock.advance(minutes=16)
    [(name, period)] = runs.due_retries(deps.store, clock())
    record = runner.run_period(deps, job, period)

    assert len(channel_posts(slack)) == 1
    assert record.status == RunStatus.POSTED and record.ts == channel_posts(slack)[0]["ts"]
    assert record.permalink and owner_messages(slack) == []


def test_a_post_slack_failed_on_is_retried_after_checking_it_is_not_there(deps, slack, clock):
    slack.fail_next("chat.postMessage", "internal_error", status=500)
    job = ScriptedJob()
    first = runner.run_period(deps, job, "2026-11-22")
    assert first.status == RunStatus.RUNNING and first.channel

    clock.advance(minutes=16)
    record = runner.run_period(deps, job, "2026-11-22")

    assert record.status == RunStatus.POSTED and len(channel_posts(slack)) == 1
    assert len(slack.calls("conversations.history")) == 1
    assert owner_messages(slack) == []


def test_a_manual_redo_of_a_failed_run_with_a_channel_checks_slack_first(deps, slack, clock):
    # Before this was fixed, a timeout was recorded as failed although the post went out.
    job = ScriptedJob()
    first = runner.run_period(deps, job, "2026-11-22")
    crash_after_posting(deps, clock, first.channel, status=RunStatus.FAILED)

    redo = runner.run_period(deps, job, "2026-11-22", manual=True)

    assert len(channel_posts(slack)) == 1
    assert redo.status == RunStatus.POSTED and redo.ts == first.ts


def test_an_unreadable_history_for_a_moment_is_checked_again_later(deps, slack, clock):
    job = ScriptedJob()
    runner.run_period(deps, job, "2026-11-22")
    crash_after_posting(deps, clock, "#cody-numbers")
    clock.advance(minutes=16)
    slack.fail_next("conversations.history", "internal_error", status=500)

    waiting = runner.run_period(deps, job, "2026-11-22")
    assert waiting.status == RunStatus.RUNNING and "trying again" in waiting.detail
    clock.advance(minutes=16)
    record = runner.run_period(deps, job, "2026-11-22")

    assert record.status == RunStatus.POSTED and len(channel_posts(slack)) == 1
    assert owner_messages(slack) == [] and job.builds == 1


def test_not_ready_retries_then_posts_a_notice_once_then_the_real_numbers(deps, slack, clock):
    clock.set(pacific(2026, 11, 23, 8, 0))
    late = NotReady(reason="ssc.subscriptions has data through Nov 21")
    job = ScriptedJob(late, late, late, late, late, ScriptedJob.post())

    first = runner.run_period(deps, job, "2026-11-22")
    assert first.status == RunStatus.WAITING
    assert first.lease_until == clock() + dt.timedelta(minutes=30)
    assert runs.due_retries(deps.store, clock()) == []

    seen = []
    for _ in range(5):  # 08:30, 09:00, 09:30, 10:00, 10:30
        clock.advance(minutes=30)
        for _job_name, period in runs.due_retries(deps.store, clock()):
            seen.append(runner.run_period(deps, job, period).status)

    posts = channel_posts(slack)
    assert seen == [RunStatus.WAITING] * 4 + [RunStatus.POSTED]
    # The notice went out once the give-up time (2 h after the first try) had passed ...
    assert len(posts) == 2
    assert "late" in posts[0]["text"] and "data through Nov 21" in posts[0]["text"]
    # ... and the real numbers once, when they were ready.
    assert posts[1]["text"] == "Cody Pro: 120 active subscribers"
    assert runs.get_run(deps.store, "cody-daily", "2026-11-22:notice").status == "posted"
    assert owner_messages(slack) == []


def test_data_never_ready_is_skipped_at_the_end_of_the_day_and_the_owner_told(deps, slack, clock):
    clock.set(pacific(2026, 11, 23, 20, 0))
    job = ScriptedJob(NotReady(reason="ssc.subscriptions has data through Nov 21"))
    runner.run_period(deps, job, "2026-11-22")
    for _ in range(12):
        clock.advance(minutes=30)
        for _job, period in runs.due_retries(deps.store, clock()):
            runner.run_period(deps, job, period)

    record = runs.get_run(deps.store, "cody-daily", "2026-11-22")
    assert record.status == RunStatus.SKIPPED
    assert "not ready by the end of the day" in record.detail
    assert len([p for p in channel_posts(slack) if "late" in p["text"]]) == 1
    assert len(owner_messages(slack)) == 1
    assert "not posted" in owner_messages(slack)[0]
    # Once skipped, the sweep leaves it alone.
    clock.advance(hours=1)
    assert runs.due_retries(deps.store, clock()) == []


def test_a_failing_build_is_retried_then_reported_to_the_owner(deps, slack, clock):
    clock.set(pacific(2026, 11, 23, 8, 0))
    job = ScriptedJob(GitHubUnavailable("GitHub is not answering"))
    statuses = [runner.run_period(deps, job, "2026-11-22").status]
    for _ in range(6):
        clock.advance(minutes=30)
        for _job, period in runs.due_retries(deps.store, clock()):
            statuses.append(runner.run_period(deps, job, period).status)

    # Retried every 30 min for the 2 h give-up window (08:00 ... 10:00), then reported.
    assert statuses == [RunStatus.WAITING] * 4 + [RunStatus.FAILED]
    record = runs.get_run(deps.store, "cody-daily", "2026-11-22")
    assert "GitHub is not answering" in record.detail
    assert owner_messages(slack) == [
        ":warning: Cody Pro daily for 2026-11-22 was not posted: GitHub is not answering"
    ]
    assert channel_posts(slack) == []


def test_slack_refusing_the_post_is_recorded_and_reported(deps, slack):
    slack.fail_next("chat.postMessage", "not_in_channel")
    record = runner.run_period(deps, ScriptedJob(), "2026-11-22")

    assert record.status == RunStatus.FAILED
    assert record.detail == "Slack said not_in_channel"
    assert any("not_in_channel" in text for text in owner_messages(slack))


def test_without_an_owner_channel_a_failure_is_logged_loudly(deps, slack, caplog):
    deps.settings = deps.settings.model_copy(update={"owner_channel": None})
    slack.fail_next("chat.postMessage", "channel_not_found")
    runner.run_period(deps, ScriptedJob(), "2026-11-22")
    assert any(
        r.levelname == "ERROR" and "OWNER_CHANNEL is not set" in r.getMessage()
        for r in caplog.records
    )


def test_files_go_into_the_thread_of_the_post(deps, slack):
    post = ScriptedJob.post(files=[PostFile(filename="mrr.png", content=b"\x89PNG..", title="MRR")])
    record = runner.run_period(deps, ScriptedJob(post), "2026-11-22")

    thread = slack.thread("#cody-numbers", record.ts)
    assert [f["name"] for m in thread for f in m.get("files", [])] == ["mrr.png"]
    assert record.status == RunStatus.POSTED and record.detail is None


def test_a_manual_run_can_redo_a_failed_period_but_not_a_posted_one(deps, slack):
    slack.fail_next("chat.postMessage", "channel_not_found")
    job = ScriptedJob()
    runner.run_period(deps, job, "2026-11-22")
    assert runner.run_period(deps, job, "2026-11-22") is None  # the clock does not retry it

    redo = runner.run_period(deps, job, "2026-11-22", manual=True)
    assert redo.status == RunStatus.POSTED and redo.attempts == 2
    assert runner.run_period(deps, job, "2026-11-22", manual=True) is None
    assert len(channel_posts(slack)) == 1


def test_a_manual_run_reports_errors_to_the_person_running_it(deps, slack):
    job = ScriptedJob(GitHubUnavailable("GitHub is not answering"))
    with pytest.raises(DatabotError, match="GitHub is not answering"):
        runner.run_period(deps, job, "2026-11-22", manual=True)
    assert owner_messages(slack) == []
    assert runs.get_run(deps.store, "cody-daily", "2026-11-22").status == RunStatus.FAILED


def test_record_lists_newest_first(deps, clock):
    job = ScriptedJob()
    runner.run_period(deps, job, "2026-11-21")
    clock.advance(minutes=1)
    runner.run_period(deps, job, "2026-11-22")
    assert [r.period for r in runs.list_runs(deps.store)] == ["2026-11-22", "2026-11-21"]


def test_stored_times_are_utc(deps, clock):
    runner.run_period(deps, ScriptedJob(), "2026-11-22")
    with deps.store.engine.connect() as connection:
        created = connection.execute(sa.select(tables.scheduled_runs.c.created_at)).scalar()
    assert created == clock()


def test_a_run_that_lost_its_lease_while_building_does_not_post(deps, slack, clock):
    class SlowJob(ScriptedJob):
        def build(self, deps_, period):
            # The build outlives the lease and another process takes the run over.
            clock.advance(minutes=16)
            assert runs.claim(deps_.store, "cody-daily", period, clock()) is not None
            return super().build(deps_, period)

    runner.run_period(deps, SlowJob(), "2026-11-22")
    assert channel_posts(slack) == []
    assert runs.get_run(deps.store, "cody-daily", "2026-11-22").attempts == 2


@pytest.mark.parametrize(
    "late_answer",
    [GitHubUnavailable("GitHub is not answering"), NotReady(reason="export late")],
    ids=["build fails", "not ready"],
)
def test_a_build_slower_than_its_lease_leaves_the_run_it_lost_alone(
    deps, slack, clock, late_answer
):
    clock.set(pacific(2026, 11, 23, 12, 0))  # past the give-up time: a notice would be due

    class SlowJob(ScriptedJob):
        def build(self, deps_, period):
            if self.builds == 0:
                # Outlives the lease; meanwhile another process takes over and posts.
                clock.advance(minutes=16)
                self.builds += 1
                assert runner.run_period(deps_, ScriptedJob(), period).status == "posted"
                clock.advance(minutes=1)
                return _raise_or_return(late_answer)
            return super().build(deps_, period)

    late = runner.run_period(deps, SlowJob(), "2026-11-22")

    record = runs.get_run(deps.store, "cody-daily", "2026-11-22")
    assert record.status == RunStatus.POSTED and late.status == RunStatus.POSTED
    assert [p["text"] for p in channel_posts(slack)] == ["Cody Pro: 120 active subscribers"]
    assert owner_messages(slack) == []
    assert runs.due_retries(deps.store, clock() + dt.timedelta(hours=1)) == []


def _raise_or_return(answer):
    if isinstance(answer, Exception):
        raise answer
    return answer


def test_a_build_that_recovers_after_failing_posts_once(deps, slack, clock):
    job = ScriptedJob(GitHubUnavailable("GitHub is not answering"), ScriptedJob.post())
    runner.run_period(deps, job, "2026-11-22")
    clock.advance(minutes=30)
    record = runner.run_period(deps, job, "2026-11-22")
    assert record.status == RunStatus.POSTED
    assert len(channel_posts(slack)) == 1 and owner_messages(slack) == []


def test_posts_listing_says_why_a_run_failed(deps, slack):
    from bot.cli import render_runs

    slack.fail_next("chat.postMessage", "not_in_channel")
    runner.run_period(deps, ScriptedJob(), "2026-11-22")
    runner.run_period(deps, ScriptedJob(), "2026-11-23")
    lines = render_runs(runs.list_runs(deps.store), PT).splitlines()
    by_period = {line.split()[3]: line for line in lines[1:]}  # WHEN is two words
    failed, posted = by_period["2026-11-22"], by_period["2026-11-23"]
    assert "failed" in failed and failed.endswith("Slack said not_in_channel")
    assert "posted" in posted and "https://sandbox.slack.com/archives/" in posted


def test_racing_retries_of_a_waiting_run_post_once(deps, slack, clock):
    job = ScriptedJob(NotReady(reason="export late"), ScriptedJob.post())
    runner.run_period(deps, job, "2026-11-22")
    clock.advance(minutes=30)
    start = threading.Barrier(8)

    def race():
        start.wait()
        return runner.run_period(deps, job, "2026-11-22")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: race(), range(8)))

    assert len(channel_posts(slack)) == 1
    assert [r.status for r in results if r is not None] == [RunStatus.POSTED]
    assert job.builds == 2


class WarehouseJob(ScriptedJob):
    reads_warehouse = True

    @staticmethod
    def post():
        return Post(
            channel="#cody-numbers",
            text="Cody Pro: 120 active subscribers",
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*120* active"}}],
        )


def test_a_post_built_from_the_demo_warehouse_says_demo_data(deps, slack):
    runner.run_period(deps, WarehouseJob(), "2026-11-22")
    preview = runner.preview(deps, WarehouseJob(), "2026-11-22")

    [post] = channel_posts(slack)
    for blocks in (post["blocks"], preview.blocks):
        assert blocks[-1]["type"] == "context" and "*demo data*" in str(blocks[-1])
        assert len(blocks) == 2


def test_a_post_from_bigquery_or_from_github_has_no_demo_data_mark(deps):
    bigquery = dataclasses.replace(
        deps, settings=deps.settings.model_copy(update={"gcp_project": "acme-analytics"})
    )
    assert "demo data" not in str(runner.preview(bigquery, WarehouseJob(), "2026-11-22"))
    # A job that does not read the warehouse (sprints, urgent: GitHub) needs no mark.
    assert "demo data" not in str(runner.preview(deps, ScriptedJob(), "2026-11-22"))
