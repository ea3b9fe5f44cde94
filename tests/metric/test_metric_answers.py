"""What a /metric answer looks like in Slack: the native chart and table, the fallback text,
the comparisons, `/metric help NAME`, the shared picture and `@databot` mentions, all
through the real app with signed requests; the stand-in Slack rejects any block Slack
would (so a chart over Slack's limits fails here)."""

import datetime as dt
import json
import time

import pytest

from bot.ids import Action
from bot.metric.catalog import load_catalog
from sandbox.harness import ANALYTICS_CHANNEL, BotHarness
from sandbox.slack_requests import block_actions, event_callback

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)  # Mon Nov 23, 10:00 PT
TODAY = dt.date(2026, 11, 23)
REVENUE = "C0FINANCE"
GENERAL = "C0GENERAL"
BOT_USER = "UDATABOT"


def value_on(day: dt.date) -> int:
    """The fake warehouse's number for a Pacific day: varies by date, never 0."""
    return 100 + (day.toordinal() * 37) % 211


DEPLOYMENTS = {"kubernetes": lambda v: v, "docker-compose": lambda v: v // 3}


class DatedWarehouse:
    """Our Warehouse protocol over numbers that depend only on the date asked, so every
    expectation below is computed from `value_on` alone."""

    def query(self, sql, params, labels=None):
        if "salesforce_data.accounts" in sql:
            return [{"account_name": "Acme Corp"}]
        if "start_date" in params:
            first, last = params["start_date"], params["end_date"]
        else:
            first = (params["start_ts"] + dt.timedelta(hours=12)).date()
            last = (params["end_ts"] - dt.timedelta(hours=12)).date()
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        if "bucket_days" in params:
            n = len(days) // params["bucket_days"]
            if "deployment_type" in sql:
                return [
                    {
                        "bucket": b,
                        "deployment_type": kind,
                        "value": share(value_on(last - dt.timedelta(days=b))),
                        "data_through": NOW,
                    }
                    for b in range(n)
                    for kind, share in DEPLOYMENTS.items()
                ]
            return [
                {"bucket": b, "value": value_on(last - dt.timedelta(days=b)), "data_through": NOW}
                for b in range(n)
            ]
        key = "date" if "@price_usd" in sql else "day"
        return [
            {
                key: d,
                "value": value_on(d),
                "active_subscribers": value_on(d),
                "mrr": 9 * value_on(d),
                "arr": 108 * value_on(d),
                "data_through": NOW,
            }
            for d in days
        ]

    def close(self):
        pass


@pytest.fixture
def bot(tmp_path):
    with BotHarness(
        data_dir=tmp_path,
        warehouse=DatedWarehouse(),
        now=lambda: NOW,
        revenue_channels=[REVENUE],
        revenue_users=["U0CFO"],
    ) as harness:
        for channel in (REVENUE, GENERAL):
            harness.slack.add_channel(channel, channel.lower())
        yield harness
        assert harness.slack.violations == [], "Slack would have rejected a payload"


def answer(bot, text, **where):
    _, url = bot.slash("/metric", text, **where)
    deadline = time.monotonic() + 10
    while not bot.slack.responses(url):
        assert time.monotonic() < deadline, "no answer"
        time.sleep(0.01)
    bot.wait_idle()
    return bot.slack.responses(url)[0].payload


def change(value, other):
    pct = 100 * (value - other) / other
    return f"{'▲' if pct > 0 else '▼'} {abs(pct):.1f}%"


def of_type(payload, kind):
    return [b for b in payload.get("blocks", []) if b["type"] == kind]


# --------------------------------------------------------------------------- the picture


def test_a_trend_answer_carries_a_native_line_chart_within_slacks_limits(bot):
    payload = answer(bot, "searches 30d")
    (chart,) = of_type(payload, "data_visualization")
    assert chart["chart"]["type"] == "line"
    assert len(chart["title"]) <= 50
    categories = chart["chart"]["axis_config"]["categories"]
    assert 1 <= len(categories) <= 20
    # The last 20 days of the trend, labelled with their dates and the warehouse's numbers.
    days = [TODAY - dt.timedelta(days=n) for n in range(20, 0, -1)]
    assert categories == [f"{d:%b} {d.day}" for d in days]
    (series,) = chart["chart"]["series"]
    assert [p["value"] for p in series["data"]] == [value_on(d) for d in days]
    # The sparkline stays, as text, for clients that draw no chart.
    assert any(
        "trend, daily" in json.dumps(b, ensure_ascii=False) for b in of_type(payload, "context")
    )


def test_the_fallback_text_states_value_period_and_change(bot):
    payload = answer(bot, "searches 7d")
    days = [TODAY - dt.timedelta(days=n) for n in range(7, 0, -1)]
    before = [d - dt.timedelta(days=7) for d in days]
    total, previous = sum(map(value_on, days)), sum(map(value_on, before))
    text = payload["text"]
    assert f"{total:,}" in text
    assert "Nov 16 – Nov 22, 2026" in text
    assert change(total, previous) in text and "vs Nov 9 – Nov 15, 2026" in text


def test_one_day_is_compared_with_the_day_before_and_the_same_weekday_a_week_earlier(bot):
    payload = answer(bot, "searches yesterday")
    sunday = TODAY - dt.timedelta(days=1)
    value = value_on(sunday)
    saturday, last_sunday = (
        value_on(sunday - dt.timedelta(days=1)),
        value_on(sunday - dt.timedelta(days=7)),
    )
    headline = payload["blocks"][0]["text"]["text"]
    assert f"{change(value, saturday)} vs Sat ({saturday:,})" in headline
    assert f"{change(value, last_sunday)} vs last Sun ({last_sunday:,})" in headline
    assert "vs last Sun" in payload["text"]


def test_a_calendar_month_is_compared_with_the_calendar_month_before(bot):
    payload = answer(bot, "searches last month")
    october = [dt.date(2026, 10, 1) + dt.timedelta(days=i) for i in range(31)]
    september = [dt.date(2026, 9, 1) + dt.timedelta(days=i) for i in range(30)]
    total, previous = sum(map(value_on, october)), sum(map(value_on, september))
    headline = payload["blocks"][0]["text"]["text"]
    assert f"*{total:,}*" in headline
    assert f"{change(total, previous)} vs Sep 1 – Sep 30, 2026 ({previous:,})" in headline


def test_a_breakdown_is_a_table_block_and_a_bar_chart(bot):
    payload = answer(bot, "instances_by_deployment")
    sunday = TODAY - dt.timedelta(days=1)
    expected = {k: f(value_on(sunday)) for k, f in DEPLOYMENTS.items()}
    (table,) = of_type(payload, "table")
    header, *rows = [[c["text"] for c in row] for row in table["rows"]]
    assert header[0] == "#"
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("1", "kubernetes", f"{expected['kubernetes']:,}"),
        ("2", "docker-compose", f"{expected['docker-compose']:,}"),
    ]
    bars = [b for b in of_type(payload, "data_visualization") if b["chart"]["type"] == "bar"]
    (bar,) = bars
    assert bar["chart"]["axis_config"]["categories"] == ["kubernetes", "docker-compose"]
    this = bar["chart"]["series"][0]
    assert [p["value"] for p in this["data"]] == list(expected.values())
    assert not any("```" in json.dumps(b) for b in payload["blocks"])  # no code-block table


# --------------------------------------------------------------------------- share


def test_share_posts_the_same_answer_with_a_png_chart_and_its_alt_text(bot):
    payload = answer(bot, "searches 30d")
    url = bot.slack.response_url(ANALYTICS_CHANNEL)
    action = block_actions(
        Action.METRIC_SHARE.value,
        message=payload,
        channel_id=ANALYTICS_CHANNEL,
        is_ephemeral=True,
        response_url=url,
    )
    assert bot.interact(action).status == 200
    deadline = time.monotonic() + 15
    while not bot.slack.files():
        assert time.monotonic() < deadline, "no chart uploaded"
        time.sleep(0.02)
    bot.wait_idle()
    shared = [
        r.payload
        for r in bot.slack.responses(url)
        if r.payload.get("response_type") == "in_channel"
    ]
    assert len(shared) == 1
    assert of_type(shared[0], "data_visualization")
    (png,) = bot.slack.files()
    assert png.content.startswith(b"\x89PNG")
    assert ANALYTICS_CHANNEL in png.channels
    lowest = min(value_on(TODAY - dt.timedelta(days=n)) for n in range(1, 31))
    assert png.alt_txt and "Searches" in png.alt_txt and f"lowest {lowest:,}" in png.alt_txt


# --------------------------------------------------------------------------- help NAME


def test_help_name_explains_one_metric(bot):
    response, _ = bot.slash("/metric", "help dau")
    text = json.dumps(response.json(), ensure_ascii=False)
    definition = load_catalog().get("dau").description.split(";")[0]
    for fact in (
        definition,
        "dotcom_events.events",  # tables
        "sourcegraph_analytics.update_checks",
        "`yesterday`",  # default period
        "everyone",  # who may see it
        "@analytics-team",  # owner
        "looker.example.com/dashboards/usage-dau",
    ):
        assert fact in text, fact


def test_help_name_of_a_revenue_metric_says_where_it_is_answered(bot):
    response, _ = bot.slash("/metric", "help mrr")
    text = json.dumps(response.json(), ensure_ascii=False)
    assert "revenue" in text and f"<#{REVENUE}>" in text and "ssc." in text


def test_help_with_a_mistyped_name_suggests_the_metric(bot):
    response, _ = bot.slash("/metric", "help dua")
    assert "`dau`" in json.dumps(response.json())


def test_a_mistyped_period_gets_one_suggestion(bot):
    response, _ = bot.slash("/metric", "dau 7dyas")
    text = response.json()["text"]
    assert "Did you mean `7d`?" in text and "2026-10-01..2026-10-31" not in text


# --------------------------------------------------------------------------- @databot


def mention(
    bot,
    text,
    *,
    channel=ANALYTICS_CHANNEL,
    user="U0ASKER",
    thread_ts=None,
    headers=None,
    event_id=None,
):
    ts = f"{NOW.timestamp():.6f}"
    event = {
        "type": "app_mention",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    envelope = event_callback(event, event_id=event_id)
    body = json.dumps(envelope)
    response = bot.post_slack(body, content_type="application/json", headers=headers)
    return response, envelope, body


def replies(bot, channel, thread_ts, count=1):
    """The bot's text replies in the thread (not the parent, not the uploaded chart)."""

    def found():
        return [
            m
            for m in bot.slack.messages(channel)
            if m.get("thread_ts") == thread_ts and m.get("bot_id") and "files" not in m
        ]

    deadline = time.monotonic() + 15
    while len(found()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    bot.wait_idle()
    return found()


def test_a_mention_is_answered_in_its_thread_once_even_when_slack_retries(bot):
    response, envelope, body = mention(bot, f"<@{BOT_USER}> searches 7d")
    assert response.status == 200
    ts = envelope["event"]["ts"]
    (reply,) = replies(bot, ANALYTICS_CHANNEL, ts)
    # Slack got no 200 in time (say) and delivers the same event again.
    retry = bot.post_slack(
        body,
        content_type="application/json",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert retry.status == 200
    bot.wait_idle()
    assert len(replies(bot, ANALYTICS_CHANNEL, ts)) == 1
    days = [TODAY - dt.timedelta(days=n) for n in range(7, 0, -1)]
    assert f"{sum(map(value_on, days)):,}" in reply["text"]
    assert [b for b in reply["blocks"] if b["type"] == "data_visualization"]
    assert "Asked by <@U0ASKER>" in json.dumps(reply["blocks"])
    assert "metric_share" not in json.dumps(reply["blocks"])  # it is public already
    (png,) = bot.slack.files()
    assert png.thread_ts == ts and png.alt_txt


def test_a_mention_in_a_thread_answers_in_that_thread(bot):
    parent = bot.slack.seed_thread(ANALYTICS_CHANNEL, ["how are searches doing?"])
    _, envelope, _ = mention(bot, f"<@{BOT_USER}> searches last week", thread_ts=parent)
    (reply,) = replies(bot, ANALYTICS_CHANNEL, parent)
    assert "Nov 16 – Nov 22, 2026" in reply["text"]


def test_a_mention_never_posts_revenue_where_the_channel_may_not_see_it(bot):
    # The asker may see revenue, but everyone in #general would.
    _, envelope, _ = mention(bot, f"<@{BOT_USER}> mrr", channel=GENERAL, user="U0CFO")
    (reply,) = replies(bot, GENERAL, envelope["event"]["ts"])
    assert "revenue data" in reply["text"] and f"<#{REVENUE}>" in reply["text"]
    assert "$" not in reply["text"]
    _, envelope, _ = mention(bot, f"<@{BOT_USER}> mrr", channel=REVENUE, user="U0SOMEONE")
    (reply,) = replies(bot, REVENUE, envelope["event"]["ts"])
    yesterday = TODAY - dt.timedelta(days=1)
    assert f"${9 * value_on(yesterday):,}" in reply["text"]


def test_a_mention_with_an_unknown_metric_offers_a_request_in_the_thread(bot):
    _, envelope, _ = mention(bot, f"<@{BOT_USER}> churn rate 7d")
    (reply,) = replies(bot, ANALYTICS_CHANNEL, envelope["event"]["ts"])
    assert "churn" in reply["text"]
    assert "metric_open_request" in json.dumps(reply["blocks"])
