"""Builders shared by the urgent-issue tests: GitHub-shaped issue JSON and webhook
payloads, and Deps wired to the loopback Slack."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from concurrent.futures import Future
from typing import Any

from slack_sdk import WebClient

from bot.deps import Deps
from bot.settings import Settings

REPO = "acme/analytics"
SECRET = "webhook-secret-for-tests"
CHANNEL_NAME = "analytics"


class InlineExecutor:
    """deps.work that runs the task before returning, so a test sees its effect at once."""

    def submit(self, fn, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller via the future
            future.set_exception(exc)
        return future

    def shutdown(self, *args, **kwargs) -> None:
        pass


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "github_repo": REPO,
        "github_webhook_secret": SECRET,
        "analytics_channel": "#" + CHANNEL_NAME,
        "slack_bot_token": "xoxb-test-token",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def make_deps(store, slack, clock, github_api_url: str | None = None, **overrides: Any) -> Deps:
    if github_api_url:
        overrides["github_api_url"] = github_api_url
    settings = make_settings(**overrides)
    client = WebClient(token="xoxb-test-token", base_url=slack.api_url, timeout=5)
    return Deps(
        settings=settings,
        store=store,
        warehouse=None,  # not used by this feature
        slack=client,
        github=None,
        work=InlineExecutor(),
        now=clock,
    )


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def issue_json(
    number: int = 7,
    *,
    title: str = "Revenue dashboard is empty",
    labels: tuple[str, ...] = ("urgent",),
    state: str = "open",
    author: str = "alice",
    assignees: tuple[str, ...] = (),
    body: str | None = "The exec revenue dashboard shows no data since Monday.",
    created_at: dt.datetime,
    updated_at: dt.datetime | None = None,
    closed_at: dt.datetime | None = None,
    repo: str = REPO,
) -> dict[str, Any]:
    """An issue as GitHub's REST API and webhooks show it (the fields we read, and some)."""
    return {
        "url": f"https://api.github.com/repos/{repo}/issues/{number}",
        "html_url": f"https://github.com/{repo}/issues/{number}",
        "id": 1000 + number,
        "node_id": f"I_{number}",
        "number": number,
        "title": title,
        "user": {"login": author, "id": 1, "type": "User"},
        "labels": [{"id": i, "name": name, "color": "ededed"} for i, name in enumerate(labels)],
        "state": state,
        "locked": False,
        "assignee": {"login": assignees[0]} if assignees else None,
        "assignees": [{"login": login, "id": 2} for login in assignees],
        "comments": 0,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at or created_at),
        "closed_at": iso(closed_at) if closed_at else None,
        "author_association": "MEMBER",
        "body": body,
    }


def webhook(
    action: str,
    issue: dict[str, Any],
    *,
    sender: str = "alice",
    label: str | None = None,
    repo: str = REPO,
    changes: dict | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "action": action,
        "issue": issue,
        "repository": {"id": 1, "name": repo.split("/")[1], "full_name": repo},
        "sender": {"login": sender, "id": 9, "type": "User"},
    }
    if label is not None:
        payload["label"] = {"name": label, "color": "ededed"}
    if changes is not None:
        payload["changes"] = changes
    return payload


def signed(payload: dict[str, Any], *, delivery: str, secret: str = SECRET, event: str = "issues"):
    """(headers, body) exactly as GitHub sends a delivery."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/abc1234",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Hook-ID": "42",
        "X-Hub-Signature-256": "sha256="
        + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }
    return headers, body
