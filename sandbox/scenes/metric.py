"""Demo scene: /metric answers, shares, refuses and helps."""

from __future__ import annotations

import time

from bot.ids import Action
from bot.render import render_message
from sandbox.harness import ANALYTICS_CHANNEL
from sandbox.slack_requests import block_actions

FINANCE_CHANNEL = "C0FINANCE"


def run(h) -> None:
    h.section("/metric: the numbers people ask for, in seconds")
    # The demo deployment lets revenue numbers into #finance only.
    h.deps.settings.revenue_channels = [FINANCE_CHANNEL]

    h.say("Alice types `/metric help` in #analytics")
    _ask(h, "help")

    h.say("`/metric dau` (yesterday, the last complete day in Pacific time)")
    _ask(h, "dau")

    h.say("`/metric wau last week`, then the same again: the second comes from the cache")
    _ask(h, "wau last week")
    started = time.perf_counter()
    _ask(h, "WAU last week", quiet=True)
    h.say(f"(cached answer in {1000 * (time.perf_counter() - started):.0f} ms)")
    h.show_new()

    account = _an_account(h)
    if account:
        h.say(f"`/metric mau last month for {account}`")
        _ask(h, f"mau last month for {account}")

    h.say("`/metric instances_by_deployment 30d`: a breakdown")
    _ask(h, "instances_by_deployment 30d")

    h.say("`/metric searches 30d by deployment`: any metric that supports it, broken down")
    _ask(h, "searches 30d by deployment")

    if account:
        h.say(f"`/metric account {account}`: what a customer engineer asks first, in one card")
        _ask(h, f"account {account}")

    h.say("`/metric cody_pro_active 30d`")
    url = _ask(h, "cody_pro_active 30d")

    h.say("Alice clicks “Share in channel”")
    answer = h.slack.responses(url)[-1].payload
    _click(h, answer, user="U0ALICE", channel=ANALYTICS_CHANNEL)
    h.show_new()

    h.say("`/metric mrr` in #analytics: revenue stays in #finance")
    _ask(h, "mrr")
    h.say("`/metric mrr` in #finance")
    _ask(h, "mrr", channel=FINANCE_CHANNEL, channel_name="finance")
    h.say("`/metric cody_pro` in #finance: every Cody Pro daily field at once")
    _ask(h, "cody_pro", channel=FINANCE_CHANNEL, channel_name="finance")

    h.say("A typo: `/metric mua last month`")
    _ask(h, "mua last month")
    h.say("Not a typo after all: `/metric churn by plan`, then “Open a data request”")
    # It may be an account's name: answered in the ack once the account list is cached,
    # else by the response URL.
    response, url = h.slash("/metric", "churn by plan")
    if response.body:
        offer = response.json()
    else:
        deadline = time.monotonic() + 30
        while not h.slack.responses(url) and time.monotonic() < deadline:
            time.sleep(0.01)
        offer = h.slack.responses(url)[-1].payload
    print("\n--- reply (only visible to you) ---", file=h.out)
    print(render_message(offer), file=h.out)
    h.interact(
        block_actions(
            Action.METRIC_OPEN_REQUEST.value,
            message=offer,
            channel_id=ANALYTICS_CHANNEL,
            user_id="U0ALICE",
            is_ephemeral=True,
            trigger_id=h.slack.issue_trigger_id(),
            response_url=h.slack.response_url(ANALYTICS_CHANNEL),
        )
    )
    deadline = time.monotonic() + 10
    while not h.slack.calls("views.open") and time.monotonic() < deadline:
        time.sleep(0.01)
    h.show_new()
    h.say("A period it cannot read: `/metric dau fortnight`")
    _ask(h, "dau fortnight")


def _ask(h, text: str, *, quiet: bool = False, **where) -> str:
    """Send `/metric text`. Replies that need no warehouse come back in the ack (printed
    here); a lookup answers at the response URL: wait for the answer itself (Bolt runs
    the listener after the ack, and a slow lookup first posts a "still working" note)."""
    response, url = h.slash("/metric", text, **where)
    if response.body and not quiet:
        print("\n--- reply (only visible to you) ---", file=h.out)
        print(render_message(response.json()), file=h.out)
        return url
    deadline = time.monotonic() + 60
    while not response.body and time.monotonic() < deadline:
        texts = [r.payload.get("text") or "" for r in h.slack.responses(url)]
        if any(not t.startswith("Still working") for t in texts):
            break
        time.sleep(0.01)
    if not quiet:
        h.show_new()
    return url


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
    url = h.slack.response_url(channel)
    h.interact(
        block_actions(
            Action.METRIC_SHARE.value,
            message=payload,
            channel_id=channel,
            user_id=user,
            is_ephemeral=True,
            response_url=url,
        )
    )
    deadline = time.monotonic() + 30
    while len(h.slack.responses(url)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
