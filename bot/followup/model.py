"""Request follow-ups' types and rules, no I/O: what of an issue the requester hears about,
how a change is found (the issue as last told vs the issue now), and each change's key.

A change is found by comparing two views of the issue, never by trusting which input saw
it: the webhook, its redelivery and the poller all bring "the issue now", and whichever
comes first finds the change; the others find nothing new. Each change also has a key
that is the same whoever finds it (`Update.key`), claimed once in the state database.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum

from pydantic import BaseModel, Field

from bot.github import GitHubComment, GitHubIssue

# A comment databot wrote itself (intake's continuation parts, the Slack mirror) starts with
# a hidden `<!-- databot... -->` marker: never told back to Slack.
DATABOT_MARKER = re.compile(r"<!--\s*databot", re.IGNORECASE)
REQUESTER_MENTION = re.compile(r"(?<![\w@])@requester\b", re.IGNORECASE)


class Change(StrEnum):
    """What the requester hears about (FOLLOWUP_CHANGES lists the kinds that are told)."""

    ASSIGNED = "assigned"  # someone picked it up (triaged / assigned)
    SCHEDULED = "scheduled"  # a milestone (sprint) was set
    COMMENT = "comment"  # a question or comment from the team
    DELIVERED = "delivered"  # closed as completed
    NOT_PLANNED = "not-planned"  # closed as not planned (or duplicate)
    REOPENED = "reopened"
    URGENT = "urgent"  # labeled URGENT_LABEL after filing


class CommentMode(StrEnum):
    ALL = "all"  # every comment from the team
    QUESTIONS = "questions"  # only on a need-info issue, or naming @requester / the label


class Snapshot(BaseModel):
    """The issue as the requester last heard of it (the `followup_issues.snapshot` JSON)."""

    state: str = "open"
    state_reason: str | None = None
    closed_at: dt.datetime | None = None
    assignees: list[str] = Field(default_factory=list)  # logins, lower case, sorted
    milestone: str | None = None  # title
    labels: list[str] = Field(default_factory=list)  # names, lower case, sorted
    urgent: bool = False
    # How often it became urgent after filing: the key of the n-th "now urgent".
    urgent_count: int = 0
    # How often each login was assigned: the key of the n-th "picked this up".
    assigned_count: dict[str, int] = Field(default_factory=dict)


def snapshot_of(issue: GitHubIssue, *, urgent_label: str, before: Snapshot) -> Snapshot:
    """The issue now, carrying `before`'s counters (updated by `changes`)."""
    return Snapshot(
        state=issue.state,
        state_reason=issue.state_reason,
        closed_at=issue.closed_at,
        assignees=sorted({a.login.lower() for a in issue.assignees}),
        milestone=issue.milestone.title if issue.milestone else None,
        labels=sorted({label.name.lower() for label in issue.labels}),
        urgent=issue.has_label(urgent_label),
        urgent_count=before.urgent_count,
        assigned_count=dict(before.assigned_count),
    )


class Update(BaseModel):
    """One thing to tell the requester. Text from GitHub here is raw: blocks escape it."""

    kind: Change
    key: str  # the same whichever input found it: "assigned:ana:1", "comment:123", ...
    login: str | None = None  # who (the assignee, the commenter)
    milestone: str | None = None
    reason: str | None = None  # not planned: "not planned" / "duplicate"
    excerpt: str | None = None  # the comment (or closing comment) body
    link: str | None = None  # the comment's URL, when there is one


def _iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


def changes(before: Snapshot, now: Snapshot) -> tuple[list[Update], Snapshot]:
    """What changed from `before` to `now`, in the order a reader expects (picked up,
    scheduled, urgent, closed or reopened), and `now` with its counters moved on."""
    after = now.model_copy(deep=True)
    found: list[Update] = []
    for login in now.assignees:
        if login not in before.assignees:
            n = after.assigned_count.get(login, 0) + 1
            after.assigned_count[login] = n
            found.append(Update(kind=Change.ASSIGNED, key=f"assigned:{login}:{n}", login=login))
    if now.milestone and now.milestone != before.milestone:
        found.append(
            Update(
                kind=Change.SCHEDULED,
                key=f"scheduled:{now.milestone.lower()}",
                milestone=now.milestone,
            )
        )
    if now.urgent and not before.urgent:
        after.urgent_count = before.urgent_count + 1
        found.append(Update(kind=Change.URGENT, key=f"urgent:{after.urgent_count}"))
    if now.state == "closed" and (before.state != "closed" or before.closed_at != now.closed_at):
        planned = now.state_reason in (None, "completed")
        found.append(
            Update(
                kind=Change.DELIVERED if planned else Change.NOT_PLANNED,
                key=f"closed:{_iso(now.closed_at)}",
                reason=None if planned else (now.state_reason or "").replace("_", " "),
            )
        )
    elif now.state == "open" and before.state == "closed":
        found.append(Update(kind=Change.REOPENED, key=f"reopened:{_iso(before.closed_at)}"))
    return found, after


def newly_closed(before: Snapshot, now: Snapshot) -> bool:
    return now.state == "closed" and (before.state != "closed" or before.closed_at != now.closed_at)


def written_by_databot(comment: GitHubComment) -> bool:
    """Comments databot made (its hidden marker) or any app's bot account: never told."""
    return comment.user_type == "Bot" or bool(DATABOT_MARKER.search(comment.body or ""))


def comment_is_told(
    comment: GitHubComment, *, mode: CommentMode, need_info_label: str, labels: list[str]
) -> bool:
    """Whether the requester hears of this team comment (FOLLOWUP_COMMENTS)."""
    if written_by_databot(comment):
        return False
    if mode is CommentMode.ALL:
        return True
    body = comment.body or ""
    label = need_info_label.lower()
    return (
        label in labels
        or bool(REQUESTER_MENTION.search(body))
        or bool(label and re.search(rf"(?<![\w-]){re.escape(label)}(?![\w-])", body.lower()))
    )


def comment_update(comment: GitHubComment) -> Update:
    return Update(
        kind=Change.COMMENT,
        key=f"comment:{comment.id}",
        login=comment.user.login if comment.user else None,
        excerpt=comment.body or "",
        link=comment.html_url,
    )


# How far before the close a comment still counts as the closing one ("Close with comment"
# posts the comment, then closes, within a second; a minute covers a slow hand).
CLOSING_COMMENT_WINDOW = dt.timedelta(minutes=2)


def closing_comment(comments: list[GitHubComment], closed_at: dt.datetime | None):
    """The comment that came with the close: the last team comment made just before it."""
    if closed_at is None:
        return None
    near = [
        c
        for c in comments
        if not written_by_databot(c)
        and closed_at - CLOSING_COMMENT_WINDOW
        <= c.created_at
        <= closed_at + dt.timedelta(seconds=5)
    ]
    return max(near, key=lambda c: (c.created_at, c.id), default=None)
