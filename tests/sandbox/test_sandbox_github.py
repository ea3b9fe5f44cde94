"""FakeGitHub behaves like GitHub's REST API for PyGithub, unchanged: if these fail, the
intake, alert and digest tests built on it would be testing a fiction."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time

import pytest
import requests
from flask import Flask, Response, request
from github import Auth, Github, GithubException, RateLimitExceededException

from sandbox import LoopbackServer
from sandbox import github_webhooks as wh
from sandbox.github_api import FakeGitHub

REPO = "acme/analytics"
NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)


@pytest.fixture
def github():
    with FakeGitHub(now=lambda: NOW) as fake:
        yield fake


def client(fake: FakeGitHub, **kwargs) -> Github:
    options = {"seconds_between_requests": 0, "seconds_between_writes": 0, "timeout": 5}
    options.update(kwargs)
    return Github(base_url=fake.url, auth=Auth.Token(fake.token), **options)


@pytest.fixture
def repo(github):
    return client(github).get_repo(REPO)


# --- issues -----------------------------------------------------------------------------


def test_pygithub_creates_reads_edits_closes_and_reopens_an_issue(github, repo):
    sprint = repo.create_milestone("Sprint 12", due_on=dt.date(2026, 12, 4))
    created = repo.create_issue(
        "Weekly DAU by plan", body="For the board deck", labels=["data-request"],
        assignees=["ana"], milestone=sprint,
    )  # fmt: skip
    assert created.number == 1 and created.pull_request is None
    assert created.html_url == "https://github.com/acme/analytics/issues/1"

    issue = repo.get_issue(created.number)
    assert (issue.title, issue.body, issue.state) == (
        "Weekly DAU by plan",
        "For the board deck",
        "open",
    )
    assert [label.name for label in issue.labels] == ["data-request"]
    assert [a.login for a in issue.assignees] == ["ana"]
    assert issue.milestone.title == "Sprint 12" and issue.milestone.due_on.date() == dt.date(
        2026, 12, 4
    )
    assert issue.user.login == github.login

    issue.edit(title="Weekly DAU by plan (v2)", state="closed", state_reason="not_planned")
    closed = repo.get_issue(1)
    assert closed.title.endswith("(v2)") and closed.state == "closed"
    assert closed.state_reason == "not_planned" and closed.closed_at == NOW
    assert closed.closed_by.login == github.login

    closed.edit(state="open")
    reopened = repo.get_issue(1)
    assert (reopened.state, reopened.state_reason, reopened.closed_at) == ("open", "reopened", None)


def test_labels_are_added_removed_and_replaced_and_unknown_ones_are_created(github, repo):
    repo.create_label("urgent", "d73a4a", "Needs attention today")
    issue = repo.create_issue("x")
    issue.add_to_labels("urgent", "data-request")
    assert sorted(label.name for label in repo.get_issue(1).labels) == ["data-request", "urgent"]
    assert {label.name: label.color for label in repo.get_labels()}["urgent"] == "d73a4a"

    issue.remove_from_labels("urgent")
    assert [label.name for label in repo.get_issue(1).labels] == ["data-request"]
    with pytest.raises(GithubException) as missing:
        issue.remove_from_labels("urgent")
    assert missing.value.status == 404

    issue.set_labels("triaged")
    assert [label.name for label in repo.get_issue(1).labels] == ["triaged"]
    with pytest.raises(GithubException) as duplicate:
        repo.create_label("urgent", "000000")
    assert duplicate.value.status == 422


def test_comments_are_listed_in_order_and_count_on_the_issue(github, repo):
    issue = repo.create_issue("x")
    issue.create_comment("first")
    github.add_comment(1, "second", user="ana")
    assert [(c.body, c.user.login) for c in issue.get_comments()] == [
        ("first", github.login),
        ("second", "ana"),
    ]
    assert repo.get_issue(1).comments == 2


def test_invalid_issues_are_refused_with_422(github, repo):
    with pytest.raises(GithubException) as blank:
        repo.create_issue("   ")
    with pytest.raises(GithubException) as long_title:
        repo.create_issue("x" * 257)
    with pytest.raises(GithubException) as long_body:
        repo.create_issue("x", body="y" * 65537)
    assert [blank.value.status, long_title.value.status, long_body.value.status] == [422] * 3
    assert github.issues() == []


def test_bodies_and_comments_up_to_65536_characters_are_taken_longer_ones_refused_with_422(
    github, repo
):
    issue = repo.create_issue("x", body="y" * 65536)
    issue.create_comment("z" * 65536)
    with pytest.raises(GithubException) as long_comment:
        issue.create_comment("z" * 65537)
    with pytest.raises(GithubException) as long_edit:
        issue.edit(body="y" * 65537)
    assert [long_comment.value.status, long_edit.value.status] == [422, 422]
    assert [len(c["body"]) for c in github.comments(1)] == [65536]


def test_a_lost_comment_response_still_posts_the_comment(github):
    issue = client(github, retry=None).get_repo(REPO).create_issue("x")
    github.lose_response_next("POST", r"/comments$")
    with pytest.raises(GithubException) as lost:
        issue.create_comment("once")
    assert lost.value.status == 502
    assert [c["body"] for c in github.comments(1)] == ["once"]


def test_writes_need_a_token_and_a_configured_token_must_match():
    with FakeGitHub(token="ghp_right") as fake:
        fake.create_issue("seeded")
        anonymous = Github(base_url=fake.url, seconds_between_requests=0, seconds_between_writes=0)
        assert anonymous.get_repo(REPO).get_issue(1).title == "seeded"  # reads are allowed
        with pytest.raises(GithubException) as no_token:
            anonymous.get_repo(REPO).create_issue("x")
        wrong = Github(base_url=fake.url, auth=Auth.Token("ghp_wrong"), seconds_between_requests=0)
        with pytest.raises(GithubException) as bad_token:
            wrong.get_repo(REPO)
    assert no_token.value.status == 401 and bad_token.value.status == 401
    assert len(fake.issues()) == 1


def test_unknown_repo_and_issue_are_404(github, repo):
    with pytest.raises(GithubException) as no_repo:
        client(github).get_repo("acme/nope")
    with pytest.raises(GithubException) as no_issue:
        repo.get_issue(99)
    assert no_repo.value.status == 404 and no_issue.value.status == 404


# --- listing ---------------------------------------------------------------------------------


def test_issue_list_follows_link_headers_on_this_server_through_every_page(github):
    github.add_many_issues(250)
    repo = client(github, per_page=100).get_repo(REPO)
    numbers = [issue.number for issue in repo.get_issues(state="all")]
    assert numbers == list(range(250, 0, -1))  # newest first, each exactly once
    pages = github.find_requests("GET", r"/issues$")
    assert [r.query.get("page", "1") for r in pages] == ["1", "2", "3"]
    response = requests.get(f"{github.url}/repos/{REPO}/issues?per_page=100", timeout=5)
    assert (
        f'<{github.url}/repos/{REPO}/issues?per_page=100&page=2>; rel="next"'
        in (response.headers["Link"])
    )
    assert repo.get_issues(state="all").totalCount == 250


def seeded_specs() -> list[dict]:
    """A mix of issues whose expected filter results the tests compute independently."""
    specs = []
    for i in range(40):
        closed = i % 3 == 0
        spec = {
            "title": f"Request {i}" + (" churn" if i % 5 == 0 else ""),
            "body": "needs dashboard" if i % 4 == 0 else "one-off number",
            "labels": (["data-request"] if i % 2 == 0 else [])
            + (["urgent"] if i % 7 == 0 else [])
            + (["needs triage"] if i % 6 == 1 else []),
            "assignees": ["ana"] if i % 4 == 1 else [],
            "milestone": "Sprint 12" if i % 5 in (1, 2) else None,
            "created_at": NOW - dt.timedelta(days=40 - i),
            "state": "closed" if closed else "open",
        }
        if closed:
            spec["closed_at"] = NOW - dt.timedelta(days=(40 - i) / 2)
            spec["state_reason"] = "not_planned" if i % 9 == 0 else "completed"
        specs.append(spec)
    return specs


@pytest.fixture
def seeded(github):
    specs = seeded_specs()
    github.add_many_issues(len(specs), factory=lambda i: specs[i])
    # Issue numbers follow the spec order: number = index + 1.
    return {n + 1: spec for n, spec in enumerate(specs)}


@pytest.mark.parametrize(
    ("kwargs", "want"),
    [
        ({}, lambda s: s["state"] == "open"),
        ({"state": "closed"}, lambda s: s["state"] == "closed"),
        ({"state": "all", "labels": ["data-request", "urgent"]},
         lambda s: {"data-request", "urgent"} <= set(s["labels"])),
        ({"state": "all", "assignee": "none"}, lambda s: not s["assignees"]),
        ({"state": "all", "assignee": "ana"}, lambda s: s["assignees"] == ["ana"]),
        ({"state": "all", "milestone": "none"}, lambda s: s["milestone"] is None),
        ({"state": "all", "since": NOW - dt.timedelta(days=10)},
         lambda s: max(s["created_at"], s.get("closed_at") or s["created_at"])
         >= NOW - dt.timedelta(days=10)),
    ],
    ids=["default-open", "closed", "all-labels", "unassigned", "assignee", "no-milestone", "since"],
)  # fmt: skip
def test_issue_list_filters_like_github(github, seeded, kwargs, want):
    repo = client(github).get_repo(REPO)
    got = {issue.number for issue in repo.get_issues(**kwargs)}
    assert got == {n for n, spec in seeded.items() if want(spec)}
    assert got  # each case must select something, or it proves nothing


def test_issue_list_by_milestone_and_sort_order(github, seeded):
    repo = client(github).get_repo(REPO)
    sprint = next(m for m in repo.get_milestones() if m.title == "Sprint 12")
    got = [i.number for i in repo.get_issues(state="all", milestone=sprint, direction="asc")]
    assert got == sorted(n for n, s in seeded.items() if s["milestone"] == "Sprint 12")


# --- search ----------------------------------------------------------------------------------


def _in(start: dt.date, end: dt.date, when: dt.datetime | None) -> bool:
    return when is not None and start <= when.date() <= end


@pytest.mark.parametrize(
    ("query", "want"),
    [
        ("is:issue is:open", lambda s: s["state"] == "open"),
        ('is:issue label:"needs triage"', lambda s: "needs triage" in s["labels"]),
        ("is:open label:data-request -label:urgent",
         lambda s: s["state"] == "open" and "data-request" in s["labels"]
         and "urgent" not in s["labels"]),
        ("is:open no:assignee no:milestone",
         lambda s: s["state"] == "open" and not s["assignees"] and s["milestone"] is None),
        ('milestone:"Sprint 12" is:closed',
         lambda s: s["milestone"] == "Sprint 12" and s["state"] == "closed"),
        ('is:closed reason:"not planned"', lambda s: s.get("state_reason") == "not_planned"),
        ("is:closed reason:completed", lambda s: s.get("state_reason") == "completed"),
        ("is:closed closed:2026-11-08..2026-11-15",
         lambda s: _in(dt.date(2026, 11, 8), dt.date(2026, 11, 15), s.get("closed_at"))),
        ("is:closed closed:>=2026-11-15",
         lambda s: _in(dt.date(2026, 11, 15), dt.date(2100, 1, 1), s.get("closed_at"))),
        ("created:<2026-10-20", lambda s: s["created_at"].date() < dt.date(2026, 10, 20)),
        ("created:>2026-11-10", lambda s: s["created_at"].date() > dt.date(2026, 11, 10)),
        ("created:<=2026-10-20", lambda s: s["created_at"].date() <= dt.date(2026, 10, 20)),
        ("dashboard in:body", lambda s: "dashboard" in s["body"]),
        ("churn", lambda s: "churn" in s["title"]),
    ],
)  # fmt: skip
def test_search_qualifiers_select_the_issues_github_would(github, seeded, query, want):
    gh = client(github)
    got = {issue.number for issue in gh.search_issues(f"repo:{REPO} {query}")}
    assert got == {n for n, spec in seeded.items() if want(spec)}
    assert got


def test_search_only_finds_issues_of_the_named_repo(github, seeded):
    github.add_repo("acme/other")
    github.create_issue("Request elsewhere", repo="acme/other")
    gh = client(github)
    assert {i.repository.full_name for i in gh.search_issues(f"repo:{REPO} Request")} == {REPO}
    assert [i.title for i in gh.search_issues("repo:acme/other Request")] == ["Request elsewhere"]


def test_search_reports_the_full_total_but_serves_only_the_first_1000(github):
    github.add_many_issues(1200)
    raw = requests.get(
        f"{github.url}/search/issues",
        params={"q": f"repo:{REPO} is:open", "per_page": 100},
        timeout=5,
    ).json()
    assert raw["total_count"] == 1200 and len(raw["items"]) == 100
    found = list(client(github, per_page=100).search_issues(f"repo:{REPO} is:open"))
    assert len(found) == 1000 and len({i.number for i in found}) == 1000


def test_search_sorts_by_created_when_asked(github, seeded):
    gh = client(github)
    got = [i.number for i in gh.search_issues(f"repo:{REPO} is:open", sort="created", order="asc")]
    want = sorted((s["created_at"], n) for n, s in seeded.items() if s["state"] == "open")
    assert got == [n for _, n in want]


def test_search_without_a_query_is_422(github):
    response = requests.get(f"{github.url}/search/issues", params={"q": ""}, timeout=5)
    assert response.status_code == 422


# --- conditional requests and rate limits ---------------------------------------------------


def test_unchanged_resource_answers_304_which_does_not_count_against_the_rate_limit(github, repo):
    issue = repo.create_issue("x")
    fetched = repo.get_issue(issue.number)
    used = github.rate_limit_used
    assert fetched.update() is False  # If-None-Match with the ETag -> 304
    assert github.rate_limit_used == used
    assert github.find_requests("GET", r"/issues/1$")[-1].status == 304
    fetched.edit(body="changed")
    stale = repo.get_issue(1)
    github.add_comment(1, "new activity")
    assert stale.update() is True and stale.comments == 1


def test_list_etag_changes_when_an_issue_changes(github, repo):
    repo.create_issue("x")
    url = f"{github.url}/repos/{REPO}/issues"
    first = requests.get(url, timeout=5)
    again = requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=5)
    repo.get_issue(1).edit(title="y")
    changed = requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=5)
    assert (again.status_code, again.content) == (304, b"")
    assert changed.status_code == 200 and changed.json()[0]["title"] == "y"


def test_rate_limit_endpoint_counts_requests(github, repo):
    gh = client(github)
    before = gh.get_rate_limit().resources.core.remaining
    repo.create_issue("x")
    repo.get_issue(1)
    after = gh.get_rate_limit().resources.core.remaining
    assert before - after == 3  # create, get, and the first rate_limit call itself


def test_secondary_rate_limit_is_retried_by_pygithub_after_retry_after(github, repo):
    github.create_issue("seeded")
    github.rate_limit_next(retry_after=1)
    started = time.monotonic()
    assert repo.get_issue(1).title == "seeded"
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in github.find_requests("GET", r"/issues/1$")] == [403, 200]


def test_primary_rate_limit_says_when_it_resets(github):
    github.create_issue("seeded")
    repo = client(github, retry=None).get_repo(REPO)
    github.rate_limit_next(retry_after=600, primary=True)
    with pytest.raises(RateLimitExceededException) as limited:
        repo.get_issue(1)
    headers = {k.lower(): v for k, v in limited.value.headers.items()}
    assert headers["x-ratelimit-remaining"] == "0"
    assert int(headers["x-ratelimit-reset"]) >= time.time() + 590


# --- injected failures ------------------------------------------------------------------------


def test_injected_server_error_fails_once_without_changing_anything(github):
    repo = client(github, retry=None).get_repo(REPO)
    github.fail_next("POST", r"/issues$", status=502)
    with pytest.raises(GithubException) as failed:
        repo.create_issue("x")
    assert failed.value.status == 502 and github.issues() == []
    assert repo.create_issue("x").number == 1


def test_lost_create_response_still_creates_the_issue_so_a_blind_retry_duplicates(github):
    repo = client(github, retry=None).get_repo(REPO)
    github.lose_response_next_create()
    with pytest.raises(GithubException) as lost:
        repo.create_issue("Request 42")
    assert lost.value.status == 502
    assert [i["title"] for i in github.issues()] == ["Request 42"]
    retrying = client(github).get_repo(REPO)  # PyGithub's default retry re-sends the POST
    github.lose_response_next_create()
    retrying.create_issue("Request 43")
    assert [i["title"] for i in github.issues()].count("Request 43") == 2


def test_delayed_response_makes_a_short_client_timeout_fire(github):
    github.create_issue("seeded")
    repo = client(github, retry=None, timeout=1).get_repo(REPO)
    github.delay_next(2.5, method="GET", path_regex=r"/issues/1$")
    with pytest.raises(requests.exceptions.ReadTimeout):
        repo.get_issue(1)
    assert repo.get_issue(1).title == "seeded"  # only the next request was slow


# --- contents -------------------------------------------------------------------------------


def test_issue_templates_are_listed_and_decoded_through_the_contents_api(github, repo):
    template = "name: Data request\ndescription: Ask the data team\nbody:\n  - type: textarea\n"
    github.seed_file(".github/ISSUE_TEMPLATE/data-request.yml", template)
    github.seed_file(".github/ISSUE_TEMPLATE/bug.yml", "name: Bug\n" + "x" * 500)
    listing = repo.get_contents(".github/ISSUE_TEMPLATE")
    assert sorted(c.name for c in listing) == ["bug.yml", "data-request.yml"]
    assert {c.type for c in listing} == {"file"}
    assert repo.get_contents(
        ".github/ISSUE_TEMPLATE/data-request.yml"
    ).decoded_content.decode() == (template)
    assert [c.type for c in repo.get_contents(".github")] == ["dir"]
    with pytest.raises(GithubException) as missing:
        repo.get_contents(".github/ISSUE_TEMPLATE/none.yml")
    assert missing.value.status == 404


# --- webhooks -------------------------------------------------------------------------------


def test_webhook_signature_matches_githubs_documented_example():
    # From GitHub's "Validating webhook deliveries" guide.
    assert wh.sign("It's a Secret to Everybody", "Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


class _Hook(LoopbackServer):
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.deliveries: list[tuple[str, str, dict]] = []
        super().__init__()

    def _make_app(self) -> Flask:
        app = Flask("hook")

        @app.post("/github/webhook")
        def hook() -> Response:
            body = request.get_data()
            expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
                return Response("bad signature", status=401)
            self.deliveries.append(
                (
                    request.headers["X-GitHub-Event"],
                    request.headers["X-GitHub-Delivery"],
                    json.loads(body),
                )
            )
            return Response("", status=204)

        return app


def test_webhook_deliveries_are_signed_and_shaped_like_githubs(github):
    github.add_label("urgent", "d73a4a")
    issue = github.create_issue("Revenue dashboard is down", labels=["urgent"])
    payload = wh.labeled(issue, "urgent", repository=github.repo_json(), sender="ana")
    with _Hook("whsec") as hook:
        good = wh.send_webhook(hook.url + "/github/webhook", "issues", payload, secret="whsec",
                               delivery="d-1")  # fmt: skip
        bad = wh.send_webhook(hook.url + "/github/webhook", "issues", payload, secret="nope")
    assert (good.status, bad.status) == (204, 401)
    [(event, delivery, received)] = hook.deliveries
    assert (event, delivery) == ("issues", "d-1")
    assert received["action"] == "labeled"
    assert received["label"] == dict(received["issue"]["labels"][0])
    assert received["label"]["color"] == "d73a4a"
    assert received["repository"]["full_name"] == REPO and received["sender"]["login"] == "ana"
    assert received["issue"]["number"] == issue["number"]


def test_webhook_builders_carry_the_fields_of_each_action(github):
    issue = github.create_issue("x", assignees=["ana"], state="closed")
    assert wh.closed(issue)["issue"]["state"] == "closed"
    assert wh.assigned(issue, "ana")["assignee"]["login"] == "ana"
    assert wh.edited(issue, old_title="old")["changes"] == {"title": {"from": "old"}}
    assert wh.unlabeled(issue, "urgent")["label"]["name"] == "urgent"
    with pytest.raises(ValueError):
        wh.issues_event("labeled", issue)


def test_repo_comments_listing_filters_by_since_and_answers_304_when_unchanged():
    clock = {"now": NOW}
    with FakeGitHub(now=lambda: clock["now"]) as github:
        first = github.create_issue("One")["number"]
        second = github.create_issue("Two")["number"]
        github.add_comment(first, "early")
        clock["now"] = NOW + dt.timedelta(minutes=10)
        github.add_comment(second, "late", user="ana")
        url = f"{github.url}/repos/{REPO}/issues/comments"
        since = {"since": "2026-11-23T18:05:00Z", "sort": "updated", "direction": "asc"}
        answer = requests.get(url, params=since, timeout=5)
        [comment] = answer.json()
        assert comment["body"] == "late" and comment["issue_url"].endswith(f"/issues/{second}")
        assert comment["user"]["login"] == "ana"
        # GitHub's Date header is on GitHub's clock, like its timestamps.
        assert answer.headers["Date"] == "Mon, 23 Nov 2026 18:10:00 GMT"
        etag = answer.headers["ETag"]
        again = requests.get(url, params=since, headers={"If-None-Match": etag}, timeout=5)
        assert again.status_code == 304
        assert len(requests.get(url, timeout=5).json()) == 2


def test_update_issue_changes_it_as_a_person_on_github_would(github):
    number = github.create_issue("One")["number"]
    issue = github.update_issue(number, assignees=["ana"], milestone="Sprint 48")
    assert [a["login"] for a in issue["assignees"]] == ["ana"]
    assert issue["milestone"]["title"] == "Sprint 48"
    closed = github.update_issue(number, state="closed", state_reason="not_planned", by="ana")
    assert (closed["state"], closed["state_reason"], closed["closed_by"]["login"]) == (
        "closed",
        "not_planned",
        "ana",
    )
    payload = wh.issue_comment(closed, github.add_comment(number, "hi"))
    assert payload["action"] == "created" and payload["comment"]["body"] == "hi"
    assert wh.milestoned(issue)["milestone"]["title"] == "Sprint 48"
