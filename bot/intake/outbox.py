"""Request intake: a Slack submission becomes exactly one GitHub issue, and none is lost.

The `requests` table is an outbox. A submission is stored first (its unique `dedupe_key`
makes Slack retries and double clicks one row; its unique `thread_key` makes one request
per Slack thread), then filed on GitHub by whoever holds the row's lease: the listener's
background task right away, or the outbox worker later (after a GitHub failure, a missing
token, or a restart). Before creating an issue again, the filer looks for the request's
hidden marker in the repo, so a create whose response was lost is not filed twice.

Statuses: `queued` (not on GitHub yet), `filed` (issue exists; `notified_at` says whether
the requester has been told), `failed` (GitHub refused it for a reason a retry will not fix;
`databot requests --retry ID` queues it again).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import IntegrityError

from bot import tables
from bot.github import GitHubFailure, IssueRef, classify_failure
from bot.intake.forms import FieldKind, IssueForm, builtin_forms
from bot.intake.markdown import (
    code_block,
    collapse_if_long,
    github_markdown,
    github_title,
    quote,
    slack_to_plain,
    starts_with_fence,
)
from bot.urgent.alerts import announce_issue

if TYPE_CHECKING:
    from bot.deps import Deps
    from bot.settings import Settings

logger = logging.getLogger(__name__)

MARKER = "databot-request: {id}"
NO_RESPONSE = "_No response_"
BODY_MAX = 65_536  # GitHub's limit on an issue body, in characters
# A reply to Slack: chat.postMessage (10 s timeout, two 429 retries) with a wide margin.
NOTIFY_LEASE = dt.timedelta(minutes=5)
# GET requests the marker lookup may make: one search page, then up to 200 recent issues at
# PyGithub's 30 per page (see GitHubGateway.find_issue_with_marker).
LOOKUP_REQUESTS = 1 + 7
LEASE_MARGIN_SECONDS = 60.0  # clock skew between workers, the database, Slack calls
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 30 * 60.0
DRAIN_BATCH = 20
# Replies with the issue link: retried with the filing backoff (30 s doubling to 30 min),
# about two hours in all, then given up (logged, and marked in last_error).
NOTIFY_MAX_TRIES = 10
REPLY_TRIES_KEY = "intake:reply-tries:{id}"
GAVE_UP = "gave up telling the requester"
FORMS_KEY = "intake:forms"


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
    requester_id: str
    submitted_by: str
    source: Source
    channel_id: str | None = None
    thread_ts: str | None = None
    thread: list[ThreadMessage] = Field(default_factory=list)

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


# --- the issue, as it will appear on GitHub ----------------------------------------------


class IssueDraft(BaseModel):
    title: str
    body: str
    labels: list[str]


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


def render_issue(
    sub: Submission,
    request_id: str,
    *,
    permalink: str | None,
    user_name: Callable[[str], str] = lambda uid: uid,
    urgent_label: str = "urgent",
) -> IssueDraft:
    """The issue: body laid out like GitHub's own rendering of the form, then the standard
    questions, the Slack thread, and who asked. All Slack text is escaped for GitHub."""
    title = sub.title.strip()
    prefix = sub.form.title_prefix
    if prefix and not title.lower().startswith(prefix.strip().lower()):
        title = prefix + title
    parts = [f"<!-- {MARKER.format(id=request_id)} -->"]
    for field in sub.form.questions:
        parts.append(_section(field.label, _answer(field, sub.answers.get(field.id))))
    timeline = "Urgent" if sub.urgent else "Not urgent"
    parts.append(_section("Timeline", timeline))
    parts.append(_section("Needed by", sub.due_date.isoformat() if sub.due_date else ""))
    people = [_person(user_name, uid) for uid in sub.people]
    parts.append(_section("People involved", "\n".join(f"- {p}" for p in people)))
    parts.append(_section("Frequency", sub.frequency.label))
    requester = _person(user_name, sub.requester_id)
    footer = f"Requested by {requester} in Slack"
    if sub.submitted_by != sub.requester_id:
        footer += f", filed by {_person(user_name, sub.submitted_by)}"
    footer = f"---\n<sub>{footer}, via databot.</sub>"
    if permalink or sub.thread:
        budget = BODY_MAX - sum(len(p) + 2 for p in [*parts, footer]) - 200
        thread = _thread(sub.thread, permalink, user_name, budget)
        parts.append(_section("Slack thread", thread))
    parts.append(footer)
    labels = list(dict.fromkeys([*sub.form.labels, *([urgent_label] if sub.urgent else [])]))
    return IssueDraft(title=github_title(title), body="\n\n".join(parts) + "\n", labels=labels)


def _section(label: str, answer: str) -> str:
    return f"### {label}\n\n{answer or NO_RESPONSE}"


def _answer(field, answer: str | list[str] | None) -> str:
    if field.kind is FieldKind.CHECKBOXES:
        ticked = set(answer or [])
        return "\n".join(
            f"- [{'X' if c.label in ticked else ' '}] {c.label}" for c in field.checkboxes
        )
    if isinstance(answer, list):
        return github_markdown(", ".join(answer)) if answer else ""
    text = (answer or "").strip("\n")
    if not text.strip():
        return ""
    if field.render:  # GitHub puts such answers in a code block: shown verbatim
        return code_block(text, field.render)
    return collapse_if_long(github_markdown(text), f"{field.label} ({len(text):,} characters)")


def _person(user_name: Callable[[str], str], uid: str) -> str:
    return github_markdown(user_name(uid))


def _thread(
    messages: list[ThreadMessage],
    permalink: str | None,
    user_name: Callable[[str], str],
    budget: int,
) -> str:
    lines = [permalink] if permalink else []
    if messages:
        quotes: list[str] = []
        used = len(permalink or "") + 200
        for m in messages:
            text = github_markdown(slack_to_plain(m.text, user_name))
            # A fence must start its line: after "**Name:** " it would be text, and the code
            # github_markdown left verbatim would be live Markdown (mentions, HTML).
            sep = "\n" if starts_with_fence(text) else " "
            one = quote(f"**{_person(user_name, m.user) if m.user else 'unknown'}:**{sep}{text}")
            if used + len(one) > budget:
                # GitHub refuses bodies over 65,536 characters; the rest stays in Slack.
                left = len(messages) - len(quotes)
                quotes.append(
                    f"> _… {left} more message{'s' if left != 1 else ''} in the Slack thread._"
                )
                break
            quotes.append(one)
            used += len(one) + 3
        quoted = "\n>\n".join(quotes)
        count = f"{len(messages)} message{'s' if len(messages) != 1 else ''}"
        if len(messages) > 3:
            quoted = f"<details>\n<summary>The thread ({count})</summary>\n\n{quoted}\n\n</details>"
        else:
            quoted = collapse_if_long(quoted, f"The thread ({count})")
        lines.append(quoted)
    return "\n\n".join(lines)


# --- the outbox ---------------------------------------------------------------------------


class SubmitResult(BaseModel):
    row: RequestRow
    created: bool  # False: this submission (or this thread) already had a request


def _row(mapping) -> RequestRow:
    return RequestRow.model_validate(dict(mapping))


def get_request(deps: Deps, request_id: str) -> RequestRow | None:
    with deps.store.engine.connect() as connection:
        found = connection.execute(
            sa.select(tables.requests).where(tables.requests.c.id == request_id)
        ).mappings()
        first = found.first()
    return _row(first) if first else None


def request_for_thread(deps: Deps, channel_id: str, thread_ts: str) -> RequestRow | None:
    with deps.store.engine.connect() as connection:
        first = (
            connection.execute(
                sa.select(tables.requests).where(
                    tables.requests.c.thread_key == f"{channel_id}:{thread_ts}"
                )
            )
            .mappings()
            .first()
        )
    return _row(first) if first else None


def submit_request(deps: Deps, sub: Submission, dedupe_key: str) -> SubmitResult:
    """Store the submission (before anything calls GitHub). A second submission with the
    same `dedupe_key`, or for a thread that already has a request, stores nothing and
    returns the existing row: the unique constraints decide, also under concurrency."""
    now = deps.now()
    row = {
        "id": str(uuid.uuid4()),
        "dedupe_key": dedupe_key,
        "thread_key": sub.thread_key,
        "status": Status.QUEUED.value,
        "request_type": sub.form.name[:100],
        "title": sub.title.strip(),
        "payload": sub.model_dump(mode="json"),
        "requester_id": sub.requester_id,
        "channel_id": sub.channel_id,
        "thread_ts": sub.thread_ts,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    try:
        with deps.store.engine.begin() as connection:
            connection.execute(tables.requests.insert().values(**row))
    except IntegrityError:
        existing = _existing(deps, dedupe_key, sub.thread_key)
        if existing is None:  # pragma: no cover - a constraint fired, so a row exists
            raise
        logger.info("request %s: duplicate submission (%s)", existing.id, dedupe_key)
        return SubmitResult(row=existing, created=False)
    logger.info("request %s stored (%s)", row["id"], sub.form.name)
    stored = get_request(deps, row["id"])
    assert stored is not None
    return SubmitResult(row=stored, created=True)


def _existing(deps: Deps, dedupe_key: str, thread_key: str | None) -> RequestRow | None:
    condition = tables.requests.c.dedupe_key == dedupe_key
    if thread_key:
        condition = sa.or_(condition, tables.requests.c.thread_key == thread_key)
    with deps.store.engine.connect() as connection:
        first = connection.execute(sa.select(tables.requests).where(condition)).mappings().first()
    return _row(first) if first else None


def filing_lease(settings: Settings) -> dt.timedelta:
    """How long one filing attempt holds a request: the worst case of its GitHub calls under
    `settings` (each idempotent GET: every try times out, with the longest allowed wait
    between tries; the POST is never retried). A lease that ran out anyway is caught by the
    fence (see _renew_lease), so this only has to make that rare."""
    tries = settings.github_retries + 1
    between = max(
        settings.github_max_wait_seconds,
        settings.github_retry_backoff_seconds * 2 ** max(0, settings.github_retries - 1),
    )
    one_get = tries * (settings.github_timeout_seconds + settings.github_seconds_between_requests)
    one_get += settings.github_retries * between
    return dt.timedelta(
        seconds=LOOKUP_REQUESTS * one_get + _post_seconds(settings) + LEASE_MARGIN_SECONDS
    )


def _post_seconds(settings: Settings) -> float:
    return settings.github_timeout_seconds + settings.github_seconds_between_writes


class LeaseLost(Exception):
    """Another worker took the request over after this worker's lease ran out."""


def _take_lease(deps: Deps, request_id: str, *, status: Status, count_attempt: bool) -> int | None:
    """Atomically claim the row for one worker; None when someone else holds it, it is not
    in `status`, or it is not due yet. Returns the attempt number the holder owns: writes
    made for this attempt are fenced on it, so a worker whose lease ran out (and whose
    request was taken over) can no longer change the row."""
    now = deps.now()
    r = tables.requests.c
    conditions = [
        r.id == request_id,
        r.status == status.value,
        sa.or_(r.lease_until.is_(None), r.lease_until < now),
    ]
    if status is Status.QUEUED:
        conditions.append(sa.or_(r.next_attempt_at.is_(None), r.next_attempt_at <= now))
        lease = filing_lease(deps.settings)
    else:
        conditions.append(_reply_due(now))
        lease = NOTIFY_LEASE
    values: dict[str, Any] = {"lease_until": now + lease, "updated_at": now}
    if count_attempt:
        values["attempts"] = r.attempts + 1
    with deps.store.engine.begin() as connection:
        taken = connection.execute(
            tables.requests.update().where(*conditions).values(**values)
        ).rowcount
        if taken != 1:
            return None
        # Same transaction: the row is locked by our update, so this is our attempt number.
        return connection.execute(sa.select(r.attempts).where(r.id == request_id)).scalar_one()


def _reply_due(now: dt.datetime):
    """A filed request whose link reply is due: next_attempt_at holds the reply's retry
    time; no time and no error is a reply never tried; no time with an error is given up."""
    r = tables.requests.c
    return sa.and_(
        r.status == Status.FILED.value,
        r.notified_at.is_(None),
        sa.or_(
            r.next_attempt_at <= now,
            sa.and_(r.next_attempt_at.is_(None), r.last_error.is_(None)),
        ),
    )


def _fenced_update(deps: Deps, request_id: str, attempt: int, **values: Any) -> bool:
    """Update a queued request only while `attempt` is still the current one."""
    values["updated_at"] = deps.now()
    r = tables.requests.c
    with deps.store.engine.begin() as connection:
        done = connection.execute(
            tables.requests.update()
            .where(r.id == request_id, r.status == Status.QUEUED.value, r.attempts == attempt)
            .values(**values)
        ).rowcount
    return done == 1


def _renew_lease(deps: Deps, request_id: str, attempt: int) -> None:
    """Right before the create: confirm this attempt still owns the request (nobody took it
    over while the lookup or rendering ran long) and hold it for the POST's worst case."""
    until = deps.now() + dt.timedelta(seconds=_post_seconds(deps.settings) + LEASE_MARGIN_SECONDS)
    if not _fenced_update(deps, request_id, attempt, lease_until=until):
        raise LeaseLost(request_id)


def _update(deps: Deps, request_id: str, **values: Any) -> None:
    values["updated_at"] = deps.now()
    with deps.store.engine.begin() as connection:
        connection.execute(
            tables.requests.update().where(tables.requests.c.id == request_id).values(**values)
        )


def backoff_seconds(attempts: int) -> float:
    return min(FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1), MAX_RETRY_SECONDS)


def file_request(deps: Deps, request_id: str) -> RequestRow | None:
    """Try to get one request onto GitHub and tell the requester. Safe to call from any
    number of threads or processes at once: only the lease holder acts."""
    row = get_request(deps, request_id)
    if row is None:
        return None
    if row.status is Status.QUEUED:
        if deps.github is None:
            _not_configured(deps, row)
            return get_request(deps, request_id)
        attempt = _take_lease(deps, request_id, status=Status.QUEUED, count_attempt=True)
        if attempt is None:
            return row
        row = get_request(deps, request_id)
        assert row is not None
        try:
            issue = _create_once(deps, row, attempt)
        except LeaseLost:
            logger.warning(
                "request %s: attempt %s ran past its lease and was taken over; it created nothing",
                request_id,
                attempt,
            )
            return get_request(deps, request_id)
        except Exception as exc:  # noqa: BLE001 - classified: retried, or failed for a person
            _record_failure(deps, row, _classify(exc), attempt)
            return get_request(deps, request_id)
        filed = _fenced_update(
            deps,
            request_id,
            attempt,
            status=Status.FILED.value,
            issue_number=issue.number,
            issue_url=issue.url,
            title=issue.title,  # as GitHub shows it (with the form's prefix), for the reply
            last_error=None,
            next_attempt_at=deps.now(),  # the reply is due now
            lease_until=None,
        )
        if not filed:
            # Only when the POST itself outlasted the lease: a person has to close one.
            current = get_request(deps, request_id)
            logger.error(
                "request %s: attempt %s created #%s after its lease ran out; the request is "
                "now #%s: close #%s as a duplicate if they differ",
                request_id,
                attempt,
                issue.number,
                current.issue_number if current else None,
                issue.number,
            )
            return current
        logger.info("request %s filed as #%s", request_id, issue.number)
        row = get_request(deps, request_id)
        assert row is not None
        if row.submission.urgent:
            announce_issue(deps, issue.number, slack_thread=row.permalink)  # seam to urgent
    if row.status is Status.FILED and row.notified_at is None:
        _notify_filed(deps, row)
    return get_request(deps, request_id)


def _classify(exc: Exception) -> GitHubFailure:
    try:
        return classify_failure(exc)
    except Exception:
        ref = uuid.uuid4().hex[:8]
        logger.exception("unexpected error while filing a request ref=%s", ref)
        return GitHubFailure(True, f"unexpected error ({type(exc).__name__}), ref {ref}", ref=ref)


def _create_once(deps: Deps, row: RequestRow, attempt: int) -> IssueRef:
    assert deps.github is not None
    sub = row.submission
    marker = MARKER.format(id=row.id)
    if row.attempts > 1:
        # An earlier attempt may have created the issue and lost the response.
        # A margin for clock skew between us and GitHub.
        since = row.created_at - dt.timedelta(minutes=10)
        found = deps.github.find_issue_with_marker(marker, since=since)
        if found is not None:
            logger.info("request %s: found the issue an earlier attempt made", row.id)
            return found
    permalink = row.permalink or _permalink(deps, sub)
    if permalink and not row.permalink:
        _update(deps, row.id, permalink=permalink)
    draft = render_issue(
        sub,
        row.id,
        permalink=permalink,
        user_name=user_namer(deps),
        urgent_label=deps.settings.urgent_label,
    )
    _renew_lease(deps, row.id, attempt)
    return deps.github.create_issue(draft.title, draft.body, draft.labels)


def _permalink(deps: Deps, sub: Submission) -> str | None:
    if not (sub.channel_id and sub.thread_ts and sub.source is Source.MESSAGE):
        return None
    try:
        return deps.slack.chat_getPermalink(channel=sub.channel_id, message_ts=sub.thread_ts)[
            "permalink"
        ]
    except Exception:  # noqa: BLE001 - the issue is still worth filing without the link
        logger.warning("could not get the permalink of %s/%s", sub.channel_id, sub.thread_ts)
        return None


class UserNames(dict[str, str]):
    """Slack user id -> display name, cached for the life of the process."""


def user_namer(deps: Deps) -> Callable[[str], str]:
    """Slack user id -> the name people know them by (cached for the process); the id
    itself when Slack cannot say."""
    cache = deps.service(UserNames, UserNames)

    def name(uid: str) -> str:
        if uid not in cache:
            try:
                user = deps.slack.users_info(user=uid)["user"]
                profile = user.get("profile") or {}
                cache[uid] = (
                    profile.get("real_name")
                    or profile.get("display_name")
                    or user.get("real_name")
                    or user.get("name")
                    or uid
                )
            except Exception:  # noqa: BLE001 - a name is nice to have, the id will do
                logger.info("users.info failed for %s", uid)
                return uid
        return cache[uid]

    return name


def _record_failure(deps: Deps, row: RequestRow, failure: GitHubFailure, attempt: int) -> None:
    now = deps.now()
    if failure.transient:
        wait = max(backoff_seconds(row.attempts), failure.retry_after or 0.0)
        if not _fenced_update(
            deps,
            row.id,
            attempt,
            last_error=failure.message,
            next_attempt_at=now + dt.timedelta(seconds=wait),
            lease_until=None,
        ):
            logger.warning("request %s: attempt %s failed after a takeover", row.id, attempt)
            return
        logger.warning(
            "request %s: %s; attempt %s, next in %.0fs", row.id, failure.message, row.attempts, wait
        )
        _notify_once(deps, row, "queued", ref=failure.ref)
    else:
        if not _fenced_update(
            deps,
            row.id,
            attempt,
            status=Status.FAILED.value,
            last_error=failure.message,
            lease_until=None,
        ):
            logger.warning("request %s: attempt %s failed after a takeover", row.id, attempt)
            return
        logger.error("request %s could not be filed: %s", row.id, failure.message)
        _notify_once(deps, row, "failed")


def _not_configured(deps: Deps, row: RequestRow) -> None:
    message = "GitHub is not configured (GITHUB_TOKEN is not set)"
    if row.last_error != message:
        _update(deps, row.id, last_error=message)
    _notify_once(deps, row, "queued")


# --- telling the requester ------------------------------------------------------------


def reply_target(sub: Submission) -> dict[str, str]:
    """Where replies go: the thread it came from, else the requester's DM."""
    if sub.source is Source.MESSAGE and sub.channel_id and sub.thread_ts:
        return {"channel": sub.channel_id, "thread_ts": sub.thread_ts}
    return {"channel": sub.requester_id}


def _notify_once(deps: Deps, row: RequestRow, kind: str, *, ref: str | None = None) -> None:
    # At most once: a lost "queued" courtesy note is better than the same note every retry.
    if not deps.store.claim(f"intake:{kind}-notice:{row.id}"):
        return
    row = get_request(deps, row.id) or row  # with the error just recorded
    from bot.intake.blocks import build_request_failed_message, build_request_queued_message

    if kind == "queued":
        message = build_request_queued_message(row, ref=ref)
    else:
        message = build_request_failed_message(row)
    try:
        deps.slack.chat_postMessage(**reply_target(row.submission), **message)
    except Exception:  # noqa: BLE001 - the request itself is safe in the outbox
        logger.warning("request %s: could not post the %s notice", row.id, kind)


# Slack errors that a retry will not fix: the thread's channel is gone or closed to us.
UNREACHABLE = {"channel_not_found", "is_archived", "not_in_channel", "thread_not_found"}


def _notify_filed(deps: Deps, row: RequestRow) -> None:
    """The reply with the issue link. At least once: notified_at is set only after Slack
    accepted it, and the outbox worker retries replies that have not gone out. When the
    thread cannot be reached any more, the requester gets the link by DM instead."""
    if _take_lease(deps, row.id, status=Status.FILED, count_attempt=False) is None:
        return
    from bot.intake.blocks import build_request_filed_message

    message = build_request_filed_message(row)
    target = reply_target(row.submission)
    try:
        try:
            deps.slack.chat_postMessage(**target, **message)
        except SlackApiError as exc:
            if exc.response.get("error") not in UNREACHABLE or "thread_ts" not in target:
                raise
            logger.info("request %s: thread unreachable, sending the link by DM", row.id)
            deps.slack.chat_postMessage(channel=row.requester_id, **message)
    except Exception as exc:  # noqa: BLE001 - retried by the outbox worker, with backoff
        _reply_failed(deps, row, exc)
        return
    _update(deps, row.id, notified_at=deps.now(), next_attempt_at=None, lease_until=None)


def _reply_failed(deps: Deps, row: RequestRow, exc: Exception) -> None:
    key = REPLY_TRIES_KEY.format(id=row.id)
    tries = int(deps.store.kv_get(key) or 0) + 1
    deps.store.kv_set(key, str(tries))
    error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
    if tries >= NOTIFY_MAX_TRIES:
        logger.error(
            "request %s: gave up posting the link to #%s after %s tries (%s); "
            "the requester has not been told",
            row.id,
            row.issue_number,
            tries,
            error,
        )
        _update(
            deps,
            row.id,
            last_error=f"{GAVE_UP} after {tries} tries: {error}",
            next_attempt_at=None,
            lease_until=None,
        )
        return
    wait = backoff_seconds(tries)
    logger.warning(
        "request %s: could not post the issue link (%s); try %s, next in %.0fs",
        row.id,
        error,
        tries,
        wait,
    )
    _update(
        deps,
        row.id,
        last_error=f"could not post the issue link: {error}",
        next_attempt_at=deps.now() + dt.timedelta(seconds=wait),
        lease_until=None,
    )


# --- the worker -------------------------------------------------------------------------


class DrainReport(BaseModel):
    filed: int = 0
    notified: int = 0
    still_queued: int = 0
    failed: int = 0


def due_request_ids(deps: Deps, limit: int = DRAIN_BATCH) -> list[str]:
    """Queued filings first, then link replies, each up to `limit`: replies that keep
    failing cannot crowd out requests that are not on GitHub yet."""
    now = deps.now()
    r = tables.requests.c
    lease_free = sa.or_(r.lease_until.is_(None), r.lease_until < now)
    queued = sa.and_(
        r.status == Status.QUEUED.value,
        sa.or_(r.next_attempt_at.is_(None), r.next_attempt_at <= now),
    )
    with deps.store.engine.connect() as connection:
        filings = connection.execute(
            sa.select(r.id).where(lease_free, queued).order_by(r.created_at).limit(limit)
        ).scalars()
        replies = connection.execute(
            sa.select(r.id)
            .where(lease_free, _reply_due(now))
            .order_by(r.next_attempt_at, r.created_at)
            .limit(limit)
        ).scalars()
        return [*filings, *replies]


def drain_outbox(deps: Deps) -> DrainReport:
    """One pass over everything due: file queued requests, send replies not yet sent."""
    report = DrainReport()
    for request_id in due_request_ids(deps):
        before = get_request(deps, request_id)
        after = file_request(deps, request_id)
        if before is None or after is None:
            continue
        if before.status is Status.QUEUED and after.status is Status.FILED:
            report.filed += 1
        if before.notified_at is None and after.notified_at is not None:
            report.notified += 1
        if after.status is Status.QUEUED:
            report.still_queued += 1
        if after.status is Status.FAILED:
            report.failed += 1
    return report


def start_outbox_worker(deps: Deps, interval: float | None = None) -> Callable[[], None]:
    """Run drain_outbox every `interval` seconds in a daemon thread (started by `serve`).
    Returns the function that stops it. Warms the issue-form cache first."""
    interval = deps.settings.intake_poll_seconds if interval is None else interval
    stop = threading.Event()

    def loop() -> None:
        try:
            refresh_forms(deps)
        except Exception:
            logger.exception("could not load the repo's issue forms")
        while not stop.is_set():
            try:
                drain_outbox(deps)
            except Exception:
                logger.exception("outbox pass failed")
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="databot-outbox", daemon=True)
    thread.start()

    def stopper() -> None:
        stop.set()
        thread.join(timeout=10)

    return stopper


def list_requests(deps: Deps, statuses: list[Status] | None = None) -> list[RequestRow]:
    query = sa.select(tables.requests).order_by(tables.requests.c.created_at)
    if statuses:
        query = query.where(tables.requests.c.status.in_([s.value for s in statuses]))
    with deps.store.engine.connect() as connection:
        return [_row(m) for m in connection.execute(query).mappings()]


def requeue(deps: Deps, request_id: str) -> RequestRow | None:
    """Put a failed (or waiting) request back in the queue, due now; for a filed request
    whose link reply was given up, try the reply again."""
    row = get_request(deps, request_id)
    if row is None:
        return row
    if row.status is Status.FILED:
        if row.notified_at is None:
            deps.store.kv_set(REPLY_TRIES_KEY.format(id=request_id), "0")
            _update(deps, request_id, next_attempt_at=deps.now())
            return get_request(deps, request_id)
        return row
    _update(deps, request_id, status=Status.QUEUED.value, next_attempt_at=deps.now())
    return get_request(deps, request_id)


# --- issue forms: cached, refreshed off the request path --------------------------------


class FormsCache(BaseModel):
    fetched_at: dt.datetime
    forms: list[IssueForm] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


def refresh_forms(deps: Deps) -> FormsCache | None:
    """Read and parse the repo's issue forms now and cache them (None without GitHub)."""
    from bot.intake.forms import parse_issue_forms

    if deps.github is None:
        return None
    forms, problems = parse_issue_forms(deps.github.read_issue_forms())
    cache = FormsCache(fetched_at=deps.now(), forms=forms, problems=problems)
    deps.store.kv_set(FORMS_KEY, cache.model_dump_json())
    logger.info("issue forms refreshed: %s form(s), %s skipped", len(forms), len(problems))
    return cache


def cached_forms(deps: Deps) -> FormsCache | None:
    raw = deps.store.kv_get(FORMS_KEY)
    if raw is None:
        return None
    try:
        return FormsCache.model_validate_json(raw)
    except ValueError:
        return None


def request_forms(deps: Deps) -> list[IssueForm]:
    """The request types to offer now, without waiting on GitHub (views.open must happen
    within 3 s of the trigger): the cached repo forms, or the built-in ones. A stale or
    missing cache is refreshed in the background for the next modal."""
    cache = cached_forms(deps)
    ttl = dt.timedelta(seconds=deps.settings.intake_forms_ttl_seconds)
    if deps.github is not None and (cache is None or deps.now() - cache.fetched_at > ttl):
        _refresh_in_background(deps)
    if cache is not None and cache.forms:
        return cache.forms
    return builtin_forms()


class FormsRefresh:
    """At most one background refresh of the issue forms at a time, per process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()


def _refresh_in_background(deps: Deps) -> None:
    lock = deps.service(FormsRefresh, FormsRefresh).lock
    if not lock.acquire(blocking=False):
        return  # a refresh is already running

    def run() -> None:
        try:
            refresh_forms(deps)
        except Exception:
            logger.warning("issue form refresh failed; using the cached forms", exc_info=True)
        finally:
            lock.release()

    deps.work.submit(run)


def find_form(forms: list[IssueForm], key: str | None) -> IssueForm | None:
    return next((f for f in forms if f.key == key), None)


THREAD_DRAFT_KEY = "intake:thread:{channel}:{ts}"


def save_thread_draft(deps: Deps, channel_id: str, thread_ts: str, messages: list[ThreadMessage]):
    """Keep a thread's transcript for the modal's submission (too big for private_metadata)."""
    payload = [m.model_dump() for m in messages]
    deps.store.kv_set(THREAD_DRAFT_KEY.format(channel=channel_id, ts=thread_ts), _json(payload))


def load_thread_draft(deps: Deps, channel_id: str, thread_ts: str) -> list[ThreadMessage]:
    raw = deps.store.kv_get(THREAD_DRAFT_KEY.format(channel=channel_id, ts=thread_ts))
    if not raw:
        return []
    return [ThreadMessage.model_validate(m) for m in json.loads(raw)]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_request_list(rows: list[RequestRow], now: dt.datetime) -> str:
    """`databot requests`: one line per request, for an operator's terminal."""
    if not rows:
        return "No queued or failed requests."
    lines = []
    for row in rows:
        if row.status is Status.FILED:
            state = f"filed #{row.issue_number}"
        elif row.status is Status.QUEUED and row.next_attempt_at and row.next_attempt_at > now:
            wait = int((row.next_attempt_at - now).total_seconds())
            state = f"queued, next try in {wait // 60}m{wait % 60:02d}s"
        else:
            state = str(row.status)
        line = (
            f"{row.id}  {state:<28} {row.created_at:%Y-%m-%d %H:%M}Z  "
            f"attempts {row.attempts}  {row.title[:60]}"
        )
        if row.status is Status.FILED and row.notified_at is None and row.last_error:
            line += f"\n    reply: {row.last_error}"
        elif row.last_error and row.status is not Status.FILED:
            line += f"\n    last error: {row.last_error}"
        lines.append(line)
    return "\n".join(lines)
