"""Sprint posts: the Monday digest, the planning reminder and the mid-sprint check-in.

Content comes from a handful of GitHub issue searches (one per section, first page only
plus the total), never from a walk over every issue, so the cost does not grow with the
repo. Sections:

- wins: issues closed during the last sprint as completed (not "not planned");
- plan: open issues of this sprint (its milestone, else settings.sprint_label, else every
  open issue), unassigned ones called out;
- slipped: still-open issues of the last sprint (its milestone; with a sprint label, the
  labelled ones older than this sprint);
- urgent: open issues with the urgent label.

Dates are the team's (settings.timezone): a sprint's days run from local midnight.
"""

from __future__ import annotations

import datetime as dt
import logging
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import requests
from github import GithubException

from bot.errors import ConfigError, GitHubUnavailable
from bot.ids import Job
from bot.scheduling.job import Post, ScheduledJob
from bot.sprints.calendar import MilestoneInfo, Sprint, SprintCalendar, calendar_from_settings

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

# At most one search page per section: each section costs one request.
MAX_ITEMS = 100
CALENDAR_TTL = dt.timedelta(hours=1)
MILESTONES_KV = "sprints:milestones"


@dataclass(frozen=True)
class IssueItem:
    number: int
    title: str
    url: str
    assignees: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    state_reason: str | None = None


@dataclass
class IssueSet:
    """The first page of one search, its total, and the same search on github.com."""

    items: list[IssueItem]
    total: int
    search_url: str
    query: str = ""

    @property
    def unassigned(self) -> list[IssueItem]:
        return [i for i in self.items if not i.assignees]


@dataclass
class SprintDigest:
    repo: str
    sprint: Sprint
    previous: Sprint
    upcoming: Sprint
    wins: IssueSet
    plan: IssueSet
    plan_source: str  # "milestone", "label", "no milestone" or "open issues"
    slipped: IssueSet | None
    urgent: IssueSet
    plan_url: str | None
    type_labels: list[str] = field(default_factory=list)
    urgent_label: str = "urgent"


@dataclass
class PlanningReminder:
    repo: str
    sprint: Sprint  # the sprint being planned
    unassigned: IssueSet
    untriaged: IssueSet
    untriaged_means: str
    plan_url: str | None


@dataclass
class CheckIn:
    repo: str
    sprint: Sprint
    since: dt.date
    stale: IssueSet
    open_total: int


# --- GitHub --------------------------------------------------------------------------


def web_base(api_url: str) -> str:
    """github.com for api.github.com; GitHub Enterprise serves the API under /api/v3."""
    url = api_url.rstrip("/")
    if url in ("https://api.github.com", "http://api.github.com"):
        return "https://github.com"
    if url.endswith("/api/v3"):
        return url[: -len("/api/v3")]
    return url


class IssueSearch:
    """The searches the sprint posts make, through a PyGithub `Github`."""

    def __init__(self, gh: Any, repo: str, api_url: str, tz: ZoneInfo) -> None:
        self.gh = gh
        self.repo = repo
        self.web = web_base(api_url)
        self.tz = tz

    def search(self, qualifiers: str, *, limit: int | None = None) -> IssueSet:
        # One page per search: more than a page would not fit the message anyway.
        limit = limit or min(MAX_ITEMS, int(getattr(self.gh, "per_page", 30) or 30))
        try:
            return self._search(qualifiers, limit)
        except GithubException as exc:
            raise GitHubUnavailable(
                f"GitHub search failed (HTTP {exc.status})",
                detail=f"search {qualifiers!r}: {exc.status}",
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise GitHubUnavailable(f"Could not reach GitHub ({type(exc).__name__})") from exc

    def _search(self, qualifiers: str, limit: int) -> IssueSet:
        query = f"repo:{self.repo} is:issue {qualifiers}"
        results = self.gh.search_issues(query, sort="created", order="asc")
        items: list[IssueItem] = []
        for issue in results:
            items.append(
                IssueItem(
                    number=issue.number,
                    title=issue.title or "",
                    url=issue.html_url,
                    assignees=tuple(a.login for a in issue.assignees or ()),
                    labels=tuple(label.name for label in issue.labels or ()),
                    state_reason=getattr(issue, "state_reason", None),
                )
            )
            # Stop before PyGithub fetches another page.
            if len(items) >= limit:
                break
        total = results.totalCount if items else 0
        if items and f"/{self.repo}/issues/" in items[0].url:
            # Issue links tell where people browse (github.com, an Enterprise host).
            self.web = items[0].url.split(f"/{self.repo}/issues/")[0]
        web_query = f"is:issue {qualifiers}"
        url = f"{self.web}/{self.repo}/issues?q={urllib.parse.quote(web_query)}"
        return IssueSet(items=items, total=max(total, len(items)), search_url=url, query=query)

    def day_range(self, start: dt.date, last: dt.date) -> str:
        """start..last as instants of local midnights (GitHub reads bare dates as UTC)."""
        low = dt.datetime.combine(start, dt.time(0), tzinfo=self.tz)
        high = dt.datetime.combine(last, dt.time(23, 59, 59), tzinfo=self.tz)
        return f"{low.isoformat()}..{high.isoformat()}"


def _quoted(value: str) -> str:
    return '"' + value.replace('"', "") + '"'


def _search_for(deps: Deps) -> IssueSearch:
    if deps.github is None:
        raise ConfigError("GitHub is not configured: set GITHUB_TOKEN to build sprint posts.")
    s = deps.settings
    return IssueSearch(deps.github.gh, s.github_repo, s.github_api_url, s.tz)


NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass
class CalendarCache:
    """The process's last calendar and until when it is good."""

    until: dt.datetime = NEVER
    calendar: SprintCalendar | None = None


def load_calendar(deps: Deps) -> SprintCalendar:
    """The calendar from the repo's milestones (cached an hour; the last good list is kept
    in the state store, so a GitHub outage does not move the sprints)."""
    cached = deps.service(CalendarCache, CalendarCache)
    now = deps.now()
    if cached.calendar is not None and cached.until > now:
        return cached.calendar
    milestones = _fetch_milestones(deps)
    calendar = calendar_from_settings(deps.settings, milestones)
    cached.until, cached.calendar = now + CALENDAR_TTL, calendar
    return calendar


def _fetch_milestones(deps: Deps) -> list[MilestoneInfo]:
    import json

    if deps.github is None:
        return []
    try:
        found = [
            MilestoneInfo(m.title, m.due_on)
            for m in deps.github.repo.get_milestones(state="all")
            if m.due_on
        ]
    except Exception as exc:  # noqa: BLE001 - fall back to the last list we saw
        logger.warning("could not read milestones (%s); using the last known", type(exc).__name__)
        raw = deps.store.kv_get(MILESTONES_KV)
        if not raw:
            return []
        return [
            MilestoneInfo(m["title"], dt.datetime.fromisoformat(m["due_on"]))
            for m in json.loads(raw)
        ]
    deps.store.kv_set(
        MILESTONES_KV,
        json.dumps([{"title": m.title, "due_on": m.due_on.isoformat()} for m in found]),
    )
    return found


# --- content -------------------------------------------------------------------------


def collect_digest(
    search: IssueSearch, calendar: SprintCalendar, sprint: Sprint, settings
) -> SprintDigest:
    previous, upcoming = calendar.previous(sprint), calendar.next(sprint)
    wins = search.search(
        f"is:closed reason:completed closed:{search.day_range(previous.start, previous.last_day)}"
    )
    # Belt and braces: `reason:completed` already leaves out "not planned".
    kept = [i for i in wins.items if i.state_reason != "not_planned"]
    wins.total -= len(wins.items) - len(kept)
    wins.items = kept
    plan_q, plan_source = _plan_qualifiers(sprint, settings)
    if plan_source == "open issues" and calendar.sprints:
        plan_source = "no milestone"  # the team uses milestones; this one is not made yet
    plan = search.search(f"is:open {plan_q}".strip())
    slipped = None
    if previous.milestone:
        slipped = search.search(f"is:open milestone:{_quoted(previous.milestone)}")
    elif settings.sprint_label:
        slipped = search.search(
            f"is:open label:{_quoted(settings.sprint_label)} created:<{sprint.start.isoformat()}"
        )
    urgent = search.search(f"is:open label:{_quoted(settings.urgent_label)}")
    return SprintDigest(
        repo=search.repo,
        sprint=sprint,
        previous=previous,
        upcoming=upcoming,
        wins=wins,
        plan=plan,
        plan_source=plan_source,
        slipped=slipped,
        urgent=urgent,
        plan_url=settings.sprint_plan_url,
        type_labels=list(settings.request_type_labels),
        urgent_label=settings.urgent_label,
    )


def _plan_qualifiers(sprint: Sprint, settings) -> tuple[str, str]:
    if sprint.milestone:
        return f"milestone:{_quoted(sprint.milestone)}", "milestone"
    if settings.sprint_label:
        return f"label:{_quoted(settings.sprint_label)}", "label"
    return "", "open issues"


def collect_planning(
    search: IssueSearch, calendar: SprintCalendar, sprint: Sprint, settings
) -> PlanningReminder:
    unassigned = search.search("is:open no:assignee")
    if calendar.sprints:
        untriaged, means = search.search("is:open no:milestone"), "not in any sprint milestone"
    elif settings.sprint_label:
        untriaged = search.search(f"is:open -label:{_quoted(settings.sprint_label)}")
        means = f"without the {settings.sprint_label} label"
    else:
        untriaged, means = search.search("is:open no:label"), "without any label"
    return PlanningReminder(
        search.repo, sprint, unassigned, untriaged, means, settings.sprint_plan_url
    )


def collect_checkin(search: IssueSearch, sprint: Sprint, today: dt.date, settings) -> CheckIn:
    plan_q, _ = _plan_qualifiers(sprint, settings)
    monday = today - dt.timedelta(days=today.weekday())
    since = max(monday, sprint.start)
    low = dt.datetime.combine(since, dt.time(0), tzinfo=search.tz).isoformat()
    stale = search.search(f"is:open {plan_q} updated:<{low}".replace("  ", " "))
    everything = search.search(f"is:open {plan_q}".strip(), limit=1)
    return CheckIn(search.repo, sprint, since, stale, everything.total)


# --- the jobs ------------------------------------------------------------------------


class _SprintJob:
    """Shared by the three sprint posts: calendar, channel, settings."""

    id: Job
    title: str

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        settings = deps.settings
        self.channel = settings.sprint_digest_channel or settings.analytics_channel

    def calendar(self) -> SprintCalendar:
        return load_calendar(self.deps)

    def sprint_for(self, period: str) -> Sprint:
        return self.calendar().sprint_at(dt.date.fromisoformat(period))


class SprintDigestJob(_SprintJob):
    id = Job.SPRINT_DIGEST
    title = "Sprint digest"

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self.enabled = deps.settings.sprint_digest_enabled

    def period_for(self, run_at: dt.datetime, tz: ZoneInfo) -> str | None:
        day = run_at.astimezone(tz).date()
        sprint = self.calendar().sprint_at(day)
        # The sprint's first week (the cron says which day): one digest per sprint.
        return sprint.key if (day - sprint.start).days < 7 else None

    def build(self, deps: Deps, period: str) -> Post:
        from bot.sprints.blocks import build_digest_message

        calendar = load_calendar(deps)
        digest = collect_digest(
            _search_for(deps),
            calendar,
            calendar.sprint_at(dt.date.fromisoformat(period)),
            deps.settings,
        )
        text, blocks = build_digest_message(digest)
        return Post(channel=self.channel, text=text, blocks=blocks)


class SprintPlanningJob(_SprintJob):
    id = Job.SPRINT_PLANNING
    title = "Sprint planning reminder"

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self.enabled = deps.settings.sprint_planning_enabled

    def period_for(self, run_at: dt.datetime, tz: ZoneInfo) -> str | None:
        day = run_at.astimezone(tz).date()
        calendar = self.calendar()
        upcoming = calendar.next(calendar.sprint_at(day))
        # The last week before the next sprint: the period is the sprint being planned.
        return upcoming.key if 0 < (upcoming.start - day).days <= 7 else None

    def build(self, deps: Deps, period: str) -> Post:
        from bot.sprints.blocks import build_planning_message

        calendar = load_calendar(deps)
        reminder = collect_planning(
            _search_for(deps),
            calendar,
            calendar.sprint_at(dt.date.fromisoformat(period)),
            deps.settings,
        )
        text, blocks = build_planning_message(reminder)
        return Post(channel=self.channel, text=text, blocks=blocks)


class SprintCheckinJob(_SprintJob):
    id = Job.SPRINT_CHECKIN
    title = "Mid-sprint check-in"

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self.enabled = deps.settings.sprint_checkin_enabled

    def period_for(self, run_at: dt.datetime, tz: ZoneInfo) -> str | None:
        day = run_at.astimezone(tz).date()
        sprint = self.calendar().sprint_at(day)
        return sprint.key if (day - sprint.start).days < 7 else None

    def build(self, deps: Deps, period: str) -> Post:
        from bot.sprints.blocks import build_checkin_message

        sprint = load_calendar(deps).sprint_at(dt.date.fromisoformat(period))
        # The check-in is in the sprint's first week: "this week" began with the sprint.
        checkin = collect_checkin(_search_for(deps), sprint, sprint.start, deps.settings)
        text, blocks = build_checkin_message(checkin)
        return Post(channel=self.channel, text=text, blocks=blocks)


def build_sprint_jobs(deps: Deps) -> list[ScheduledJob]:
    return [SprintDigestJob(deps), SprintPlanningJob(deps), SprintCheckinJob(deps)]


def group_by_type(items: Iterable[IssueItem], type_labels: list[str], skip: set[str]):
    """[(group name, items)] in a stable order: configured types first, "Other" last."""
    wanted = {label.lower(): label for label in type_labels}
    groups: dict[str, list[IssueItem]] = {}
    for item in items:
        name = None
        for label in item.labels:
            if wanted and label.lower() in wanted:
                name = wanted[label.lower()]
                break
            if not wanted and label.lower() not in skip:
                name = label
                break
        groups.setdefault(name or "Other", []).append(item)
    order = {label: i for i, label in enumerate(type_labels)}

    def key(entry):
        name, members = entry
        return (name == "Other", order.get(name, len(order)), -len(members), name.lower())

    return sorted(groups.items(), key=key)
