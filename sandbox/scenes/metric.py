"""Demo scene: /metric answers, shares, refuses and helps."""

from __future__ import annotations

import time

from bot.ids import Action
from sandbox.harness import ANALYTICS_CHANNEL
from sandbox.slack_requests import block_actions

FINANCE_CHANNEL = "C0FINANCE"


def run(h) -> None:
    h.section("/metric: the numbers people ask for, in seconds")
    # The demo deployment lets revenue numbers into #finance only.
    h.deps.settings.revenue_channels = [FINANCE_CHANNEL]

    h.say("Alice types `/metric help` in #analytics")
    h.slash("/metric", "help")
    h.show_new()

    h.say("`/metric dau` (yesterday, the last complete day in Pacific time)")
    h.slash("/metric", "dau")
    h.show_new()

    h.say("`/metric wau last week`, then the same again: the second comes from the cache")
    h.slash("/metric", "wau last week")
    h.show_new()
    started = time.perf_counter()
    _, url = h.slash("/metric", "WAU last week")
    h.wait_idle()
    h.say(f"(cached answer in {1000 * (time.perf_counter() - started):.0f} ms)")
    h.show_new()

    account = _an_account(h)
    if account:
        h.say(f"`/metric mau last month for {account}`")
        h.slash("/metric", f"mau last month for {account}")
        h.show_new()

    h.say("`/metric instances_by_deployment 30d`: a breakdown")
    h.slash("/metric", "instances_by_deployment 30d")
    h.show_new()

    h.say("`/metric cody_pro_active 30d`")
    _, url = h.slash("/metric", "cody_pro_active 30d")
    h.show_new()

    h.say("Alice clicks “Share in channel”")
    answer = h.slack.responses(url)[-1].payload
    _click(h, answer, user="U0ALICE", channel=ANALYTICS_CHANNEL)
    h.show_new()

    h.say("`/metric mrr` in #analytics: revenue stays in #finance")
    h.slash("/metric", "mrr")
    h.show_new()
    h.say("`/metric mrr` in #finance")
    h.slash("/metric", "mrr", channel=FINANCE_CHANNEL, channel_name="finance")
    h.show_new()

    h.say("A typo: `/metric mua last month`")
    h.slash("/metric", "mua last month")
    h.show_new()
    h.say("A period it cannot read: `/metric dau fortnight`")
    h.slash("/metric", "dau fortnight")
    h.show_new()


def _an_account(h) -> str | None:
    rows = h.deps.warehouse.query(
        "SELECT account_name, COUNT(DISTINCT instance_id) AS n "
        "FROM sourcegraph_analytics.update_checks "
        "WHERE account_name IS NOT NULL AND telemetry_status = 'full pings + event data' "
        "GROUP BY account_name ORDER BY n DESC, account_name LIMIT 1",
        {},
    )
    return rows[0]["account_name"] if rows else None


def _click(h, payload: dict, *, user: str, channel: str) -> None:
    h.interact(
        block_actions(
            Action.METRIC_SHARE.value,
            message=payload,
            channel_id=channel,
            user_id=user,
            is_ephemeral=True,
            response_url=h.slack.response_url(channel),
        )
    )
