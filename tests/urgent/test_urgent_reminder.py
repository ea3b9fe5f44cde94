"""The daily reminder of neglected urgent issues, a scheduled job: posted by the runner at
most once per team-local day, skipped on a day with nothing stale, and never a second time
on the day of the upgrade from the poller's once-a-day dedupe key."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bot.features import build_jobs, find_job
from bot.github import GitHubIssue
from bot.scheduling import clock as scheduling
from bot.scheduling import runner, runs
from bot.scheduling.runs import RunStatus
from bot.store import Store
from bot.urgent.alerts import handle_issue
from bot.urgent.reminder import UrgentReminderJob
from sandbox.slack_api import FakeSlack
from tests.conftest import TEST_NOW, Clock
from tests.support.urgent import CHANNEL_NAME, REPO, issue_json, make_deps

DIGEST_TEXT = "⏰ 1 urgent issue still unassigned after more than 4h"


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        fake.add_channel("C0ANALYTICS", CHANNEL_NAME)
        yield fake


def digest_deps(store, slack, clock, hours=4.0):
    # Monday Nov 23 2026, 10:30 in Los Angeles: after the morning reminder hour.
    clock.set(dt.datetime(2026, 11, 23, 18, 30, tzinfo=dt.UTC))
    return make_deps(store, slack, clock, urgent_digest_hours=hours)


def urgent_issue(number: int, *, opened_hours_ago: float, clock: Clock, assignees=()):
    created = clock() - dt.timedelta(hours=opened_hours_ago)
    return GitHubIssue.model_validate(
        issue_json(number, title=f"Issue {number}", created_at=created, assignees=assignees)
    )


def reminders(slack: FakeSlack) -> list[dict]:
    """The reminders posted (the alerts themselves carry another metadata event type)."""
    return [
        call.args
        for call in slack.calls("chat.postMessage")
        if (call.args.get("metadata") or {}).get("event_type") == runner.METADATA_EVENT
    ]


def clock_for(deps) -> scheduling.Clock:
    """The clock process as deployed, with the reminder as `build_jobs` registers it."""
    job = find_job(build_jobs(deps), "urgent-reminder")
    assert isinstance(job, UrgentReminderJob)
    return scheduling.Clock(deps, [job])


def test_digest_reminds_of_urgent_issues_unassigned_too_long_once_a_day(store, slack, clock):
    deps = digest_deps(store, slack, clock)
    handle_issue(deps, urgent_issue(1, opened_hours_ago=5, clock=clock))  # due a reminder
    handle_issue(deps, urgent_issue(2, opened_hours_ago=3, clock=clock))  # too recent
    handle_issue(deps, urgent_issue(3, opened_hours_ago=30, clock=clock, assignees=("bob",)))
    alerts_posted = len(slack.calls("chat.postMessage"))

    clock_for(deps).tick()  # 09:00's run, caught up at 10:30 (within the grace period)
    [digest] = reminders(slack)
    assert digest["text"] == DIGEST_TEXT
    assert "#1 Issue 1" in json.dumps(digest["blocks"])
    assert "#2 Issue 2" not in json.dumps(digest["blocks"])
    assert "#3 Issue 3" not in json.dumps(digest["blocks"])
    assert digest["metadata"]["event_payload"] == {"job": "urgent-reminder", "period": "2026-11-23"}
    run = runs.get_run(deps.store, "urgent-reminder", "2026-11-23")
    assert run.status == RunStatus.POSTED and run.channel == "C0ANALYTICS"

    clock.advance(hours=2)
    clock_for(deps).tick()  # once a day, also across clock processes
    clock_for(make_deps(store, slack, clock, urgent_digest_hours=4.0)).tick()
    assert len(slack.calls("chat.postMessage")) == alerts_posted + 1

    clock.set(dt.datetime(2026, 11, 24, 17, 0, tzinfo=dt.UTC))  # Tuesday 09:00: a new day
    clock_for(deps).tick()
    assert [r["metadata"]["event_payload"]["period"] for r in reminders(slack)] == [
        "2026-11-23",
        "2026-11-24",
    ]


def test_digest_is_off_unless_configured_and_waits_for_the_morning(store, slack, clock):
    off = digest_deps(store, slack, clock, hours=None)
    handle_issue(off, urgent_issue(1, opened_hours_ago=50, clock=clock))
    assert clock_for(off).entries == []  # not scheduled at all
    clock_for(off).tick()
    assert reminders(slack) == []

    on = make_deps(store, slack, clock, urgent_digest_hours=4)
    clock.set(dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC))  # 07:00 in Los Angeles
    clock_for(on).tick()
    assert reminders(slack) == []
    clock.set(dt.datetime(2026, 11, 24, 17, 5, tzinfo=dt.UTC))  # 09:05
    clock_for(on).tick()
    assert len(reminders(slack)) == 1


def test_a_day_with_no_neglected_issue_posts_nothing_and_is_recorded_skipped(store, slack, clock):
    deps = digest_deps(store, slack, clock)
    handle_issue(deps, urgent_issue(2, opened_hours_ago=3, clock=clock))  # too recent
    handle_issue(deps, urgent_issue(3, opened_hours_ago=30, clock=clock, assignees=("bob",)))

    clock_for(deps).tick()
    assert reminders(slack) == []
    run = runs.get_run(deps.store, "urgent-reminder", "2026-11-23")
    assert run.status == RunStatus.SKIPPED
    assert run.detail == "nothing to post: no urgent issue unassigned after more than 4h"

    clock.advance(hours=3)  # #2 is neglected now, but the day's reminder was decided at 09:00
    clock_for(deps).tick()
    assert reminders(slack) == []


def test_a_day_reminded_before_the_upgrade_is_not_reminded_again(store, slack, clock):
    deps = digest_deps(store, slack, clock)
    handle_issue(deps, urgent_issue(1, opened_hours_ago=5, clock=clock))
    # The poller posted today's reminder before the upgrade, under its dedupe key.
    assert deps.store.claim(f"urgent-digest:{REPO}:2026-11-23")

    clock_for(deps).tick()
    assert reminders(slack) == []
    run = runs.get_run(deps.store, "urgent-reminder", "2026-11-23")
    assert run.status == RunStatus.SKIPPED and "before the reminder was a job" in run.detail

    clock.set(dt.datetime(2026, 11, 24, 17, 0, tzinfo=dt.UTC))  # the next day: as usual
    clock_for(deps).tick()
    assert len(reminders(slack)) == 1


def test_a_reminder_whose_answer_was_lost_is_found_not_posted_again(
    store, slack, clock, monkeypatch
):
    deps = digest_deps(store, slack, clock)
    handle_issue(deps, urgent_issue(1, opened_hours_ago=5, clock=clock))
    real_post = deps.slack.chat_postMessage

    def post_then_lose_answer(**kwargs):
        real_post(**kwargs)
        raise TimeoutError("The read operation timed out")

    monkeypatch.setattr(deps.slack, "chat_postMessage", post_then_lose_answer)
    clock_for(deps).tick()
    monkeypatch.undo()
    assert runs.get_run(deps.store, "urgent-reminder", "2026-11-23").status == RunStatus.RUNNING

    clock.advance(minutes=16)  # the run's lease has expired: the next sweep looks in Slack
    clock_for(deps).tick()
    assert len(reminders(slack)) == 1
    run = runs.get_run(deps.store, "urgent-reminder", "2026-11-23")
    assert run.status == RunStatus.POSTED and run.detail == "recovered after a crash"


def test_post_dry_run_prints_the_reminder_and_posts_nothing(
    tmp_path, slack, clock, monkeypatch, capsys
):
    import bot.deps
    from bot.cli import main

    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store(state_url)
    store.migrate()
    deps = make_deps(store, slack, clock)
    handle_issue(deps, urgent_issue(1, opened_hours_ago=5, clock=clock))
    store.close()
    alerts_posted = len(slack.calls("chat.postMessage"))

    monkeypatch.chdir(tmp_path)  # no stray .env
    for key, value in {
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": state_url,
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_API_URL": slack.api_url,
        "GITHUB_REPO": REPO,
        "ANALYTICS_CHANNEL": "#analytics",
        "URGENT_DIGEST_HOURS": "4",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(bot.deps, "utc_now", lambda: TEST_NOW)  # Mon Nov 23, 10:00 Pacific

    assert main(["post", "urgent-reminder", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "== urgent-reminder 2026-11-23 (dry run: not posted) -> #analytics" in out
    assert DIGEST_TEXT in out and "#1 Issue 1" in out
    assert len(slack.calls("chat.postMessage")) == alerts_posted
    assert main(["posts"]) == 0
    assert "No scheduled runs recorded yet." in capsys.readouterr().out

    assert main(["post", "urgent-reminder"]) == 0
    assert "urgent-reminder 2026-11-23: posted https://" in capsys.readouterr().out
    assert main(["posts"]) == 0
    [header, row, clock_line] = capsys.readouterr().out.splitlines()
    assert row.split()[2:5] == ["urgent-reminder", "2026-11-23", "posted"]
    assert clock_line.startswith("clock: ")
