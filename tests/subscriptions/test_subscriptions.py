"""Metric subscriptions and alerts through the real app on loopback: signed slash commands
and clicks, the stand-in Slack, the demo warehouse, the clock driven by `clock`.

Expectations come from the raw demo rows (DuckDB file read directly, Pacific dates from
zoneinfo) and from the calendar, never from the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import defaultdict
from zoneinfo import ZoneInfo

import duckdb
import pytest

from bot.deps import build_deps
from bot.features import tick_subscriptions
from bot.ids import Action
from bot.scheduling.runs import list_runs
from bot.settings import Settings
from bot.subscriptions import records
from sandbox.harness import ANALYTICS_CHANNEL, BotHarness
from sandbox.slack_requests import block_actions
from tests.support.cody_warehouse import ReopeningWarehouse, copy_ssc, set_synced_through

PT = ZoneInfo("America/Los_Angeles")
USER = "U0ALICE"
FINANCE = "C0FINANCE"


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A Pacific wall-clock time as aware UTC."""
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PT).astimezone(dt.UTC)


def responses(bot, url, count=1, timeout=10):
    deadline = time.monotonic() + timeout
    while len(bot.slack.responses(url)) < count:
        assert time.monotonic() < deadline, f"expected {count} responses at {url}"
        time.sleep(0.01)
    bot.wait_idle()
    return [r.payload for r in bot.slack.responses(url)]


def command(bot, text, *, channel=ANALYTICS_CHANNEL, user=USER) -> dict:
    """`/metric text` and the one reply it gets at the response URL."""
    response, url = bot.slash("/metric", text, channel=channel, user=user)
    assert response.status == 200
    return responses(bot, url)[0]


def text_of(payload) -> str:
    return json.dumps(payload, ensure_ascii=False)


def posts(bot, channel=ANALYTICS_CHANNEL) -> list[dict]:
    return [m for m in bot.slack.messages(channel) if m.get("bot_id") or m.get("user")]


def tick(bot) -> None:
    tick_subscriptions(bot.deps)


def items(bot):
    return records.list_items(bot.deps.store)


# --- subscriptions -------------------------------------------------------------------


def test_a_subscription_by_command_posts_once_a_week_at_nine_pacific_across_the_dst_change(
    bot, clock
):
    # DST ends Sun Nov 1 2026: Monday 09:00 Pacific is 16:00 UTC on Oct 26, 17:00 on Nov 2.
    clock.set(at(dt.date(2026, 10, 21), 14))
    reply = command(bot, "subscribe dau 7d weekly on monday at 9am")
    assert "Subscribed" in text_of(reply) and "Mon Oct 26, 09:00 PDT" in text_of(reply)
    assert len(items(bot)) == 1

    clock.set(dt.datetime(2026, 10, 26, 15, 59, tzinfo=dt.UTC))
    tick(bot)
    assert posts(bot) == []
    clock.set(dt.datetime(2026, 10, 26, 16, 0, tzinfo=dt.UTC))
    tick(bot)
    tick(bot)
    first = posts(bot)
    assert len(first) == 1
    assert "Oct 19 – Oct 25, 2026" in text_of(first[0])  # the 7 complete days before
    assert f"<@{USER}>" in text_of(first[0])

    clock.set(dt.datetime(2026, 11, 2, 16, 0, tzinfo=dt.UTC))  # 08:00 PST: not yet
    tick(bot)
    assert len(posts(bot)) == 1
    clock.set(dt.datetime(2026, 11, 2, 17, 0, tzinfo=dt.UTC))  # 09:00 PST
    tick(bot)
    clock.advance(minutes=5)
    tick(bot)
    second = posts(bot)
    assert len(second) == 2
    assert "Oct 26 – Nov 1, 2026" in text_of(second[1])
    job = items(bot)[0].job_name
    assert {(r.period, r.status) for r in list_runs(bot.deps.store, job=job)} == {
        ("2026-10-26", "posted"),
        ("2026-11-02", "posted"),
    }


def test_the_subscribe_button_on_an_answer_subscribes_to_the_same_lookup(bot, clock):
    clock.set(at(dt.date(2026, 11, 18), 11))  # a Wednesday
    answer = command(bot, "wau last week")
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
    reply = responses(bot, url)[0]
    assert "Subscribed" in text_of(reply) and "Mon Nov 23, 09:00 PST" in text_of(reply)
    (item,) = items(bot)
    assert item.metric == "wau" and item.channel == ANALYTICS_CHANNEL

    clock.set(at(dt.date(2026, 11, 23), 9, 1))
    tick(bot)
    tick(bot)
    (post,) = posts(bot)
    # Re-read at delivery: the week before Monday Nov 23, not the week the answer showed.
    assert "Nov 16 – Nov 22, 2026" in text_of(post)


def test_a_missed_delivery_is_caught_up_within_the_grace_period_only(bot, clock):
    clock.set(at(dt.date(2026, 11, 10), 12))
    command(bot, "subscribe dau daily at 9am")
    clock.set(at(dt.date(2026, 11, 11), 11))  # the clock was down at 09:00: 2 h late
    tick(bot)
    assert len(posts(bot)) == 1
    clock.set(at(dt.date(2026, 11, 12), 23))  # 14 h late: beyond the 4 h grace
    tick(bot)
    assert len(posts(bot)) == 1
    job = items(bot)[0].job_name
    assert {r.period: r.status for r in list_runs(bot.deps.store, job=job)} == {
        "2026-11-11": "posted",
        "2026-11-12": "skipped",
    }


def test_revenue_is_refused_outside_revenue_channels_and_stops_when_a_channel_loses_it(
    make_bot, sqlite_store, clock
):
    with make_bot(sqlite_store, revenue_channels=[FINANCE]) as bot:
        clock.set(at(dt.date(2026, 11, 16), 10))
        refused = command(bot, "subscribe mrr daily")
        assert "revenue" in text_of(refused) and f"<#{FINANCE}>" in text_of(refused)
        assert "$" not in text_of(refused)
        assert items(bot) == []  # nothing stored

        made = command(bot, "subscribe mrr daily at 9am", channel=FINANCE)
        assert "Subscribed" in text_of(made)
        clock.set(at(dt.date(2026, 11, 17), 9))
        tick(bot)
        assert len(posts(bot, FINANCE)) == 1 and "$" in text_of(posts(bot, FINANCE))

        bot.deps.settings.revenue_channels = []  # the channel loses the right
        clock.set(at(dt.date(2026, 11, 18), 9))
        tick(bot)
        clock.set(at(dt.date(2026, 11, 19), 9))
        tick(bot)
        assert len(posts(bot, FINANCE)) == 1  # nothing more posted there
        (item,) = items(bot)
        assert item.status == "stopped"
        dms = [
            m
            for c in bot.slack.calls("chat.postMessage")
            if c.args.get("channel") == USER
            for m in [c.args]
        ]
        assert len(dms) == 1 and "stopped" in dms[0]["text"]


def test_a_subscription_waits_for_late_data_says_so_once_and_posts_the_numbers_once(
    tmp_path, sqlite_store, clock, demo_warehouse_path
):
    path = copy_ssc(demo_warehouse_path, tmp_path / "late.duckdb")
    day = dt.date(2026, 11, 20)
    # SSC synced only through the start of the day before: Nov 20's numbers are partial.
    set_synced_through(path, at(day, 0))
    with BotHarness(
        data_dir=tmp_path, store=sqlite_store, warehouse=ReopeningWarehouse(path), now=clock
    ) as bot:
        clock.set(at(day, 7))
        command(bot, "subscribe cody_pro_active daily at 9am")
        clock.set(at(day + dt.timedelta(days=1), 9))
        tick(bot)
        assert posts(bot) == []
        for _ in range(8):  # every 30 min until 13:00: past the 3 h give-up
            clock.advance(minutes=30)
            tick(bot)
        late = posts(bot)
        assert len(late) == 1 and "late" in late[0]["text"]
        set_synced_through(path, at(day + dt.timedelta(days=1), 0))  # the day lands
        clock.advance(minutes=30)
        tick(bot)
        clock.advance(minutes=30)
        tick(bot)
        after = posts(bot)
        assert len(after) == 2
        assert "Fri Nov 20, 2026" in text_of(after[1]) and "late" not in after[1]["text"]


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("subscribe dua weekly", "`dau`"),
        ("subscribe dau weekly on funday", "not a day of the week"),
        ("subscribe dau every fortnight at noon", "not a day of the week"),
        ("subscribe dau weekly at 9am PST", "team time"),
        ("subscribe dau at 25:00", "not a time"),
        ("subscribe dau today", "complete periods"),
        ("alert dau above lots", "not a number"),
        ("alert dau sometimes", "Say when to alert"),
        ("alert dau changes by 20% vs last year", "vs previous week"),
        ("subscribe dau in #nowhere-at-all", "can't find the channel"),
    ],
)
def test_bad_input_gets_a_plain_answer_and_stores_nothing(bot, text, expect):
    bot.slack.add_channel("C0NOWHERE", "elsewhere")
    reply = command(bot, text)
    assert expect in text_of(reply), text_of(reply)
    assert "Traceback" not in text_of(reply)
    assert items(bot) == []


def test_channels_the_bot_cannot_use_are_refused_with_how_to_fix_it(bot):
    outside = bot.slack.add_channel("C0OUTSIDE", "outside", is_member=False)
    secret = bot.slack.add_channel("G0SECRET", "secret", is_private=True)
    assert "/invite @databot" in text_of(command(bot, f"subscribe dau in <#{outside}|outside>"))
    assert "private channel" in text_of(command(bot, "subscribe dau weekly", channel=secret))
    assert "direct message" in text_of(command(bot, "alert dau below 5", channel="D0ALICE"))
    assert items(bot) == []


def test_the_list_shows_mine_and_the_channels_with_next_run_and_pause_delete(bot, clock):
    clock.set(at(dt.date(2026, 11, 16), 10))
    command(bot, "subscribe dau daily at 8:30am")
    command(bot, "alert wau below 1", user="U0BOB")
    command(bot, "subscribe mau weekly", user="U0BOB", channel="C0OTHER")
    listed = text_of(command(bot, "subscriptions"))
    assert "sub-1" in listed and "alert-2" in listed and "sub-3" not in listed
    assert "Tue Nov 17, 08:30 PST" in listed
    url = bot.slack.response_url(ANALYTICS_CHANNEL, user=USER)
    payload = command(bot, "subscriptions")
    pause = block_actions(
        Action.SUBSCRIPTION_PAUSE.value, message=payload, user_id=USER, response_url=url
    )
    bot.interact(pause)
    assert "Paused" in text_of(responses(bot, url)[0])
    clock.set(at(dt.date(2026, 11, 17), 8, 30))
    tick(bot)
    assert posts(bot) == []  # paused: nothing delivered
    delete = block_actions(
        Action.SUBSCRIPTION_DELETE.value, message=payload, user_id=USER, response_url=url
    )
    bot.interact(delete)
    responses(bot, url, count=2)
    assert [i.job_name for i in items(bot)] == ["alert-2", "sub-3"]


def test_only_who_set_an_item_up_can_pause_snooze_or_delete_it(bot, clock):
    # Bob's alert posts into #analytics, where Alice sees it and the channel's list.
    clock.set(at(dt.date(2026, 11, 16), 10))
    command(bot, "alert wau below 1", user="U0BOB")
    (alert,) = items(bot)
    listed = command(bot, "subscriptions")
    assert f"`{alert.job_name}`" in text_of(listed)
    assert "Set up by <@U0BOB>: only they can pause or delete it." in text_of(listed)
    assert not [b for b in listed.get("blocks", []) if b.get("type") == "actions"]

    value = json.dumps({"id": alert.id})
    for action, extra in (
        (Action.SUBSCRIPTION_DELETE.value, {}),
        (Action.SUBSCRIPTION_PAUSE.value, {}),
        (Action.ALERT_SNOOZE_WEEK.value, {"days": 7}),
    ):
        url = bot.slack.response_url(ANALYTICS_CHANNEL, user=USER)
        click = block_actions(
            action, json.dumps({"id": alert.id, **extra}), user_id=USER, response_url=url
        )
        bot.interact(click)
        answer = text_of(responses(bot, url)[0])
        assert "set up by <@U0BOB>, so only they can change it" in answer
    (unchanged,) = items(bot)
    assert (unchanged.status, unchanged.snoozed_until) == (alert.status, alert.snoozed_until)

    url = bot.slack.response_url(ANALYTICS_CHANNEL, user="U0BOB")
    bot.interact(
        block_actions(Action.SUBSCRIPTION_DELETE.value, value, user_id="U0BOB", response_url=url)
    )
    assert "Deleted" in text_of(responses(bot, url)[0])
    assert items(bot) == []


# --- alerts ---------------------------------------------------------------------------


def raw_dau(path) -> dict[dt.date, int]:
    """Distinct users per Pacific day, straight from the raw events."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT epoch_us(timestamp), user_id FROM dotcom_events.events "
            "WHERE timestamp >= TIMESTAMP '2026-10-01' AND timestamp < TIMESTAMP '2026-11-23'"
        ).fetchall()
    finally:
        con.close()
    users: dict[dt.date, set] = defaultdict(set)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    for us, user in rows:
        users[(epoch + dt.timedelta(microseconds=us)).astimezone(PT).date()].add(user)
    return {d: len(u) for d, u in users.items()}


def crossing_pattern(values: dict[dt.date, int]) -> tuple[dt.date, float]:
    """A first day and a threshold with 'above' true, true, false, true on four days."""
    for start in sorted(values):
        days = [start + dt.timedelta(days=i) for i in range(4)]
        if not all(d in values for d in days) or start < dt.date(2026, 10, 3):
            continue
        v = [values[d] for d in days]
        low = max(v[2], 0)
        high = min(v[0], v[1], v[3])
        if high > low:
            return start, (low + high) / 2
    raise AssertionError("no crossing pattern in the demo data")


def test_an_alert_fires_once_on_a_crossing_stays_quiet_while_it_holds_then_rearms(
    bot, clock, demo_warehouse_path
):
    start, threshold = crossing_pattern(raw_dau(demo_warehouse_path))
    clock.set(at(start, 12))
    made = command(bot, f"alert dau above {threshold:.1f}")
    assert "Alert set" in text_of(made)
    fired = []
    for i in range(4):  # each day's check: 00:30 the next day
        clock.set(at(start + dt.timedelta(days=i + 1), 0, 30))
        tick(bot)
        tick(bot)
        fired.append(len(posts(bot)))
    assert fired == [1, 1, 1, 2]  # fires, holds (quiet), false (re-arms), fires again
    post = posts(bot)[0]
    label = f"{start:%a %b} {start.day}, {start.year}"
    assert label in text_of(post) and "above" in post["text"]
    assert "Snooze" in text_of(post) and "looker.example.com" in text_of(post)


def test_an_alert_without_data_says_so_once(bot, clock):
    # Beacon Retail Corp.'s instances send no user-level events (raw demo rows: no
    # dotcom_events rows for them), while the source's data is complete: no data, said once.
    clock.set(at(dt.date(2026, 11, 16), 12))
    assert "Alert set" in text_of(command(bot, "alert dau for Beacon Retail Corp. below 5"))
    for i in (1, 2, 3):
        clock.set(at(dt.date(2026, 11, 16) + dt.timedelta(days=i), 0, 30))
        tick(bot)
        clock.advance(hours=12)
        tick(bot)
    said = posts(bot)
    assert len(said) == 1 and "No DAU data" in said[0]["text"], said
    assert "not a crossing" in said[0]["text"]


def test_an_alert_waits_for_data_that_has_not_arrived_rather_than_saying_no_data(
    bot, clock, demo_warehouse_path
):
    # The demo data ends on Nov 23 2026: the days after it have no events yet. That is
    # data still to come (the source is not complete through the day), not "no data".
    con = duckdb.connect(str(demo_warehouse_path), read_only=True)
    (last,) = con.execute("SELECT MAX(timestamp) FROM dotcom_events.events").fetchone()
    con.close()
    first_empty = last.replace(tzinfo=dt.UTC).astimezone(PT).date() + dt.timedelta(days=1)
    clock.set(at(first_empty, 12))
    assert "Alert set" in text_of(command(bot, "alert dau below 5"))
    for i in (1, 2, 3):
        clock.set(at(first_empty + dt.timedelta(days=i), 0, 30))
        tick(bot)
    assert not [p for p in posts(bot) if "No DAU data" in p.get("text", "")]


def test_snooze_keeps_a_crossing_quiet(bot, clock, demo_warehouse_path):
    start, threshold = crossing_pattern(raw_dau(demo_warehouse_path))
    clock.set(at(start, 12))
    command(bot, f"alert dau above {threshold:.1f}")
    (item,) = items(bot)
    url = bot.slack.response_url(ANALYTICS_CHANNEL, user=USER)
    snooze = block_actions(
        Action.ALERT_SNOOZE_WEEK.value,
        json.dumps({"id": item.id, "days": 7}),
        user_id=USER,
        response_url=url,
    )
    bot.interact(snooze)
    assert "snoozed until" in text_of(responses(bot, url)[0])
    clock.set(at(start + dt.timedelta(days=1), 0, 30))
    tick(bot)
    assert posts(bot) == []


# --- two clocks -----------------------------------------------------------------------


def test_two_clocks_on_one_postgres_database_post_each_period_once(bot_pg, clock, warehouse):
    clock.set(at(dt.date(2026, 11, 16), 10))
    for text in ("subscribe dau daily at 9am", "subscribe wau daily at 9am", "alert dau above 1"):
        command(bot_pg, text)
    other = build_deps(bot_pg.settings, store=bot_pg.deps.store, warehouse=warehouse, now=clock)
    try:
        for when in [at(dt.date(2026, 11, d), h, 45) for d in (17, 18) for h in (0, 9)]:
            clock.set(when)
            barrier = threading.Barrier(2)

            def race(deps, barrier=barrier):
                barrier.wait()
                tick_subscriptions(deps)

            threads = [threading.Thread(target=race, args=(d,)) for d in (bot_pg.deps, other)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        other.work.shutdown(wait=False)
    sent = posts(bot_pg)
    keys = [json.dumps(m.get("metadata", {}).get("event_payload"), sort_keys=True) for m in sent]
    # Two subscriptions on two days, and the alert once (true both days: it holds).
    assert len(keys) == len(set(keys)) == 2 * 2 + 1


def test_subscriptions_survive_an_upgrade(tmp_path, clock):
    from bot.store import Store

    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store(url)
    store.migrate()
    from bot.subscriptions.model import Kind, Schedule

    records.create(
        store,
        clock(),
        kind=Kind.SUBSCRIPTION,
        metric="dau",
        period_text=None,
        account=None,
        channel="C0X",
        creator="U0X",
        schedule=Schedule(),
    )
    store.close()
    again = Store(url)
    again.migrate()
    assert [i.metric for i in records.list_items(again)] == ["dau"]
    again.close()


def test_databot_subscriptions_lists_all_as_json(bot, clock, capsys):
    from bot.cli import cmd_subscriptions

    clock.set(at(dt.date(2026, 11, 16), 10))
    command(bot, "subscribe dau daily at 9am")
    settings = Settings(
        _env_file=None, data_dir=bot.data_dir, database_url=str(bot.deps.store.engine.url)
    )

    class Args:
        json = True

    assert cmd_subscriptions(Args(), settings) == 0  # type: ignore[arg-type]
    out = json.loads(capsys.readouterr().out)
    (row,) = out["subscriptions"]
    assert row["job"] == "sub-1" and row["schedule"] == "daily at 09:00"


def test_databot_post_treats_a_subscription_like_any_scheduled_job(bot, clock):
    # What `databot post sub-1 [--dry-run]` runs: the job found by name, its latest period.
    from bot.features import build_jobs, find_job
    from bot.scheduling import runner
    from bot.scheduling.clock import manual_period
    from bot.scheduling.job import Post

    clock.set(at(dt.date(2026, 11, 16), 10))
    command(bot, "subscribe dau daily at 9am")
    clock.set(at(dt.date(2026, 11, 18), 12))
    job = find_job(build_jobs(bot.deps), "sub-1", bot.deps)
    assert job is not None and find_job(build_jobs(bot.deps), "sub-99", bot.deps) is None
    period = manual_period(bot.deps, job, None)
    assert period == "2026-11-18"
    preview = runner.preview(bot.deps, job, period)
    assert isinstance(preview, Post) and "Tue Nov 17, 2026" in text_of(preview.blocks)
    assert posts(bot) == []  # a dry run posts nothing
    record = runner.run_period(bot.deps, job, period, manual=True)
    assert record is not None and record.status == "posted"
    assert runner.run_period(bot.deps, job, period, manual=True) is None  # never twice
    tick(bot)
    assert len(posts(bot)) == 1


def test_a_delivery_slack_refuses_is_reported_to_the_owner_and_one_whose_answer_is_lost_posts_once(
    make_bot, sqlite_store, clock
):
    with make_bot(sqlite_store, owner_channel="C0OWNER") as bot:
        clock.set(at(dt.date(2026, 11, 16), 10))
        command(bot, "subscribe dau daily at 9am")
        bot.slack.fail_next("chat.postMessage", "is_archived")
        clock.set(at(dt.date(2026, 11, 17), 9))
        tick(bot)
        assert posts(bot) == []
        owner = [m["text"] for m in bot.slack.messages("C0OWNER")]
        assert len(owner) == 1 and "sub-1" in owner[0] and "is_archived" in owner[0]

        bot.slack.lose_answer_next("chat.postMessage", "500")
        clock.set(at(dt.date(2026, 11, 18), 9))
        tick(bot)
        clock.advance(minutes=20)  # past the run's lease: the sweep looks before posting
        tick(bot)
        tick(bot)
        assert len(posts(bot)) == 1


def test_an_operator_can_pause_and_delete_anyones_item_from_the_cli(bot, clock, tmp_path):
    # In Slack only Bob may change Bob's alert; if he has left, the operator can.
    from tests.test_cli import run_cli

    clock.set(at(dt.date(2026, 11, 16), 10))
    command(bot, "alert wau below 1", user="U0BOB")
    (alert,) = items(bot)
    env = {"DATA_DIR": str(bot.data_dir), "DATABASE_URL": str(bot.deps.store.engine.url)}

    paused = run_cli("subscriptions", "--pause", alert.job_name, env=env, cwd=tmp_path)
    assert paused.returncode == 0, paused.stderr
    assert f"Paused {alert.job_name}" in paused.stdout
    (now,) = items(bot)
    assert now.status == "paused" and "operator" in (now.status_reason or "")

    deleted = run_cli("subscriptions", "--delete", alert.job_name, env=env, cwd=tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert items(bot) == []

    missing = run_cli("subscriptions", "--delete", "sub-99", env=env, cwd=tmp_path)
    assert missing.returncode == 2
    assert "No subscription or alert called 'sub-99'" in missing.stderr
    assert "Traceback" not in missing.stderr
