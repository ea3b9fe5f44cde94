"""The GitHub gateway: deliberate retries (never a POST, never an hour-long sleep) and the
classification the intake outbox relies on."""

from __future__ import annotations

import email.utils

import pytest
import requests
from github import GithubException, RateLimitExceededExceedsMaxWait
from urllib3 import HTTPResponse

from bot.github import CappedRetry, IssueRef, classify_failure, make_github, retry_after_seconds
from bot.settings import Settings


def response(status: int, headers: dict[str, str]) -> HTTPResponse:
    return HTTPResponse(body=b"{}", status=status, headers=headers, preload_content=True)


def test_post_and_patch_are_never_retried_but_reads_are():
    retry = CappedRetry(total=3, max_wait=60)
    assert not retry.is_retry("POST", 502)
    assert not retry.is_retry("PATCH", 503)
    assert retry.is_retry("GET", 502)
    assert retry.is_retry("PUT", 500)


def test_a_retry_after_longer_than_the_cap_raises_instead_of_sleeping():
    retry = CappedRetry(total=3, max_wait=60)
    with pytest.raises(RateLimitExceededExceedsMaxWait) as raised:
        retry.increment("GET", "/repos/acme/analytics", response(403, {"Retry-After": "3600"}))
    assert raised.value.wait == 3600
    # a short wait is an ordinary retry
    assert retry.increment("GET", "/x", response(503, {"Retry-After": "2"})).total == 2


def test_the_cap_survives_urllib3_copying_the_retry_object():
    retry = CappedRetry(total=3, max_wait=5).increment("GET", "/x", response(502, {}))
    assert retry.max_wait == 5 and retry.max_rate_limit_wait == 5
    assert not retry.is_retry("POST", 502)


def test_primary_rate_limit_reset_counts_as_a_wait():
    now = 1_800_000_000
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(now + 1800)}
    assert retry_after_seconds(headers, now=now) == 1800
    assert retry_after_seconds({"X-RateLimit-Remaining": "12"}, now=now) is None
    http_date = email.utils.formatdate(now + 90, usegmt=True)
    assert retry_after_seconds({"retry-after": http_date}, now=now) == 90


@pytest.mark.parametrize(
    ("error", "transient", "message", "wait"),
    [
        (GithubException(502, {"message": "Bad Gateway"}), True, "GitHub error (HTTP 502)", None),
        (
            GithubException(429, {}, headers={"Retry-After": "120"}),
            True,
            "GitHub rate limit (HTTP 429)",
            120,
        ),
        (
            GithubException(403, {"message": "API rate limit exceeded for user"}),
            True,
            "GitHub rate limit (HTTP 403)",
            None,
        ),
        (
            RateLimitExceededExceedsMaxWait(403, None, {}, wait=3000),
            True,
            "GitHub rate limit",
            3000,
        ),
        (
            requests.exceptions.ReadTimeout("read timed out"),
            True,
            "GitHub did not answer in time",
            None,
        ),
        (
            requests.exceptions.ConnectionError("refused"),
            True,
            "could not reach GitHub (ConnectionError)",
            None,
        ),
        (
            GithubException(401, {"message": "Bad credentials"}),
            False,
            "GitHub rejected the token (HTTP 401): check GITHUB_TOKEN",
            None,
        ),
        (
            GithubException(404, {"message": "Not Found"}),
            False,
            "GitHub refused (HTTP 404): check GITHUB_REPO and that the token may create "
            "issues there",
            None,
        ),
        (
            GithubException(422, {"message": "Validation Failed"}),
            False,
            "GitHub rejected the issue (HTTP 422): Validation Failed",
            None,
        ),
    ],
)
def test_failures_are_classified_for_retry_or_a_person(error, transient, message, wait):
    failure = classify_failure(error)
    assert (failure.transient, failure.message, failure.retry_after) == (transient, message, wait)


def test_no_token_means_no_gateway_and_the_token_is_not_in_its_repr():
    assert make_github(Settings(_env_file=None)) is None
    gateway = make_github(Settings(_env_file=None, github_token="ghp_" + "s" * 36))
    assert gateway is not None
    assert "ghp_" not in repr(vars(gateway))


# --- against the loopback GitHub API ----------------------------------------------------


@pytest.fixture
def fake_github():
    from sandbox.github_api import FakeGitHub

    with FakeGitHub() as fake:
        yield fake


def gateway_for(fake, **overrides):
    values = {
        "github_token": fake.token,
        "github_api_url": fake.url,
        "github_repo": "acme/analytics",
        "github_seconds_between_requests": 0,
        "github_seconds_between_writes": 0,
        "github_retry_backoff_seconds": 0,
        **overrides,
    }
    return make_github(Settings(_env_file=None, **values))


def test_a_failed_create_is_sent_once_and_reported_with_its_status(fake_github):
    fake_github.fail_next("POST", r"/issues$", status=502, times=3)
    with pytest.raises(GithubException) as raised:
        gateway_for(fake_github).create_issue("t", "b", ["x"])
    assert raised.value.status == 502
    assert fake_github.count("POST", r"/issues$") == 1
    assert fake_github.issues() == []


def test_reads_are_retried_through_errors_and_timeouts(fake_github):
    from tests.support.forms import REPO_FORMS

    for name, text in REPO_FORMS.items():
        fake_github.seed_file(".github/ISSUE_TEMPLATE/" + name, text)
    fake_github.fail_next("GET", r"/contents/", status=502, times=1)
    fake_github.delay_next(1.5, method="GET", path_regex=r"/contents/")
    files = gateway_for(fake_github, github_timeout_seconds=1).read_issue_forms()
    assert files == REPO_FORMS


def test_marker_is_found_in_an_existing_issue_and_absent_otherwise(fake_github):
    import datetime as dt

    gateway = gateway_for(fake_github)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    assert gateway.find_issue_with_marker("databot-request: abc", since) is None
    made = gateway.create_issue("t", "<!-- databot-request: abc -->\n\nbody", [])
    found = gateway.find_issue_with_marker("databot-request: abc", since)
    assert found == IssueRef(made.number, made.url, made.title)
    assert gateway.find_issue_with_marker("databot-request: other", since) is None


def test_missing_issue_template_folder_means_no_forms(fake_github):
    assert gateway_for(fake_github).read_issue_forms() == {}


def test_marker_is_found_by_listing_recent_issues_when_search_fails(fake_github):
    import datetime as dt

    gateway = gateway_for(fake_github)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    made = gateway.create_issue("t", "<!-- databot-request: abc -->", [])
    fake_github.fail_next("GET", r"^/search/issues", status=503, times=10)
    found = gateway.find_issue_with_marker("databot-request: abc", since)
    assert found == IssueRef(made.number, made.url, made.title)
    assert fake_github.count("GET", r"/repos/acme/analytics/issues$") >= 1
