"""`databot check --online`: ask the real services whether this deployment can work.

`databot check` reads only settings and files; this asks Slack (the token, the scopes it
was granted against what manifest.yml asks for, membership of every configured channel)
and GitHub (the token, its permissions on GITHUB_REPO, whether webhooks are configured).
Every finding says ok / warning / FAIL and what to do. Nothing is written anywhere.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.checks import CheckReport
from bot.github import GitHubFailure, GitHubGateway, classify_failure
from bot.manifest import load_manifest, manifest_bot_scopes, packaged_manifest
from bot.settings import Settings
from bot.slack_channels import CONVERSATION_ID, list_channel_id

REINSTALL = "Update the app from manifest.yml at api.slack.com/apps, then reinstall it."


def run_online_checks(
    settings: Settings, report: CheckReport, *, slack: WebClient, github: GitHubGateway | None
) -> None:
    bot_name = _check_slack_token(settings, slack, report)
    if bot_name is not None:
        _check_channels(settings, slack, bot_name, report)
    _check_github(settings, github, report)


def _check_slack_token(settings: Settings, slack: WebClient, report: CheckReport) -> str | None:
    """auth.test, and the scopes Slack says the token holds (x-oauth-scopes); the bot's
    name when the token works."""
    if settings.slack_bot_token is None:
        report.add(False, "Slack: SLACK_BOT_TOKEN is not set", "Set the Bot User OAuth Token.")
        return None
    try:
        response = slack.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "error")
        report.add(
            False,
            f"Slack rejected SLACK_BOT_TOKEN ({error})",
            "Copy the Bot User OAuth Token (xoxb-...) again from the app's OAuth page; "
            "a revoked token needs the app reinstalled.",
        )
        return None
    except OSError as exc:
        report.add(False, f"Slack unreachable ({type(exc).__name__})", "Check SLACK_API_URL.")
        return None
    bot_name = str(response.get("user") or "databot")
    report.add(
        True,
        f"Slack token valid: bot @{response.get('user')} in workspace {response.get('team')}",
    )
    header = {k.lower(): v for k, v in (response.headers or {}).items()}.get("x-oauth-scopes")
    if header is None:
        report.add(False, "Slack did not list the granted scopes", "", warning=True)
        return bot_name
    granted = {s.strip() for s in str(header).split(",") if s.strip()}
    asked = manifest_bot_scopes(load_manifest(packaged_manifest()))
    if missing := sorted(asked - granted):
        report.add(
            False,
            f"Slack token lacks scopes manifest.yml asks for: {', '.join(missing)}",
            REINSTALL,
        )
    else:
        report.add(True, f"Slack token holds every scope manifest.yml asks for ({len(asked)})")
    return bot_name


def _configured_channels(s: Settings) -> dict[str, str]:
    found = {"ANALYTICS_CHANNEL": s.analytics_channel}
    if s.cody_daily_enabled:
        found["CODY_CHANNEL"] = s.cody_channel
    if s.sprint_digest_channel:
        found["SPRINT_DIGEST_CHANNEL"] = s.sprint_digest_channel
    if s.owner_channel and not s.owner_channel.startswith(("U", "W")):
        found["OWNER_CHANNEL"] = s.owner_channel
    return found


def _check_channels(
    settings: Settings, slack: WebClient, bot_name: str, report: CheckReport
) -> None:
    """The bot must be a member to read a channel's history, which is how a post whose
    answer was lost is found instead of posted twice."""
    for variable, channel in _configured_channels(settings).items():
        try:
            found = (
                channel
                if CONVERSATION_ID.match(channel)
                else list_channel_id(slack, channel.removeprefix("#").lower())
            )
            if found is None or not CONVERSATION_ID.match(found):
                report.add(
                    False,
                    f"{variable}: Slack lists no channel {channel}",
                    "Use the channel's id (C...) or its exact #name; for a private channel, "
                    "invite the bot first.",
                )
                continue
            info = slack.conversations_info(channel=found)["channel"]
        except SlackApiError as exc:
            report.add(False, f"{variable}: Slack said {exc.response.get('error')} for {channel}")
            continue
        name = f"#{info.get('name', channel)}"
        if info.get("is_member"):
            report.add(True, f"{variable}: the bot is a member of {name}")
        else:
            report.add(
                False,
                f"{variable}: the bot is not a member of {name}",
                f"In Slack, run `/invite @{bot_name}` in {name}.",
            )


def _check_github(s: Settings, github: GitHubGateway | None, report: CheckReport) -> None:
    if github is None:
        report.add(
            False,
            "GitHub: GITHUB_TOKEN is not set",
            "Requests wait in the outbox until it is; urgent issues are not watched.",
            warning=True,
        )
        return
    try:
        permissions = github.repo_permissions()
    except Exception as exc:  # noqa: BLE001 - classified below into what to do
        try:
            failure = classify_failure(exc)
        except Exception:  # noqa: BLE001 - not a GitHub failure: say what it was
            failure = GitHubFailure(False, f"GitHub check failed ({type(exc).__name__})")
        report.add(False, f"GitHub: {failure.message}")
        return
    if permissions.get("push"):
        report.add(True, f"GitHub token may read and create issues in {s.github_repo}")
    else:
        report.add(
            False,
            f"GitHub token may read but not create issues in {s.github_repo}",
            "Give the token Issues: read and write on the repo.",
        )
    if s.github_webhook_secret is None and s.slack_app_token is None:
        report.add(
            False,
            "GitHub webhooks are off (no GITHUB_WEBHOOK_SECRET): urgent issues are polled "
            f"every {s.urgent_poll_interval_seconds} s",
            "Set GITHUB_WEBHOOK_SECRET and add the webhook (README, Urgent issues) for "
            "changes within seconds.",
            warning=True,
        )
