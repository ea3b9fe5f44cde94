"""The GitHub issue searches behind the sprint posts, through the gateway (bot/github.py).

One search per section, first page only plus the total, never a walk over every issue: the
cost does not grow with the repo. Each result links the same search on GitHub's website
("…and N more").

Dates are the team's (settings.timezone): GitHub reads a bare date as UTC, so day ranges are
sent as instants of local midnights.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from zoneinfo import ZoneInfo

from bot.github import GitHubGateway, GitHubIssue
from bot.sprints.calendar import Sprint
from bot.sprints.content import IssueItem, IssueSet

# At most one search page per section: each section costs one request.
MAX_ITEMS = 100


def web_base(api_url: str) -> str:
    """github.com for api.github.com; GitHub Enterprise serves the API under /api/v3."""
    url = api_url.rstrip("/")
    if url in ("https://api.github.com", "http://api.github.com"):
        return "https://github.com"
    if url.endswith("/api/v3"):
        return url[: -len("/api/v3")]
    return url


def quoted(value: str) -> str:
    """A qualifier value as one search term (a milestone or label with spaces)."""
    return '"' + value.replace('"', "") + '"'


def plan_qualifiers(sprint: Sprint, sprint_label: str | None) -> tuple[str, str]:
    """(qualifiers selecting the sprint's issues, what they are: "milestone", "label" or
    "open issues" when neither exists)."""
    if sprint.milestone:
        return f"milestone:{quoted(sprint.milestone)}", "milestone"
    if sprint_label:
        return f"label:{quoted(sprint_label)}", "label"
    return "", "open issues"


def _item(issue: GitHubIssue) -> IssueItem:
    return IssueItem(
        number=issue.number,
        title=issue.title,
        url=issue.html_url,
        assignees=tuple(a.login for a in issue.assignees),
        labels=tuple(label.name for label in issue.labels),
        state_reason=issue.state_reason,
    )


class IssueSearch:
    """Issue searches in one repo, oldest first."""

    def __init__(self, github: GitHubGateway, repo: str, api_url: str, tz: ZoneInfo) -> None:
        self.github = github
        self.repo = repo
        self.web = web_base(api_url)
        self.tz = tz

    def search(self, qualifiers: str, *, limit: int | None = None) -> IssueSet:
        """The first page of `repo:… is:issue {qualifiers}`; raises GitHubUnavailable."""
        # One page per search: more than a page would not fit the message anyway.
        limit = limit or min(MAX_ITEMS, self.github.page_size)
        query = f"repo:{self.repo} is:issue {qualifiers}"
        found, total = self.github.search_issues(query, limit=limit, sort="created", order="asc")
        items = [_item(issue) for issue in found]
        if not items:
            total = 0
        elif f"/{self.repo}/issues/" in items[0].url:
            # Issue links tell where people browse (github.com, an Enterprise host).
            self.web = items[0].url.split(f"/{self.repo}/issues/")[0]
        web_query = f"is:issue {qualifiers}"
        url = f"{self.web}/{self.repo}/issues?q={urllib.parse.quote(web_query)}"
        return IssueSet(items=items, total=max(total, len(items)), search_url=url)

    def day_range(self, start: dt.date, last: dt.date) -> str:
        """start..last as instants of local midnights (GitHub reads bare dates as UTC)."""
        low = dt.datetime.combine(start, dt.time(0), tzinfo=self.tz)
        high = dt.datetime.combine(last, dt.time(23, 59, 59), tzinfo=self.tz)
        return f"{low.isoformat()}..{high.isoformat()}"

    def local_midnight(self, day: dt.date) -> str:
        """The instant `day` begins in the team's time zone (for `updated:<…`)."""
        return dt.datetime.combine(day, dt.time(0), tzinfo=self.tz).isoformat()
