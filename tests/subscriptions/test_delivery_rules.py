"""Subscriptions and alerts as users meet them: who may read what, what is stored, which
period is delivered when, and how trouble is recovered from."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.features import build_jobs
from bot.scheduling.clock import Clock
from bot.scheduling.runs import list_runs
from sandbox.harness import ANALYTICS_CHANNEL
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


def test_a_subscription_for_an_account_is_delivered(bot, clock):
    # `/metric subscribe NAME [PERIOD] [for ACCOUNT] ...` is the documented grammar.
    clock.set(at(dt.date(2026, 11, 18), 11))
    reply = command(bot, "subscribe dau 7d for Beacon Retail Corp. weekly on monday at 9am")
    assert "Subscribed" in text_of(reply)
    (item,) = items(bot)
    clock.set(at(dt.date(2026, 11, 23), 9, 1))
    tick(bot)
    tick(bot)
    runs = {r.period: (r.status, r.detail) for r in list_runs(bot.deps.store, job=item.job_name)}
    assert runs.get("2026-11-23", ("?",))[0] == "posted", (item.period_text, runs)
    assert len(posts(bot)) == 1


def test_an_account_without_events_is_not_announced_late_every_day(bot, clock):
    # Beacon Retail Corp. sends no user-level events (raw demo rows: its instances have no
    # dotcom_events rows). Its complete day has no DAU: that is not late data, but the
    # delivery says "late ... will be posted as soon as the data is complete" and the owner is
    # told at the end of the day, every day.
    from bot.subscriptions import records
    from bot.subscriptions.model import Every, Kind, Schedule

    clock.set(at(dt.date(2026, 11, 16), 10))
    # Stored directly, as an item made before `for ACCOUNT` was read right would be.
    records.create(
        bot.deps.store,
        bot.deps.now(),
        kind=Kind.SUBSCRIPTION,
        metric="dau",
        period_text=None,
        account="Beacon Retail Corp.",
        channel=ANALYTICS_CHANNEL,
        creator="U0ALICE",
        schedule=Schedule(every=Every.DAILY, time=dt.time(9)),
    )
    clock.set(at(dt.date(2026, 11, 17), 9))
    for _ in range(10):
        tick(bot)
        clock.advance(minutes=30)
    late = [p for p in posts(bot) if "late" in p.get("text", "")]
    assert not late, late[0]["text"]


def test_an_alert_waits_for_a_day_whose_data_has_not_landed_instead_of_saying_no_data(
    tmp_path, sqlite_store, clock, demo_warehouse_path
):
    # At 00:30 the day's events may not be loaded yet. The check must wait (like a
    # subscription's NotReady), not post "no data" and close the period: NoData is caught
    # before the completeness check, so the period is never evaluated.
    import shutil

    from sandbox.harness import BotHarness
    from tests.support.cody_warehouse import ReopeningWarehouse, execute

    day = dt.date(2026, 11, 16)
    path = shutil.copy(demo_warehouse_path, tmp_path / "late-events.duckdb")
    execute(path, "DELETE FROM dotcom_events.events WHERE timestamp >= $t", {"t": at(day, 0)})
    with BotHarness(
        data_dir=tmp_path, store=sqlite_store, warehouse=ReopeningWarehouse(path), now=clock
    ) as bot:
        clock.set(at(day, 12))
        assert "Alert set" in text_of(command(bot, "alert dau above 1"))
        clock.set(at(day + dt.timedelta(days=1), 0, 30))
        tick(bot)
        said = [p.get("text", "") for p in posts(bot)]
        assert not any("not a crossing" in t for t in said), said


def test_a_moment_of_slack_trouble_does_not_stop_a_revenue_subscription_for_good(
    make_bot, sqlite_store, clock
):
    # REVENUE_CHANNELS may name channels (`#finance`, README). A delivery re-checks the
    # right by resolving the name; when Slack cannot answer that moment, the item must not be
    # stopped for ever (and its creator told it lost the right).
    with make_bot(sqlite_store, revenue_channels=["#finance"]) as bot:
        finance = bot.slack.add_channel("C0FINANCE", "finance")
        clock.set(at(dt.date(2026, 11, 16), 10))
        made = command(bot, "subscribe mrr daily at 9am", channel=finance)
        assert "Subscribed" in text_of(made)
        clock.set(at(dt.date(2026, 11, 18), 9))  # the channel-name cache (24 h) has expired
        bot.slack.fail_next("conversations.list", "internal_error", status=500, times=5)
        tick(bot)
        (item,) = items(bot)
        assert item.status == "active", item.status_reason


def test_the_creator_is_told_when_their_item_is_stopped_even_if_the_first_dm_is_lost(
    make_bot, sqlite_store, clock
):
    # The DM is sent with deliver(): a lost one stays due and the subscriptions tick sends it.
    from tests.subscriptions.test_subscriptions import FINANCE, USER

    with make_bot(sqlite_store, revenue_channels=[FINANCE]) as bot:
        clock.set(at(dt.date(2026, 11, 16), 10))
        assert "Subscribed" in text_of(command(bot, "subscribe mrr daily at 9am", channel=FINANCE))
        bot.deps.settings.revenue_channels = []  # the channel loses the right
        bot.slack.fail_next("chat.postMessage", "internal_error", status=500)
        clock.set(at(dt.date(2026, 11, 17), 9))
        tick(bot)
        for _ in range(12):  # the next hour of the clock (its sweep runs every minute)
            clock.advance(minutes=5)
            tick(bot)
            Clock(bot.deps, build_jobs(bot.deps)).tick()  # what the clock process does
        told = [m for m in bot.slack.messages(USER) if "stopped" in m.get("text", "")]
        tries = [c for c in bot.slack.calls("chat.postMessage") if c.args.get("channel") == USER]
        assert told, f"the stopped notice was lost and never sent again ({len(tries)} tries)"


def test_a_non_pacific_team_time_delivers_the_last_complete_pacific_day_on_time(
    make_bot, sqlite_store, clock
):
    # TIMEZONE moves schedules only; reported days are Pacific. 09:00 in Tokyo on Tue Nov 24
    # is 16:00 PT on Mon Nov 23: the last complete Pacific day is Sun Nov 22.
    with make_bot(sqlite_store, timezone="Asia/Tokyo") as bot:
        clock.set(at(dt.date(2026, 11, 20), 12))
        assert "Subscribed" in text_of(command(bot, "subscribe dau daily at 9am"))
        tokyo_nine = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
        clock.set(tokyo_nine.astimezone(dt.UTC))
        tick(bot)
        (item,) = items(bot)
        runs = {
            r.period: (r.status, r.detail) for r in list_runs(bot.deps.store, job=item.job_name)
        }
        assert any(s == "posted" for s, _ in runs.values()), runs
        assert "Sun Nov 22, 2026" in text_of(posts(bot)[0])


def test_a_change_alert_on_a_windowed_metric_is_refused_with_a_plain_answer(bot, clock):
    # MAU is a 30-day window: its one-day check would be widened to 30 days and compared
    # with the 30 days before, not with the previous day the alert promises. Refused.
    clock.set(at(dt.date(2026, 11, 17), 9))
    for text in ("alert mau changes by 10% vs previous day", "alert mau changes by 10% weekly"):
        said = text_of(command(bot, text))
        assert "Alert set" not in said and "30 days" in said, said
    assert items(bot) == []
    assert "Alert set" in text_of(command(bot, "alert dau changes by 10%"))


def test_the_subscribe_button_on_a_breakdown_keeps_its_by(bot, clock):
    from bot.ids import Action
    from sandbox.slack_requests import block_actions
    from tests.subscriptions.test_subscriptions import USER, responses

    clock.set(at(dt.date(2026, 11, 18), 11))
    answer = command(bot, "searches 30d by deployment")
    url = bot.slack.response_url(ANALYTICS_CHANNEL, user=USER)
    click = block_actions(
        Action.METRIC_SUBSCRIBE.value,
        message=answer,
        channel_id=ANALYTICS_CHANNEL,
        user_id=USER,
        is_ephemeral=True,
        response_url=url,
    )
    assert bot.interact(click).status == 200
    assert "Subscribed" in text_of(responses(bot, url)[0])
    (item,) = items(bot)
    assert item.by == "deployment"  # its 30d is the metric's default, stored as None
    clock.set(at(dt.date(2026, 11, 23), 9, 1))
    tick(bot)
    (post,) = posts(bot)
    assert "by deployment" in text_of(post).lower()


@pytest.mark.parametrize(
    ("text", "day", "start", "end"),
    [
        ("this week", dt.date(2026, 11, 23), dt.date(2026, 11, 16), dt.date(2026, 11, 22)),
        ("mtd", dt.date(2026, 11, 1), dt.date(2026, 10, 1), dt.date(2026, 10, 31)),
        ("qtd", dt.date(2026, 10, 1), dt.date(2026, 7, 1), dt.date(2026, 9, 30)),
        ("ytd", dt.date(2027, 1, 1), dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
        ("this week", dt.date(2026, 11, 25), dt.date(2026, 11, 23), dt.date(2026, 11, 24)),
    ],
)
def test_a_to_date_subscription_delivers_the_previous_complete_period_on_its_first_day(
    text, day, start, end
):
    from bot.subscriptions.model import subscription_period

    period = subscription_period(text, "yesterday", day)
    assert (period.start, period.end, period.partial) == (start, end, False)
