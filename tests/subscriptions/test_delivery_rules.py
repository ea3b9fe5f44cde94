"""Subscriptions and alerts as users meet them: who may read what, what is stored, which
period is delivered when, and how trouble is recovered from."""

from __future__ import annotations

import datetime as dt

from tests.subscriptions.test_subscriptions import at, command, items, text_of, tick


def test_a_person_who_may_not_see_revenue_cannot_read_it_from_their_alert_list(
    make_bot, sqlite_store, clock
):
    # Anyone may point an alert on a revenue metric at a revenue channel (the channel is
    # allowed). Its "last result" in `/metric subscriptions`, typed anywhere, must not carry
    # the revenue number to someone who may not see it.
    from tests.subscriptions.test_subscriptions import FINANCE

    mallory = "U0MALLORY"  # not in REVENUE_USERS
    with make_bot(sqlite_store, revenue_channels=[FINANCE]) as bot:
        bot.slack.add_channel(FINANCE, "finance")
        clock.set(at(dt.date(2026, 11, 16), 10))
        made = command(bot, f"alert mrr above 999999999 in <#{FINANCE}|finance>", user=mallory)
        assert "Alert set" in text_of(made), text_of(made)
        clock.set(at(dt.date(2026, 11, 17), 0, 30))
        tick(bot)
        tick(bot)
        (item,) = items(bot)
        from bot.subscriptions import records

        checked = records.last_check(bot.deps.store, item.id)
        assert checked is not None and checked[2] is not None
        listed = text_of(command(bot, "subscriptions", user=mallory))  # in #analytics
        assert f"{checked[2]:g}" not in listed, listed
