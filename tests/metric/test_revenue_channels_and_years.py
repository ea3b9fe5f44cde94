"""/metric rules users meet: revenue channels named by `#name`, and periods with years out of
range answered plainly."""

from __future__ import annotations

import datetime as dt

from tests.subscriptions.test_subscriptions import at, command, text_of


def test_a_revenue_channel_configured_by_name_answers_revenue_metrics(
    make_bot, sqlite_store, clock
):
    # README: REVENUE_CHANNELS are "channel ids (or #names)"; subscriptions honour a
    # #name, so /metric must too (else `/metric subscribe mrr` works where `/metric mrr`
    # is refused).
    with make_bot(sqlite_store, revenue_channels=["#finance"]) as bot:
        finance = bot.slack.add_channel("C0FINANCE", "finance")
        clock.set(at(dt.date(2026, 11, 16), 10))
        made = command(bot, "subscribe mrr daily at 9am", channel=finance)
        assert "Subscribed" in text_of(made)
        response, _ = bot.slash("/metric", "mrr", channel=finance)
        refused = response.json() or {}
        assert "revenue data" not in text_of(refused), text_of(refused)


def test_a_refusal_names_a_revenue_channel_given_by_name_as_text():
    from bot.metric.catalog import load_catalog
    from bot.metric.model import refusal
    from bot.settings import Settings

    said = refusal(load_catalog().get("mrr"), Settings(revenue_channels=["#finance", "C0REV"]))
    assert "<##" not in said and "#finance" in said and "<#C0REV>" in said
