"""Request intake's types and rules, no I/O: what a requester submits, the outbox row it is
stored as, the issue it becomes, and where the replies go.

Statuses: `queued` (not on GitHub yet), `filed` (issue exists; `notified_at` says whether
the requester has been told), `failed` (GitHub refused it for a reason a retry will not fix;
`databot requests --retry ID` queues it again).
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from bot.github import IssueRef
from bot.intake.forms import FieldKind, IssueForm

# The hidden comment every issue body starts with: how a retry finds the issue an earlier
# attempt created (its response lost) instead of filing the request twice.
MARKER = "databot-request: {id}"
# The hidden comment each continuation comment starts with (answers too long for the issue
# body continue in comments): how a retry sees which parts are posted already. Worded so
# that it never contains MARKER, which only the issue body has.
PART_MARKER = "databot-request-part: {id} {n}/{total}"


class Status(StrEnum):
    QUEUED = "queued"
    FILED = "filed"
    FAILED = "failed"


class Frequency(StrEnum):
    ONE_TIME = "one-time"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"

    @property
    def label(self) -> str:
        return {"one-time": "One-time"}.get(self.value, f"Ongoing, {self.value}")


class Source(StrEnum):
    COMMAND = "command"  # /data-request: the reply goes to the requester by DM
    SHORTCUT = "shortcut"  # global shortcut: DM as well
    MESSAGE = "message"  # message shortcut: the reply goes to the thread
    METRIC = "metric"  # button under a /metric answer: DM


class ThreadMessage(BaseModel):
    user: str | None = None
    ts: str
    text: str  # Slack message format (<@U1>, &amp; ...), converted when the issue is made


class Submission(BaseModel):
    """What the requester submitted: stored as the outbox row's payload, so the issue can be
    rendered from it at any later time, exactly as asked (the form is kept with it)."""

    form: IssueForm
    title: str
    answers: dict[str, str | list[str]] = Field(default_factory=dict)  # field id -> answer
    urgent: bool = False
    due_date: dt.date | None = None
    people: list[str] = Field(default_factory=list)  # Slack user ids
    frequency: Frequency = Frequency.ONE_TIME
    business_unit: str | None = None  # one of settings.business_units
    requester_id: str
    submitted_by: str
    source: Source
    channel_id: str | None = None
    thread_ts: str | None = None
    thread: list[ThreadMessage] = Field(default_factory=list)
    # How many messages the Slack thread had when it was read, when more than `thread` holds
    # (reading stops at a cap); None: `thread` is all of it.
    thread_total: int | None = None

    @property
    def thread_key(self) -> str | None:
        if self.source is Source.MESSAGE and self.channel_id and self.thread_ts:
            return f"{self.channel_id}:{self.thread_ts}"
        return None


class RequestRow(BaseModel):
    id: str
    dedupe_key: str
    status: Status
    request_type: str
    title: str
    requester_id: str
    channel_id: str | None
    thread_ts: str | None
    permalink: str | None
    issue_number: int | None
    issue_url: str | None
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str | None
    notified_at: dt.datetime | None
    created_at: dt.datetime
    payload: dict[str, Any]

    @property
    def submission(self) -> Submission:
        return Submission.model_validate(self.payload)

    @property
    def issue(self) -> IssueRef | None:
        if self.issue_number is None or self.issue_url is None:
            return None
        return IssueRef(self.issue_number, self.issue_url, self.title)


class IssueDraft(BaseModel):
    """The issue as it will appear on GitHub: its body, then `comments` posted on it in
    order (the answers that did not fit the body; each starts with its PART_MARKER)."""

    title: str
    body: str
    labels: list[str]
    assignees: list[str] = Field(default_factory=list)  # GitHub logins
    comments: list[str] = Field(default_factory=list)


def validate_submission(sub: Submission, today: dt.date) -> dict[str, str]:
    """Problems a person must fix in the modal, keyed by field id (or "title", "due_date").
    Slack only checks that required inputs are non-empty; whitespace, required checkboxes
    and past dates are checked here."""
    errors: dict[str, str] = {}
    if not sub.title.strip():
        errors["title"] = "Give the request a short title."
    for field in sub.form.questions:
        answer = sub.answers.get(field.id)
        if field.kind is FieldKind.CHECKBOXES:
            ticked = set(answer or [])
            missing = [c.label for c in field.checkboxes if c.required and c.label not in ticked]
            if missing:
                errors[field.id] = "Please confirm: " + "; ".join(missing)
        elif field.required and not (answer.strip() if isinstance(answer, str) else answer):
            errors[field.id] = f"{field.label} is required."
    if sub.due_date is not None and sub.due_date < today:
        errors["due_date"] = "The due date is in the past; pick today or a later date."
    return errors


class ReplyTarget(BaseModel):
    channel: str
    thread_ts: str | None = None  # None: `channel` is the requester (a DM)


def reply_target(sub: Submission) -> ReplyTarget:
    """Where replies go: the thread it came from, else the requester's DM."""
    if sub.source is Source.MESSAGE and sub.channel_id and sub.thread_ts:
        return ReplyTarget(channel=sub.channel_id, thread_ts=sub.thread_ts)
    return ReplyTarget(channel=sub.requester_id)


# --- replies in a request's thread, mirrored to its issue (bot/intake/mirror.py) -----------

# The hidden comment a mirrored reply's GitHub comment starts with: how a retry whose POST
# answer was lost sees that the comment is there.
REPLY_MARKER = "databot-slack-reply: {channel} {ts}"
# Message subtypes that are a person's reply (a plain message has none).
REPLY_SUBTYPES = {None, "file_share", "thread_broadcast"}
_EMOJI_ONLY = re.compile(r"^(\s*:[a-z0-9_+'\-]+:\s*)+$")


class SlackFile(BaseModel):
    name: str | None = None
    title: str | None = None
    permalink: str | None = None


class ThreadReply(BaseModel):
    """A `message` event (Events API: message.channels, message.groups) as databot reads
    it. Edits (`message_changed`), deletions and the bot's own posts are not replies."""

    channel: str
    ts: str
    thread_ts: str | None = None
    user: str | None = None
    text: str = ""
    subtype: str | None = None
    bot_id: str | None = None
    files: list[SlackFile] = Field(default_factory=list)

    @property
    def is_person_reply(self) -> bool:
        return (
            self.subtype in REPLY_SUBTYPES
            and self.bot_id is None
            and self.user is not None
            and self.thread_ts is not None
            and self.thread_ts != self.ts
        )

    @property
    def only_emoji(self) -> bool:
        return bool(_EMOJI_ONLY.match(self.text))
