"""The thread talks back: a person's reply in a request's Slack thread, after the request
was stored, becomes one comment on its GitHub issue ("Bob Ortiz in Slack: …" and a link to
the message), escaped for GitHub like the issue itself (no @mentions, no #refs, no HTML).

Once per Slack message, whatever Slack and GitHub do:
- The reply is stored first in `thread_mirrors`, keyed by (channel, ts): a retry of the
  event (`X-Slack-Retry-Num`; the HTTP gate already drops a repeated `event_id`, Socket
  Mode has no gate), a replay or a second replica stores nothing more.
- Only the holder of the row's lease posts, and every write is fenced on the attempt
  number. The comment starts with a hidden REPLY_MARKER: an attempt after one whose POST
  may have gone through (its answer lost, GitHub down, a crash) lists the issue's comments
  and adopts the comment it finds instead of posting again. PyGithub never re-sends the
  POST itself (bot/github.py).
- A GitHub outage leaves the row queued; the mirror worker retries it with backoff.
- A reply to a request not filed yet (queued, or failed and waiting for the team to file
  it again) stays queued; filing the request makes its replies due at once.

Edits, deletions and bot messages are not mirrored; a reply with files, or with nothing but
emoji, is mirrored as a link to the message. Only channels in THREAD_MIRROR_CHANNELS are
mirrored (off by default); a thread with no request, or a request not from a thread, is
ignored.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bot import tables
from bot.github import classify_failure
from bot.intake.filing import backoff_seconds, user_namer
from bot.intake.issue import BODY_MAX
from bot.intake.markdown import github_markdown, slack_to_plain, starts_with_fence
from bot.intake.model import REPLY_MARKER, RequestRow, Status, ThreadReply
from bot.intake.outbox import filing_lease, get_request, request_for_thread
from bot.slack_text import truncate

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

QUEUED, POSTED, FAILED = "queued", "posted", "failed"
# A reply to a request not on GitHub yet waits this long between looks.
WAIT_FOR_ISSUE = dt.timedelta(seconds=30)
DRAIN_BATCH = 20
# Slack allows 40,000 characters a message; escaped for GitHub (an `@` becomes 8) it could
# outgrow a comment, so the text is cut (with a link to the rest) until it fits.
COMMENT_MAX = BODY_MAX - 1_000


def receive_reply(deps: Deps, reply: ThreadReply, event_id: str | None) -> bool:
    """Store `reply` for mirroring if it is one; True when it was stored just now (False:
    not mirrored, or already stored by an earlier delivery)."""
    if not reply.is_person_reply or reply.thread_ts is None:
        return False
    if not deps.settings.mirrors_channel(reply.channel):
        return False
    request = request_for_thread(deps, reply.channel, reply.thread_ts)
    if request is None:
        return False  # a thread databot did not file
    if any(m.ts == reply.ts for m in request.submission.thread):
        return False  # quoted in the issue already
    now = deps.now()
    try:
        with deps.store.engine.begin() as connection:
            connection.execute(
                tables.thread_mirrors.insert().values(
                    channel_id=reply.channel,
                    ts=reply.ts,
                    request_id=request.id,
                    event_id=(event_id or "")[:100] or None,
                    user_id=reply.user,
                    payload=reply.model_dump(mode="json"),
                    status=QUEUED,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        logger.info("thread reply %s/%s: already stored (a retried event)", reply.channel, reply.ts)
        return False
    return True


def take_thread_reply(deps: Deps, reply: ThreadReply, event_id: str | None) -> None:
    """The event listener's flow: store the reply, then try to mirror it now."""
    if receive_reply(deps, reply, event_id):
        mirror_reply(deps, reply.channel, reply.ts)


# --- posting one reply --------------------------------------------------------------------


def _take(deps: Deps, channel: str, ts: str) -> int | None:
    now = deps.now()
    m = tables.thread_mirrors.c
    where = [
        m.channel_id == channel,
        m.ts == ts,
        m.status == QUEUED,
        sa.or_(m.lease_until.is_(None), m.lease_until < now),
        sa.or_(m.next_attempt_at.is_(None), m.next_attempt_at <= now),
    ]
    values = {
        # The worst case of this attempt's GitHub calls: nobody takes it over meanwhile.
        "lease_until": now + filing_lease(deps.settings),
        "attempts": m.attempts + 1,
        "updated_at": now,
    }
    with deps.store.engine.begin() as connection:
        if (
            connection.execute(
                tables.thread_mirrors.update().where(*where).values(**values)
            ).rowcount
            != 1
        ):
            return None
        return connection.execute(
            sa.select(m.attempts).where(m.channel_id == channel, m.ts == ts)
        ).scalar_one()


def _fenced(deps: Deps, channel: str, ts: str, attempt: int, **values: Any) -> bool:
    m = tables.thread_mirrors.c
    values["updated_at"] = deps.now()
    with deps.store.engine.begin() as connection:
        done = connection.execute(
            tables.thread_mirrors.update()
            .where(m.channel_id == channel, m.ts == ts, m.attempts == attempt, m.status == QUEUED)
            .values(**values)
        ).rowcount
    return done == 1


def _row(deps: Deps, channel: str, ts: str) -> dict[str, Any] | None:
    m = tables.thread_mirrors.c
    with deps.store.reading() as connection:
        found = (
            connection.execute(
                sa.select(tables.thread_mirrors).where(m.channel_id == channel, m.ts == ts)
            )
            .mappings()
            .first()
        )
    return dict(found) if found else None


def mirror_reply(deps: Deps, channel: str, ts: str) -> str | None:
    """Try to get one stored reply onto its issue; the row's status afterwards (None: no
    such row). Safe from any number of threads and processes: only the lease holder acts."""
    attempt = _take(deps, channel, ts)
    row = _row(deps, channel, ts)
    if attempt is None or row is None:
        return row["status"] if row else None
    request = get_request(deps, row["request_id"])
    if request is None:
        _fenced(
            deps,
            channel,
            ts,
            attempt,
            status=FAILED,
            last_error="the request is not on GitHub",
            lease_until=None,
        )
        return FAILED
    if request.issue_number is None or request.status is not Status.FILED or deps.github is None:
        # Not filed yet, failed for now (the team may file it again: filing wakes the
        # replies then), or no GITHUB_TOKEN: the reply waits, not counted as a failure.
        _fenced(
            deps,
            channel,
            ts,
            attempt,
            attempts=attempt - 1,
            next_attempt_at=deps.now() + WAIT_FOR_ISSUE,
            lease_until=None,
        )
        return QUEUED
    reply = ThreadReply.model_validate(row["payload"])
    marker = REPLY_MARKER.format(channel=channel, ts=ts)
    try:
        if attempt > 1 and any(
            marker in body for body in deps.github.issue_comments(request.issue_number)
        ):
            logger.info(
                "thread reply %s/%s: found the comment an earlier attempt posted", channel, ts
            )
        else:
            body = render_reply_comment(
                reply, marker, _permalink(deps, channel, ts), user_namer(deps)
            )
            # Still ours right before the POST (nobody took a slow attempt over), and held
            # for the POST's worst case.
            hold = deps.now() + filing_lease(deps.settings)
            if not _fenced(deps, channel, ts, attempt, lease_until=hold):
                logger.warning("thread reply %s/%s: taken over; not posting", channel, ts)
                return mirror_status(deps, channel, ts)
            deps.github.add_issue_comment(request.issue_number, body)
    except Exception as exc:  # noqa: BLE001 - classified: retried, or failed for a person
        return _failed(deps, channel, ts, attempt, exc)
    _fenced(
        deps,
        channel,
        ts,
        attempt,
        status=POSTED,
        last_error=None,
        lease_until=None,
        next_attempt_at=None,
    )
    logger.info("thread reply %s/%s mirrored to #%s", channel, ts, request.issue_number)
    return POSTED


def _failed(deps: Deps, channel: str, ts: str, attempt: int, exc: Exception) -> str:
    try:
        failure = classify_failure(exc)
    except Exception:  # a bug of ours: logged, retried like an outage
        logger.exception("thread reply %s/%s: unexpected error", channel, ts)
        failure = None
    if failure is not None and not failure.transient:
        _fenced(
            deps, channel, ts, attempt, status=FAILED, last_error=failure.message, lease_until=None
        )
        logger.error("thread reply %s/%s not mirrored: %s", channel, ts, failure.message)
        return FAILED
    message = failure.message if failure else f"unexpected error ({type(exc).__name__})"
    wait = max(backoff_seconds(attempt), (failure.retry_after or 0.0) if failure else 0.0)
    _fenced(
        deps,
        channel,
        ts,
        attempt,
        last_error=message,
        next_attempt_at=deps.now() + dt.timedelta(seconds=wait),
        lease_until=None,
    )
    logger.warning(
        "thread reply %s/%s: %s; attempt %s, next in %.0fs", channel, ts, message, attempt, wait
    )
    return QUEUED


def _permalink(deps: Deps, channel: str, ts: str) -> str | None:
    try:
        return str(deps.slack.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
    except Exception:  # noqa: BLE001 - the comment is still worth posting without the link
        logger.warning("no permalink for %s/%s", channel, ts)
        return None


def _link(url: str) -> str:
    # Slack's permalinks are plain https URLs; encode what would end a Markdown link early.
    return quote(url, safe=":/?#[]@!$&'*+,;=%~-._")


def _link_text(text: str) -> str:
    # The backslash first: a `\]` typed in Slack must not turn the escape of `]` into a
    # literal backslash and a real bracket.
    escaped = github_markdown(text).replace("\\", "\\\\")
    return escaped.replace("[", "\\[").replace("]", "\\]")


def render_reply_comment(
    reply: ThreadReply,
    marker: str,
    permalink: str | None,
    user_name: Callable[[str], str],
) -> str:
    """The comment a reply becomes. Pure. Files and emoji-only replies become a link to the
    message (the file itself stays in Slack, where its permissions apply)."""
    who = github_markdown(user_name(reply.user) if reply.user else "Someone")
    head = f"<!-- {marker} -->\n{who} in Slack:"
    url = _link(permalink) if permalink else None
    link = f"[the message in Slack]({url})" if url else "(Slack gave no link to the message)"
    if reply.files:
        names = ", ".join(_link_text(f.title or f.name or "a file") for f in reply.files[:10])
        shared = f"[shared {names}]({url})" if url else f"shared {names}"
        if not reply.text.strip() or reply.only_emoji:
            return f"{head} {shared}\n"
        return _fit(f"{head} {shared}\n\n", reply, user_name, link)
    if reply.only_emoji or not reply.text.strip():
        what = _link_text(truncate(reply.text.strip() or "a message", 200))
        return f"{head} [{what}]({url})\n" if url else f"{head} {what}\n"
    return _fit(head, reply, user_name, link)


def _fit(head: str, reply: ThreadReply, user_name: Callable[[str], str], link: str) -> str:
    plain = slack_to_plain(reply.text, user_name)
    limit = len(plain)
    while True:
        cut = truncate(plain, limit)
        text = github_markdown(cut)
        if cut != plain:
            text += "\n\n_(cut here: the whole message is in Slack)_"
        # A fence must start its line: after "in Slack:" it would be text (issue.py does the same).
        sep = (
            ""
            if head.endswith("\n")
            else ("\n" if starts_with_fence(text) or "\n" in text else " ")
        )
        body = f"{head}{sep}{text}\n\n— {link}\n"
        if len(body) <= COMMENT_MAX:
            return body
        limit = limit // 2


# --- the worker ---------------------------------------------------------------------------


def due_replies(deps: Deps, limit: int = DRAIN_BATCH) -> list[tuple[str, str]]:
    now = deps.now()
    m = tables.thread_mirrors.c
    query = (
        sa.select(m.channel_id, m.ts)
        .where(
            m.status == QUEUED,
            sa.or_(m.lease_until.is_(None), m.lease_until < now),
            sa.or_(m.next_attempt_at.is_(None), m.next_attempt_at <= now),
        )
        .order_by(m.created_at)
        .limit(limit)
    )
    with deps.store.reading() as connection:
        return [(r.channel_id, r.ts) for r in connection.execute(query)]


def drain_replies(deps: Deps) -> int:
    """One pass over the replies due; how many were mirrored."""
    return sum(mirror_reply(deps, channel, ts) == POSTED for channel, ts in due_replies(deps))


def mirror_status(deps: Deps, channel: str, ts: str) -> str | None:
    row = _row(deps, channel, ts)
    return row["status"] if row else None


def start_mirror_worker(deps: Deps, interval: float | None = None) -> Callable[[], None]:
    """drain_replies every `interval` seconds (INTAKE_POLL_SECONDS) in a daemon thread."""
    interval = deps.settings.intake_poll_seconds if interval is None else interval
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                drain_replies(deps)
            except Exception:
                logger.exception("thread mirror pass failed")

    thread = threading.Thread(target=loop, name="databot-mirror", daemon=True)
    thread.start()

    def stopper() -> None:
        stop.set()
        thread.join(timeout=10)

    return stopper


def request_of(deps: Deps, channel: str, ts: str) -> RequestRow | None:
    row = _row(deps, channel, ts)
    return get_request(deps, row["request_id"]) if row else None
