"""GitHub webhooks: `POST /github/webhook` (bot/web.py hands it to `receive` through
bot/features.py).

Only `issues` events of the configured repo matter. Each one is verified
(X-Hub-Signature-256, HMAC-SHA256 of the raw body with GITHUB_WEBHOOK_SECRET, compared in
constant time), deduplicated by delivery id (GitHub's "Redeliver" button and our own
retries reuse it), recorded in the state store, and answered at once; the Slack side runs
on the work pool so GitHub's 10-second delivery timeout never depends on Slack.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, ValidationError

from bot import tables
from bot.github import (
    GitHubIssue,
    GitHubLabel,
    GitHubUser,
    sign_webhook,
    verify_webhook_signature,
)
from bot.urgent.alerts import record, sync_alert
from bot.urgent.model import AlertStatus, Recorded

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="
# Actions that can change what the urgent message says.
HANDLED_ACTIONS = frozenset(
    {
        "opened",
        "labeled",
        "unlabeled",
        "closed",
        "reopened",
        "assigned",
        "unassigned",
        "edited",
        "deleted",
        "transferred",
    }
)


class GitHubRepository(BaseModel):
    model_config = ConfigDict(extra="ignore")
    full_name: str


class IssuesEvent(BaseModel):
    """The `issues` webhook payload (only the parts we use)."""

    model_config = ConfigDict(extra="ignore")

    action: str
    issue: GitHubIssue
    repository: GitHubRepository
    sender: GitHubUser | None = None
    label: GitHubLabel | None = None  # labeled / unlabeled


# The one signature check (bot/github.py), also used by the request follow-ups.
sign = sign_webhook
verify_signature = verify_webhook_signature


def parse_body(body: bytes, content_type: str) -> dict:
    """GitHub sends JSON, or a form with the JSON in `payload` when the hook is set to
    application/x-www-form-urlencoded."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("utf-8"))
        return json.loads(form["payload"][0])
    return json.loads(body)


def receive(deps: Deps, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
    """Handle one delivery; returns (HTTP status, short plain-text reason)."""
    secret = deps.settings.github_webhook_secret
    if secret is None:
        return 404, "GitHub webhooks are not enabled: set GITHUB_WEBHOOK_SECRET\n"
    lower = {k.lower(): v for k, v in headers.items()}
    if not verify_signature(
        secret.get_secret_value().encode(), body, lower.get("x-hub-signature-256")
    ):
        logger.warning("GitHub webhook with a missing or wrong signature rejected")
        return 401, "bad signature\n"

    event = lower.get("x-github-event", "")
    delivery = lower.get("x-github-delivery")
    if event == "ping":
        return 200, "pong\n"
    if event != "issues":
        return 202, f"ignored: {event or 'no'} event\n"
    try:
        payload = IssuesEvent.model_validate(
            parse_body(body, lower.get("content-type", "application/json"))
        )
    except (ValueError, KeyError, ValidationError) as exc:
        logger.warning("GitHub webhook %s: unreadable issues payload (%s)", delivery, exc)
        return 400, "unreadable issues payload\n"
    repo = payload.repository.full_name
    if repo.lower() != deps.settings.github_repo.lower():
        return 202, f"ignored: not {deps.settings.github_repo}\n"
    if payload.action not in HANDLED_ACTIONS:
        return 202, f"ignored: action {payload.action}\n"

    key = f"gh-delivery:{delivery}" if delivery else None
    if key and not deps.store.claim(key):
        logger.info("GitHub delivery %s seen before; ignored", delivery)
        return 200, "duplicate delivery\n"
    try:
        recorded = record(
            deps,
            payload.issue,
            repo=deps.settings.github_repo,
            closed_by=(
                payload.sender.login if payload.action == "closed" and payload.sender else None
            ),
            gone={"deleted": AlertStatus.DELETED, "transferred": AlertStatus.TRANSFERRED}.get(
                payload.action
            ),
        )
    except Exception:
        logger.exception("GitHub delivery %s: could not record the issue", delivery)
        # Not recorded: forget the delivery id so a redelivery is processed.
        if key:
            try:
                _unclaim(deps, key)
            except Exception:  # the store is down: GitHub shows the 500; redeliver later
                logger.exception("GitHub delivery %s: could not release its id", delivery)
        return 500, "could not record the change; redeliver it later\n"
    logger.info(
        "GitHub %s %s#%s (%s): %s", event, repo, payload.issue.number, payload.action, recorded
    )
    if recorded is Recorded.IGNORED:
        return 200, "not urgent\n"
    try:
        deps.work.submit(_sync_logged, deps, deps.settings.github_repo, payload.issue.number)
    except RuntimeError:  # stopping: do it now, the delivery is claimed already
        _sync_logged(deps, deps.settings.github_repo, payload.issue.number)
    return 202, f"{recorded}\n"


def _sync_logged(deps: Deps, repo: str, number: int) -> None:
    try:
        sync_alert(deps, repo, number)
    except Exception:
        # The state is recorded; the next poll finishes the job.
        logger.exception("urgent alert %s#%s: sync failed", repo, number)


def _unclaim(deps: Deps, key: str) -> None:
    with deps.store.engine.begin() as connection:
        connection.execute(tables.dedupe_keys.delete().where(tables.dedupe_keys.c.key == key))
