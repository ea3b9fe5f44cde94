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
import functools
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

import requests
from github import Auth, Github, GithubException, GithubRetry, RateLimitExceededExceedsMaxWait
from github.Repository import Repository
from pydantic import BaseModel, ConfigDict, Field, ValidationError
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


class GitHubMilestone(BaseModel):
    model_config = ConfigDict(extra="ignore")
    number: int
    title: str


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
    milestone: GitHubMilestone | None = None

    def has_label(self, name: str) -> bool:
        return any(label.name.lower() == name.lower() for label in self.labels)


class GitHubComment(BaseModel):
    """An issue comment (REST listings and the `issue_comment` webhook share the shape)."""

    model_config = ConfigDict(extra="ignore")

    id: int
    html_url: str
    issue_url: str  # .../repos/{owner}/{repo}/issues/{number}
    body: str | None = None
    user: GitHubUser | None = None
    user_type: str | None = None  # filled from user.type: "Bot" for apps
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def issue_number(self) -> int | None:
        tail = self.issue_url.rstrip("/").rsplit("/", 1)[-1]
        return int(tail) if tail.isdigit() else None


def comment_from_json(data: dict[str, Any]) -> GitHubComment:
    """A GitHubComment from GitHub's JSON (keeps whether the author is a bot)."""
    user = data.get("user") or {}
    return GitHubComment.model_validate({**data, "user_type": user.get("type")})


# --- webhook signatures (X-Hub-Signature-256) ---------------------------------------------

WEBHOOK_SIGNATURE_PREFIX = "sha256="


def sign_webhook(secret: bytes, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for `body`: HMAC-SHA256 of the raw body."""
    return WEBHOOK_SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_webhook_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` is GitHub's signature of `body` under `secret` (constant time)."""
    if not header or not header.startswith(WEBHOOK_SIGNATURE_PREFIX):
        return False
    return hmac.compare_digest(sign_webhook(secret, body).encode(), header.strip().encode())


@dataclass(frozen=True)
class IssueRef:
    number: int
    url: str
    title: str


@dataclass(frozen=True)
class CreatedIssue(IssueRef):
    """An issue just created, with GitHub's answer (assignees, labels as it set them)."""

    view: GitHubIssue | None = None


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


def refused_assignees(exc: BaseException) -> bool:
    """GitHub's 422 naming the assignees field (`Value ... cannot be set for assignees`):
    a login that cannot be assigned in the repo."""
    if not isinstance(exc, GithubException) or exc.status != 422:
        return False
    data = exc.data if isinstance(exc.data, dict) else {}
    errors = data.get("errors") or []
    return any(isinstance(e, dict) and e.get("field") in ("assignees", "assignee") for e in errors)


def _is_rate_limit(exc: GithubException) -> bool:
    return "rate limit" in _message(exc).lower()


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    return str(data.get("message") or exc.message or "")[:200]


# (operation, status): told about every failed GitHub call, for the API-error metric.
ErrorListener = Callable[[str, str], None]
P = ParamSpec("P")
R = TypeVar("R")


def error_status(exc: BaseException) -> str:
    """A failed call's label: GitHub's HTTP status, else the transport error's type."""
    cause = exc.__cause__ if isinstance(exc, GitHubUnavailable) and exc.__cause__ else exc
    if isinstance(cause, GithubException):
        return str(cause.status)
    return type(cause).__name__


def _observed(
    method: Callable[Concatenate[GitHubGateway, P], R],
) -> Callable[Concatenate[GitHubGateway, P], R]:
    """Tell the gateway's error listener about a call that raised (after PyGithub's own
    retries), labelled with the method's name as the operation."""

    @functools.wraps(method)
    def wrapper(self: GitHubGateway, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            self.record_error(method.__name__, exc)
            raise

    return wrapper


class GitHubGateway:
    def __init__(
        self, gh: Github, repo_name: str, *, on_error: ErrorListener | None = None
    ) -> None:
        self.gh = gh
        self.repo_name = repo_name
        self._repo: Repository | None = None
        self.on_error = on_error

    def record_error(self, operation: str, exc: BaseException) -> None:
        if self.on_error is not None:
            self.on_error(operation, error_status(exc))

    @property
    def repo(self) -> Repository:
        if self._repo is None:
            # The client is lazy (see make_github): no request until the first real call.
            self._repo = self.gh.get_repo(self.repo_name)
        return self._repo

    @_observed
    def repo_permissions(self) -> dict[str, bool]:
        """What the token may do on the repo (GitHub's `permissions`: pull, push, ...)."""
        return dict(self.repo.raw_data.get("permissions") or {})

    @_observed
    def issue(self, number: int) -> GitHubIssue:
        """One issue as GitHub's REST API shows it (single-issue answers name `closed_by`)."""
        return GitHubIssue.model_validate(self.repo.get_issue(number).raw_data)

    @_observed
    def create_issue(
        self, title: str, body: str, labels: list[str], assignees: list[str] | None = None
    ) -> CreatedIssue:
        """One POST (never retried by the client): labels and assignees set with the issue."""
        if assignees:
            issue = self.repo.create_issue(
                title=title, body=body, labels=labels, assignees=assignees
            )
        else:
            issue = self.repo.create_issue(title=title, body=body, labels=labels)
        try:
            view: GitHubIssue | None = GitHubIssue.model_validate(issue.raw_data)
        except ValidationError:
            view = None
        return CreatedIssue(issue.number, issue.html_url, issue.title, view)

    @_observed
    def issue_comments(self, number: int) -> list[str]:
        """The bodies of an issue's comments, oldest first (GETs, one per page)."""
        # get_issue is lazy (see make_github): the listing is the only request.
        return [c.body or "" for c in self.repo.get_issue(number).get_comments()]

    @_observed
    def add_issue_comment(self, number: int, body: str) -> None:
        """Comment on an issue: a POST, so never retried by the client (see CappedRetry)."""
        self.repo.get_issue(number).create_comment(body)

    @_observed
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
            self.record_error("search_issues", exc)
            logger.info("issue search failed (HTTP %s); reading recent issues instead", exc.status)
        listing = self.repo.get_issues(state="all", since=since, sort="created", direction="desc")
        for index, issue in enumerate(listing):
            if index >= 200:  # more than 200 new issues since: the search above is our hope
                break
            if marker in (issue.body or ""):
                return IssueRef(issue.number, issue.html_url, issue.title)
        return None

    @_observed
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
            if isinstance(content, list):  # a directory named like a form: not a form
                continue
            files[entry.name] = content.decoded_content.decode("utf-8", errors="replace")
        return files

    @property
    def page_size(self) -> int:
        """Results per page of a listing or search (the client's `per_page`)."""
        return self.gh.per_page

    @_observed
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

    @_observed
    def milestones(self) -> list[tuple[str, dt.datetime]]:
        """(title, due date) of every milestone of the repo, open or closed, that has one."""
        return [(m.title, m.due_on) for m in self.repo.get_milestones(state="all") if m.due_on]


def make_github(
    settings: Settings, *, on_error: ErrorListener | None = None
) -> GitHubGateway | None:
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
    return GitHubGateway(gh, settings.github_repo, on_error=on_error)


# --- conditional issue listings (the urgent poller) ---------------------------------------
#
# Raw `requests` rather than PyGithub: PyGithub hides ETags and 304s, and sleeps between
# requests by default. Every failure is a GitHubUnavailable whose user message says when
# urgent issues are checked again; nothing is retried here (the next poll is the retry).

ISSUES_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class IssuesPage:
    """One answer of an issues listing: 304 Not Modified (no items), or a page of issues as
    GitHub's JSON, with the ETag GitHub gave it, the next page's URL (the Link header) and
    GitHub's clock (the Date header) when readable."""

    not_modified: bool
    items: list[dict[str, Any]]
    etag: str | None = None
    next_url: str | None = None
    server_time: dt.datetime | None = None


class IssuesClient:
    """The few GitHub REST calls the urgent poller makes, with conditional requests
    (`If-None-Match`), GitHub's rate limits honoured, and a count of requests made."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        session: requests.Session | None = None,
        on_error: ErrorListener | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.on_error = on_error
        self.session = session or requests.Session()
        self.session.headers.update(
            {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        )
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.requests = 0
        self.resume_at = 0.0  # time.time() before which GitHub asked us not to call

    def list_issues(
        self, repo: str, params: dict[str, Any], *, etag: str | None = None
    ) -> IssuesPage:
        """`GET /repos/{repo}/issues`; with `etag`, a 304 when nothing changed (free: a 304
        does not count against the rate limit)."""
        return _page(self._get(f"/repos/{repo}/issues", params, etag=etag))

    def next_page(self, page: IssuesPage) -> IssuesPage:
        """The page after `page` (its `next_url` must be set)."""
        assert page.next_url is not None
        return _page(self._get(page.next_url))

    def issue(self, repo: str, number: int) -> dict[str, Any]:
        """`GET /repos/{repo}/issues/{number}`: the one answer that names `closed_by`."""
        return self._get(f"/repos/{repo}/issues/{number}", operation="issue").json() or {}

    def issue_if_changed(
        self, repo: str, number: int, etag: str | None
    ) -> tuple[dict[str, Any] | None, str | None]:
        """`GET /repos/{repo}/issues/{number}` with `If-None-Match: etag`: (the issue, its
        ETag), or (None, etag) when it has not changed (a 304, free of rate limit)."""
        response = self._get(
            f"/repos/{repo}/issues/{number}", etag=etag, operation="issue", gone_ok=True
        )
        if response.status_code == 304:
            return None, etag
        if response.status_code in GONE:
            return {}, None
        return response.json() or {}, response.headers.get("ETag")

    def list_comments(
        self, repo: str, params: dict[str, Any], *, etag: str | None = None
    ) -> IssuesPage:
        """`GET /repos/{repo}/issues/comments` (every issue's comments, `since` filters on
        `updated_at`); with `etag`, a 304 when nothing changed."""
        return _page(self._get(f"/repos/{repo}/issues/comments", params, etag=etag))

    def issue_comments(self, repo: str, number: int, since: str | None = None) -> list[dict]:
        """`GET /repos/{repo}/issues/{number}/comments` (first page of 100, oldest first)."""
        params: dict[str, Any] = {"per_page": 100}
        if since:
            params["since"] = since
        return list(self._get(f"/repos/{repo}/issues/{number}/comments", params).json() or [])

    def waiting(self) -> float:
        """Seconds GitHub asked us to wait before the next request (0 = go ahead)."""
        return max(0.0, self.resume_at - time.time())

    def _get(
        self,
        url: str,
        params: dict[str, Any] | None = None,
        *,
        etag: str | None = None,
        operation: str = "list_issues",
        gone_ok: bool = False,
    ) -> requests.Response:
        if not url.startswith("http"):
            url = self.base_url + url
        headers = {"If-None-Match": etag} if etag else {}
        self.requests += 1
        try:
            response = self.session.get(
                url, params=params, headers=headers, timeout=ISSUES_TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            if self.on_error is not None:
                self.on_error(operation, type(exc).__name__)
            raise GitHubUnavailable(
                "GitHub could not be reached; urgent issues are checked again on the next poll.",
                detail=f"GET {url}: {type(exc).__name__}",
            ) from exc
        status = response.status_code
        if status in (200, 304) or (gone_ok and status in GONE):
            return response
        if self.on_error is not None:
            self.on_error(operation, str(status))
        wait = _rate_limit_wait(response)
        if wait is not None:
            self.resume_at = time.time() + wait
            raise GitHubUnavailable(
                f"GitHub rate limit reached; urgent issues are checked again in {wait:.0f} s.",
                detail=f"GET {url}: {status}, wait {wait:.0f} s",
            )
        if status >= 500:
            raise GitHubUnavailable(
                f"GitHub answered {status}; urgent issues are checked again on the next poll.",
                detail=f"GET {url}: {status} {response.text[:200]}",
            )
        raise GitHubUnavailable(
            f"GitHub answered {status} for the issues of the repo; check GITHUB_REPO and "
            "that GITHUB_TOKEN may read its issues.",
            detail=f"GET {url}: {status} {response.text[:200]}",
        )


class IssueReader:
    """Single issues, read with conditional requests and kept by ETag: a person's Home tab
    shows up to ten of their issues each time it is drawn, and GitHub counts a 304 against
    no rate limit, so redrawing what has not changed costs none of the 5,000 requests an
    hour (the answer is still GitHub's, as fresh as the draw). Thread-safe."""

    def __init__(self, client: IssuesClient, repo: str, *, max_kept: int = 10_000) -> None:
        self.client = client
        self.repo = repo
        self.max_kept = max_kept
        self._kept: dict[int, tuple[str, GitHubIssue]] = {}
        self._lock = threading.Lock()

    def issue(self, number: int) -> GitHubIssue | None:
        """The issue; None when it is gone (deleted, transferred, or no longer readable:
        that issue only, not GitHub being down). GitHubUnavailable when GitHub is down or
        asked us to wait."""
        if self.client.waiting():
            raise GitHubUnavailable(
                "GitHub asked us to wait (rate limit).", detail=f"issue #{number}: waiting"
            )
        with self._lock:
            kept = self._kept.get(number)
        data, etag = self.client.issue_if_changed(self.repo, number, kept[0] if kept else None)
        if data is None and kept is not None:
            return kept[1]
        if not data:
            with self._lock:
                self._kept.pop(number, None)
            return None
        issue = GitHubIssue.model_validate(data)
        if etag:
            with self._lock:
                if number not in self._kept and len(self._kept) >= self.max_kept:
                    self._kept.pop(next(iter(self._kept)))  # the oldest kept
                self._kept[number] = (etag, issue)
        return issue


GONE = (404, 410)  # an issue deleted, transferred, or no longer readable


def _page(response: requests.Response) -> IssuesPage:
    if response.status_code == 304:
        return IssuesPage(not_modified=True, items=[])
    return IssuesPage(
        not_modified=False,
        items=list(response.json()),
        etag=response.headers.get("ETag"),
        next_url=response.links.get("next", {}).get("url"),
        server_time=_server_time(response),
    )


def _server_time(response: requests.Response) -> dt.datetime | None:
    value = response.headers.get("Date")
    if value:
        try:
            return email.utils.parsedate_to_datetime(value).astimezone(dt.UTC)
        except (TypeError, ValueError):
            pass
    return None


def _rate_limit_wait(response: requests.Response) -> float | None:
    """Seconds to wait when `response` is a rate limit (primary or secondary), else None."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    retry_after = headers.get("Retry-After", "")
    if retry_after.strip().isdigit():
        return float(retry_after)
    reset = headers.get("X-RateLimit-Reset", "")
    if headers.get("X-RateLimit-Remaining") == "0" and reset.isdigit():
        return max(1.0, int(reset) - time.time())
    if response.status_code == 429:
        return 60.0  # GitHub's advice without a header: at least a minute
    return None
