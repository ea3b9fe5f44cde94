"""Filing one request on GitHub exactly once, and telling the requester.

Only the holder of the row's lease (bot/intake/outbox.py) files. Before creating an issue
again, the filer looks for the request's hidden marker in the repo, so a create whose
response was lost is not filed twice; answers too long for the body continue in comments,
each posted once (a retry lists the issue's comments first). A failure GitHub may get over
is retried with backoff; any other marks the request failed. The requester hears once that
a request is queued (GitHub failed, or it is not filed a minute after submission) or failed,
and once where its issue is: each message is posted under a key (bot/slack_post.py), so a
retry after a lost answer finds the earlier message instead of posting another. The outbox
worker drains what is due, notices whose post may not have gone out included.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel
from slack_sdk.errors import SlackApiError

from bot import tables
from bot.followup.replies import record_filed
from bot.github import (
    CreatedIssue,
    GitHubFailure,
    IssueRef,
    classify_failure,
    refused_assignees,
)
from bot.home.tab import refresh_home
from bot.intake.blocks import (
    build_request_failed_message,
    build_request_filed_message,
    build_request_queued_message,
    build_support_ping_message,
)
from bot.intake.issue import render_issue
from bot.intake.markdown import github_markdown
from bot.intake.model import (
    MARKER,
    IssueDraft,
    RequestRow,
    Source,
    Status,
    Submission,
    reply_target,
)
from bot.intake.outbox import (
    REPLY_TRIES_KEY,
    FilingLease,
    LeaseLost,
    delayed_request_ids,
    due_request_ids,
    fenced_update,
    get_request,
    refresh_forms,
    take_lease,
    update_request,
)
from bot.slack_post import attempted, deliver, post_once, redeliver_due
from bot.support.model import Route, route, unit_label
from bot.urgent.alerts import announce_issue

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 30 * 60.0
# Replies with the issue link: retried with the filing backoff (30 s doubling to 30 min),
# about two hours in all, then given up (logged, and marked in last_error).
NOTIFY_MAX_TRIES = 10
GAVE_UP = "gave up telling the requester"
# Slack errors that a retry will not fix: the thread's channel is gone or closed to us.
UNREACHABLE = {"channel_not_found", "is_archived", "not_in_channel", "thread_not_found"}
# Keys of the messages to the requester (bot/slack_post.py): each is posted once, also
# when Slack's answer to a post was lost. The notices' keys are their dedupe keys.
FILED_KEY = "intake:filed:{id}"
FILED_DM_KEY = "intake:filed-dm:{id}"
NOTICE_KEY = "intake:{kind}-notice:{id}"
PING_KEY = "intake:support-ping:{id}:{user}"


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
        attempt = take_lease(deps, request_id, status=Status.QUEUED, count_attempt=True)
        if attempt is None:
            return row
        row = get_request(deps, request_id)
        assert row is not None
        try:
            with FilingLease(deps, request_id, attempt) as lease:
                issue = _file_on_github(deps, row, lease)
        except LeaseLost:
            logger.warning(
                "request %s: attempt %s lost its lease to a takeover; it wrote nothing more",
                request_id,
                attempt,
            )
            return get_request(deps, request_id)
        except Exception as exc:  # noqa: BLE001 - classified: retried, or failed for a person
            _record_failure(deps, row, _classify(exc), attempt)
            return get_request(deps, request_id)
        if issue is None:
            return get_request(deps, request_id)
        _record_followup_baseline(deps, row, issue)
        filed = fenced_update(
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
            return _created_after_takeover(deps, row, attempt, issue)
        logger.info("request %s filed as #%s", request_id, issue.number)
        _wake_thread_replies(deps, request_id)
        row = get_request(deps, request_id)
        assert row is not None
        if row.submission.urgent:
            announce_issue(deps, issue.number, slack_thread=row.permalink)  # seam to urgent
            _ping_analysts(deps, row)
        _refresh_home(deps, row.requester_id)  # seam to home
    if row.status is Status.FILED and row.notified_at is None:
        _notify_filed(deps, row)
    return get_request(deps, request_id)


def _record_followup_baseline(deps: Deps, row: RequestRow, issue: IssueRef) -> None:
    """Seam to followup: the issue as created (routing's assignee, its labels) is what the
    requester knows from "Filed #N"; follow-ups compare with it, not with an empty issue.
    Before the request is marked filed: no follow-up input sees it earlier. An issue found
    from an earlier attempt has no view here: follow-ups record their first view silently."""
    if not isinstance(issue, CreatedIssue) or issue.view is None:
        return
    try:
        record_filed(deps, issue.view)
    except Exception:  # follow-ups then record their first view silently
        logger.warning("request %s: follow-up baseline not recorded", row.id, exc_info=True)


def _wake_thread_replies(deps: Deps, request_id: str) -> None:
    """Thread replies stored while the request was not on GitHub (queued, or failed before
    the team filed it again) are due now: the mirror worker posts them on the issue."""
    m = tables.thread_mirrors.c
    try:
        with deps.store.engine.begin() as connection:
            connection.execute(
                tables.thread_mirrors.update()
                .where(m.request_id == request_id, m.status == "queued")
                .values(next_attempt_at=deps.now())
            )
    except Exception:  # they are due again within WAIT_FOR_ISSUE anyway
        logger.warning("request %s: thread replies not woken", request_id, exc_info=True)


def request_route(deps: Deps, row: RequestRow) -> Route:
    """Who handles the request (seam to support): decided by its submission time, so every
    retry, and the reply, name the same analyst."""
    return route(deps.settings, row.submission.business_unit, row.created_at)


def _ping_analysts(deps: Deps, row: RequestRow) -> None:
    """An urgent request: the analyst it goes to and the one on support hear at once, by DM,
    once each (a post whose answer was lost is looked for before it is sent again)."""
    if deps.settings.support_routing == "off":
        return
    routed = request_route(deps, row)
    for analyst in routed.to_ping:
        key = PING_KEY.format(id=row.id, user=analyst.slack)
        if not deps.store.claim(key):
            continue
        message = build_support_ping_message(
            row, routed.describe() if analyst == routed.analyst else "on support this week"
        )
        if deliver(deps, key, channel=analyst.slack, **message.send_kwargs()) is None:
            logger.warning(
                "request %s: the urgent ping to %s is not out yet", row.id, analyst.slack
            )


def _refresh_home(deps: Deps, user_id: str) -> None:
    try:
        refresh_home(deps, user_id)
    except Exception:  # the Home tab is redrawn when it is next opened
        logger.warning("could not refresh the Home tab of %s", user_id, exc_info=True)


def _created_after_takeover(
    deps: Deps, row: RequestRow, attempt: int, issue: IssueRef
) -> RequestRow | None:
    # Only when the POST itself outlasted its fence: a person has to close one.
    current = get_request(deps, row.id)
    logger.error(
        "request %s: attempt %s created #%s after its lease ran out; the request is "
        "now #%s: close #%s as a duplicate if they differ",
        row.id,
        attempt,
        issue.number,
        current.issue_number if current else None,
        issue.number,
    )
    return current


def _classify(exc: Exception) -> GitHubFailure:
    try:
        return classify_failure(exc)
    except Exception:
        ref = uuid.uuid4().hex[:8]
        logger.exception("unexpected error while filing a request ref=%s", ref)
        return GitHubFailure(True, f"unexpected error ({type(exc).__name__}), ref {ref}", ref=ref)


def _file_on_github(deps: Deps, row: RequestRow, lease: FilingLease) -> IssueRef | None:
    """The request's issue with all of its continuation comments: found or created, then
    completed. None when this attempt created the issue after it was taken over (logged)."""
    assert deps.github is not None
    issue, draft = _create_once(deps, row, lease)
    if not draft.comments:
        return issue
    if row.issue_number != issue.number:
        # Remember the issue before its comments: a retry completes it, never re-creates it.
        remembered = fenced_update(
            deps,
            row.id,
            lease.attempt,
            issue_number=issue.number,
            issue_url=issue.url,
            title=issue.title,
        )
        if not remembered:
            _created_after_takeover(deps, row, lease.attempt, issue)
            return None
    posted = deps.github.issue_comments(issue.number)
    lease.checkpoint()
    for comment in draft.comments:
        marker = comment.split("\n", 1)[0]  # its PART_MARKER
        if any(marker in body for body in posted):
            continue  # an earlier attempt posted it
        with lease.fence():
            deps.github.add_issue_comment(issue.number, comment)
    return issue


def _create_once(deps: Deps, row: RequestRow, lease: FilingLease) -> tuple[IssueRef, IssueDraft]:
    """The issue (created now, or found from an earlier attempt) and its draft."""
    assert deps.github is not None
    sub = row.submission
    marker = MARKER.format(id=row.id)
    # An earlier attempt created it and recorded it, but did not post all its comments.
    issue = row.issue
    if issue is None and row.attempts > 1:
        # An earlier attempt may have created the issue and lost the response.
        # A margin for clock skew between us and GitHub.
        since = row.created_at - dt.timedelta(minutes=10)
        issue = deps.github.find_issue_with_marker(marker, since=since)
        lease.checkpoint()
        if issue is not None:
            logger.info("request %s: found the issue an earlier attempt made", row.id)
    permalink = row.permalink or _permalink(deps, sub)
    if permalink and not row.permalink:
        if not fenced_update(deps, row.id, lease.attempt, permalink=permalink):
            raise LeaseLost(row.id)
    settings = deps.settings
    routed = request_route(deps, row)
    draft = _draft(deps, row, permalink, routed, settings.support_routing)
    if issue is None:
        try:
            issue = _create(deps, lease, draft)
        except Exception as exc:
            if not (draft.assignees and refused_assignees(exc)):
                raise
            # The login in SUPPORT_ANALYSTS cannot be assigned (a typo, no repo access, left
            # the org): the request is filed anyway, with a mention line instead.
            logger.warning(
                "request %s: GitHub cannot assign %s (HTTP 422); filed unassigned: check "
                "SUPPORT_ANALYSTS",
                row.id,
                ", ".join(draft.assignees),
            )
            draft = _draft(deps, row, permalink, routed, "mention")
            issue = _create(deps, lease, draft)
    return issue, draft


def _draft(
    deps: Deps, row: RequestRow, permalink: str | None, routed: Route, routing: str
) -> IssueDraft:
    sub = row.submission
    settings = deps.settings
    assignees: list[str] = []
    routed_line: str | None = None
    if routed.analyst is not None and routing == "assign":
        assignees = [routed.analyst.github]
        routed_line = (
            f"_Assigned to {github_markdown(routed.analyst.display)} "
            f"({github_markdown(routed.describe())})._"
        )
    elif routed.analyst is not None and routing == "mention":
        # A deliberate mention: the login comes from settings (validated), not from Slack.
        routed_line = f"@{routed.analyst.github}: this one is yours ({routed.describe()})."
    return render_issue(
        sub,
        row.id,
        permalink=permalink,
        user_name=user_namer(deps),
        urgent_label=settings.urgent_label,
        labels=[unit_label(settings, sub.business_unit)] if sub.business_unit else [],
        assignees=assignees,
        routed=routed_line,
    )


def _create(deps: Deps, lease: FilingLease, draft: IssueDraft) -> IssueRef:
    assert deps.github is not None
    with lease.fence():
        # Assignees only when routed: a request nobody is set up for is created as before.
        extra = {"assignees": draft.assignees} if draft.assignees else {}
        return deps.github.create_issue(draft.title, draft.body, draft.labels, **extra)


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
        if not fenced_update(
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
        if not fenced_update(
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
        update_request(deps, row.id, last_error=message)
    _notify_once(deps, row, "queued")


# --- telling the requester ------------------------------------------------------------


def _notify_once(deps: Deps, row: RequestRow, kind: str, *, ref: str | None = None) -> None:
    # Once: claimed once per request and kind; a post whose outcome is unknown is retried by
    # the outbox worker (redeliver_due in drain_outbox), looking for it in Slack first.
    key = NOTICE_KEY.format(kind=kind, id=row.id)
    if not deps.store.claim(key):
        return
    row = get_request(deps, row.id) or row  # with the error just recorded
    if kind == "queued":
        message = build_request_queued_message(row, ref=ref)
    else:
        message = build_request_failed_message(row)
    target = reply_target(row.submission)
    if (
        deliver(
            deps, key, channel=target.channel, thread_ts=target.thread_ts, **message.send_kwargs()
        )
        is None
    ):
        logger.warning("request %s: the %s notice is not out yet", row.id, kind)


def _notify_filed(deps: Deps, row: RequestRow) -> None:
    """The reply with the issue link. At least once: notified_at is set only after Slack
    accepted it (or it was found in Slack), and the outbox worker retries replies that have
    not gone out. At most once too: each post is under a key (bot/slack_post.py), so a retry
    after a lost answer finds the earlier reply instead of posting another. When the thread
    cannot be reached any more, the requester gets the link by DM instead."""
    if take_lease(deps, row.id, status=Status.FILED, count_attempt=False) is None:
        return
    # No unfurl: the link is the issue itself, its preview would only repeat it.
    routed = request_route(deps, row)
    handler = None
    if routed.analyst is not None and deps.settings.support_routing != "off":
        handler = f"{routed.analyst.display}, {routed.describe()},"
    filed = build_request_filed_message(row, handler)
    message = {**filed.send_kwargs(), "unfurl_links": False}
    target = reply_target(row.submission)
    dm_key = FILED_DM_KEY.format(id=row.id)
    try:
        if target.thread_ts is not None and attempted(deps, dm_key):
            # The thread was unreachable on an earlier try: the link goes (went) by DM.
            post_once(deps, dm_key, channel=row.requester_id, **message)
        else:
            try:
                post_once(
                    deps,
                    FILED_KEY.format(id=row.id),
                    channel=target.channel,
                    thread_ts=target.thread_ts,
                    **message,
                )
            except SlackApiError as exc:
                if exc.response.get("error") not in UNREACHABLE or target.thread_ts is None:
                    raise
                logger.info("request %s: thread unreachable, sending the link by DM", row.id)
                post_once(deps, dm_key, channel=row.requester_id, **message)
    except Exception as exc:  # noqa: BLE001 - retried by the outbox worker, with backoff
        _reply_failed(deps, row, exc)
        return
    update_request(deps, row.id, notified_at=deps.now(), next_attempt_at=None, lease_until=None)


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
        update_request(
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
    update_request(
        deps,
        row.id,
        last_error=f"could not post the issue link: {error}",
        next_attempt_at=deps.now() + dt.timedelta(seconds=wait),
        lease_until=None,
    )


# --- the outbox worker ------------------------------------------------------------------
# Here rather than in outbox.py: a pass files each due request, and the outbox is what the
# filing builds on (a drain in outbox.py would make the two import each other).


class DrainReport(BaseModel):
    filed: int = 0
    notified: int = 0
    still_queued: int = 0
    failed: int = 0


def drain_outbox(deps: Deps) -> DrainReport:
    """One pass over everything due: file queued requests, send replies not yet sent (and
    notices whose post may not have gone out), tell requesters whose request is delayed
    that it is queued."""
    report = DrainReport()
    redeliver_due(deps, "intake:")
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
    # Still not filed a minute after it was submitted (GitHub slow or down, a worker that
    # died holding it): the requester hears it is queued, once.
    for request_id in delayed_request_ids(deps):
        row = get_request(deps, request_id)
        if row is not None and row.status is Status.QUEUED:
            _notify_once(deps, row, "queued")
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
