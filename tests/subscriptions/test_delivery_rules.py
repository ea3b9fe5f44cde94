"""Subscriptions and alerts as users meet them: who may read what, what is stored, which
period is delivered when, and how trouble is recovered from."""

from __future__ import annotations

import datetime as dt

from bot.scheduling.runs import list_runs
from tests.subscriptions.test_subscriptions import at, command, items, posts, text_of, tick


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


def test_a_subscription_by_alias_is_delivered(bot, clock):
    clock.set(at(dt.date(2026, 11, 18), 11))
    reply = command(bot, "subscribe daily active users 7d weekly on monday at 9am")
    assert "Subscribed" in text_of(reply)
    (item,) = items(bot)
    clock.set(at(dt.date(2026, 11, 23), 9, 1))
    tick(bot)
    runs = {r.period: (r.status, r.detail) for r in list_runs(bot.deps.store, job=item.job_name)}
    assert runs.get("2026-11-23", ("?",))[0] == "posted", (item.period_text, runs)
    (post,) = posts(bot)
    assert "Nov 16 – Nov 22, 2026" in text_of(post)  # the 7d that was asked for


def test_a_this_week_subscription_delivered_on_monday_is_not_late_every_week(bot, clock):
    # Accepted on a Wednesday (this week = Mon..Tue, complete), but re-read on the default
    # delivery day, Monday, `this week` is today so far: never complete.
    clock.set(at(dt.date(2026, 11, 18), 11))
    reply = command(bot, "subscribe dau this week")
    assert "Subscribed" in text_of(reply)
    (item,) = items(bot)
    clock.set(at(dt.date(2026, 11, 23), 9))
    for _ in range(10):  # the morning, every 30 min
        tick(bot)
        clock.advance(minutes=30)
    late = [p for p in posts(bot) if "late" in p.get("text", "")]
    assert not late, late[0]["text"]


def test_a_new_subscription_never_inherits_a_deleted_ones_runs(bot, clock):
    # SQLite (the default state database) reuses the highest rowid after a delete unless
    # the table is AUTOINCREMENT: the new item becomes `sub-1` again, and the old sub-1's
    # runs (keyed by job name and day) make the runner skip the new one's delivery.
    from bot.subscriptions.command import delete_button
    from bot.subscriptions.model import ItemValue

    clock.set(at(dt.date(2026, 11, 16), 8))
    command(bot, "subscribe dau daily at 9am")
    clock.set(at(dt.date(2026, 11, 17), 9))
    tick(bot)
    assert len(posts(bot)) == 1
    (old,) = items(bot)
    delete_button(bot.deps, ItemValue(id=old.id), user="U0ALICE")
    command(bot, "subscribe wau daily at 10am")
    (new,) = items(bot)
    clock.set(at(dt.date(2026, 11, 17), 10))
    tick(bot)
    assert new.job_name != old.job_name or len(posts(bot)) == 2, (
        f"{new.job_name} reused; its 10:00 delivery was skipped"
    )


def test_a_subscription_by_dimension_is_delivered(bot, clock):
    clock.set(at(dt.date(2026, 11, 18), 11))
    assert "Subscribed" in text_of(command(bot, "subscribe searches 30d by deployment weekly"))
    (item,) = items(bot)
    clock.set(at(dt.date(2026, 11, 23), 9, 1))
    tick(bot)
    runs = {r.period: (r.status, r.detail) for r in list_runs(bot.deps.store, job=item.job_name)}
    assert runs.get("2026-11-23", ("?",))[0] == "posted", (item.period_text, runs)
