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
import email.utils
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
import sqlalchemy as sa
from pydantic import ValidationError
from slack_sdk.errors import SlackApiError

from bot import tables
from bot.errors import GitHubUnavailable
from bot.github import GitHubIssue
from bot.urgent.alerts import (
    AlertState,
    AlertStatus,
    Recorded,
    alert_states,
    pending_alerts,
    record,
    refresh_overdue,
    sync_alert,
    tracked_issue_numbers,
)

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

PER_PAGE = 100
# A burst bigger than this many pages continues on the next poll (the cursor only moves
# forward over what was processed), so one poll never runs away.
MAX_PAGES = 20
# Re-read a little before the server's clock at first start: an issue updated in the same
# second as our first listing is seen again rather than missed.
BOOTSTRAP_OVERLAP = dt.timedelta(minutes=1)
TIMEOUT_SECONDS = 15


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


class IssuesClient:
    """The few GitHub REST calls the poller makes, with conditional requests and a count.

    Raw `requests` rather than PyGithub: PyGithub hides ETags and 304s, and sleeps
    between requests by default.
    """

    def __init__(
        self, base_url: str, token: str | None, *, session: requests.Session | None = None
    ):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers.update(
            {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        )
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.requests = 0
        self.resume_at = 0.0  # time.time() before which GitHub asked us not to call

    def get(
        self, url: str, params: dict[str, Any] | None = None, *, etag: str | None = None
    ) -> requests.Response:
        if not url.startswith("http"):
            url = self.base_url + url
        headers = {"If-None-Match": etag} if etag else {}
        self.requests += 1
        try:
            response = self.session.get(
                url, params=params, headers=headers, timeout=TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            raise GitHubUnavailable(
                "GitHub could not be reached; urgent issues are checked again on the next poll.",
                detail=f"GET {url}: {type(exc).__name__}",
            ) from exc
        status = response.status_code
        if status in (200, 304):
            return response
        wait = _rate_limit_wait(response)
        if wait is not None:
            self.resume_at = time.time() + wait
            raise GitHubUnavailable(
                f"GitHub rate limit reached; urgent issues are checked again in {wait:.0f} s.",
                detail=f"GET {url}: {status}, wait {wait:.0f} s",
            )
        if status >= 500:
            raise GitHubUnavailable(
                f"GitHub answered {status}; urgent issues are checked again on the next poll.",
                detail=f"GET {url}: {status} {response.text[:200]}",
            )
        raise GitHubUnavailable(
            f"GitHub answered {status} for the issues of the repo; check GITHUB_REPO and "
            "that GITHUB_TOKEN may read its issues.",
            detail=f"GET {url}: {status} {response.text[:200]}",
        )

    def waiting(self) -> float:
        """Seconds GitHub asked us to wait before the next request (0 = go ahead)."""
        return max(0.0, self.resume_at - time.time())


def _rate_limit_wait(response: requests.Response) -> float | None:
    """Seconds to wait when `response` is a rate limit (primary or secondary), else None."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    retry_after = headers.get("Retry-After", "")
    if retry_after.strip().isdigit():
        return float(retry_after)
    reset = headers.get("X-RateLimit-Reset", "")
    if headers.get("X-RateLimit-Remaining") == "0" and reset.isdigit():
        return max(1.0, int(reset) - time.time())
    if response.status_code == 429:
        return 60.0  # GitHub's advice without a header: at least a minute
    return None


def make_client(deps: Deps) -> IssuesClient:
    settings = deps.settings
    token = settings.github_token.get_secret_value() if settings.github_token else None
    return deps.service(IssuesClient, lambda: IssuesClient(settings.github_api_url, token))


def _server_time(response: requests.Response, fallback: dt.datetime) -> dt.datetime:
    value = response.headers.get("Date")
    if value:
        try:
            return email.utils.parsedate_to_datetime(value).astimezone(dt.UTC)
        except (TypeError, ValueError):
            pass
    return fallback


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def poll_once(deps: Deps, *, client: IssuesClient | None = None) -> PollResult:
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
    path = f"/repos/{repo}/issues"
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
        response = client.get(path, params, etag=etag)
        if response.status_code == 304:
            result.not_modified = True
            result.cursor = cursor
        else:
            new_etag = response.headers.get("ETag")
            items = _collect_pages(client, response, result)
            newest = _process(deps, client, items, result)
            if cursor is None:
                new_cursor = _server_time(response, deps.now()) - BOOTSTRAP_OVERLAP
            else:
                new_cursor = max(newest, dt.datetime.fromisoformat(cursor)) if newest else None
            result.cursor = _iso(new_cursor) if new_cursor else cursor
            if result.cursor and result.cursor != cursor:
                store.kv_set(cursor_key(repo), result.cursor)
            # Only a one-page answer: the ETag covers page 1, and with several pages a
            # change on a later page would hide behind an unchanged first one.
            if new_etag and not result.more and "next" not in response.links:
                store.kv_set(etag_key(repo), new_etag)
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
    client: IssuesClient, response: requests.Response, result: PollResult
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = list(response.json())
    pages = 1
    while (next_url := response.links.get("next", {}).get("url")) is not None:
        if pages >= MAX_PAGES:
            result.more = True
            break
        response = client.get(next_url)
        items.extend(response.json())
        pages += 1
    result.issues_seen = len(items)
    return items


def _process(
    deps: Deps, client: IssuesClient, items: list[dict[str, Any]], result: PollResult
) -> dt.datetime | None:
    """Record every relevant issue; returns the newest `updated_at` in `items`."""
    settings = deps.settings
    repo = settings.github_repo
    tracked = tracked_issue_numbers(deps, repo)
    known_closed = {
        s.number: s.closed_at for s in alert_states(deps, repo) if s.status is AlertStatus.CLOSED
    }
    newest: dt.datetime | None = None
    for item in items:
        try:
            issue = GitHubIssue.model_validate(item)
        except ValidationError as exc:
            logger.warning("urgent poll: skipping an unreadable issue (%s)", exc.error_count())
            continue
        newest = max(newest, issue.updated_at) if newest else issue.updated_at
        if issue.pull_request is not None:
            continue
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
    return newest


def _closed_by(client: IssuesClient, repo: str, number: int) -> str | None:
    """Who closed the issue: only the single-issue endpoint says."""
    try:
        data = client.get(f"/repos/{repo}/issues/{number}").json()
    except GitHubUnavailable as exc:
        logger.info("urgent poll: could not learn who closed #%s (%s)", number, exc)
        return None
    closer = (data or {}).get("closed_by") or {}
    return closer.get("login")


# --- the reminder digest ----------------------------------------------------------------------

# The reminder goes out with the first poll after this hour (team time zone), once a day.
DIGEST_HOUR = 9


def stale_unassigned(deps: Deps, hours: float) -> list[AlertState]:
    """Urgent issues still open and unassigned more than `hours` after they were opened."""
    cutoff = deps.now() - dt.timedelta(hours=hours)
    return [
        state
        for state in alert_states(deps, deps.settings.github_repo)
        if state.status is AlertStatus.URGENT and not state.assignees and state.created_at < cutoff
    ]


def post_digest_if_due(deps: Deps) -> bool:
    """Post today's reminder of neglected urgent issues, once per day across all clocks.
    True when a reminder was posted."""
    from bot.urgent.blocks import build_urgent_digest

    hours = deps.settings.urgent_digest_hours
    if hours is None:
        return False
    local = deps.now().astimezone(deps.settings.tz)
    if local.hour < DIGEST_HOUR:
        return False
    key = f"urgent-digest:{deps.settings.github_repo}:{local.date()}"
    with deps.store.engine.connect() as connection:
        if connection.execute(
            sa.select(tables.dedupe_keys.c.key).where(tables.dedupe_keys.c.key == key)
        ).first():
            return False  # already sent today: skip reading every alert on each poll
    states = stale_unassigned(deps, hours)
    if not states:
        return False
    if not deps.store.claim(key):  # another clock got there first
        return False
    text, blocks = build_urgent_digest(states, hours=hours, now=deps.now())
    try:
        deps.slack.chat_postMessage(
            channel=deps.settings.analytics_channel,
            text=text,
            blocks=blocks,
            unfurl_links=False,
            unfurl_media=False,
        )
    except (SlackApiError, OSError) as exc:
        # A reminder is not worth a second one later the same day; the alerts themselves
        # are still in the channel.
        logger.warning("urgent digest not posted: %s", exc)
        return False
    logger.info("urgent digest posted: %d issue(s)", len(states))
    return True


# --- running it in the clock process ---------------------------------------------------------


def poll_interval(settings) -> int:
    """Seconds between polls: frequent without webhooks, a slow reconciliation with them."""
    if settings.github_webhook_secret is not None:
        return settings.urgent_reconcile_interval_seconds
    return settings.urgent_poll_interval_seconds


def run_poll(deps: Deps) -> PollResult | None:
    """One poll plus the digest, never raising: the clock must keep running when GitHub
    or Slack misbehave (the next poll catches up)."""
    result = None
    try:
        result = poll_once(deps)
    except GitHubUnavailable as exc:
        logger.warning("urgent poll: %s (%s)", exc.user_message, exc)
    except Exception:
        logger.exception("urgent poll failed")
    try:
        post_digest_if_due(deps)
    except Exception:
        logger.exception("urgent digest failed")
    return result


def schedule_in_clock(scheduler, deps: Deps) -> None:
    """Add the poll to the clock process's APScheduler (bot/scheduler.py's `Clock`): every
    `poll_interval` seconds, first run at once, never two polls at a time in one process
    (and across processes the state store keeps posts to one per issue)."""
    from apscheduler.triggers.interval import IntervalTrigger

    from bot.ids import Job

    if deps.settings.github_token is None:
        logger.info("urgent poll: off (no GITHUB_TOKEN)")
        return
    interval = poll_interval(deps.settings)
    scheduler.add_job(
        run_poll,
        IntervalTrigger(seconds=interval),
        args=[deps],
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

    def __init__(self, deps: Deps, interval: float | None = None) -> None:
        self.deps = deps
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
            run_poll(self.deps)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
