"""/metric rules users meet: revenue channels named by `#name`, and periods with years out of
range answered plainly."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.errors import InputError
from bot.metric.periods import parse_period
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


def test_a_revenue_channel_named_by_name_is_looked_up_after_the_ack(make_bot, sqlite_store, clock):
    # Resolving `#finance` asks Slack (conversations.list, cached a day): never before the
    # ack, which Slack wants within 3 s; the refusal or the answer follows.
    with make_bot(sqlite_store, revenue_channels=["#finance"]) as bot:
        finance = bot.slack.add_channel("C0FINANCE", "finance")
        clock.set(at(dt.date(2026, 11, 16), 10))
        bot.slack.delay_next("conversations.list", 2.0)
        response, url = bot.slash("/metric", "mrr")  # in #analytics
        assert response.status == 200 and not response.body
        assert not bot.slack.calls("conversations.list")  # still being asked
        bot.wait_idle()
        (refused,) = [r.payload for r in bot.slack.responses(url)]
        assert "revenue data" in text_of(refused) and "#finance" in text_of(refused)
        _, url = bot.slash("/metric", "mrr", channel=finance)
        bot.wait_idle()
        (answer,) = [r.payload for r in bot.slack.responses(url)]
        assert "revenue data" not in text_of(answer) and "metric_share" in str(answer)
    assert len(bot.slack.calls("conversations.list")) == 1  # then cached


def test_a_refusal_names_a_revenue_channel_given_by_name_as_text():
    from bot.metric.catalog import load_catalog
    from bot.metric.model import refusal
    from bot.settings import Settings

    said = refusal(load_catalog().get("mrr"), Settings(revenue_channels=["#finance", "C0REV"]))
    assert "<##" not in said and "#finance" in said and "<#C0REV>" in said


@pytest.mark.parametrize("text", ["dec 9999", "9999-12", "q4 9999", "oct 0000", "0000-q1"])
def test_an_out_of_range_year_is_a_plain_answer_not_a_crash(text):
    with pytest.raises(InputError):
        parse_period(text, dt.date(2026, 12, 1))


def test_a_first_century_day_is_a_plain_answer_not_a_crash(bot, clock):
    # `0001-01-01` parses; its comparison period (the day before) does not exist.
    clock.set(at(dt.date(2026, 11, 16), 10))
    response, _ = bot.slash("/metric", "dau 0001-01-01")
    assert response.status == 200
    said = text_of(response.json() or {})
    assert "went wrong" not in said and "0001-01-01" in said, said


def test_an_out_of_range_year_typed_in_slack_gets_a_plain_answer(bot, clock):
    clock.set(at(dt.date(2026, 11, 16), 10))
    response, _ = bot.slash("/metric", "dau dec 9999")
    assert response.status == 200
    said = text_of(response.json() or {})
    assert "dec 9999" in said and "went wrong" not in said, said
