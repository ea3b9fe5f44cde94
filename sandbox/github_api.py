"""A stateful loopback GitHub REST API for what databot does through PyGithub.

    with FakeGitHub() as fake:
        gh = Github(base_url=fake.url, auth=Auth.Token(fake.token),
                    seconds_between_requests=0, seconds_between_writes=0)
        repo = gh.get_repo("acme/analytics")

Covers issues (list/create/get/edit, labels, assignees, comments, the repo-wide comments
listing with `since`), repo labels,
milestones, issue search (`GET /search/issues` with the qualifiers databot uses), the
contents API (for `.github/ISSUE_TEMPLATE/`) and `GET /rate_limit`. Responses carry the
fields of GitHub's documented shapes that PyGithub reads, `Link` headers pointing at this
server, `ETag`s honoured by `If-None-Match` (a 304 does not count against the rate
limit, as on GitHub) and `X-RateLimit-*` headers.

Failure injection: `fail_next`, `rate_limit_next`, `delay_next`, `lose_response_next_create`.
Writes need `Authorization: token ...` / `Bearer ...` (401 otherwise).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import email.utils
import hashlib
import itertools
import json
import logging
import math
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request

from sandbox import LoopbackServer

logger = logging.getLogger(__name__)

RATE_LIMIT = 5000
SEARCH_RATE_LIMIT = 30
SEARCH_MAX_RESULTS = 1000  # GitHub serves only the first 1,000 search results
TITLE_MAX = 256
BODY_MAX = 65536
DOCS = "https://docs.github.com/rest"


@dataclasses.dataclass(frozen=True)
class GHRequest:
    method: str
    path: str  # without the query string, percent-decoded
    query: dict[str, str]
    headers: dict[str, str]
    status: int
    at: dt.datetime
    json: Any = None


class GitHubError(Exception):
    def __init__(self, status: int, message: str, errors: list | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


@dataclasses.dataclass
class _Rule:
    kind: str  # fail | rate_limit | delay | lose_create
    method: str | None
    path_regex: str | None
    times: int
    status: int = 502
    retry_after: int = 0
    seconds: float = 0
    primary: bool = False
    body: Any = None

    def matches(self, method: str, path: str) -> bool:
        if self.times <= 0:
            return False
        if self.method and self.method.upper() != method:
            return False
        return not self.path_regex or re.search(self.path_regex, path) is not None


@dataclasses.dataclass
class _Repo:
    owner: str
    name: str
    id: int
    issues: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # by lower name
    milestones: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    files: dict[str, str] = dataclasses.field(default_factory=dict)
    next_number: int = 1
    next_milestone: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> dt.datetime:
    """ISO 8601 date or timestamp; a bare date is midnight UTC."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _as_time(value: dt.datetime | dt.date | str | None) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        return _parse_time(value)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


# --- search query --------------------------------------------------------------------------

_TOKEN = re.compile(r'(-?)([A-Za-z_-]+):(?:"([^"]*)"|(\S+))|"([^"]*)"|(\S+)')
_QUALIFIERS = {
    "repo", "is", "type", "state", "label", "no", "milestone", "assignee", "author",
    "in", "created", "updated", "closed", "reason", "sort", "user", "org",
}  # fmt: skip


@dataclasses.dataclass
class SearchQuery:
    repos: list[str] = dataclasses.field(default_factory=list)
    owners: list[str] = dataclasses.field(default_factory=list)
    state: str | None = None
    kind: str | None = None  # issue | pr
    labels: list[list[str]] = dataclasses.field(default_factory=list)  # AND of ORs
    not_labels: list[str] = dataclasses.field(default_factory=list)
    no: set[str] = dataclasses.field(default_factory=set)
    milestone: str | None = None
    not_milestone: str | None = None
    assignee: str | None = None
    not_assignee: str | None = None
    author: str | None = None
    fields: set[str] = dataclasses.field(default_factory=set)  # in:title/body/comments
    ranges: list[tuple[str, bool, str]] = dataclasses.field(default_factory=list)
    reason: str | None = None
    sort: str | None = None
    terms: list[tuple[bool, str]] = dataclasses.field(default_factory=list)  # (negated, text)


def parse_query(q: str) -> SearchQuery:
    """GitHub's issue-search syntax, the parts databot uses (see module docstring)."""
    query = SearchQuery()
    for match in _TOKEN.finditer(q):
        negated, key, quoted, bare, phrase, word = match.groups()
        if key is None or key.lower() not in _QUALIFIERS:
            text = phrase if phrase is not None else (word or match.group(0))
            neg = text.startswith("-") and phrase is None and len(text) > 1
            query.terms.append((neg, text[1:] if neg else text))
            continue
        key = key.lower()
        value = quoted if quoted is not None else bare
        neg = negated == "-"
        low = value.lower()
        if key == "repo":
            query.repos.append(low)
        elif key in ("user", "org"):
            query.owners.append(low)
        elif key in ("is", "type", "state"):
            if low in ("open", "closed"):
                query.state = low
            elif low == "issue":
                query.kind = "issue"
            elif low in ("pr", "pull-request"):
                query.kind = "pr"
        elif key == "label":
            if neg:
                query.not_labels.extend(v.strip().lower() for v in value.split(","))
            else:
                query.labels.append([v.strip().lower() for v in value.split(",")])
        elif key == "no":
            query.no.add(low)
        elif key == "milestone":
            if neg:
                query.not_milestone = low
            else:
                query.milestone = low
        elif key == "assignee":
            if neg:
                query.not_assignee = low
            else:
                query.assignee = low
        elif key == "author":
            query.author = low
        elif key == "in":
            query.fields.update(v.strip() for v in low.split(","))
        elif key in ("created", "updated", "closed"):
            query.ranges.append((key, neg, value))
        elif key == "reason":
            query.reason = low.replace(" ", "_").replace("-", "_")
        elif key == "sort":
            query.sort = low
    return query


def _day_bounds(text: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a date (a whole UTC day) or of an instant (one microsecond)."""
    start = _parse_time(text)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        return start, start + dt.timedelta(days=1)
    return start, start + dt.timedelta(microseconds=1)


def in_range(value: dt.datetime | None, spec: str) -> bool:
    """GitHub's range syntax: >=A, >A, <=A, <A, A..B, A..*, *..B, A."""
    if value is None:
        return False
    for op in (">=", "<=", ">", "<"):
        if spec.startswith(op):
            start, end = _day_bounds(spec[len(op) :])
            return {
                ">=": value >= start,
                ">": value >= end,
                "<=": value < end,
                "<": value < start,
            }[op]
    if ".." in spec:
        low, high = spec.split("..", 1)
        ok = True
        if low not in ("", "*"):
            ok = ok and value >= _day_bounds(low)[0]
        if high not in ("", "*"):
            ok = ok and value < _day_bounds(high)[1]
        return ok
    start, end = _day_bounds(spec)
    return start <= value < end


# ---------------------------------------------------------------------------------------------


class FakeGitHub(LoopbackServer):
    def __init__(
        self,
        *,
        repo: str = "acme/analytics",
        token: str | None = None,
        login: str = "databot-app[bot]",
        html_base: str = "https://github.com",
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        # Without a token any token is accepted on writes; with one, only that token.
        self.token = token or "ghp_sandbox_token"
        self._required_token = token
        self.login = login
        self.html_base = html_base.rstrip("/")
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.default_repo = repo
        # Who may be assigned (GitHub: collaborators with access to the repo). None: anyone;
        # a set: any other login in `assignees` is refused with 422, as GitHub does.
        self.assignable: set[str] | None = None
        self.requests: list[GHRequest] = []
        self._repos: dict[str, _Repo] = {}
        self._rules: list[_Rule] = []
        self._ids = itertools.count(1_000_001)
        self._used = {"core": 0, "search": 0}
        self._reset_at = int(time.time()) + 3600
        self._counter_lock = threading.Lock()
        super().__init__()
        self.add_repo(repo)

    # --- seeding ------------------------------------------------------------------------

    def add_repo(self, full_name: str) -> None:
        owner, name = full_name.split("/", 1)
        with self._lock:
            self._repos.setdefault(full_name.lower(), _Repo(owner, name, next(self._ids)))

    def _repo(self, full_name: str | None) -> _Repo:
        found = self._repos.get((full_name or self.default_repo).lower())
        if found is None:
            raise GitHubError(404, "Not Found")
        return found

    def add_label(
        self,
        name: str,
        color: str = "ededed",
        description: str | None = None,
        *,
        repo: str | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            r = self._repo(repo)
            label = r.labels.get(name.lower())
            if label is None:
                label = {
                    "id": next(self._ids),
                    "name": name,
                    "color": color.lstrip("#"),
                    "description": description,
                    "default": False,
                }
                r.labels[name.lower()] = label
            return self._label_json(r, label)

    def create_milestone(
        self,
        title: str,
        *,
        due_on: dt.datetime | dt.date | str | None = None,
        state: str = "open",
        description: str | None = None,
        repo: str | None = None,
    ) -> int:
        """Returns the milestone number."""
        with self._lock:
            r = self._repo(repo)
            return self._new_milestone(r, title, state, description, _as_time(due_on))["number"]

    def create_issue(
        self,
        title: str,
        body: str | None = "",
        *,
        repo: str | None = None,
        state: str = "open",
        state_reason: str | None = None,
        labels: Iterable[str] = (),
        assignees: Iterable[str] = (),
        milestone: int | str | None = None,
        user: str = "octocat",
        created_at: dt.datetime | str | None = None,
        updated_at: dt.datetime | str | None = None,
        closed_at: dt.datetime | str | None = None,
        closed_by: str | None = None,
        comments: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Seed an issue directly (no request recorded). Returns its API JSON.

        milestone is a number or a title (created if missing); labels are created if
        missing; timestamps default to now().
        """
        with self._lock:
            r = self._repo(repo)
            issue = self._insert_issue(
                r,
                title=title,
                body=body,
                state=state,
                state_reason=state_reason,
                labels=list(labels),
                assignees=list(assignees),
                milestone=self._milestone_ref(r, milestone),
                user=user,
                created_at=_as_time(created_at),
                updated_at=_as_time(updated_at),
                closed_at=_as_time(closed_at),
                closed_by=closed_by,
            )
            for text in comments:
                self._add_comment(r, issue, text, user)
            return self._issue_json(r, issue, full=True)

    def add_many_issues(
        self,
        n: int,
        *,
        repo: str | None = None,
        factory: Callable[[int], dict[str, Any]] | None = None,
        start: dt.datetime | None = None,
        spacing: dt.timedelta = dt.timedelta(minutes=17),
    ) -> list[int]:
        """Seed n issues quickly. factory(i) -> create_issue kwargs (title required);
        by default "Issue i", created `spacing` apart ending at now()."""
        start = start or self.now() - spacing * n
        numbers = []
        with self._lock:
            r = self._repo(repo)
            for i in range(n):
                spec = dict(factory(i)) if factory else {"title": f"Issue {i + 1}"}
                spec.setdefault("created_at", start + spacing * i)
                for key in ("created_at", "updated_at", "closed_at"):
                    spec[key] = _as_time(spec.get(key))
                spec["labels"] = list(spec.get("labels", ()))
                spec["assignees"] = list(spec.get("assignees", ()))
                spec["milestone"] = self._milestone_ref(r, spec.get("milestone"))
                spec.pop("repo", None)
                comments = spec.pop("comments", ())
                issue = self._insert_issue(r, **spec)
                for text in comments:
                    self._add_comment(r, issue, text, spec.get("user", "octocat"))
                numbers.append(issue["number"])
        return numbers

    def add_comment(
        self, number: int, body: str, *, user: str = "octocat", repo: str | None = None
    ) -> dict[str, Any]:
        with self._lock:
            r = self._repo(repo)
            issue = self._get_issue(r, number)
            return self._comment_json(r, self._add_comment(r, issue, body, user))

    def update_issue(
        self,
        number: int,
        *,
        repo: str | None = None,
        by: str = "octocat",
        **fields: Any,
    ) -> dict[str, Any]:
        """Change an issue as a person on github.com would (no request recorded): the
        fields of `PATCH /repos/{repo}/issues/{n}` (state, state_reason, assignees,
        labels, milestone as a number or a title, title, body). Returns its API JSON."""
        with self._lock:
            r = self._repo(repo)
            if "milestone" in fields and fields["milestone"] is not None:
                fields["milestone"] = self._milestone_ref(r, fields["milestone"])
            self._edit_issue(r, str(number), fields)
            issue = self._get_issue(r, number)
            if issue["state"] == "closed" and fields.get("state") == "closed":
                issue["closed_by"] = by
            return self._issue_json(r, issue, full=True)

    def seed_file(self, path: str, text: str, *, repo: str | None = None) -> None:
        """A file for the contents API, e.g. `.github/ISSUE_TEMPLATE/data-request.yml`."""
        with self._lock:
            self._repo(repo).files[path.strip("/")] = text

    # --- reading state ----------------------------------------------------------------

    def issue(self, number: int, *, repo: str | None = None) -> dict[str, Any]:
        """The issue as GET /repos/{repo}/issues/{number} returns it (for webhook payloads)."""
        with self._lock:
            r = self._repo(repo)
            return self._issue_json(r, self._get_issue(r, number), full=True)

    def issues(self, *, repo: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            r = self._repo(repo)
            return [self._issue_json(r, i, full=True) for i in r.issues.values()]

    def comments(self, number: int, *, repo: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            r = self._repo(repo)
            return [self._comment_json(r, c) for c in r.comments.get(number, [])]

    def repo_json(self, repo: str | None = None) -> dict[str, Any]:
        with self._lock:
            return self._repo_json(self._repo(repo))

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matched (method exactly, path as a regex searched)."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path is None or re.search(path, r.path))
            )

    def find_requests(self, method: str | None = None, path: str | None = None) -> list[GHRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path is None or re.search(path, r.path))
            ]

    @property
    def rate_limit_used(self) -> int:
        """Requests counted against the core rate limit (304s are not)."""
        return self._used["core"]

    # --- failure injection ------------------------------------------------------------

    def fail_next(
        self,
        method: str | None = None,
        path_regex: str | None = None,
        status: int = 502,
        times: int = 1,
        body: Any = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (nothing is changed)."""
        with self._lock:
            self._rules.append(_Rule("fail", method, path_regex, times, status=status, body=body))

    def rate_limit_next(
        self,
        retry_after: int = 2,
        *,
        status: int = 403,
        primary: bool = False,
        method: str | None = None,
        path_regex: str | None = None,
        times: int = 1,
    ) -> None:
        """Rate-limit the next matching request(s) as GitHub does.

        Secondary (default): `status` with `Retry-After: retry_after`. Primary: 403 with
        `x-ratelimit-remaining: 0` and `x-ratelimit-reset` = now + retry_after.
        """
        with self._lock:
            self._rules.append(
                _Rule(
                    "rate_limit",
                    method,
                    path_regex,
                    times,
                    status=status,
                    retry_after=retry_after,
                    primary=primary,
                )
            )

    def delay_next(
        self,
        seconds: float,
        *,
        method: str | None = None,
        path_regex: str | None = None,
        times: int = 1,
    ) -> None:
        with self._lock:
            self._rules.append(_Rule("delay", method, path_regex, times, seconds=seconds))

    def lose_response_next_create(self, times: int = 1) -> None:
        """The next issue creation succeeds but is answered 502, as when the response is
        lost on the way back: a client that retries creates a duplicate."""
        self.lose_response_next("POST", r"^/repos/[^/]+/[^/]+/issues$", times)

    def lose_response_next(self, method: str, path_regex: str, times: int = 1) -> None:
        """The next matching request that creates something (201: an issue, a comment)
        succeeds but is answered 502, as when the response is lost on the way back."""
        with self._lock:
            self._rules.append(_Rule("lose_create", method, path_regex, times, status=502))

    def _take_rule(self, kind: str, method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.kind == kind and rule.matches(method, path):
                    rule.times -= 1
                    return rule
        return None

    # --- JSON shapes ------------------------------------------------------------------

    def _user_json(self, login: str | None) -> dict[str, Any] | None:
        if login is None:
            return None
        user_id = int(hashlib.sha1(login.encode()).hexdigest()[:7], 16)
        return {
            "login": login,
            "id": user_id,
            "node_id": f"U_{user_id}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
            "url": f"{self.url}/users/{urllib.parse.quote(login)}",
            "html_url": f"{self.html_base}/{login}",
            "type": "Bot" if login.endswith("[bot]") else "User",
            "site_admin": False,
        }

    def _repo_json(self, r: _Repo) -> dict[str, Any]:
        open_count = sum(1 for i in r.issues.values() if i["state"] == "open")
        return {
            "id": r.id,
            "node_id": f"R_{r.id}",
            "name": r.name,
            "full_name": r.full_name,
            "private": True,
            "owner": {**(self._user_json(r.owner) or {}), "type": "Organization"},
            "html_url": f"{self.html_base}/{r.full_name}",
            "description": "Data & Analytics requests and work",
            "fork": False,
            "url": f"{self.url}/repos/{r.full_name}",
            "issues_url": f"{self.url}/repos/{r.full_name}/issues{{/number}}",
            "labels_url": f"{self.url}/repos/{r.full_name}/labels{{/name}}",
            "milestones_url": f"{self.url}/repos/{r.full_name}/milestones{{/number}}",
            "has_issues": True,
            "open_issues_count": open_count,
            "open_issues": open_count,
            "default_branch": "main",
            "archived": False,
            "disabled": False,
            "visibility": "private",
            "created_at": "2020-01-06T17:00:00Z",
            "updated_at": _iso(self.now()),
            "pushed_at": _iso(self.now()),
            "permissions": {"admin": False, "push": True, "pull": True},
        }

    def _label_json(self, r: _Repo, label: dict[str, Any]) -> dict[str, Any]:
        name = urllib.parse.quote(label["name"], safe="")
        return {
            "id": label["id"],
            "node_id": f"LA_{label['id']}",
            "url": f"{self.url}/repos/{r.full_name}/labels/{name}",
            "name": label["name"],
            "color": label["color"],
            "default": label["default"],
            "description": label["description"],
        }

    def _milestone_json(self, r: _Repo, m: dict[str, Any]) -> dict[str, Any]:
        issues = [i for i in r.issues.values() if i["milestone"] == m["number"]]
        return {
            "url": f"{self.url}/repos/{r.full_name}/milestones/{m['number']}",
            "html_url": f"{self.html_base}/{r.full_name}/milestone/{m['number']}",
            "labels_url": f"{self.url}/repos/{r.full_name}/milestones/{m['number']}/labels",
            "id": m["id"],
            "node_id": f"MI_{m['id']}",
            "number": m["number"],
            "title": m["title"],
            "description": m["description"],
            "creator": self._user_json(m["creator"]),
            "open_issues": sum(1 for i in issues if i["state"] == "open"),
            "closed_issues": sum(1 for i in issues if i["state"] == "closed"),
            "state": m["state"],
            "created_at": _iso(m["created_at"]),
            "updated_at": _iso(m["updated_at"]),
            "due_on": _iso(m["due_on"]),
            "closed_at": _iso(m["closed_at"]),
        }

    def _issue_json(self, r: _Repo, issue: dict[str, Any], *, full: bool = False) -> dict:
        number = issue["number"]
        api = f"{self.url}/repos/{r.full_name}/issues/{number}"
        assignees = [self._user_json(a) for a in issue["assignees"]]
        labels = [
            self._label_json(r, r.labels[name.lower()])
            for name in issue["labels"]
            if name.lower() in r.labels
        ]
        milestone = r.milestones.get(issue["milestone"]) if issue["milestone"] else None
        data = {
            "url": api,
            "repository_url": f"{self.url}/repos/{r.full_name}",
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments",
            "events_url": f"{api}/events",
            "html_url": f"{self.html_base}/{r.full_name}/issues/{number}",
            "id": issue["id"],
            "node_id": f"I_{issue['id']}",
            "number": number,
            "title": issue["title"],
            "user": self._user_json(issue["user"]),
            "labels": labels,
            "state": issue["state"],
            "locked": False,
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "milestone": self._milestone_json(r, milestone) if milestone else None,
            "comments": len(r.comments.get(number, [])),
            "created_at": _iso(issue["created_at"]),
            "updated_at": _iso(issue["updated_at"]),
            "closed_at": _iso(issue["closed_at"]),
            "author_association": "MEMBER",
            "active_lock_reason": None,
            "body": issue["body"],
            "reactions": {"url": f"{api}/reactions", "total_count": 0},
            "timeline_url": f"{api}/timeline",
            "state_reason": issue["state_reason"],
        }
        if full:
            # Only the single-issue endpoint says who closed it.
            data["closed_by"] = self._user_json(issue["closed_by"])
        return data

    def _comment_json(self, r: _Repo, c: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": c["id"],
            "node_id": f"IC_{c['id']}",
            "url": f"{self.url}/repos/{r.full_name}/issues/comments/{c['id']}",
            "html_url": f"{self.html_base}/{r.full_name}/issues/{c['issue']}"
            f"#issuecomment-{c['id']}",
            "issue_url": f"{self.url}/repos/{r.full_name}/issues/{c['issue']}",
            "body": c["body"],
            "user": self._user_json(c["user"]),
            "created_at": _iso(c["created_at"]),
            "updated_at": _iso(c["created_at"]),
            "author_association": "MEMBER",
            "performed_via_github_app": None,
        }

    # --- state changes ----------------------------------------------------------------

    def _new_milestone(
        self,
        r: _Repo,
        title: str,
        state: str,
        description: str | None,
        due_on: dt.datetime | None,
    ) -> dict[str, Any]:
        if any(m["title"] == title for m in r.milestones.values()):
            raise GitHubError(
                422,
                "Validation Failed",
                [{"resource": "Milestone", "code": "already_exists", "field": "title"}],
            )
        now = self.now()
        milestone = {
            "id": next(self._ids),
            "number": r.next_milestone,
            "title": title,
            "description": description,
            "creator": self.login,
            "state": state,
            "created_at": now,
            "updated_at": now,
            "due_on": due_on,
            "closed_at": now if state == "closed" else None,
        }
        r.milestones[r.next_milestone] = milestone
        r.next_milestone += 1
        return milestone

    def _milestone_ref(self, r: _Repo, ref: int | str | None) -> int | None:
        if ref is None:
            return None
        if isinstance(ref, int):
            if ref not in r.milestones:
                raise ValueError(f"no milestone {ref}")
            return ref
        for m in r.milestones.values():
            if m["title"] == ref:
                return m["number"]
        return self._new_milestone(r, ref, "open", None, None)["number"]

    def _ensure_labels(self, r: _Repo, names: list[str]) -> list[str]:
        # GitHub creates labels that do not exist yet when they are added to an issue.
        result = []
        for name in names:
            if name.lower() not in r.labels:
                r.labels[name.lower()] = {
                    "id": next(self._ids),
                    "name": name,
                    "color": "ededed",
                    "description": None,
                    "default": False,
                }
            canonical = r.labels[name.lower()]["name"]
            if canonical.lower() not in (n.lower() for n in result):
                result.append(canonical)
        return result

    def _insert_issue(
        self,
        r: _Repo,
        *,
        title: str,
        body: str | None = "",
        state: str = "open",
        state_reason: str | None = None,
        labels: list[str] | None = None,
        assignees: list[str] | None = None,
        milestone: int | None = None,
        user: str = "octocat",
        created_at: dt.datetime | None = None,
        updated_at: dt.datetime | None = None,
        closed_at: dt.datetime | None = None,
        closed_by: str | None = None,
    ) -> dict[str, Any]:
        created = created_at or self.now()
        if state == "closed":
            closed_at = closed_at or max(created, updated_at or created)
            state_reason = state_reason or "completed"
            closed_by = closed_by or user
        issue = {
            "id": next(self._ids),
            "number": r.next_number,
            "title": title,
            "body": body,
            "state": state,
            "state_reason": state_reason,
            "labels": self._ensure_labels(r, labels or []),
            "assignees": list(dict.fromkeys(assignees or [])),
            "milestone": milestone,
            "user": user,
            "created_at": created,
            "updated_at": updated_at or max(created, closed_at or created),
            "closed_at": closed_at if state == "closed" else None,
            "closed_by": closed_by if state == "closed" else None,
        }
        r.issues[issue["number"]] = issue
        r.next_number += 1
        return issue

    def _add_comment(self, r: _Repo, issue: dict, body: str, user: str) -> dict[str, Any]:
        comment = {
            "id": next(self._ids),
            "issue": issue["number"],
            "body": body,
            "user": user,
            "created_at": self.now(),
        }
        r.comments.setdefault(issue["number"], []).append(comment)
        issue["updated_at"] = max(issue["updated_at"], comment["created_at"])
        return comment

    def _get_issue(self, r: _Repo, number: int) -> dict[str, Any]:
        issue = r.issues.get(int(number))
        if issue is None:
            raise GitHubError(404, "Not Found")
        return issue

    # --- HTTP plumbing ----------------------------------------------------------------

    def _json_body(self) -> Any:
        raw = request.get_data()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise GitHubError(400, "Problems parsing JSON") from exc

    def _page(
        self, items: list, path: str, query: dict[str, str], *, max_items: int | None = None
    ) -> tuple[list, dict[str, str]]:
        """One page of items and its Link header (URLs on this server, like GitHub's)."""
        try:
            per_page = max(1, min(int(query.get("per_page") or 30), 100))
            page = max(1, int(query.get("page") or 1))
        except ValueError as exc:
            raise GitHubError(422, "Validation Failed") from exc
        reachable = len(items) if max_items is None else min(len(items), max_items)
        last = max(1, math.ceil(reachable / per_page))
        chunk = items[(page - 1) * per_page : page * per_page] if page <= last else []

        def link(n: int) -> str:
            params = {**query, "per_page": str(per_page), "page": str(n)}
            return f"{self.url}{path}?{urllib.parse.urlencode(params)}"

        rels = []
        if page > 1:
            rels += [f'<{link(page - 1)}>; rel="prev"', f'<{link(1)}>; rel="first"']
        if page < last:
            rels += [f'<{link(page + 1)}>; rel="next"', f'<{link(last)}>; rel="last"']
        return chunk, ({"Link": ", ".join(rels)} if rels else {})

    def _auth(self, method: str) -> str | None:
        header = request.headers.get("Authorization", "")
        token = None
        for scheme in ("token ", "bearer "):
            if header.lower().startswith(scheme):
                token = header[len(scheme) :].strip()
        if header and not token:
            raise GitHubError(401, "Bad credentials")
        if token and self._required_token and token != self._required_token:
            raise GitHubError(401, "Bad credentials")
        if method in ("POST", "PATCH", "PUT", "DELETE") and not token:
            raise GitHubError(401, "Requires authentication")
        return token

    def _rate_headers(self, resource: str) -> dict[str, str]:
        limit = SEARCH_RATE_LIMIT if resource == "search" else RATE_LIMIT
        used = self._used[resource]
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - used)),
            "X-RateLimit-Reset": str(self._reset_at),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": resource,
        }

    def _respond(self, status: int, body: Any, headers: dict[str, str]) -> Response:
        text = "" if body is None else json.dumps(body)
        all_headers = {
            # GitHub's clock: the one its timestamps (updated_at, `since`) are on.
            "Date": email.utils.format_datetime(self.now().astimezone(dt.UTC), usegmt=True),
            "X-GitHub-Request-Id": secrets.token_hex(8).upper(),
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            **headers,
        }
        return Response(
            text, status=status, headers=all_headers, content_type="application/json; charset=utf-8"
        )

    def _handle(self) -> Response:
        method = request.method
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        raw_path = raw.split("?", 1)[0]
        path = urllib.parse.unquote(raw_path)
        query = request.args.to_dict()
        resource = "search" if raw_path.startswith("/search/") else "core"
        body_json: Any = None
        status, body, headers = 500, None, {}
        delay = self._take_rule("delay", method, path)
        if delay is not None:
            time.sleep(delay.seconds)
        try:
            self._auth(method)
            status, body, headers = self._injected(method, path, resource)
            if status == 0:
                if method != "GET":
                    body_json = self._json_body()
                with self._lock:
                    status, body, headers = self._route(method, raw_path, query, body_json)
                lost = status == 201 and self._take_rule("lose_create", method, path)
                if lost:
                    status, body, headers = 502, {"message": "Server Error"}, {}
        except GitHubError as exc:
            status, headers = exc.status, {}
            body = {"message": exc.message, "documentation_url": DOCS, "status": str(exc.status)}
            if exc.errors:
                body["errors"] = exc.errors

        counted = True
        if method == "GET" and status == 200:
            etag = 'W/"' + hashlib.sha1(json.dumps(body).encode()).hexdigest() + '"'
            headers = {**headers, "ETag": etag}
            if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
                # GitHub does not count a 304 against the rate limit.
                status, body, counted = 304, None, False
        with self._counter_lock:
            if counted and status not in (401,):
                self._used[resource] += 1
            rate = self._rate_headers(resource)
        headers = {**rate, **headers}
        with self._lock:
            self.requests.append(
                GHRequest(
                    method,
                    path,
                    query,
                    dict(request.headers.items()),
                    status,
                    dt.datetime.now(dt.UTC),
                    body_json,
                )
            )
            self._changed.notify_all()
        return self._respond(status, body, headers)

    def _injected(self, method: str, path: str, resource: str) -> tuple[int, Any, dict]:
        """(0, None, {}) when no failure is injected for this request."""
        rule = self._take_rule("fail", method, path)
        if rule is not None:
            body = rule.body
            if body is None:
                body = {"message": "Server Error" if rule.status >= 500 else "Injected failure"}
            return rule.status, body, {}
        rule = self._take_rule("rate_limit", method, path)
        if rule is not None:
            if rule.primary:
                reset = int(time.time()) + rule.retry_after
                return (
                    403,
                    {
                        "message": "API rate limit exceeded for installation ID 1.",
                        "documentation_url": DOCS + "/overview/rate-limits-for-the-rest-api",
                    },
                    {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
                )
            return (
                rule.status,
                {
                    "message": "You have exceeded a secondary rate limit. Please wait a few "
                    "minutes before you try again.",
                    "documentation_url": DOCS + "/overview/rate-limits-for-the-rest-api",
                },
                {"Retry-After": str(rule.retry_after)},
            )
        return 0, None, {}

    # --- routes -------------------------------------------------------------------------

    _ROUTES: list[tuple[str, str, str]] = [
        ("GET", r"/rate_limit", "_get_rate_limit"),
        ("GET", r"/user", "_get_user"),
        ("GET", r"/search/issues", "_search_issues"),
        ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)", "_get_repo"),
        ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues", "_list_issues"),
        ("POST", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues", "_create_issue"),
        ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/comments", "_list_repo_comments"),
        ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)", "_get_issue_route"),
        ("PATCH", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)", "_edit_issue"),
        ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)/labels", "_issue_labels"),
        ("POST", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)/labels", "_add_labels"),
        ("PUT", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)/labels", "_set_labels"),
        ("DELETE", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)/labels", "_clear_labels"),
        (
            "DELETE",
            r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)/labels/(?P<name>[^/]+)",
            "_remove_label",
        ),
        (
            "POST",
            r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)/assignees",
            "_add_assignees",
        ),
        (
            "DELETE",
            r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)/assignees",
            "_remove_assignees",
        ),
        ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)/comments", "_list_comments"),
        (
            "POST",
            r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)/comments",
            "_create_comment",
        ),
        ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/labels", "_list_labels"),
        ("POST", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/labels", "_create_label"),
        ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/labels/(?P<name>[^/]+)", "_get_label"),
        ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/milestones", "_list_milestones"),
        ("POST", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/milestones", "_create_milestone_route"),
        ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/milestones/(?P<n>\d+)", "_get_milestone"),
        ("PATCH", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/milestones/(?P<n>\d+)", "_edit_milestone"),
        (
            "GET",
            r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/contents(?:/(?P<file_path>.*))?",
            "_get_contents",
        ),
    ]
    _COMPILED = [(m, re.compile(p + r"/?$"), h) for m, p, h in _ROUTES]

    def _route(
        self, method: str, raw_path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        # An unknown path and a known path with the wrong method are both 404 on GitHub.
        for route_method, pattern, handler in self._COMPILED:
            match = pattern.match(raw_path)
            if not match or route_method != method:
                continue
            params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items() if v}
            if "o" in params:
                params["repo"] = self._repo(f"{params.pop('o')}/{params.pop('r')}")
            result = getattr(self, handler)(query=query, body=body, path=raw_path, **params)
            if len(result) == 2:
                return result[0], result[1], {}
            return result
        raise GitHubError(404, "Not Found")

    def _get_rate_limit(self, **_: Any) -> tuple[int, Any]:
        def res(name: str) -> dict[str, int]:
            limit = SEARCH_RATE_LIMIT if name == "search" else RATE_LIMIT
            used = self._used[name]
            return {
                "limit": limit,
                "used": used,
                "remaining": max(0, limit - used),
                "reset": self._reset_at,
            }

        core = res("core")
        return 200, {"resources": {"core": core, "search": res("search")}, "rate": core}

    def _get_user(self, **_: Any) -> tuple[int, Any]:
        return 200, self._user_json(self.login)

    def _get_repo(self, repo: _Repo, **_: Any) -> tuple[int, Any]:
        return 200, self._repo_json(repo)

    # issues

    def _list_issues(self, repo: _Repo, query: dict[str, str], path: str, **_: Any) -> tuple:
        state = query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise GitHubError(422, "Validation Failed")
        issues = [i for i in repo.issues.values() if state == "all" or i["state"] == state]
        if query.get("labels"):
            wanted = {n.strip().lower() for n in query["labels"].split(",") if n.strip()}
            issues = [i for i in issues if wanted <= {n.lower() for n in i["labels"]}]
        if query.get("since"):
            since = _parse_time(query["since"])
            issues = [i for i in issues if i["updated_at"] >= since]
        milestone = query.get("milestone")
        if milestone == "none":
            issues = [i for i in issues if i["milestone"] is None]
        elif milestone == "*":
            issues = [i for i in issues if i["milestone"] is not None]
        elif milestone:
            if not milestone.isdigit() or int(milestone) not in repo.milestones:
                raise GitHubError(404, "Not Found")
            issues = [i for i in issues if i["milestone"] == int(milestone)]
        assignee = query.get("assignee")
        if assignee == "none":
            issues = [i for i in issues if not i["assignees"]]
        elif assignee == "*":
            issues = [i for i in issues if i["assignees"]]
        elif assignee:
            issues = [i for i in issues if assignee.lower() in map(str.lower, i["assignees"])]
        if query.get("creator"):
            issues = [i for i in issues if i["user"].lower() == query["creator"].lower()]
        issues = self._sorted(
            repo, issues, query.get("sort", "created"), query.get("direction", "desc")
        )
        page, headers = self._page(issues, path, query)
        return 200, [self._issue_json(repo, i) for i in page], headers

    def _sorted(self, repo: _Repo, issues: list[dict], sort: str, direction: str) -> list[dict]:
        if sort == "updated":
            key: Callable[[dict], Any] = lambda i: (i["updated_at"], i["number"])  # noqa: E731
        elif sort == "comments":
            key = lambda i: (len(repo.comments.get(i["number"], [])), i["number"])  # noqa: E731
        else:
            key = lambda i: (i["created_at"], i["number"])  # noqa: E731
        return sorted(issues, key=key, reverse=direction != "asc")

    def _validate_issue_fields(self, repo: _Repo, body: dict[str, Any]) -> None:
        errors = []
        if "title" in body:
            title = body["title"]
            if title is None or str(title).strip() == "":
                errors.append({"resource": "Issue", "code": "missing_field", "field": "title"})
            elif len(str(title)) > TITLE_MAX:
                errors.append(
                    {
                        "resource": "Issue",
                        "code": "custom",
                        "field": "title",
                        "message": f"title is too long (maximum is {TITLE_MAX} characters)",
                    }
                )
        if body.get("body") is not None and len(str(body["body"])) > BODY_MAX:
            errors.append(
                {
                    "resource": "Issue",
                    "code": "custom",
                    "field": "body",
                    "message": f"body is too long (maximum is {BODY_MAX} characters)",
                }
            )
        milestone = body.get("milestone")
        if milestone is not None and (
            not str(milestone).isdigit() or int(milestone) not in repo.milestones
        ):
            errors.append(
                {"value": milestone, "resource": "Issue", "field": "milestone", "code": "invalid"}
            )
        if self.assignable is not None:
            allowed = {login.lower() for login in self.assignable}
            for login in [*(body.get("assignees") or []), body.get("assignee")]:
                if login and str(login).lower() not in allowed:
                    error = {"value": login, "resource": "Issue", "field": "assignees"}
                    errors.append({**error, "code": "invalid"})
        if errors:
            raise GitHubError(422, "Validation Failed", errors)

    @staticmethod
    def _label_names(value: Any) -> list[str]:
        if isinstance(value, dict):
            value = value.get("labels", [])
        if isinstance(value, str):
            value = [value]
        names = []
        for item in value or []:
            names.append(item["name"] if isinstance(item, dict) else str(item))
        return names

    def _create_issue(self, repo: _Repo, body: Any, **_: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or "title" not in body:
            raise GitHubError(
                422,
                'Invalid request.\n\n"title" wasn\'t supplied.',
            )
        self._validate_issue_fields(repo, body)
        assignees = list(body.get("assignees") or [])
        if body.get("assignee"):
            assignees.insert(0, body["assignee"])
        issue = self._insert_issue(
            repo,
            title=str(body["title"]),
            body=body.get("body"),
            labels=self._label_names(body.get("labels")),
            assignees=assignees,
            milestone=int(body["milestone"]) if body.get("milestone") is not None else None,
            user=self.login,
        )
        return 201, self._issue_json(repo, issue, full=True)

    def _get_issue_route(self, repo: _Repo, n: str, **_: Any) -> tuple[int, Any]:
        return 200, self._issue_json(repo, self._get_issue(repo, int(n)), full=True)

    def _edit_issue(self, repo: _Repo, n: str, body: Any, **_: Any) -> tuple[int, Any]:
        issue = self._get_issue(repo, int(n))
        if not isinstance(body, dict):
            raise GitHubError(400, "Problems parsing JSON")
        self._validate_issue_fields(repo, body)
        if "state" in body and body["state"] not in ("open", "closed"):
            raise GitHubError(
                422,
                "Validation Failed",
                [{"resource": "Issue", "code": "invalid", "field": "state"}],
            )
        reason = body.get("state_reason")
        if reason is not None and reason not in ("completed", "not_planned", "reopened"):
            raise GitHubError(
                422,
                "Validation Failed",
                [{"resource": "Issue", "code": "invalid", "field": "state_reason"}],
            )
        now = self.now()
        if "title" in body:
            issue["title"] = str(body["title"])
        if "body" in body:
            issue["body"] = body["body"]
        if "labels" in body:
            issue["labels"] = self._ensure_labels(repo, self._label_names(body["labels"]))
        if "assignees" in body:
            issue["assignees"] = list(dict.fromkeys(body["assignees"] or []))
        if "assignee" in body:
            issue["assignees"] = [body["assignee"]] if body["assignee"] else []
        if "milestone" in body:
            issue["milestone"] = int(body["milestone"]) if body["milestone"] is not None else None
        new_state = body.get("state", issue["state"])
        if new_state == "closed" and issue["state"] != "closed":
            issue.update(
                state="closed",
                closed_at=now,
                closed_by=self.login,
                state_reason=reason or "completed",
            )
        elif new_state == "open" and issue["state"] == "closed":
            issue.update(state="open", closed_at=None, closed_by=None, state_reason="reopened")
        elif reason is not None and issue["state"] == "closed":
            issue["state_reason"] = reason
        issue["updated_at"] = now
        return 200, self._issue_json(repo, issue, full=True)

    # issue labels / assignees

    def _labels_of(self, repo: _Repo, issue: dict) -> list[dict[str, Any]]:
        return [self._label_json(repo, repo.labels[n.lower()]) for n in issue["labels"]]

    def _issue_labels(self, repo: _Repo, n: str, query: dict, path: str, **_: Any) -> tuple:
        labels = self._labels_of(repo, self._get_issue(repo, int(n)))
        page, headers = self._page(labels, path, query)
        return 200, page, headers

    def _add_labels(self, repo: _Repo, n: str, body: Any, **_: Any) -> tuple[int, Any]:
        issue = self._get_issue(repo, int(n))
        issue["labels"] = self._ensure_labels(repo, issue["labels"] + self._label_names(body))
        issue["updated_at"] = self.now()
        return 200, self._labels_of(repo, issue)

    def _set_labels(self, repo: _Repo, n: str, body: Any, **_: Any) -> tuple[int, Any]:
        issue = self._get_issue(repo, int(n))
        issue["labels"] = self._ensure_labels(repo, self._label_names(body))
        issue["updated_at"] = self.now()
        return 200, self._labels_of(repo, issue)

    def _clear_labels(self, repo: _Repo, n: str, **_: Any) -> tuple[int, Any]:
        issue = self._get_issue(repo, int(n))
        issue["labels"] = []
        issue["updated_at"] = self.now()
        return 204, None

    def _remove_label(self, repo: _Repo, n: str, name: str, **_: Any) -> tuple[int, Any]:
        issue = self._get_issue(repo, int(n))
        kept = [label for label in issue["labels"] if label.lower() != name.lower()]
        if len(kept) == len(issue["labels"]):
            raise GitHubError(404, "Label does not exist")
        issue["labels"] = kept
        issue["updated_at"] = self.now()
        return 200, self._labels_of(repo, issue)

    def _add_assignees(self, repo: _Repo, n: str, body: Any, **_: Any) -> tuple[int, Any]:
        issue = self._get_issue(repo, int(n))
        issue["assignees"] = list(
            dict.fromkeys(issue["assignees"] + list(body.get("assignees", [])))
        )
        issue["updated_at"] = self.now()
        return 201, self._issue_json(repo, issue, full=True)

    def _remove_assignees(self, repo: _Repo, n: str, body: Any, **_: Any) -> tuple[int, Any]:
        issue = self._get_issue(repo, int(n))
        gone = {a.lower() for a in body.get("assignees", [])}
        issue["assignees"] = [a for a in issue["assignees"] if a.lower() not in gone]
        issue["updated_at"] = self.now()
        return 200, self._issue_json(repo, issue, full=True)

    # comments

    def _list_comments(self, repo: _Repo, n: str, query: dict, path: str, **_: Any) -> tuple:
        self._get_issue(repo, int(n))
        comments = repo.comments.get(int(n), [])
        if query.get("since"):
            since = _parse_time(query["since"])
            comments = [c for c in comments if c["created_at"] >= since]
        page, headers = self._page(comments, path, query)
        return 200, [self._comment_json(repo, c) for c in page], headers

    def _list_repo_comments(self, repo: _Repo, query: dict, path: str, **_: Any) -> tuple:
        """`GET /repos/{o}/{r}/issues/comments`: every issue's comments; `since` filters on
        updated_at (comments are not edited here, so it is created_at); `sort` created or
        updated, `direction` asc (default) or desc, as GitHub documents."""
        comments = [c for listed in repo.comments.values() for c in listed]
        if query.get("since"):
            since = _parse_time(query["since"])
            comments = [c for c in comments if c["created_at"] >= since]
        sort = query.get("sort", "created")
        if sort not in ("created", "updated"):
            raise GitHubError(422, "Validation Failed")
        comments.sort(
            key=lambda c: (c["created_at"], c["id"]), reverse=query.get("direction") == "desc"
        )
        page, headers = self._page(comments, path, query)
        return 200, [self._comment_json(repo, c) for c in page], headers

    def _create_comment(self, repo: _Repo, n: str, body: Any, **_: Any) -> tuple[int, Any]:
        issue = self._get_issue(repo, int(n))
        if not isinstance(body, dict) or not body.get("body"):
            raise GitHubError(
                422,
                "Validation Failed",
                [{"resource": "IssueComment", "code": "missing_field", "field": "body"}],
            )
        if len(body["body"]) > BODY_MAX:
            raise GitHubError(
                422,
                "Validation Failed",
                [{"resource": "IssueComment", "code": "custom", "field": "body"}],
            )
        return 201, self._comment_json(
            repo, self._add_comment(repo, issue, body["body"], self.login)
        )

    # repo labels

    def _list_labels(self, repo: _Repo, query: dict, path: str, **_: Any) -> tuple:
        labels = [self._label_json(repo, label) for label in repo.labels.values()]
        page, headers = self._page(labels, path, query)
        return 200, page, headers

    def _create_label(self, repo: _Repo, body: Any, **_: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not body.get("name"):
            raise GitHubError(
                422,
                "Validation Failed",
                [{"resource": "Label", "code": "missing_field", "field": "name"}],
            )
        if body["name"].lower() in repo.labels:
            raise GitHubError(
                422,
                "Validation Failed",
                [{"resource": "Label", "code": "already_exists", "field": "name"}],
            )
        color = str(body.get("color") or "ededed").lstrip("#")
        if not re.fullmatch(r"[0-9a-fA-F]{6}", color):
            raise GitHubError(
                422,
                "Validation Failed",
                [{"resource": "Label", "code": "invalid", "field": "color"}],
            )
        label = {
            "id": next(self._ids),
            "name": body["name"],
            "color": color,
            "description": body.get("description"),
            "default": False,
        }
        repo.labels[body["name"].lower()] = label
        return 201, self._label_json(repo, label)

    def _get_label(self, repo: _Repo, name: str, **_: Any) -> tuple[int, Any]:
        label = repo.labels.get(name.lower())
        if label is None:
            raise GitHubError(404, "Not Found")
        return 200, self._label_json(repo, label)

    # milestones

    def _list_milestones(self, repo: _Repo, query: dict, path: str, **_: Any) -> tuple:
        state = query.get("state", "open")
        found = [m for m in repo.milestones.values() if state == "all" or m["state"] == state]
        far = dt.datetime.max.replace(tzinfo=dt.UTC)
        if query.get("sort", "due_on") == "due_on":
            found.sort(key=lambda m: (m["due_on"] or far, m["number"]))
        else:
            found.sort(key=lambda m: m["number"])
        if query.get("direction", "asc") == "desc":
            found.reverse()
        page, headers = self._page(found, path, query)
        return 200, [self._milestone_json(repo, m) for m in page], headers

    def _create_milestone_route(self, repo: _Repo, body: Any, **_: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not body.get("title"):
            raise GitHubError(
                422,
                "Validation Failed",
                [{"resource": "Milestone", "code": "missing_field", "field": "title"}],
            )
        due_on = _parse_time(body["due_on"]) if body.get("due_on") else None
        milestone = self._new_milestone(
            repo, body["title"], body.get("state", "open"), body.get("description"), due_on
        )
        return 201, self._milestone_json(repo, milestone)

    def _get_milestone(self, repo: _Repo, n: str, **_: Any) -> tuple[int, Any]:
        milestone = repo.milestones.get(int(n))
        if milestone is None:
            raise GitHubError(404, "Not Found")
        return 200, self._milestone_json(repo, milestone)

    def _edit_milestone(self, repo: _Repo, n: str, body: Any, **_: Any) -> tuple[int, Any]:
        milestone = repo.milestones.get(int(n))
        if milestone is None:
            raise GitHubError(404, "Not Found")
        for key in ("title", "description"):
            if key in body:
                milestone[key] = body[key]
        if "due_on" in body:
            milestone["due_on"] = _parse_time(body["due_on"]) if body["due_on"] else None
        if body.get("state") in ("open", "closed"):
            milestone["state"] = body["state"]
            milestone["closed_at"] = self.now() if body["state"] == "closed" else None
        milestone["updated_at"] = self.now()
        return 200, self._milestone_json(repo, milestone)

    # contents

    def _content_entry(self, repo: _Repo, path: str, kind: str) -> dict[str, Any]:
        text = repo.files.get(path, "")
        raw = text.encode("utf-8")
        sha = (
            hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()
            if kind == "file"
            else (hashlib.sha1(path.encode()).hexdigest())
        )
        api = f"{self.url}/repos/{repo.full_name}/contents/{urllib.parse.quote(path)}"
        html = f"{self.html_base}/{repo.full_name}/{'blob' if kind == 'file' else 'tree'}/main/"
        html += path
        return {
            "type": kind,
            "size": len(raw) if kind == "file" else 0,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": api + "?ref=main",
            "git_url": f"{self.url}/repos/{repo.full_name}/git/blobs/{sha}",
            "html_url": html,
            "download_url": (
                f"https://raw.githubusercontent.com/{repo.full_name}/main/{path}"
                if kind == "file"
                else None
            ),
            "_links": {"self": api + "?ref=main", "git": None, "html": html},
        }

    def _get_contents(self, repo: _Repo, file_path: str = "", **_: Any) -> tuple[int, Any]:
        path = file_path.strip("/")
        if path in repo.files:
            entry = self._content_entry(repo, path, "file")
            encoded = base64.b64encode(repo.files[path].encode("utf-8")).decode()
            # GitHub wraps the base64 content in 60-character lines.
            entry["content"] = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
            entry["content"] += "\n"
            entry["encoding"] = "base64"
            return 200, entry
        prefix = path + "/" if path else ""
        children: dict[str, str] = {}
        for file_path in repo.files:
            if file_path.startswith(prefix):
                rest = file_path[len(prefix) :]
                head = rest.split("/", 1)[0]
                children[prefix + head] = "dir" if "/" in rest else "file"
        if not children:
            raise GitHubError(404, "Not Found")
        return 200, [self._content_entry(repo, p, k) for p, k in sorted(children.items())]

    # search

    def _search_issues(self, query: dict, path: str, **_: Any) -> tuple:
        q = query.get("q", "").strip()
        if not q:
            raise GitHubError(
                422,
                "Validation Failed",
                [{"resource": "Search", "field": "q", "code": "missing"}],
            )
        parsed = parse_query(q)
        found = []
        for repo in self._repos.values():
            if parsed.repos and repo.full_name.lower() not in parsed.repos:
                continue
            if parsed.owners and repo.owner.lower() not in parsed.owners:
                continue
            for issue in repo.issues.values():
                if self._matches(repo, issue, parsed):
                    found.append((repo, issue))
        sort = query.get("sort")
        order = query.get("order", "desc")
        if parsed.sort:
            sort, _, order_in_q = parsed.sort.partition("-")
            order = order_in_q or "desc"
        if sort in ("created", "updated", "comments"):
            field = {"created": "created_at", "updated": "updated_at"}.get(sort)

            def key(item: tuple[_Repo, dict]) -> Any:
                repo, issue = item
                if field is None:
                    return (len(repo.comments.get(issue["number"], [])), issue["number"])
                return (issue[field], issue["number"])

            found.sort(key=key, reverse=order != "asc")
        else:
            # "Best match": newest first is as good a relevance as any for a fake.
            found.sort(key=lambda item: (item[1]["created_at"], item[1]["number"]), reverse=True)
        page, headers = self._page(found, path, query, max_items=SEARCH_MAX_RESULTS)
        items = [{**self._issue_json(r, i), "score": 1.0} for r, i in page]
        return (
            200,
            {"total_count": len(found), "incomplete_results": False, "items": items},
            headers,
        )

    def _matches(self, repo: _Repo, issue: dict[str, Any], q: SearchQuery) -> bool:
        if q.kind == "pr":
            return False
        if q.state and issue["state"] != q.state:
            return False
        labels = {n.lower() for n in issue["labels"]}
        if any(not labels.intersection(group) for group in q.labels):
            return False
        if labels.intersection(q.not_labels):
            return False
        if "label" in q.no and labels:
            return False
        milestone = repo.milestones.get(issue["milestone"]) if issue["milestone"] else None
        title = milestone["title"].lower() if milestone else None
        if "milestone" in q.no and milestone is not None:
            return False
        if q.milestone is not None and title != q.milestone:
            return False
        if q.not_milestone is not None and title == q.not_milestone:
            return False
        assignees = {a.lower() for a in issue["assignees"]}
        if "assignee" in q.no and assignees:
            return False
        if q.assignee is not None and q.assignee not in assignees:
            return False
        if q.not_assignee is not None and q.not_assignee in assignees:
            return False
        if q.author is not None and issue["user"].lower() != q.author:
            return False
        if q.reason is not None and (issue["state_reason"] or "") != q.reason:
            return False
        for field, negated, spec in q.ranges:
            if in_range(issue[f"{field}_at"], spec) == negated:
                return False
        if q.terms:
            fields = q.fields or {"title", "body", "comments"}
            haystack = []
            if "title" in fields:
                haystack.append(issue["title"] or "")
            if "body" in fields:
                haystack.append(issue["body"] or "")
            if "comments" in fields:
                haystack.extend(c["body"] for c in repo.comments.get(issue["number"], []))
            text = "\n".join(haystack).lower()
            for negated, term in q.terms:
                if (term.lower() in text) == negated:
                    return False
        return True

    def _make_app(self) -> Flask:
        app = Flask(f"{__name__}.{id(self)}")

        @app.route("/", defaults={"rest": ""}, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
        @app.route("/<path:rest>", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
        def any_path(rest: str) -> Response:
            return self._handle()

        return app
