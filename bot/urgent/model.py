"""What an urgent-issue message should say, read from a GitHub issue: pure, no I/O.

`AlertState` is everything the message shows; `desired_state` builds it from an issue
snapshot (the due date and the Slack thread come from the issue body, as the requester or
the intake feature wrote them). `Recorded` and `Synced` name the outcomes of the two steps
in bot/urgent/alerts.py: storing a snapshot, and bringing Slack up to date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from enum import StrEnum

from pydantic import BaseModel, Field

from bot.github import GitHubIssue


class AlertStatus(StrEnum):
    URGENT = "urgent"
    CLOSED = "closed"
    NOT_URGENT = "not_urgent"  # open, label removed
    DELETED = "deleted"
    TRANSFERRED = "transferred"  # moved to another repository

    @property
    def gone(self) -> bool:
        """The issue no longer exists in the repo: no later snapshot can change that."""
        return self in (AlertStatus.DELETED, AlertStatus.TRANSFERRED)


class AlertState(BaseModel):
    """Everything the Slack message shows, and nothing time-dependent (the age is rendered
    by Slack from `created_at`), so an unchanged issue hashes the same forever."""

    repo: str
    number: int
    title: str
    url: str
    author: str
    assignees: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    created_at: dt.datetime
    due: dt.date | None = None
    slack_thread: str | None = None
    status: AlertStatus
    closed_by: str | None = None
    closed_at: dt.datetime | None = None
    not_planned: bool = False  # closed as "not planned" rather than done
    # Urgent and past its due date in the team's time zone. Depends on the day, so it is
    # set when recording (`as_of`) and re-checked daily by the poll (`refresh_overdue`),
    # never while rendering: the hash must change for the message to be edited.
    overdue: bool = False
    # Orders snapshots; not shown, so it is left out of the hash.
    issue_updated_at: dt.datetime

    def content_hash(self) -> str:
        # `overdue` counts only when set, so hashes stored before it existed stay valid.
        hidden = {"issue_updated_at"} if self.overdue else {"issue_updated_at", "overdue"}
        shown = self.model_dump_json(exclude=hidden)
        return hashlib.sha256(shown.encode()).hexdigest()

    def as_of(self, today: dt.date) -> AlertState:
        """This state with `overdue` as it stands on `today` (a team-local date)."""
        overdue = self.status is AlertStatus.URGENT and self.due is not None and self.due < today
        return self.model_copy(update={"overdue": overdue})


def alert_status(issue: GitHubIssue, label: str, *, gone: AlertStatus | None = None) -> AlertStatus:
    if gone is not None:
        return gone
    if issue.state == "closed":
        return AlertStatus.CLOSED
    return AlertStatus.URGENT if issue.has_label(label) else AlertStatus.NOT_URGENT


def desired_state(
    issue: GitHubIssue,
    *,
    repo: str,
    label: str,
    closed_by: str | None = None,
    slack_thread: str | None = None,
    gone: AlertStatus | None = None,
) -> AlertState:
    """The state the message for `issue` should show. `slack_thread`, when given (the
    thread intake filed the issue from), wins over a link found in the body."""
    status = alert_status(issue, label, gone=gone)
    closer = closed_by or (issue.closed_by.login if issue.closed_by else None)
    return AlertState(
        repo=repo,
        number=issue.number,
        title=issue.title,
        url=issue.html_url,
        author=issue.user.login if issue.user else "ghost",
        assignees=sorted(a.login for a in issue.assignees),
        labels=sorted(label.name for label in issue.labels),
        created_at=issue.created_at,
        due=find_due_date(issue.body or ""),
        slack_thread=slack_thread or find_slack_thread(issue.body or ""),
        status=status,
        closed_by=closer if status is AlertStatus.CLOSED else None,
        closed_at=issue.closed_at if status is AlertStatus.CLOSED else None,
        not_planned=status is AlertStatus.CLOSED and issue.state_reason == "not_planned",
        issue_updated_at=issue.updated_at,
    )


# --- what the issue body tells us ---------------------------------------------------------

_ISO_DATE = r"\d{4}-\d{2}-\d{2}"
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_MONTH_DATE = re.compile(r"\b([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b")
_DAY_MONTH_DATE = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+([A-Za-z]{3,9})\.?,?\s+(\d{4})\b")
# "Due: 2026-12-01", "**Due date:** Dec 1, 2026", "Deadline - ...", "Needed by ..."
_DUE_INLINE = re.compile(
    r"^[\s>*_-]*(?:due(?:\s+date)?|deadline|needed\s+by|need(?:ed)?\s+it\s+by)\b[\s*_:.-]*(.+)$",
    re.IGNORECASE | re.MULTILINE,
)
# Issue-form layout: "### Due date" (or "### Timeline", "### When is it needed?") then
# the answer on the following lines.
_DUE_HEADING = re.compile(
    r"^#{1,6}\s*(due(?:\s+date)?|deadline|needed\s+by|timeline|when\s+is\s+it\s+needed\??)"
    r"\s*:?\s*$\n+((?:(?!#{1,6}\s).*\n?){1,3})",
    re.IGNORECASE | re.MULTILINE,
)


def parse_date(text: str) -> dt.date | None:
    """The first date in `text`: ISO (2026-12-01), "Dec 1, 2026" or "1 December 2026"."""
    candidates: list[tuple[int, dt.date]] = []
    if m := re.search(_ISO_DATE, text):
        try:
            candidates.append((m.start(), dt.date.fromisoformat(m.group(0))))
        except ValueError:
            pass
    for pattern, order in ((_MONTH_DATE, "mdy"), (_DAY_MONTH_DATE, "dmy")):
        for m in pattern.finditer(text):
            if order == "mdy":
                month_name, day, year = m.group(1), m.group(2), m.group(3)
            else:
                day, month_name, year = m.group(1), m.group(2), m.group(3)
            month = _MONTHS.get(month_name.lower())
            if month is None:
                continue
            try:
                candidates.append((m.start(), dt.date(int(year), month, int(day))))
            except ValueError:
                continue
            break
    return min(candidates)[1] if candidates else None


def find_due_date(body: str) -> dt.date | None:
    """A due date the requester wrote in the issue body, if any."""
    answered_elsewhere = False
    for m in _DUE_HEADING.finditer(body):
        if found := parse_date(m.group(2)):
            return found
        # An issue form's "Due date" / "Needed by" left empty means no due date: a date
        # further down (say, in a quoted Slack thread) is not one.
        answered_elsewhere |= not m.group(1).lower().startswith("timeline")
    if answered_elsewhere:
        return None
    for m in _DUE_INLINE.finditer(body):
        if found := parse_date(m.group(1)):
            return found
    return None


# Slack permalinks: https://acme.slack.com/archives/C0123ABC/p1700000000000100[?thread_ts=..]
_SLACK_PERMALINK = re.compile(
    r"https://[A-Za-z0-9-]+(?:\.enterprise)?\.slack\.com/archives/[A-Z0-9]+/p\d{16}"
    r"(?:\?thread_ts=\d+\.\d+(?:&amp;|&)cid=[A-Z0-9]+|\?thread_ts=\d+\.\d+)?"
)


def find_slack_thread(body: str) -> str | None:
    """The Slack thread an issue came from, when its body links one (intake writes it)."""
    m = _SLACK_PERMALINK.search(body)
    return m.group(0).replace("&amp;", "&") if m else None


# --- outcomes of the two steps (bot/urgent/alerts.py) -------------------------------------


class Recorded(StrEnum):
    """What `record()` made of a snapshot."""

    IGNORED = "ignored"  # never urgent, nothing to show
    CREATED = "created"  # first time urgent: a message is due
    CHANGED = "changed"  # the message must change
    UNCHANGED = "unchanged"  # same content (redelivery, poll overlap, a comment)
    STALE = "stale"  # older than what we already know


class Synced(StrEnum):
    """What `sync_alert()` did in Slack."""

    POSTED = "posted"
    UPDATED = "updated"
    CURRENT = "current"  # Slack already shows the latest state
    BUSY = "busy"  # another worker holds the lease and will finish the job
    FAILED = "failed"  # Slack refused or was unreachable; the next poll retries
    MISSING = "missing"  # no alert row for this issue
