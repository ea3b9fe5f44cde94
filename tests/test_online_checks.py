"""`databot check --online` against the stand-in Slack and GitHub: each problem a real
deployment meets is named with what to do."""

from __future__ import annotations

import pytest

from bot.checks import CheckReport
from bot.deps import make_slack_client
from bot.github import make_github
from bot.online_checks import run_online_checks
from bot.settings import Settings
from sandbox.github_api import FakeGitHub
from sandbox.slack_api import FakeSlack


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        fake.add_channel(name="analytics")
        fake.add_channel(name="cody-pro-metrics")
        yield fake


@pytest.fixture
def github():
    with FakeGitHub() as fake:
        yield fake


def check(slack: FakeSlack, github: FakeGitHub, **overrides) -> CheckReport:
    values = {
        "slack_bot_token": slack.token,
        "slack_api_url": slack.api_url,
        "github_token": github.token,
        "github_api_url": github.url,
        "github_repo": "acme/analytics",
        "github_webhook_secret": "whsec-set",
        "github_seconds_between_requests": 0,
        "github_seconds_between_writes": 0,
        "github_retries": 0,
        **overrides,
    }
    settings = Settings(_env_file=None, **values)
    report = CheckReport()
    run_online_checks(
        settings, report, slack=make_slack_client(settings), github=make_github(settings)
    )
    return report


def lines(report: CheckReport) -> list[str]:
    return report.render().splitlines()


def test_a_working_deployment_passes_every_online_check(slack, github):
    report = check(slack, github)
    text = report.render()
    assert report.ok, text
    assert "Slack token valid: bot @" in text
    assert "holds every scope manifest.yml asks for" in text
    assert "ANALYTICS_CHANNEL: the bot is a member of #analytics" in text
    assert "may read and create issues in acme/analytics" in text


def test_a_revoked_slack_token_fails_and_says_what_to_do(slack, github):
    slack.fail_next("auth.test", "token_revoked")
    report = check(slack, github)
    assert not report.ok
    assert "[FAIL] Slack rejected SLACK_BOT_TOKEN (token_revoked)" in lines(report)


def test_a_missing_scope_is_named(slack, github):
    slack.revoke_scopes("files:write", "users:read")
    report = check(slack, github)
    assert not report.ok
    assert (
        "[FAIL] Slack token lacks scopes manifest.yml asks for: files:write, users:read"
        in lines(report)
    )


def test_a_channel_the_bot_was_not_invited_to_fails_with_the_invite_command(slack, github):
    slack.add_channel(name="sprint-room", is_member=False)
    report = check(slack, github, sprint_digest_channel="#sprint-room")
    text = report.render()
    assert not report.ok
    assert "[FAIL] SPRINT_DIGEST_CHANNEL: the bot is not a member of #sprint-room" in text
    assert "/invite @" in text


def test_a_repo_github_does_not_show_the_token_fails(slack, github):
    report = check(slack, github, github_repo="acme/no-such-repo")
    assert not report.ok
    assert any(
        line.startswith("[FAIL] GitHub: GitHub refused (HTTP 404)") for line in lines(report)
    )


def test_webhooks_off_is_a_warning_not_a_failure(slack, github):
    report = check(slack, github, github_webhook_secret=None)
    assert report.ok
    assert any(line.startswith("[warn] GitHub webhooks are off") for line in lines(report))
