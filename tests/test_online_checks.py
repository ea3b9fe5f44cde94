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


# --- BigQuery: a dry run of every catalog metric against the byte cap -------------------

GIB = 1024**3


@pytest.fixture
def priced(bigquery_emulator, demo_warehouse_path, tmp_path_factory):
    from sandbox.bigquery_pricing import PricedBigQuery
    from tests.metric.test_scale import SLICE
    from tests.support.bigquery import copy_demo_slice

    copy_demo_slice(
        bigquery_emulator,
        demo_warehouse_path,
        SLICE,
        slice_path=tmp_path_factory.mktemp("online") / "slice.duckdb",
    )
    with PricedBigQuery(bigquery_emulator, bytes_per_day=GIB) as front:
        yield front


@pytest.mark.bigquery
def test_every_catalog_metric_is_priced_and_one_over_the_byte_cap_fails(slack, github, priced):
    from bot.metric.catalog import load_catalog
    from tests.support.bigquery import EMULATOR_PROJECT

    report = check(
        slack,
        github,
        gcp_project=EMULATOR_PROJECT,
        bigquery_api_endpoint=priced.url,
        bigquery_max_bytes_billed=50 * GIB,
    )
    text = lines(report)
    catalog = load_catalog()
    priced_lines = [line for line in text if line.startswith("[") and "] BigQuery: " in line]
    # One line per metric: priced, or the reason its dry run failed.
    assert len(priced_lines) == len(catalog.metrics)
    assert not priced.jobs  # a dry run only: nothing ran, nothing billed
    # Each priced line carries the price the pricing front gave its dry run (metrics whose
    # default lookups have the same query shape share one dry run).
    answered = [line for line in priced_lines if "would scan" in line]
    prices = {d.bytes for d in priced.dry_runs}
    assert answered and len(priced.dry_runs) <= len(answered)
    for line in answered:
        shown = line.split("would scan ")[1].split(" GiB")[0]  # "14", or "1.0" below 10
        days = float(shown)
        assert round(days * GIB) in prices, line
        assert f"would scan {shown} GiB of the 50 GiB cap" in line
        mark = "[FAIL]" if days > 50 else "[warn]" if days > 25 else "[ok  ]"
        assert line.startswith(mark), line
    mau = next(line for line in priced_lines if "`/metric mau` " in line)
    assert mau.startswith("[FAIL]") and "every default lookup would be refused" in mau
    # A dry run BigQuery refuses is a FAIL line with its reason (the slice may lack ssc).
    for line in priced_lines:
        if "the dry run of" in line:
            assert line.startswith("[FAIL]") and "failed: " in line
    assert not report.ok
