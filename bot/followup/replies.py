"""Telling the requester: each change of a filed request's issue becomes one reply in the
request's Slack thread (or the requester's DM when it came from a modal).

Exactly once, whichever input sees the change first (webhook, redelivery, poller, two
replicas at once):
- The issue as last told is a row of `followup_issues`. A view of the issue is compared
  with it under the row's lock (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's writer lock
  on SQLite), so two views are compared one after the other: the second finds nothing new.
  A view older than the row (a late webhook) changes nothing.
- Each change also claims its key (`followup:<repo>#<n>:<change>`, in `dedupe_keys`) in the
  same transaction, and its reply is stored there as due (bot/slack_post.py `queue`): a
  crash after the commit loses nothing, and nothing commits twice.
- The reply is sent right after the commit by `redeliver_due`, under the same key, so a
  lost answer is found in the thread by its metadata, never posted twice, and a Slack
  outage leaves it due for the next `redeliver` (the web worker and the clock call it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from bot import tables
from bot.errors import GitHubUnavailable
from bot.followup.blocks import build_followup_message
from bot.followup.model import (
    Change,
    CommentMode,
    Snapshot,
    Update,
    changes,
    closing_comment,
    comment_is_told,
    comment_update,
    newly_closed,
    snapshot_of,
)
from bot.github import GitHubComment, GitHubIssue, IssueRef, IssuesClient, comment_from_json
from bot.intake.model import RequestRow, reply_target
from bot.intake.outbox import filed_requests
from bot.slack_post import queue, redeliver_due

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

KEY_PREFIX = "followup:"
# Told to whoever wants to know that a request changed (the Home tab refreshes then): the
# requester's Slack id, the issue number and what changed. Passed in by bot/features.py.
OnChange = Callable[["Deps", str, int, list[Update]], None]


class FollowupClient(IssuesClient):
    """This feature's own GitHub client (its request count is its own)."""


def make_client(deps: Deps) -> FollowupClient:
    settings = deps.settings
    token = settings.github_token.get_secret_value() if settings.github_token else None
    return deps.service(FollowupClient, lambda: FollowupClient(settings.github_api_url, token))


def reply_key(repo: str, number: int, change_key: str) -> str:
    key = f"{KEY_PREFIX}{repo}#{number}:{change_key}"
    if len(key) > 150:  # the kv and dedupe keys hold 200 characters, with their prefixes
        key = f"{KEY_PREFIX}{repo[:60]}#{number}:{hashlib.sha256(key.encode()).hexdigest()}"
    return key


def told(settings, kind: Change) -> bool:
    return str(kind) in settings.followup_changes


def redeliver(deps: Deps) -> int:
    """Send the replies still due (a Slack outage, a lost answer, a crash after a commit)."""
    return redeliver_due(deps, KEY_PREFIX)


REDELIVER_SECONDS = 30.0


def start_reply_worker(deps: Deps, interval: float = REDELIVER_SECONDS) -> Callable[[], None]:
    """`serve`'s background loop sending replies left due; returns its stopper. Any number
    of replicas may run it (bot/slack_post.py hands each try to one of them)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                redeliver(deps)
            except Exception:
                logger.exception("follow-up replies: redelivery failed")

    thread = threading.Thread(target=loop, name="followup-replies", daemon=True)
    thread.start()

    def stopper() -> None:
        stop.set()
        thread.join(timeout=5)

    return stopper


# --- issues --------------------------------------------------------------------------------


def observe_issues(
    deps: Deps,
    issues: Iterable[GitHubIssue],
    *,
    client: IssuesClient | None = None,
    on_change: OnChange | None = None,
) -> int:
    """Compare each issue databot filed with what its requester last heard; tell them what
    changed. Other issues are ignored. Returns how many replies were queued."""
    wanted = [i for i in issues if i.pull_request is None]
    filed = filed_requests(deps, [i.number for i in wanted])
    queued = 0
    for issue in wanted:
        row = filed.get(issue.number)
        if row is None:
            continue
        try:
            queued += len(observe_issue(deps, row, issue, client=client, on_change=on_change))
        except Exception:  # one issue's bug must not stop the others (nor the cursor)
            logger.exception("follow-up of #%s: skipped (could not tell its change)", issue.number)
    return queued


def observe_issue(
    deps: Deps,
    row: RequestRow,
    issue: GitHubIssue,
    *,
    client: IssuesClient | None = None,
    on_change: OnChange | None = None,
) -> list[str]:
    settings = deps.settings
    repo = settings.github_repo
    current = _snapshot(deps, repo, issue.number)
    # No baseline (filing records one): a request filed before follow-ups, or one whose
    # baseline was not recorded. Its first view is recorded silently: what happened before
    # it is old news, never replayed.
    first_view = snapshot_of(issue, urgent_label=settings.urgent_label, before=Snapshot())
    if current is None:
        if _lock_new(deps, repo, issue, first_view):
            return []
        current = _snapshot(deps, repo, issue.number)  # another input recorded it just now
    before = current[0] if current else first_view
    extra: dict[str, GitHubComment | None] = {}
    now_view = snapshot_of(issue, urgent_label=settings.urgent_label, before=before)
    if newly_closed(before, now_view):
        # Outside the transaction: a GitHub call never holds the row's lock.
        extra["closing"] = _closing_comment(deps, issue, client)

    updates: list[Update] = []
    keys: list[str] = []
    issue_ref = IssueRef(issue.number, issue.html_url, issue.title)
    with deps.store.engine.begin() as connection:
        stored = _lock(connection, deps, repo, issue.number, first_view)
        before, seen_at = stored
        if seen_at is not None and issue.updated_at < seen_at:
            logger.info("follow-up %s#%s: an older view of the issue; ignored", repo, issue.number)
            return []
        now_view = snapshot_of(issue, urgent_label=settings.urgent_label, before=before)
        found, after = changes(before, now_view)
        for update in found:
            if update.kind in (Change.DELIVERED, Change.NOT_PLANNED):
                closing = extra.get("closing")
                if closing is not None:
                    update.link = closing.html_url
                    # The closing comment is told with the close, not again on its own; when
                    # it was told already (its webhook came first), the close links to it.
                    comment_key = reply_key(repo, issue.number, f"comment:{closing.id}")
                    if _claim(connection, deps, comment_key):
                        update.excerpt = closing.body or ""
            key = _tell(connection, deps, row, issue_ref, update)
            if key:
                keys.append(key)
                updates.append(update)
        connection.execute(
            tables.followup_issues.update()
            .where(
                tables.followup_issues.c.repo == repo,
                tables.followup_issues.c.issue_number == issue.number,
            )
            .values(
                snapshot=after.model_dump(mode="json"),
                github_updated_at=max(issue.updated_at, seen_at) if seen_at else issue.updated_at,
                updated_at=deps.now(),
            )
        )
    _send(deps, keys)
    if updates and on_change is not None:
        on_change(deps, row.requester_id, issue.number, updates)
    return keys


def record_filed(deps: Deps, issue: GitHubIssue) -> None:
    """The follow-up baseline of an issue intake just created (seam intake -> followup):
    the issue as GitHub created it (the analyst routing assigned, its labels), which the
    requester knows from the "Filed #N" reply. Recorded before the request is marked filed,
    so no follow-up input compares with anything else. Kept when already there."""
    settings = deps.settings
    view = snapshot_of(issue, urgent_label=settings.urgent_label, before=Snapshot())
    _lock_new(deps, settings.github_repo, issue, view)


def _lock_new(deps: Deps, repo: str, issue: GitHubIssue, view: Snapshot) -> bool:
    """Record `view` as the issue as last told, unless a row is there already (False)."""
    table = tables.followup_issues
    now = deps.now()
    try:
        with deps.store.engine.begin() as connection:
            connection.execute(
                table.insert().values(
                    repo=repo,
                    issue_number=issue.number,
                    snapshot=view.model_dump(mode="json"),
                    github_updated_at=issue.updated_at,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        return False  # recorded already (filing, or another input's first view): it stands
    return True


def _snapshot(deps: Deps, repo: str, number: int) -> tuple[Snapshot, dt.datetime | None] | None:
    table = tables.followup_issues
    with deps.store.reading() as connection:
        found = connection.execute(
            sa.select(table.c.snapshot, table.c.github_updated_at).where(
                table.c.repo == repo, table.c.issue_number == number
            )
        ).first()
    return (Snapshot.model_validate(found.snapshot), found.github_updated_at) if found else None


def _lock(
    connection: sa.Connection, deps: Deps, repo: str, number: int, baseline: Snapshot
) -> tuple[Snapshot, dt.datetime | None]:
    """The issue's row, locked until the transaction ends (created from `baseline` first)."""
    table = tables.followup_issues
    now = deps.now()
    try:
        with connection.begin_nested():
            connection.execute(
                table.insert().values(
                    repo=repo,
                    issue_number=number,
                    snapshot=baseline.model_dump(mode="json"),
                    github_updated_at=None,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        pass  # there already (or a concurrent writer made it): lock it below
    row = connection.execute(
        sa.select(table.c.snapshot, table.c.github_updated_at)
        .where(table.c.repo == repo, table.c.issue_number == number)
        .with_for_update()
    ).one()
    return Snapshot.model_validate(row.snapshot), row.github_updated_at


def _claim(connection: sa.Connection, deps: Deps, key: str) -> bool:
    try:
        with connection.begin_nested():
            connection.execute(tables.dedupe_keys.insert().values(key=key, created_at=deps.now()))
    except IntegrityError:
        return False
    return True


def _tell(
    connection: sa.Connection,
    deps: Deps,
    row: RequestRow,
    issue: IssueRef,
    update: Update,
) -> str | None:
    """Claim the change and store its reply as due; the key, or None when it is not told
    (turned off, or told before)."""
    settings = deps.settings
    key = reply_key(settings.github_repo, issue.number, update.key)
    if not told(settings, update.kind) or not _claim(connection, deps, key):
        return None
    target = reply_target(row.submission)
    message = build_followup_message(
        update,
        issue,
        requester=row.requester_id if target.thread_ts else None,
        excerpt_chars=settings.followup_excerpt_chars,
    )
    queue(
        connection,
        key,
        now=deps.now(),
        channel=target.channel,
        thread_ts=target.thread_ts,
        # Like intake's "Filed" reply: a thread databot cannot post in any more (archived,
        # databot removed) hands the reply to the requester's DM, once.
        fallback=row.requester_id if target.thread_ts else None,
        unfurl_links=False,
        **message.send_kwargs(),
    )
    logger.info("follow-up %s: %s queued for request %s", key, update.kind, row.id)
    return key


def _row_issue(row: RequestRow, number: int) -> IssueRef:
    """The issue as the request row knows it (the comments listing names no title)."""
    return row.issue or IssueRef(number, row.issue_url or "", row.title)


def _send(deps: Deps, keys: list[str]) -> None:
    for key in keys:
        try:
            redeliver_due(deps, key)
        except Exception:
            logger.exception("follow-up %s: not sent yet", key)


def _closing_comment(
    deps: Deps, issue: GitHubIssue, client: IssuesClient | None
) -> GitHubComment | None:
    if issue.closed_at is None or deps.settings.github_token is None:
        return None
    client = client or make_client(deps)
    since = (issue.closed_at - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        raw = client.issue_comments(deps.settings.github_repo, issue.number, since=since)
    except GitHubUnavailable as exc:
        logger.info("follow-up #%s: closing comment not read (%s)", issue.number, exc)
        return None
    comments = []
    for item in raw:
        try:
            comments.append(comment_from_json(item))
        except ValidationError:
            continue
    return closing_comment(comments, issue.closed_at)


# --- comments ------------------------------------------------------------------------------


def observe_comments(
    deps: Deps,
    comments: Iterable[GitHubComment],
    *,
    labels: dict[int, list[str]] | None = None,
    issues: dict[int, IssueRef] | None = None,
    on_change: OnChange | None = None,
) -> int:
    """Tell the requester of each filed issue about a team comment on it (FOLLOWUP_COMMENTS
    decides which). `labels`: the issue's labels when the input knows them (the webhook);
    otherwise those last seen. Returns how many replies were queued."""
    settings = deps.settings
    repo = settings.github_repo
    issues = issues or {}
    by_issue: dict[int, list[GitHubComment]] = {}
    for comment in comments:
        if comment.issue_number is not None:
            by_issue.setdefault(comment.issue_number, []).append(comment)
    filed = filed_requests(deps, list(by_issue))
    queued = 0
    for number, found in sorted(by_issue.items()):
        row = filed.get(number)
        if row is None:
            continue
        known = (labels or {}).get(number)
        if known is None:
            current = _snapshot(deps, repo, number)
            known = current[0].labels if current else []
        known = [label.lower() for label in known]
        keys: list[str] = []
        updates: list[Update] = []
        with deps.store.engine.begin() as connection:
            for comment in sorted(found, key=lambda c: (c.created_at, c.id)):
                if not comment_is_told(
                    comment,
                    mode=CommentMode(settings.followup_comments),
                    need_info_label=settings.followup_need_info_label,
                    labels=known,
                ):
                    continue
                update = comment_update(comment)
                issue_ref = issues.get(number) or _row_issue(row, number)
                try:
                    with connection.begin_nested():
                        key = _tell(connection, deps, row, issue_ref, update)
                except Exception:  # one comment's bug must not stop the others
                    logger.exception("follow-up of comment %s: skipped", comment.id)
                    continue
                if key:
                    keys.append(key)
                    updates.append(update)
        _send(deps, keys)
        queued += len(keys)
        if updates and on_change is not None:
            on_change(deps, row.requester_id, number, updates)
    return queued
