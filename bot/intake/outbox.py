"""The `requests` table as an outbox: a Slack submission is stored before anything calls
GitHub, and none is lost.

A submission is stored first (its unique `dedupe_key` makes Slack retries and double clicks
one row; its unique `thread_key` makes one request per Slack thread), then filed on GitHub
(bot/intake/filing.py) by whoever holds the row's lease: the listener's background task
right away, or the outbox worker later (after a GitHub failure, a missing token, or a
restart). A lease is fenced on the attempt number, so a worker whose lease ran out can no
longer change the row. While an attempt prepares (marker lookup, users.info, rendering) its
lease is short and renewed as the work proceeds (FilingLease); only around a non-idempotent
POST is it long enough for that POST's worst case (the fence). A worker that dies therefore
holds its request for about PREPARE_LEASE, not for the worst case of a whole attempt.

Also kept in the state store: the repo's issue forms (cached, refreshed off the request
path) and a thread's transcript while its modal is open.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
# A filing attempt that is alive renews its lease this often (seconds, real time) while it
# prepares; the lease outlives two missed renewals plus the margin. A worker that died is
# taken over PREPARE_LEASE after its last renewal, plus one outbox poll.
HEARTBEAT_SECONDS = 15.0
PREPARE_LEASE = dt.timedelta(seconds=2 * HEARTBEAT_SECONDS + LEASE_MARGIN_SECONDS)
# A request not filed this long after its submission: the requester is told it is queued.
QUEUED_NOTICE_AFTER = dt.timedelta(minutes=1)
# The claim bot/intake/filing.py makes for the once-only "queued" note (dedupe_keys).
QUEUED_NOTICE_KEY = "intake:queued-notice:{id}"
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
    with deps.store.reading() as connection:
        found = connection.execute(
            sa.select(tables.requests).where(tables.requests.c.id == request_id)
        ).mappings()
        first = found.first()
    return _row(first) if first else None


def request_for_thread(deps: Deps, channel_id: str, thread_ts: str) -> RequestRow | None:
    with deps.store.reading() as connection:
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


def filed_requests(deps: Deps, issue_numbers: list[int]) -> dict[int, RequestRow]:
    """The filed requests behind these issue numbers of GITHUB_REPO (issues databot did not
    file are absent): the seam through which request follow-ups learn where to reply."""
    if not issue_numbers:
        return {}
    with deps.store.reading() as connection:
        rows = connection.execute(
            sa.select(tables.requests)
            .where(
                tables.requests.c.status == Status.FILED,
                tables.requests.c.issue_number.in_(sorted(set(issue_numbers))),
            )
            .order_by(tables.requests.c.created_at)
        ).mappings()
        return {row["issue_number"]: _row(row) for row in rows}


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
    with deps.store.reading() as connection:
        first = connection.execute(sa.select(tables.requests).where(condition)).mappings().first()
    return _row(first) if first else None


# --- leases and fencing ---------------------------------------------------------------


def filing_lease(settings: Settings) -> dt.timedelta:
    """The worst case of one filing attempt's GitHub calls under `settings` (each idempotent
    GET: every try times out, with the longest allowed wait between tries; the POST is never
    retried). Not the lease itself (that is PREPARE_LEASE, renewed): the longest a live
    attempt's heartbeat keeps renewing it, so a wedged worker cannot hold a request forever."""
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
        lease = PREPARE_LEASE  # renewed while the attempt proceeds: see FilingLease
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
    """Right before a POST (the create, a continuation comment): confirm this attempt still
    owns the request (nobody took it over while the lookup or rendering ran long) and hold it
    for the POST's worst case (the fence)."""
    until = deps.now() + dt.timedelta(seconds=_post_seconds(deps.settings) + LEASE_MARGIN_SECONDS)
    if not fenced_update(deps, request_id, attempt, lease_until=until):
        raise LeaseLost(request_id)


class FilingLease:
    """One attempt's hold on a queued request, from take_lease until the attempt ends.

    Short while the attempt prepares: `checkpoint()` renews it between steps, and a
    heartbeat thread renews it every HEARTBEAT_SECONDS while a step (a slow GitHub GET with
    its retries, users.info) runs, for at most filing_lease(settings) in all. Long only inside
    `fence()`, around one non-idempotent POST: there the heartbeat pauses, so nothing shortens
    the fence. Every renewal is fenced on the attempt number: once another worker took the
    request over, `checkpoint()` and `fence()` raise LeaseLost and this attempt writes
    nothing more. Use as a context manager (the heartbeat stops on exit)."""

    def __init__(self, deps: Deps, request_id: str, attempt: int) -> None:
        self.deps = deps
        self.request_id = request_id
        self.attempt = attempt
        self.lost = False
        self._fenced = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FilingLease:
        self._thread = threading.Thread(
            target=self._beat, name=f"databot-lease-{self.request_id[:8]}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def checkpoint(self) -> None:
        """Renew the short lease now; LeaseLost when the request was taken over."""
        with self._lock:
            if self.lost or not self._renew():
                self.lost = True
                raise LeaseLost(self.request_id)

    @contextmanager
    def fence(self) -> Iterator[None]:
        """Hold the request for one POST's worst case while the block runs."""
        with self._lock:
            if self.lost:
                raise LeaseLost(self.request_id)
            try:
                renew_lease(self.deps, self.request_id, self.attempt)
            except LeaseLost:
                self.lost = True
                raise
            self._fenced = True
        try:
            yield
        finally:
            with self._lock:
                self._fenced = False

    def _renew(self) -> bool:
        until = self.deps.now() + PREPARE_LEASE
        return fenced_update(self.deps, self.request_id, self.attempt, lease_until=until)

    def _beat(self) -> None:
        give_up = time.monotonic() + filing_lease(self.deps.settings).total_seconds()
        while not self._stop.wait(HEARTBEAT_SECONDS):
            if time.monotonic() > give_up:
                logger.warning(
                    "request %s: attempt %s is still running after the worst case of its "
                    "GitHub calls; no longer renewing its lease",
                    self.request_id,
                    self.attempt,
                )
                return
            with self._lock:
                if self._fenced or self.lost:
                    continue
                try:
                    renewed = self._renew()
                except Exception:  # noqa: BLE001 - the next beat or checkpoint tries again
                    logger.warning("request %s: lease renewal failed", self.request_id)
                    continue
                if not renewed:
                    self.lost = True
                    return


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
    with deps.store.reading() as connection:
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


def delayed_request_ids(deps: Deps, limit: int = DRAIN_BATCH) -> list[str]:
    """Queued requests submitted more than QUEUED_NOTICE_AFTER ago whose requester has not
    been told they are queued, whoever holds their lease (a worker that died keeps its lease
    for a while; the requester hears meanwhile)."""
    r, claims = tables.requests.c, tables.dedupe_keys
    claim_key = sa.literal(QUEUED_NOTICE_KEY.split("{", 1)[0]) + r.id
    query = (
        sa.select(r.id)
        .select_from(tables.requests.outerjoin(claims, claims.c.key == claim_key))
        .where(
            r.status == Status.QUEUED.value,
            r.created_at <= deps.now() - QUEUED_NOTICE_AFTER,
            claims.c.key.is_(None),
        )
        .order_by(r.created_at)
        .limit(limit)
    )
    with deps.store.reading() as connection:
        return list(connection.execute(query).scalars())


def list_requests(deps: Deps, statuses: list[Status] | None = None) -> list[RequestRow]:
    query = sa.select(tables.requests).order_by(tables.requests.c.created_at)
    if statuses:
        query = query.where(tables.requests.c.status.in_([s.value for s in statuses]))
    with deps.store.reading() as connection:
        return [_row(m) for m in connection.execute(query).mappings()]


def requests_by(deps: Deps, requester_id: str, limit: int = 10) -> list[RequestRow]:
    """A person's latest requests, newest first (the Home tab reads them through this)."""
    r = tables.requests.c
    query = (
        sa.select(tables.requests)
        .where(r.requester_id == requester_id)
        .order_by(r.created_at.desc())
        .limit(limit)
    )
    with deps.store.reading() as connection:
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

    try:
        deps.work.submit(run)
    except RuntimeError:  # stopping: the cached forms serve until the next start
        lock.release()


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
