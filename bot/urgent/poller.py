"""Polls GitHub for urgent-issue changes from the `clock` process.

For deployments without webhooks (Socket Mode, firewalls) this is the only input; with
webhooks it is the reconciliation that catches deliveries GitHub dropped (GitHub never
redelivers on its own). Both paths go through bot.urgent.alerts, which posts at most once.

Cost per poll, by design:
- One request: `GET /repos/{repo}/issues?state=all&since=CURSOR&sort=updated&direction=asc`
  with `If-None-Match` set to the last ETag. Unchanged repo: 304, which does not count
  against the rate limit. The ETag is a digest of the response body, so the last answer's
  ETag also matches the next URL when the cursor moved but the answer (the issue at the
  cursor, listed again because `since` is inclusive) did not change. Were a server to key
  ETags by URL, the cost would be one extra 200 after each change, then 304s again.
- After changes: one page per 100 changed issues, not per 100 issues in the repo, plus
  one `GET /issues/{n}` per newly closed tracked issue to learn who closed it.
The query is not filtered by label on purpose: an issue whose label was removed no longer
matches `labels=urgent`, and its message must still say "no longer urgent".

The cursor is the newest `updated_at` seen (GitHub's clock, not ours), kept in `kv`; the
first poll of a repo lists only open urgent issues and starts the cursor at GitHub's
current time, so starting up never pages through the whole repo.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.interval import IntervalTrigger
from pydantic import ValidationError

from bot.errors import GitHubUnavailable
from bot.github import GitHubIssue, IssuesClient, IssuesPage
from bot.ids import Job
from bot.urgent.alerts import (
    alert_states,
    pending_alerts,
    record,
    refresh_overdue,
    sync_alert,
    tracked_issue_numbers,
)
from bot.urgent.model import AlertStatus, Recorded

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from bot.deps import Deps
    from bot.settings import Settings

logger = logging.getLogger(__name__)

PER_PAGE = 100
# A burst bigger than this many pages continues on the next poll (the cursor only moves
# forward over what was processed), so one poll never runs away.
MAX_PAGES = 20
# Re-read a little before the server's clock at first start: an issue updated in the same
# second as our first listing is seen again rather than missed.
BOOTSTRAP_OVERLAP = dt.timedelta(minutes=1)


# Another feature that wants every issue this listing brings (request follow-ups), handed
# in by bot/features.py: observer(deps, client, issues). The cursor moves only after every
# observer returned, so an observer that fails sees the same issues again next poll.
IssuesObserver = Callable[["Deps", IssuesClient, list[GitHubIssue]], None]


def cursor_key(repo: str) -> str:
    return f"urgent-poll:{repo}:since"


def etag_key(repo: str) -> str:
    return f"urgent-poll:{repo}:etag"


@dataclass
class PollResult:
    requests: int = 0  # HTTP requests made to GitHub
    not_modified: bool = False  # the listing answered 304
    issues_seen: int = 0  # issues in the listing (all pages)
    recorded: dict[str, int] = field(default_factory=dict)  # Recorded -> count
    synced: dict[str, int] = field(default_factory=dict)  # Synced -> count
    cursor: str | None = None
    more: bool = False  # stopped at MAX_PAGES; the next poll continues
    attempted: set[int] = field(default_factory=set)  # issues synced in this poll

    def count(self, bucket: dict[str, int], key: str) -> None:
        key = str(key)  # the enum's value: readable in logs and the CLI
        bucket[key] = bucket.get(key, 0) + 1


def make_client(deps: Deps) -> IssuesClient:
    settings = deps.settings
    token = settings.github_token.get_secret_value() if settings.github_token else None
    return deps.service(
        IssuesClient,
        lambda: IssuesClient(settings.github_api_url, token, on_error=deps.telemetry.github_error),
    )


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def poll_once(
    deps: Deps,
    *,
    client: IssuesClient | None = None,
    observers: Sequence[IssuesObserver] = (),
) -> PollResult:
    """One poll: fetch what changed since the cursor, record it, bring Slack up to date.

    Raises GitHubUnavailable when GitHub fails; nothing is lost (the cursor stays).
    """
    client = client or make_client(deps)
    settings = deps.settings
    repo = settings.github_repo
    label = settings.urgent_label
    store = deps.store
    result = PollResult()
    start_count = client.requests

    cursor = store.kv_get(cursor_key(repo))
    etag = store.kv_get(etag_key(repo))
    params: dict[str, Any]
    if cursor is None:
        params = {"labels": label, "state": "open", "sort": "updated", "direction": "asc"}
    else:
        params = {"state": "all", "since": cursor, "sort": "updated", "direction": "asc"}
    params["per_page"] = PER_PAGE

    try:
        if client.waiting():
            # GitHub asked us to wait: calling anyway would extend the block.
            raise GitHubUnavailable(
                f"GitHub rate limit: waiting {client.waiting():.0f} s more before polling.",
            )
        first = client.list_issues(repo, params, etag=etag)
        if first.not_modified:
            result.not_modified = True
            result.cursor = cursor
        else:
            items = _collect_pages(client, first, result)
            newest = _process(deps, client, items, result, observers)
            new_cursor: dt.datetime | None
            if cursor is None:
                new_cursor = (first.server_time or deps.now()) - BOOTSTRAP_OVERLAP
            else:
                new_cursor = max(newest, dt.datetime.fromisoformat(cursor)) if newest else None
            result.cursor = _iso(new_cursor) if new_cursor else cursor
            if result.cursor and result.cursor != cursor:
                store.kv_set(cursor_key(repo), result.cursor)
            # Only a one-page answer: the ETag covers page 1, and with several pages a
            # change on a later page would hide behind an unchanged first one.
            if first.etag and first.next_url is None:
                store.kv_set(etag_key(repo), first.etag)
    except GitHubUnavailable:
        _retry_pending(deps, result)  # Slack retries need no GitHub
        raise
    finally:
        result.requests = client.requests - start_count

    _retry_pending(deps, result)
    if result.recorded or result.synced or not result.not_modified:
        logger.info(
            "urgent poll %s: %d request(s), %s, recorded %s, synced %s",
            repo,
            result.requests,
            "304" if result.not_modified else f"{result.issues_seen} issue(s)",
            result.recorded,
            result.synced,
        )
    return result


def _retry_pending(deps: Deps, result: PollResult) -> None:
    """Messages whose Slack update failed earlier (or whose worker died), and those whose
    due date has just passed (no GitHub change says so)."""
    repo = deps.settings.github_repo
    refresh_overdue(deps, repo)
    for number in pending_alerts(deps, repo):
        if number in result.attempted:
            continue  # just failed in this poll; Slack gets a breather until the next
        result.count(result.synced, sync_alert(deps, repo, number))


def _collect_pages(
    client: IssuesClient, page: IssuesPage, result: PollResult
) -> list[dict[str, Any]]:
    items = list(page.items)
    pages = 1
    while page.next_url is not None:
        if pages >= MAX_PAGES:
            result.more = True
            break
        page = client.next_page(page)
        items.extend(page.items)
        pages += 1
    result.issues_seen = len(items)
    return items


def _process(
    deps: Deps,
    client: IssuesClient,
    items: list[dict[str, Any]],
    result: PollResult,
    observers: Sequence[IssuesObserver] = (),
) -> dt.datetime | None:
    """Record every relevant issue; returns the newest `updated_at` in `items`."""
    settings = deps.settings
    repo = settings.github_repo
    tracked = tracked_issue_numbers(deps, repo)
    known_closed = {
        s.number: s.closed_at for s in alert_states(deps, repo) if s.status is AlertStatus.CLOSED
    }
    newest: dt.datetime | None = None
    seen: list[GitHubIssue] = []
    for item in items:
        try:
            issue = GitHubIssue.model_validate(item)
        except ValidationError as exc:
            logger.warning("urgent poll: skipping an unreadable issue (%s)", exc.error_count())
            continue
        newest = max(newest, issue.updated_at) if newest else issue.updated_at
        if issue.pull_request is not None:
            continue
        seen.append(issue)
        if not issue.has_label(settings.urgent_label) and issue.number not in tracked:
            continue
        closed_by = None
        if (
            issue.state == "closed"
            and issue.number in tracked
            and known_closed.get(issue.number) != issue.closed_at
        ):
            closed_by = _closed_by(client, repo, issue.number)
        outcome = record(deps, issue, repo=repo, closed_by=closed_by)
        result.count(result.recorded, outcome)
        if outcome in (Recorded.CREATED, Recorded.CHANGED):
            result.attempted.add(issue.number)
            result.count(result.synced, sync_alert(deps, repo, issue.number))
    for observer in observers:
        observer(deps, client, seen)
    return newest


def _closed_by(client: IssuesClient, repo: str, number: int) -> str | None:
    """Who closed the issue: only the single-issue endpoint says."""
    try:
        data = client.issue(repo, number)
    except GitHubUnavailable as exc:
        logger.info("urgent poll: could not learn who closed #%s (%s)", number, exc)
        return None
    closer = data.get("closed_by") or {}
    return closer.get("login")


# --- running it in the clock process ---------------------------------------------------------


def poll_interval(settings: Settings) -> int:
    """Seconds between polls: frequent without webhooks, a slow reconciliation with them."""
    if settings.github_webhook_secret is not None:
        return settings.urgent_reconcile_interval_seconds
    return settings.urgent_poll_interval_seconds


def run_poll(deps: Deps, observers: Sequence[IssuesObserver] = ()) -> PollResult | None:
    """One poll, never raising: the clock must keep running when GitHub or Slack
    misbehave (the next poll catches up)."""
    try:
        return poll_once(deps, observers=observers)
    except GitHubUnavailable as exc:
        logger.warning("urgent poll: %s (%s)", exc.user_message, exc)
    except Exception:
        logger.exception("urgent poll failed")
    return None


def schedule_in_clock(
    scheduler: BaseScheduler, deps: Deps, observers: Sequence[IssuesObserver] = ()
) -> None:
    """Add the poll to the clock process's APScheduler (bot/scheduling/clock.py's `Clock`):
    every `poll_interval` seconds, first run at once, never two polls at a time in one
    process (and across processes the state store keeps posts to one per issue)."""
    if deps.settings.github_token is None:
        logger.info("urgent poll: off (no GITHUB_TOKEN)")
        return
    interval = poll_interval(deps.settings)
    scheduler.add_job(
        run_poll,
        IntervalTrigger(seconds=interval),
        args=[deps, observers],
        id=str(Job.URGENT_POLL),
        name=str(Job.URGENT_POLL),
        next_run_time=dt.datetime.now(dt.UTC),
        max_instances=1,
        coalesce=True,
    )
    logger.info("scheduled %s: every %ss", Job.URGENT_POLL, interval)


class PollLoop:
    """Runs `run_poll` every `poll_interval` seconds in a daemon thread (`databot
    urgent-poll`, for a deployment that runs the poller on its own)."""

    def __init__(
        self,
        deps: Deps,
        interval: float | None = None,
        observers: Sequence[IssuesObserver] = (),
    ) -> None:
        self.deps = deps
        self.observers = tuple(observers)
        self.interval = interval if interval is not None else poll_interval(deps.settings)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PollLoop:
        if self.deps.settings.github_token is None:
            logger.info("urgent poll: off (no GITHUB_TOKEN)")
            return self
        self._thread = threading.Thread(target=self._run, name="urgent-poll", daemon=True)
        self._thread.start()
        logger.info("urgent poll: every %ss", self.interval)
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            run_poll(self.deps, self.observers)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
