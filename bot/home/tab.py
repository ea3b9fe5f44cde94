"""The Home tab: drawn when a person opens it (`app_home_opened`), and redrawn when one of
their requests changes (`refresh_home`, called by intake when it files a request).

Reads the person's requests through intake (seam home -> intake), their issues and the
urgent ones from GitHub, the sprint from the sprint calendar (seam home -> sprints) and the
support analyst from the rotation (seam home -> support).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from bot.github import GitHubIssue, IssueReader, IssuesClient
from bot.home.blocks import build_home_view
from bot.home.model import (
    OPENED_KEY,
    REQUESTS_SHOWN,
    URGENT_SHOWN,
    HomeData,
    HomeRequest,
    HomeSprint,
    UrgentIssue,
)
from bot.intake.model import RequestRow, Status
from bot.intake.outbox import requests_by
from bot.sprints.jobs import load_calendar
from bot.support.model import support_week

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)


def publish_home(deps: Deps, user_id: str) -> None:
    """Draw `user_id`'s Home tab (views.publish) and remember that they use it."""
    deps.store.kv_set(OPENED_KEY.format(user=user_id), "1")
    data = home_data(deps, user_id)
    deps.slack.views_publish(user_id=user_id, view=build_home_view(data, deps.settings.tz))


def refresh_home(deps: Deps, slack_user_id: str) -> None:
    """Redraw the Home tab of a person whose request changed, if they ever opened it."""
    if deps.store.kv_get(OPENED_KEY.format(user=slack_user_id)) is None:
        return
    publish_home(deps, slack_user_id)


def home_data(deps: Deps, user_id: str) -> HomeData:
    today = deps.today()
    this_week = support_week(deps.settings, today)
    next_week = support_week(deps.settings, this_week.end + dt.timedelta(days=1))
    requests, github_down = _requests(deps, user_id)
    urgent, total = _urgent(deps)
    return HomeData(
        user_id=user_id,
        requests=requests,
        github_down=github_down,
        urgent=urgent,
        urgent_total=total,
        sprint=_sprint(deps, today),
        support=this_week.analyst,
        support_next=next_week.analyst,
        today=today,
    )


def _status(row: RequestRow, issue: GitHubIssue | None) -> str:
    if row.status is Status.QUEUED:
        return "Queued: not on GitHub yet"
    if row.status is Status.FAILED:
        return "Not filed: GitHub refused it (the team can file it again)"
    if issue is None:
        return "Filed"
    if issue.state == "closed":
        if issue.state_reason in (None, "completed"):
            return "Delivered"
        # "not_planned", "duplicate", ...: as follow-ups tell it.
        return f"Closed: {issue.state_reason.replace('_', ' ')}"
    return "Open, in progress" if issue.assignees else "Open, waiting for triage"


class HomeIssues(IssueReader):
    """The Home tab's issue reader (what it keeps by ETag is its own)."""


def _issues(deps: Deps) -> HomeIssues:
    settings = deps.settings
    token = settings.github_token.get_secret_value() if settings.github_token else None
    return deps.service(
        HomeIssues,
        lambda: HomeIssues(
            IssuesClient(settings.github_api_url, token, on_error=deps.telemetry.github_error),
            settings.github_repo,
        ),
    )


def _requests(deps: Deps, user_id: str) -> tuple[list[HomeRequest], bool]:
    shown: list[HomeRequest] = []
    down = False
    for row in requests_by(deps, user_id, REQUESTS_SHOWN):
        issue = None
        if row.issue_number is not None and deps.github is not None and not down:
            try:
                # Conditional: an unchanged issue costs no rate limit (IssueReader).
                issue = _issues(deps).issue(row.issue_number)
            except Exception:  # noqa: BLE001 - shown with what the bot knows
                logger.warning("home: could not read issue #%s", row.issue_number)
                down = True
        shown.append(
            HomeRequest(
                title=issue.title if issue else row.title,
                status=_status(row, issue),
                number=row.issue_number,
                url=issue.html_url if issue else row.issue_url,
                assignees=[a.login for a in issue.assignees] if issue else [],
                updated_at=issue.updated_at if issue else row.created_at,
            )
        )
    return shown, down


def _urgent(deps: Deps) -> tuple[list[UrgentIssue] | None, int]:
    if deps.github is None:
        return None, 0
    settings = deps.settings
    query = f'repo:{settings.github_repo} is:issue is:open label:"{settings.urgent_label}"'
    try:
        found, total = deps.github.search_issues(query, limit=URGENT_SHOWN)
    except Exception:  # noqa: BLE001 - the tab says GitHub did not answer
        logger.warning("home: could not search urgent issues")
        return None, 0
    issues = [
        UrgentIssue(
            number=i.number,
            title=i.title,
            url=i.html_url,
            assignees=[a.login for a in i.assignees],
            created_at=i.created_at,
        )
        for i in found
        if i.pull_request is None
    ]
    return issues, total


def _sprint(deps: Deps, today: dt.date) -> HomeSprint | None:
    try:
        sprint = load_calendar(deps).sprint_at(today)
    except Exception:  # noqa: BLE001 - the tab says the sprint is unknown
        logger.warning("home: could not read the sprint calendar")
        return None
    return HomeSprint(
        name=sprint.name, milestone=sprint.milestone, start=sprint.start, end=sprint.end
    )
