"""The `requests` table as an outbox: a Slack submission is stored before anything calls
GitHub, and none is lost.

A submission is stored first (its unique `dedupe_key` makes Slack retries and double clicks
one row; its unique `thread_key` makes one request per Slack thread), then filed on GitHub
(bot/intake/filing.py) by whoever holds the row's lease: the listener's background task
right away, or the outbox worker later (after a GitHub failure, a missing token, or a
restart). A lease is fenced on the attempt number, so a worker whose lease ran out can no
longer change the row.

Also kept in the state store: the repo's issue forms (cached, refreshed off the request
path) and a thread's transcript while its modal is open.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from bot import tables
from bot.intake.forms import IssueForm, builtin_forms, parse_issue_forms
from bot.intake.model import RequestRow, Status, Submission, ThreadMessage

if TYPE_CHECKING:
    from bot.deps import Deps
    from bot.settings import Settings

logger = logging.getLogger(__name__)

# A reply to Slack: chat.postMessage (10 s timeout, two 429 retries) with a wide margin.
NOTIFY_LEASE = dt.timedelta(minutes=5)
# GET requests the marker lookup may make: one search page, then up to 200 recent issues at
# PyGithub's 30 per page (see GitHubGateway.find_issue_with_marker).
LOOKUP_REQUESTS = 1 + 7
LEASE_MARGIN_SECONDS = 60.0  # clock skew between workers, the database, Slack calls
DRAIN_BATCH = 20
REPLY_TRIES_KEY = "intake:reply-tries:{id}"
FORMS_KEY = "intake:forms"
THREAD_DRAFT_KEY = "intake:thread:{channel}:{ts}"


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
    request_id = str(uuid.uuid4())
    row = {
        "id": request_id,
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
    logger.info("request %s stored (%s)", request_id, sub.form.name)
    stored = get_request(deps, request_id)
    assert stored is not None
    return SubmitResult(row=stored, created=True)


def _existing(deps: Deps, dedupe_key: str, thread_key: str | None) -> RequestRow | None:
    condition = tables.requests.c.dedupe_key == dedupe_key
    if thread_key:
        condition = sa.or_(condition, tables.requests.c.thread_key == thread_key)
    with deps.store.engine.connect() as connection:
        first = connection.execute(sa.select(tables.requests).where(condition)).mappings().first()
    return _row(first) if first else None


# --- leases and fencing ---------------------------------------------------------------


def filing_lease(settings: Settings) -> dt.timedelta:
    """How long one filing attempt holds a request: the worst case of its GitHub calls under
    `settings` (each idempotent GET: every try times out, with the longest allowed wait
    between tries; the POST is never retried). A lease that ran out anyway is caught by the
    fence (see renew_lease), so this only has to make that rare."""
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


def take_lease(deps: Deps, request_id: str, *, status: Status, count_attempt: bool) -> int | None:
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


def fenced_update(deps: Deps, request_id: str, attempt: int, **values: Any) -> bool:
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


def renew_lease(deps: Deps, request_id: str, attempt: int) -> None:
    """Right before the create: confirm this attempt still owns the request (nobody took it
    over while the lookup or rendering ran long) and hold it for the POST's worst case."""
    until = deps.now() + dt.timedelta(seconds=_post_seconds(deps.settings) + LEASE_MARGIN_SECONDS)
    if not fenced_update(deps, request_id, attempt, lease_until=until):
        raise LeaseLost(request_id)


def update_request(deps: Deps, request_id: str, **values: Any) -> None:
    values["updated_at"] = deps.now()
    with deps.store.engine.begin() as connection:
        connection.execute(
            tables.requests.update().where(tables.requests.c.id == request_id).values(**values)
        )


# --- what is due, and what an operator sees ---------------------------------------------


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
            update_request(deps, request_id, next_attempt_at=deps.now())
            return get_request(deps, request_id)
        return row
    update_request(deps, request_id, status=Status.QUEUED.value, next_attempt_at=deps.now())
    return get_request(deps, request_id)


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


# --- issue forms: cached, refreshed off the request path --------------------------------


class FormsCache(BaseModel):
    fetched_at: dt.datetime
    forms: list[IssueForm] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


def refresh_forms(deps: Deps) -> FormsCache | None:
    """Read and parse the repo's issue forms now and cache them (None without GitHub)."""
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


# --- a thread's transcript, while its modal is open ---------------------------------------


def save_thread_draft(
    deps: Deps, channel_id: str, thread_ts: str, messages: list[ThreadMessage]
) -> None:
    """Keep a thread's transcript for the modal's submission (too big for private_metadata)."""
    payload = [m.model_dump() for m in messages]
    deps.store.kv_set(
        THREAD_DRAFT_KEY.format(channel=channel_id, ts=thread_ts),
        json.dumps(payload, ensure_ascii=False),
    )


def load_thread_draft(deps: Deps, channel_id: str, thread_ts: str) -> list[ThreadMessage]:
    raw = deps.store.kv_get(THREAD_DRAFT_KEY.format(channel=channel_id, ts=thread_ts))
    if not raw:
        return []
    return [ThreadMessage.model_validate(m) for m in json.loads(raw)]
