"""GitHub `issues` and `issue_comment` webhook deliveries: payloads shaped like GitHub's,
signed like GitHub's.

    issue = fake_github.issue(7)                       # the issue as the REST API shows it
    payload = labeled(issue, "urgent", repository=fake_github.repo_json())
    send_webhook(bot_url + "/github/webhook", "issues", payload, secret=secret)

`sign(secret, body)` is the X-Hub-Signature-256 value: "sha256=" + HMAC-SHA256 hex of the
raw body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

from sandbox.slack_requests import SentResponse, send

ACTIONS = (
    "opened",
    "edited",
    "closed",
    "reopened",
    "assigned",
    "unassigned",
    "labeled",
    "unlabeled",
    "milestoned",
    "demilestoned",
)


def sign(secret: str, body: str | bytes) -> str:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return "sha256=" + hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()


def headers(
    secret: str | None, body: str | bytes, *, event: str = "issues", delivery: str | None = None
) -> dict[str, str]:
    """The headers GitHub sends with a delivery (signature only when there is a secret)."""
    result = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/5a0f41b",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "471118",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-GitHub-Hook-Installation-Target-ID": "1000001",
    }
    if secret:
        result["X-Hub-Signature-256"] = sign(secret, body)
    return result


def send_webhook(
    url: str,
    event: str,
    payload: dict[str, Any],
    *,
    secret: str | None,
    delivery: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> SentResponse:
    """POST one delivery; returns (status, headers, body)."""
    body = json.dumps(payload)
    all_headers = {**headers(secret, body, event=event, delivery=delivery), **(extra_headers or {})}
    return send(url, body, "application/json", headers=all_headers)


def _user(login: str) -> dict[str, Any]:
    user_id = int(hashlib.sha1(login.encode()).hexdigest()[:7], 16)
    return {
        "login": login,
        "id": user_id,
        "node_id": f"U_{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "html_url": f"https://github.com/{login}",
        "type": "Bot" if login.endswith("[bot]") else "User",
        "site_admin": False,
    }


def _repository(full_name: str) -> dict[str, Any]:
    owner, name = full_name.split("/", 1)
    return {
        "id": 1000001,
        "node_id": "R_1000001",
        "name": name,
        "full_name": full_name,
        "private": True,
        "owner": {**_user(owner), "type": "Organization"},
        "html_url": f"https://github.com/{full_name}",
        "url": f"https://api.github.com/repos/{full_name}",
        "default_branch": "main",
    }


def _label(label: str | dict[str, Any], issue: dict[str, Any]) -> dict[str, Any]:
    if isinstance(label, dict):
        return label
    for existing in issue.get("labels", []):
        if existing.get("name") == label:
            return existing
    return {"id": 1, "node_id": "LA_1", "name": label, "color": "ededed", "default": False,
            "description": None}  # fmt: skip


def issues_event(
    action: str,
    issue: dict[str, Any],
    *,
    repository: dict[str, Any] | str = "acme/analytics",
    sender: str = "octocat",
    label: str | dict[str, Any] | None = None,
    assignee: str | None = None,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An `issues` event payload. `issue` is the issue as the REST API shows it (e.g.
    FakeGitHub.issue(n)) AFTER the change, which is what GitHub sends."""
    if action not in ACTIONS:
        raise ValueError(f"unknown issues action {action!r}; one of {ACTIONS}")
    payload: dict[str, Any] = {"action": action, "issue": issue}
    if action in ("labeled", "unlabeled"):
        if label is None:
            raise ValueError(f"{action} needs a label")
        payload["label"] = _label(label, issue)
    if action in ("assigned", "unassigned"):
        if assignee is None:
            raise ValueError(f"{action} needs an assignee")
        payload["assignee"] = _user(assignee)
    if action == "edited":
        payload["changes"] = changes or {}
    if action in ("milestoned", "demilestoned"):
        payload["milestone"] = issue.get("milestone")
    payload["repository"] = _repository(repository) if isinstance(repository, str) else repository
    payload["sender"] = _user(sender)
    return payload


def opened(issue: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return issues_event("opened", issue, **kwargs)


def labeled(issue: dict[str, Any], label: str | dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return issues_event("labeled", issue, label=label, **kwargs)


def unlabeled(issue: dict[str, Any], label: str | dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return issues_event("unlabeled", issue, label=label, **kwargs)


def closed(issue: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return issues_event("closed", issue, **kwargs)


def reopened(issue: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return issues_event("reopened", issue, **kwargs)


def assigned(issue: dict[str, Any], assignee: str, **kwargs: Any) -> dict[str, Any]:
    return issues_event("assigned", issue, assignee=assignee, **kwargs)


def edited(
    issue: dict[str, Any],
    *,
    old_title: str | None = None,
    old_body: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if old_title is not None:
        changes["title"] = {"from": old_title}
    if old_body is not None:
        changes["body"] = {"from": old_body}
    return issues_event("edited", issue, changes=changes, **kwargs)


def milestoned(issue: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return issues_event("milestoned", issue, **kwargs)


def issue_comment(
    issue: dict[str, Any],
    comment: dict[str, Any],
    *,
    action: str = "created",
    repository: dict[str, Any] | str = "acme/analytics",
) -> dict[str, Any]:
    """An `issue_comment` event payload (send it with event="issue_comment"): the issue and
    the comment as the REST API shows them (FakeGitHub.issue(n), FakeGitHub.add_comment)."""
    if action not in ("created", "edited", "deleted"):
        raise ValueError(f"unknown issue_comment action {action!r}")
    return {
        "action": action,
        "issue": issue,
        "comment": comment,
        "repository": _repository(repository) if isinstance(repository, str) else repository,
        "sender": comment.get("user") or _user("octocat"),
    }


def ping(*, repository: str = "acme/analytics") -> dict[str, Any]:
    """The `ping` event GitHub sends when a webhook is created."""
    return {
        "zen": "Keep it logically awesome.",
        "hook_id": 471118,
        "hook": {"type": "Repository", "id": 471118, "events": ["issues"], "active": True},
        "repository": _repository(repository),
        "sender": _user("octocat"),
    }
