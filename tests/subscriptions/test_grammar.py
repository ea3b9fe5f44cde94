"""The grammar of `/metric subscribe` and `/metric alert`, and the alert rule: pure, table
driven (no Slack, no warehouse)."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.errors import InputError
from bot.metric.catalog import load_catalog
from bot.metric.model import ShareValue
from bot.metric.periods import parse_period
from bot.subscriptions.model import (
    Condition,
    Every,
    Rule,
    Schedule,
    SubscribeValue,
    parse_alert,
    parse_subscribe,
    relative_period_text,
)

TODAY = dt.date(2026, 11, 23)  # a Monday
TZ = "America/Los_Angeles"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.mark.parametrize(
    ("text", "metric", "period", "every", "weekday", "time", "channel"),
    [
        ("dau", "dau", None, Every.WEEKLY, 0, dt.time(9), None),
        ("dau 7d daily", "dau", "7d", Every.DAILY, 0, dt.time(9), None),
        (
            "wau last week weekly on friday at 4:30pm",
            "wau",
            "last week",
            Every.WEEKLY,
            4,
            dt.time(16, 30),
            None,
        ),
        ("mau at 9 am in #growth", "mau", None, Every.WEEKLY, 0, dt.time(9), "growth"),
        ("dau every tuesday at noon", "dau", None, Every.WEEKLY, 1, dt.time(12), None),
        (
            "dau 30d daily at 07:15 in <#C0ABC|analytics>",
            "dau",
            "30d",
            Every.DAILY,
            0,
            dt.time(7, 15),
            "C0ABC",
        ),
    ],
)
def test_subscribe_reads_the_documented_forms_with_defaults(
    catalog, text, metric, period, every, weekday, time, channel
):
    spec = parse_subscribe(text, catalog, TODAY, TZ)
    assert spec.metric == metric and spec.period_text == period
    assert spec.schedule == Schedule(every=every, weekday=weekday, time=time)
    got = None if spec.channel is None else (spec.channel.id or spec.channel.name)
    assert got == channel


@pytest.mark.parametrize(
    "text", ["dau at 9am UTC", "dau weekly at 9 PST", "dau at 9am America/New_York"]
)
def test_a_time_zone_word_is_refused_because_schedules_are_team_time(catalog, text):
    with pytest.raises(InputError, match="team time"):
        parse_subscribe(text, catalog, TODAY, TZ)


def test_weekly_cron_is_standard_cron_in_the_team_zone():
    assert Schedule().cron() == "0 9 * * 1"
    assert Schedule(weekday=6, time=dt.time(7, 5)).cron() == "5 7 * * 0"
    assert Schedule(every=Every.DAILY).cron() == "0 9 * * *"


@pytest.mark.parametrize(
    ("text", "condition", "threshold", "compare", "account"),
    [
        ("dau below 1,000", Condition.BELOW, 1000, "day", None),
        ("dau above 2.5k", Condition.ABOVE, 2500, "day", None),
        ("mrr over $40k", Condition.ABOVE, 40000, "day", None),
        ("dau changes by 20%", Condition.CHANGES, 20, "day", None),
        ("dau changes by 15% vs previous week", Condition.CHANGES, 15, "week", None),
        ("dau for Acme below 10", Condition.BELOW, 10, "day", "Acme"),
        ("dau below 10 for Acme", Condition.BELOW, 10, "day", "Acme"),
    ],
)
def test_alert_reads_thresholds_changes_and_accounts(
    catalog, text, condition, threshold, compare, account
):
    spec = parse_alert(text, catalog, TODAY, TZ)
    assert spec.rule == Rule(condition=condition, threshold=threshold, compare=compare)
    assert spec.account == account


@pytest.mark.parametrize(
    ("rule", "value", "previous", "holds"),
    [
        (Rule(condition=Condition.ABOVE, threshold=10), 11, None, True),
        (Rule(condition=Condition.ABOVE, threshold=10), 10, None, False),
        (Rule(condition=Condition.BELOW, threshold=10), 9.5, None, True),
        (Rule(condition=Condition.CHANGES, threshold=20), 120, 100, True),
        (Rule(condition=Condition.CHANGES, threshold=20), 81, 100, False),
        (Rule(condition=Condition.CHANGES, threshold=20), 79, 100, True),
        (Rule(condition=Condition.CHANGES, threshold=20), 5, None, None),
    ],
)
def test_the_alert_rule(rule, value, previous, holds):
    assert rule.holds(value, previous) is holds


@pytest.mark.parametrize(
    ("typed", "expect"),
    [
        ("yesterday", "yesterday"),
        ("last week", "last week"),
        ("last month", "last month"),
        ("7d", "7d"),
        ("90d", "90d"),
    ],
)
def test_the_subscribe_button_keeps_the_period_relative(typed, expect):
    wednesday = TODAY + dt.timedelta(days=2)  # on a Monday "7d" is "last week"
    assert relative_period_text(parse_period(typed, wednesday), wednesday) == expect


@pytest.mark.parametrize(
    ("typed", "expect"), [("30d", "30d"), ("last month", "last month"), ("november", "last month")]
)
def test_the_subscribe_button_keeps_30d_that_covers_a_whole_month(typed, expect):
    # On Dec 1 `30d` is Nov 1..Nov 30: the button still subscribes to 30 days.
    dec1 = dt.date(2026, 12, 1)
    value = SubscribeValue.model_validate_json(answer_button_value(parse_period(typed, dec1)))
    assert relative_period_text(value.period, dec1) == expect


def answer_button_value(period) -> str:
    # What an answer's Subscribe button carries (the same value as its Share button).
    return ShareValue(
        metric="dau", start=period.start, end=period.end, calendar=period.calendar
    ).model_dump_json()


@pytest.mark.parametrize(
    ("text", "account", "every", "weekday", "channel"),
    [
        ("dau for Acme on Prem weekly", "Acme on Prem", Every.WEEKLY, 0, None),
        ("dau 7d for Work at Home daily at 8am", "Work at Home", Every.DAILY, 0, None),
        ("wau for Made in Oslo on friday in #growth", "Made in Oslo", Every.WEEKLY, 4, "growth"),
        ("dau for Acme on monday", "Acme", Every.WEEKLY, 0, None),
    ],
)
def test_an_account_name_may_hold_a_schedule_word(catalog, text, account, every, weekday, channel):
    spec = parse_subscribe(text, catalog, TODAY, TZ)
    assert spec.account == account
    assert (spec.schedule.every, spec.schedule.weekday) == (every, weekday)
    assert (spec.channel.name or spec.channel.id if spec.channel else None) == channel


def test_a_misread_schedule_without_an_account_still_says_where():
    with pytest.raises(InputError, match="“Funday” is not a day of the week"):
        parse_subscribe("dau on Funday weekly", load_catalog(), TODAY, TZ)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("dau for Acme at 9am UTC", "UTC"),
        ("dau for Acme weekly on mondya", "“mondya” is not a day of the week"),
        ("dau for Acme at 25:00", "25:00"),
        ("dau for Acme daily today", "today"),
        ("dau for weekly", "account"),
    ],
)
def test_a_schedule_mistake_after_an_account_is_told_not_read_as_the_name(catalog, text, error):
    with pytest.raises(InputError) as raised:
        parse_subscribe(text, catalog, TODAY, TZ)
    assert error in raised.value.user_message


@pytest.mark.parametrize(
    ("text", "account", "channel"),
    [
        ("dau below 5 for Made in Oslo", "Made in Oslo", None),
        ("dau below 5 for Made in Oslo in #growth", "Made in Oslo", "growth"),
        ("dau below 5 in #growth for Acme", "Acme", "growth"),
        ("dau below 5 for Acme in <#C0ABC|analytics>", "Acme", "C0ABC"),
    ],
)
def test_an_alert_account_name_may_hold_in(catalog, text, account, channel):
    spec = parse_alert(text, catalog, TODAY, TZ)
    assert spec.account == account
    assert (spec.channel.name or spec.channel.id if spec.channel else None) == channel


def test_an_alert_in_a_word_that_is_no_channel_still_says_how_to_write_one(catalog):
    with pytest.raises(InputError, match="is not a channel"):
        parse_alert("dau below 5 in general", catalog, TODAY, TZ)


def test_an_alert_account_name_may_hold_a_condition_word(catalog):
    spec = parse_alert("dau for Over the Top below 5", catalog, TODAY, TZ)
    assert spec.account == "Over the Top"
    assert spec.rule is not None and spec.rule.threshold == 5
