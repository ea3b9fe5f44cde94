"""The GitHub gateway used by every feature: one configured PyGithub client for the
analytics repo, and the few calls databot makes.

Retries are chosen deliberately. PyGithub's default `GithubRetry` re-sends POSTs on 5xx
(a create whose response was lost becomes two issues) and waits for a primary rate limit
to reset, up to an hour, inside whatever thread made the call. Here only idempotent
methods are retried, a few times, and no wait is longer than `github_max_wait_seconds`:
a longer Retry-After or rate-limit reset raises instead, and the caller (the intake outbox)
schedules its own retry at that time.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import time
from dataclasses import dataclass
from typing import Any

import requests
from github import Auth, Github, GithubException, GithubRetry, RateLimitExceededExceedsMaxWait
from github.Repository import Repository
from pydantic import BaseModel, ConfigDict, Field
from urllib3.util.retry import Retry

from bot.errors import GitHubUnavailable
from bot.settings import Settings

logger = logging.getLogger(__name__)

ISSUE_TEMPLATE_DIR = ".github/ISSUE_TEMPLATE"

# GET/HEAD/PUT/DELETE/OPTIONS are idempotent; POST and PATCH are not.
IDEMPOTENT_METHODS = frozenset(Retry.DEFAULT_ALLOWED_METHODS) - {"POST", "PATCH"}


def retry_after_seconds(headers: dict[str, str] | None, now: float | None = None) -> float | None:
    """Seconds GitHub asks us to wait: Retry-After (seconds or HTTP date), else the primary
    rate limit reset when no requests remain. None when the response does not say."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    now = time.time() if now is None else now
    value = lower.get("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        parsed = email.utils.parsedate_tz(value)
        if parsed is not None:
            return max(0.0, email.utils.mktime_tz(parsed) - now)
    if (
        lower.get("x-ratelimit-remaining") == "0"
        and (lower.get("x-ratelimit-reset") or "").isdigit()
    ):
        return max(0.0, int(lower["x-ratelimit-reset"]) - now)
    return None


class CappedRetry(GithubRetry):
    """GithubRetry that never retries POST/PATCH and never sleeps longer than `max_wait`."""

    def __init__(self, *, max_wait: float = 60.0, **kwargs) -> None:
        self.max_wait = max_wait
        kwargs.setdefault("allowed_methods", IDEMPOTENT_METHODS)
        # Out of retries: hand PyGithub the last response, so it raises GithubException with
        # the real status and headers instead of an opaque urllib3 MaxRetryError.
        kwargs.setdefault("raise_on_status", False)
        kwargs["max_rate_limit_wait"] = max_wait
        super().__init__(**kwargs)

    def new(self, **kw) -> CappedRetry:
        kw["max_wait"] = self.max_wait
        kw.pop("max_rate_limit_wait", None)
        return super().new(**kw)

    def increment(  # urllib3 passes these by keyword
        self,
        method=None,
        url=None,
        response=None,
        error=None,
        _pool=None,
        _stacktrace=None,
    ):
        if response is not None:
            wait = retry_after_seconds(dict(response.headers))
            if wait is not None and wait > self.max_wait:
                logger.info(
                    "GitHub asks to wait %.0fs (cap %.0fs): not retrying", wait, self.max_wait
                )
                raise RateLimitExceededExceedsMaxWait(
                    response.status, None, dict(response.headers), wait=wait
                )
        return super().increment(method, url, response, error, _pool, _stacktrace)


# --- GitHub's issue shape (REST responses and webhook payloads share it) ----------------


class GitHubUser(BaseModel):
    model_config = ConfigDict(extra="ignore")
    login: str


class GitHubLabel(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str


class GitHubIssue(BaseModel):
    model_config = ConfigDict(extra="ignore")

    number: int
    title: str
    html_url: str
    state: str  # "open" | "closed"
    user: GitHubUser | None = None  # null for deleted accounts in some payloads
    assignees: list[GitHubUser] = Field(default_factory=list)
    labels: list[GitHubLabel] = Field(default_factory=list)
    body: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None = None
    closed_by: GitHubUser | None = None  # only in single-issue REST responses
    pull_request: dict[str, Any] | None = None  # set when the "issue" is a pull request
    state_reason: str | None = None  # closed: "completed" | "not_planned"

    def has_label(self, name: str) -> bool:
        return any(label.name.lower() == name.lower() for label in self.labels)


@dataclass(frozen=True)
class IssueRef:
    number: int
    url: str
    title: str


@dataclass(frozen=True)
class GitHubFailure:
    """What went wrong, for the outbox: retry later (transient) or give up (needs a human)."""

    transient: bool
    message: str  # safe to store and show to operators: no tokens, no bodies
    retry_after: float | None = None
    ref: str | None = None  # set for a bug of ours: the correlation id in the log


def classify_failure(exc: BaseException) -> GitHubFailure:
    if isinstance(exc, RateLimitExceededExceedsMaxWait):
        return GitHubFailure(True, "GitHub rate limit", exc.wait)
    if isinstance(exc, GithubException):
        status = exc.status
        wait = retry_after_seconds(exc.headers)
        if status == 429 or (status == 403 and (wait is not None or _is_rate_limit(exc))):
            return GitHubFailure(True, f"GitHub rate limit (HTTP {status})", wait)
        if status >= 500:
            return GitHubFailure(True, f"GitHub error (HTTP {status})", wait)
        if status == 401:
            return GitHubFailure(False, "GitHub rejected the token (HTTP 401): check GITHUB_TOKEN")
        if status in (403, 404):
            return GitHubFailure(
                False,
                f"GitHub refused (HTTP {status}): check GITHUB_REPO and that the token "
                "may create issues there",
            )
        return GitHubFailure(False, f"GitHub rejected the issue (HTTP {status}): {_message(exc)}")
    if isinstance(exc, requests.exceptions.Timeout):
        return GitHubFailure(True, "GitHub did not answer in time")
    if isinstance(exc, requests.exceptions.RequestException):
        return GitHubFailure(True, f"could not reach GitHub ({type(exc).__name__})")
    raise exc


def _is_rate_limit(exc: GithubException) -> bool:
    return "rate limit" in _message(exc).lower()


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    return str(data.get("message") or exc.message or "")[:200]


class GitHubGateway:
    def __init__(self, gh: Github, repo_name: str) -> None:
        self.gh = gh
        self.repo_name = repo_name
        self._repo: Repository | None = None

    @property
    def repo(self) -> Repository:
        if self._repo is None:
            # The client is lazy (see make_github): no request until the first real call.
            self._repo = self.gh.get_repo(self.repo_name)
        return self._repo

    def issue(self, number: int) -> GitHubIssue:
        """One issue as GitHub's REST API shows it (single-issue answers name `closed_by`)."""
        return GitHubIssue.model_validate(self.repo.get_issue(number).raw_data)

    def create_issue(self, title: str, body: str, labels: list[str]) -> IssueRef:
        issue = self.repo.create_issue(title=title, body=body, labels=labels)
        return IssueRef(issue.number, issue.html_url, issue.title)

    def find_issue_with_marker(self, marker: str, since: dt.datetime) -> IssueRef | None:
        """The issue whose body contains `marker`, created at or after `since`.

        The search API finds it cheaply, but its index lags new issues by up to a minute or
        so; a create whose response was lost is usually retried sooner than that. So the
        repo's issues updated since `since` (newest first) are read too: that listing is
        consistent.
        """
        query = f'"{marker}" repo:{self.repo_name} in:body'
        try:
            # Iterated, not sliced: PyGithub's slice of an empty result raises IndexError.
            for index, result in enumerate(self.gh.search_issues(query)):
                if index >= 10:
                    break
                if marker in (result.body or ""):
                    return IssueRef(result.number, result.html_url, result.title)
        except GithubException as exc:  # search has its own, smaller rate limit
            logger.info("issue search failed (HTTP %s); reading recent issues instead", exc.status)
        listing = self.repo.get_issues(state="all", since=since, sort="created", direction="desc")
        for index, issue in enumerate(listing):
            if index >= 200:  # more than 200 new issues since: the search above is our hope
                break
            if marker in (issue.body or ""):
                return IssueRef(issue.number, issue.html_url, issue.title)
        return None

    def read_issue_forms(self) -> dict[str, str]:
        """File name -> text of every file in .github/ISSUE_TEMPLATE (empty when absent)."""
        try:
            entries = self.repo.get_contents(ISSUE_TEMPLATE_DIR)
        except GithubException as exc:
            if exc.status == 404:
                return {}
            raise
        if not isinstance(entries, list):
            entries = [entries]
        files: dict[str, str] = {}
        for entry in entries:
            if entry.type != "file" or not entry.name.endswith((".yml", ".yaml")):
                continue
            content = self.repo.get_contents(entry.path)
            files[entry.name] = content.decoded_content.decode("utf-8", errors="replace")
        return files

    @property
    def page_size(self) -> int:
        """Results per page of a listing or search (the client's `per_page`)."""
        return self.gh.per_page

    def search_issues(
        self, query: str, *, limit: int, sort: str = "created", order: str = "asc"
    ) -> tuple[list[GitHubIssue], int]:
        """The first `limit` results (GitHub serves at most 100 a page) of an issue search,
        in one request, and GitHub's count of all matches.

        Raises GitHubUnavailable when GitHub fails or cannot be reached: search has its own,
        smaller rate limit, and the callers (scheduled posts) retry later.
        """
        params = {"q": query, "sort": sort, "order": order, "per_page": limit}
        try:
            # One page on purpose: PyGithub's PaginatedList would fetch more when iterated.
            _, data = self.gh.requester.requestJsonAndCheck(
                "GET", "/search/issues", parameters=params
            )
        except GithubException as exc:
            raise GitHubUnavailable(
                f"GitHub search failed (HTTP {exc.status})",
                detail=f"search {query!r}: {exc.status}",
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise GitHubUnavailable(f"Could not reach GitHub ({type(exc).__name__})") from exc
        items = [GitHubIssue.model_validate(item) for item in data.get("items") or []]
        return items[:limit], int(data.get("total_count") or 0)

    def milestones(self) -> list[tuple[str, dt.datetime]]:
        """(title, due date) of every milestone of the repo, open or closed, that has one."""
        return [(m.title, m.due_on) for m in self.repo.get_milestones(state="all") if m.due_on]


def make_github(settings: Settings) -> GitHubGateway | None:
    """The gateway, or None when no token is configured (requests then wait in the outbox)."""
    if settings.github_token is None:
        return None
    retry = CappedRetry(
        total=settings.github_retries,
        backoff_factor=settings.github_retry_backoff_seconds,
        max_wait=settings.github_max_wait_seconds,
    )
    gh = Github(
        base_url=settings.github_api_url.rstrip("/"),
        auth=Auth.Token(settings.github_token.get_secret_value()),
        retry=retry,
        timeout=max(1, round(settings.github_timeout_seconds)),  # PyGithub wants an int
        seconds_between_requests=settings.github_seconds_between_requests,
        seconds_between_writes=settings.github_seconds_between_writes,
        lazy=True,  # get_repo() costs no request; the first real call shows any problem
    )
    return GitHubGateway(gh, settings.github_repo)
