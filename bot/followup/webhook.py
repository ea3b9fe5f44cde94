"""GitHub webhooks for request follow-ups: `issues` and `issue_comment` deliveries (bot/web.py
hands each to bot/features.py, which gives it to urgent alerts and then to `receive`).

Each delivery is verified here too (X-Hub-Signature-256, bot.github's check), claimed once
by its delivery id under this feature's own key (a redelivery is answered "duplicate"),
and the Slack side runs on the work pool, so GitHub's 10-second timeout never waits on
Slack. Issues databot did not file are answered 202 and cause nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, ValidationError

from bot import tables
from bot.followup.replies import OnChange, observe_comments, observe_issue
from bot.github import GitHubIssue, IssueRef, comment_from_json, verify_webhook_signature
from bot.intake.outbox import filed_requests

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

EVENTS = frozenset({"issues", "issue_comment"})
# `issues` actions that change what the requester hears, or the issue as last seen (an
# unlabel or unassign is recorded, so a later label or assignment is a change again).
ISSUE_ACTIONS = frozenset(
    {
        "assigned",
        "unassigned",
        "milestoned",
        "demilestoned",
        "labeled",
        "unlabeled",
        "closed",
        "reopened",
        "edited",
    }
)
DELIVERY_KEY = "followup:gh-delivery:{id}"


class _Repository(BaseModel):
    model_config = ConfigDict(extra="ignore")
    full_name: str


class Delivery(BaseModel):
    """The parts of an `issues` or `issue_comment` payload this feature reads."""

    model_config = ConfigDict(extra="ignore")

    action: str
    issue: GitHubIssue
    repository: _Repository
    comment: dict | None = None  # issue_comment: the comment (read by comment_from_json)


def _parse(body: bytes, content_type: str) -> dict:
    if content_type.startswith("application/x-www-form-urlencoded"):
        return json.loads(parse_qs(body.decode("utf-8"))["payload"][0])
    return json.loads(body)


def receive(
    deps: Deps, headers: Mapping[str, str], body: bytes, *, on_change: OnChange | None = None
) -> tuple[int, str]:
    """One delivery: (HTTP status, short plain reason)."""
    secret = deps.settings.github_webhook_secret
    if secret is None:
        return 404, "GitHub webhooks are not enabled: set GITHUB_WEBHOOK_SECRET\n"
    lower = {k.lower(): v for k, v in headers.items()}
    if not verify_webhook_signature(
        secret.get_secret_value().encode(), body, lower.get("x-hub-signature-256")
    ):
        return 401, "bad signature\n"
    event = lower.get("x-github-event", "")
    if event not in EVENTS:
        return 202, f"ignored: {event or 'no'} event\n"
    try:
        payload = Delivery.model_validate(_parse(body, lower.get("content-type", "")))
        comment = comment_from_json(payload.comment) if payload.comment else None
    except (ValueError, KeyError, ValidationError) as exc:
        logger.warning("GitHub %s delivery: unreadable payload (%s)", event, exc)
        return 400, f"unreadable {event} payload\n"
    if payload.repository.full_name.lower() != deps.settings.github_repo.lower():
        return 202, f"ignored: not {deps.settings.github_repo}\n"
    if event == "issues" and payload.action not in ISSUE_ACTIONS:
        return 202, f"ignored: action {payload.action}\n"
    if event == "issue_comment" and (payload.action != "created" or comment is None):
        return 202, f"ignored: comment {payload.action}\n"
    if payload.issue.pull_request is not None:
        return 202, "ignored: a pull request\n"
    row = filed_requests(deps, [payload.issue.number]).get(payload.issue.number)
    if row is None:
        return 202, "ignored: not a request databot filed\n"

    delivery = lower.get("x-github-delivery")
    key = DELIVERY_KEY.format(id=delivery) if delivery else None
    if key and not deps.store.claim(key):
        return 200, "duplicate delivery\n"
    try:
        deps.work.submit(_handle, deps, key, payload, comment, on_change)
    except RuntimeError:  # stopping: do it now, the delivery is claimed already
        _handle(deps, key, payload, comment, on_change)
    return 202, "request follow-up queued\n"


def _handle(deps: Deps, key: str | None, payload: Delivery, comment, on_change) -> None:
    issue = payload.issue
    try:
        row = filed_requests(deps, [issue.number]).get(issue.number)
        if row is None:
            return
        if comment is not None:
            observe_comments(
                deps,
                [comment],
                labels={issue.number: [label.name for label in issue.labels]},
                issues={issue.number: IssueRef(issue.number, issue.html_url, issue.title)},
                on_change=on_change,
            )
        # A comment's payload carries the issue as it is now too.
        observe_issue(deps, row, issue, on_change=on_change)
    except Exception:
        # Nothing told: forget the delivery, so GitHub's redelivery (or the poll) tells it.
        logger.exception("follow-up of #%s: could not record the change", issue.number)
        if key:
            try:
                with deps.store.engine.begin() as connection:
                    connection.execute(
                        tables.dedupe_keys.delete().where(tables.dedupe_keys.c.key == key)
                    )
            except Exception:
                logger.exception("follow-up delivery %s: could not release its id", key)
