"""`databot check --online`: ask the real services whether this deployment can work.

`databot check` reads only settings and files; this asks Slack (the token, the scopes it
was granted against what manifest.yml asks for, membership of every configured channel)
and GitHub (the token, its permissions on GITHUB_REPO, whether webhooks are configured),
and, on BigQuery, prices every catalog metric's default lookup with a dry run (free) against
BIGQUERY_MAX_BYTES_BILLED.
Every finding says ok / warning / FAIL and what to do. Nothing is written anywhere.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.checks import CheckReport
from bot.errors import ConfigError, DatabotError
from bot.github import GitHubFailure, GitHubGateway, classify_failure
from bot.manifest import load_manifest, manifest_bot_scopes, packaged_manifest
from bot.metric.catalog import load_catalog
from bot.metric.lookup import MetricService
from bot.metric.model import MetricQuery
from bot.settings import Settings, utc_now
from bot.slack_channels import CONVERSATION_ID, list_channel_id
from bot.warehouse import BigQueryWarehouse, format_bytes, make_warehouse

REINSTALL = "Update the app from manifest.yml at api.slack.com/apps, then reinstall it."


# A default lookup above this share of the cap is a warning: a longer period will be refused.
BYTES_WARNING_SHARE = 0.5


def run_online_checks(
    settings: Settings,
    report: CheckReport,
    *,
    slack: WebClient,
    github: GitHubGateway | None,
    warehouse: BigQueryWarehouse | None = None,
) -> None:
    bot_name = _check_slack_token(settings, slack, report)
    if bot_name is not None:
        _check_channels(settings, slack, bot_name, report)
    _check_github(settings, github, report)
    if warehouse is not None:
        _check_bigquery_bytes(settings, warehouse, report)
    elif settings.gcp_project:
        opened = make_warehouse(settings)
        try:
            if isinstance(opened, BigQueryWarehouse):
                _check_bigquery_bytes(settings, opened, report)
        finally:
            opened.close()


def _check_bigquery_bytes(
    settings: Settings, warehouse: BigQueryWarehouse, report: CheckReport
) -> None:
    """A dry run of every catalog metric's default lookup (what `/metric NAME` sends):
    over the cap, BigQuery would refuse it, so the bot does not send it."""
    try:
        service = MetricService(load_catalog(), warehouse, settings, utc_now)
    except ConfigError:
        return  # the offline check already reported the catalog
    cap = warehouse.maximum_bytes_billed
    for metric in service.catalog.metrics:
        try:
            parsed = service.parse(metric.name)
            if not isinstance(parsed, MetricQuery):
                continue
            plan = service.plan(metric, parsed.period, None)
            estimated = warehouse.estimate_bytes(plan.sql, plan.params)
        except DatabotError as exc:
            report.add(
                False,
                f"BigQuery: the dry run of `{metric.name}` failed: {str(exc)[:300]}",
                "Check its SQL in bot/metric/metrics.yml against the warehouse's tables "
                "(and that the credentials may run jobs in GCP_PROJECT).",
            )
            continue
        what = (
            f"BigQuery: `/metric {metric.name}` ({metric.default_period}) would scan "
            f"{format_bytes(estimated)} of the {format_bytes(cap)} cap"
        )
        if estimated > cap:
            report.add(
                False,
                f"{what}: every default lookup would be refused",
                "Raise BIGQUERY_MAX_BYTES_BILLED, or shorten the metric's default_period or "
                "give it a rollup in bot/metric/metrics.yml.",
            )
        elif estimated > BYTES_WARNING_SHARE * cap:
            report.add(
                False,
                f"{what} ({estimated / cap:.0%}): a longer period would be refused",
                "Consider a rollup for it in bot/metric/metrics.yml, or a higher "
                "BIGQUERY_MAX_BYTES_BILLED.",
                warning=True,
            )
        else:
            report.add(True, what)


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
