"""Polling GitHub for request follow-ups, from the `clock` process.

Issues: no request of its own. The urgent poller's one conditional listing of the repo's
changed issues (bot/urgent/poller.py) hands every issue it sees to `observe_polled_issues`
(wired in bot/features.py), so an unchanged repo still costs one 304 per interval.

Comments: comments do not move an issue's listing ETag in a way that says which comment,
so they have their own conditional request per interval:
`GET /repos/{repo}/issues/comments?since=CURSOR&sort=updated&direction=asc` with
`If-None-Match`. Unchanged: 304 (free). The cursor is the newest comment `updated_at` seen
(GitHub's clock, `since` is inclusive: the comment at the cursor comes back, and its reply
is not told twice because its key is claimed); the first poll starts a minute before now.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bot.errors import GitHubUnavailable
from bot.followup.replies import (
    OnChange,
    make_client,
    observe_comments,
    observe_issues,
    redeliver,
)
from bot.github import GitHubComment, GitHubIssue, IssuesClient, comment_from_json

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

PER_PAGE = 100
MAX_PAGES = 20
FIRST_LOOK_BACK = dt.timedelta(minutes=1)


def cursor_key(repo: str) -> str:
    return f"followup-poll:{repo}:comments-since"


def etag_key(repo: str) -> str:
    return f"followup-poll:{repo}:comments-etag"


@dataclass
class CommentPoll:
    requests: int = 0
    not_modified: bool = False
    comments_seen: int = 0
    queued: int = 0
    cursor: str | None = None


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def observe_polled_issues(
    deps: Deps,
    client: IssuesClient,
    issues: list[GitHubIssue],
    on_change: OnChange | None = None,
) -> None:
    """The urgent poller's listing, seen by follow-ups (its cursor moves only after this
    returns, so a failure here means the issues are listed again next time)."""
    observe_issues(deps, issues, client=client, on_change=on_change)


def poll_comments(
    deps: Deps, *, client: IssuesClient | None = None, on_change: OnChange | None = None
) -> CommentPoll:
    """One conditional request for the repo's new comments; tells the requesters. Raises
    GitHubUnavailable when GitHub fails (the cursor stays)."""
    client = client or make_client(deps)
    repo = deps.settings.github_repo
    store = deps.store
    result = CommentPoll()
    start = client.requests
    cursor = store.kv_get(cursor_key(repo)) or _iso(deps.now() - FIRST_LOOK_BACK)
    etag = store.kv_get(etag_key(repo))
    params: dict[str, Any] = {
        "since": cursor,
        "sort": "updated",
        "direction": "asc",
        "per_page": PER_PAGE,
    }
    try:
        if client.waiting():
            raise GitHubUnavailable(
                f"GitHub rate limit: waiting {client.waiting():.0f} s more before polling.",
            )
        first = client.list_comments(repo, params, etag=etag)
        if first.not_modified:
            result.not_modified = True
            result.cursor = cursor
            return result
        items = list(first.items)
        page = first
        pages = 1
        while page.next_url is not None and pages < MAX_PAGES:
            page = client.next_page(page)
            items.extend(page.items)
            pages += 1
        comments: list[GitHubComment] = []
        for item in items:
            try:
                comments.append(comment_from_json(item))
            except ValidationError as exc:
                logger.warning("follow-up poll: an unreadable comment (%s)", exc.error_count())
        result.comments_seen = len(comments)
        result.queued = observe_comments(deps, comments, on_change=on_change)
        newest = max((c.updated_at for c in comments), default=None)
        new_cursor = max(_iso(newest), cursor) if newest else cursor
        result.cursor = new_cursor
        if new_cursor != cursor or store.kv_get(cursor_key(repo)) is None:
            store.kv_set(cursor_key(repo), new_cursor)
        if first.etag and first.next_url is None:
            store.kv_set(etag_key(repo), first.etag)
    finally:
        result.requests = client.requests - start
    if result.queued or not result.not_modified:
        logger.info(
            "follow-up poll %s: %d request(s), %d comment(s), %d reply(ies) queued",
            repo,
            result.requests,
            result.comments_seen,
            result.queued,
        )
    return result


def run_poll(deps: Deps, on_change: OnChange | None = None) -> CommentPoll | None:
    """The clock's job: replies still due first (they need no GitHub), then the comments;
    never raises (the next run catches up)."""
    try:
        redeliver(deps)
    except Exception:
        logger.exception("follow-up: redelivering replies failed")
    if deps.settings.github_token is None:
        return None
    try:
        return poll_comments(deps, on_change=on_change)
    except GitHubUnavailable as exc:
        logger.warning("follow-up poll: %s (%s)", exc.user_message, exc)
    except Exception:
        logger.exception("follow-up poll failed")
    return None
