"""Sprint posts as scheduled jobs: the Monday digest, the planning reminder and the
mid-sprint check-in. Each collects its content with a few issue searches
(bot/sprints/search.py) for the sprint its period names, and hands the runner a Post.

The calendar comes from the repo's milestones (bot/sprints/calendar.py), read at most once
an hour; the last list read is kept in the state store, so a GitHub outage does not move
the sprints. Dates are the team's (settings.timezone): a sprint's days run from local
midnight.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.errors import ConfigError
from bot.ids import Job
from bot.scheduling.job import Post, ScheduledJob
from bot.sprints.blocks import build_checkin_message, build_digest_message, build_planning_message
from bot.sprints.calendar import MilestoneInfo, Sprint, SprintCalendar, calendar_from_settings
from bot.sprints.content import CheckIn, PlanningReminder, SprintDigest
from bot.sprints.search import IssueSearch, plan_qualifiers, quoted

if TYPE_CHECKING:
    from bot.deps import Deps
    from bot.settings import Settings
    from bot.slack_text import Message

logger = logging.getLogger(__name__)

CALENDAR_TTL = dt.timedelta(hours=1)
MILESTONES_KV = "sprints:milestones"


# --- the calendar ----------------------------------------------------------------------


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
    if deps.github is None:
        return []
    try:
        found = deps.github.milestones()
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
        json.dumps([{"title": title, "due_on": due_on.isoformat()} for title, due_on in found]),
    )
    return [MilestoneInfo(title, due_on) for title, due_on in found]


# --- content ---------------------------------------------------------------------------


def _search_for(deps: Deps) -> IssueSearch:
    if deps.github is None:
        raise ConfigError("GitHub is not configured: set GITHUB_TOKEN to build sprint posts.")
    s = deps.settings
    return IssueSearch(deps.github, s.github_repo, s.github_api_url, s.tz)


def collect_digest(
    search: IssueSearch, calendar: SprintCalendar, sprint: Sprint, settings: Settings
) -> SprintDigest:
    previous, upcoming = calendar.previous(sprint), calendar.next(sprint)
    wins = search.search(
        f"is:closed reason:completed closed:{search.day_range(previous.start, previous.last_day)}"
    )
    # Belt and braces: `reason:completed` already leaves out "not planned".
    wins = wins.without_not_planned()
    plan_q, plan_source = plan_qualifiers(sprint, settings.sprint_label)
    if plan_source == "open issues" and calendar.sprints:
        plan_source = "no milestone"  # the team uses milestones; this one is not made yet
    plan = search.search(f"is:open {plan_q}".strip())
    slipped = None
    if previous.milestone:
        slipped = search.search(f"is:open milestone:{quoted(previous.milestone)}")
    elif settings.sprint_label:
        slipped = search.search(
            f"is:open label:{quoted(settings.sprint_label)} created:<{sprint.start.isoformat()}"
        )
    urgent = search.search(f"is:open label:{quoted(settings.urgent_label)}")
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


def collect_planning(
    search: IssueSearch, calendar: SprintCalendar, sprint: Sprint, settings: Settings
) -> PlanningReminder:
    unassigned = search.search("is:open no:assignee")
    if calendar.sprints:
        untriaged, means = search.search("is:open no:milestone"), "not in any sprint milestone"
    elif settings.sprint_label:
        untriaged = search.search(f"is:open -label:{quoted(settings.sprint_label)}")
        means = f"without the {settings.sprint_label} label"
    else:
        untriaged, means = search.search("is:open no:label"), "without any label"
    return PlanningReminder(
        search.repo, sprint, unassigned, untriaged, means, settings.sprint_plan_url
    )


def collect_checkin(
    search: IssueSearch, sprint: Sprint, today: dt.date, settings: Settings
) -> CheckIn:
    plan_q, _ = plan_qualifiers(sprint, settings.sprint_label)
    monday = today - dt.timedelta(days=today.weekday())
    since = max(monday, sprint.start)
    low = search.local_midnight(since)
    stale = search.search(f"is:open {plan_q} updated:<{low}".replace("  ", " "))
    everything = search.search(f"is:open {plan_q}".strip(), limit=1)
    return CheckIn(search.repo, sprint, since, stale, everything.total)


# --- the jobs --------------------------------------------------------------------------


class _SprintJob:
    """Shared by the three sprint posts: the calendar and the channel."""

    id: Job
    title: str

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        settings = deps.settings
        self.channel = settings.sprint_digest_channel or settings.analytics_channel

    def calendar(self) -> SprintCalendar:
        return load_calendar(self.deps)

    def _post(self, message: Message) -> Post:
        return Post(channel=self.channel, text=message.text, blocks=message.blocks)


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
        calendar = load_calendar(deps)
        digest = collect_digest(
            _search_for(deps),
            calendar,
            calendar.sprint_at(dt.date.fromisoformat(period)),
            deps.settings,
        )
        return self._post(build_digest_message(digest))


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
        calendar = load_calendar(deps)
        reminder = collect_planning(
            _search_for(deps),
            calendar,
            calendar.sprint_at(dt.date.fromisoformat(period)),
            deps.settings,
        )
        return self._post(build_planning_message(reminder))


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
        sprint = load_calendar(deps).sprint_at(dt.date.fromisoformat(period))
        # The check-in is in the sprint's first week: "this week" began with the sprint.
        checkin = collect_checkin(_search_for(deps), sprint, sprint.start, deps.settings)
        return self._post(build_checkin_message(checkin))


def build_sprint_jobs(deps: Deps) -> list[ScheduledJob]:
    return [SprintDigestJob(deps), SprintPlanningJob(deps), SprintCheckinJob(deps)]
