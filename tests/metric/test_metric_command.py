"""/metric through the real app: correctly signed requests over HTTP, answers captured at
the loopback response_url, a small fake of our own Warehouse protocol behind it."""

import datetime as dt
import json
import re
import threading
import time

import pytest

from bot.errors import WarehouseTimeout
from bot.ids import Action
from bot.warehouse import DuckDBWarehouse
from sandbox.harness import BotHarness
from sandbox.slack_requests import block_actions
from tests.support.cody_warehouse import RawSSC

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)  # Mon Nov 23, 10:00 PT
REVENUE = "C0FINANCE"
GENERAL = "C0GENERAL"


class FakeWarehouse:
    def __init__(self, delay=0.0, error=None):
        self.delay = delay
        self.error = error
        self.queries = 0
        self._lock = threading.Lock()

    def query(self, sql, params, labels=None):
        if "salesforce_data.accounts" in sql:
            return [{"account_name": "Acme Corp"}, {"account_name": "Globex"}]
        with self._lock:
            self.queries += 1
        if self.delay:
            time.sleep(self.delay)
        if self.error:
            raise self.error
        if "start_date" in params:
            first, last = params["start_date"], params["end_date"]
        else:
            first = (params["start_ts"] + dt.timedelta(hours=12)).date()
            last = (params["end_ts"] - dt.timedelta(hours=12)).date()
        days = (last - first).days + 1
        if "bucket_days" in params:
            return [
                {"bucket": b, "value": 100 + b, "data_through": NOW}
                for b in range(days // params["bucket_days"])
            ]
        key = "date" if "@price_usd" in sql else "day"
        return [
            {
                key: first + dt.timedelta(days=i),
                "value": 10 + i,
                "active_subscribers": 200 + i,
                "mrr": 9 * (200 + i),
                "arr": 108 * (200 + i),
                "data_through": NOW,
            }
            for i in range(days)
        ]

    def close(self):
        pass


@pytest.fixture
def warehouse():
    return FakeWarehouse()


@pytest.fixture
def bot(tmp_path, warehouse):
    with BotHarness(
        data_dir=tmp_path,
        warehouse=warehouse,
        now=lambda: NOW,
        revenue_channels=[REVENUE],
        revenue_users=["U0CFO"],
        metric_still_working_seconds=5,
    ) as harness:
        yield harness


def responses(bot, url, count=1, timeout=10):
    """The first `count` payloads posted to `url` (Bolt runs the listener after the ack
    returns, so wait for what arrives rather than for idle workers)."""
    deadline = time.monotonic() + timeout
    while len(bot.slack.responses(url)) < count:
        assert time.monotonic() < deadline, f"expected {count} responses at {url}"
        time.sleep(0.01)
    bot.wait_idle()
    return [r.payload for r in bot.slack.responses(url)]


def reply(bot, url):
    return responses(bot, url)[0]


def acked(bot, text, **where):
    """Send `/metric text`; the reply comes back in the ack itself (no warehouse needed),
    and nothing follows at the response URL."""
    response, url = bot.slash("/metric", text, **where)
    assert response.status == 200
    payload = response.json()
    assert payload and payload.get("response_type") == "ephemeral"
    bot.wait_idle()
    assert bot.slack.responses(url) == []
    return payload


def miss(bot, text, **where):
    """The reply to a `/metric` text that names no metric: it may be an account's name, so
    it comes in the ack when the account list is cached, else by the response URL after
    the list is read. Either way it is one ephemeral message."""
    response, url = bot.slash("/metric", text, **where)
    assert response.status == 200
    if response.text:
        payload = response.json()
        bot.wait_idle()
        assert bot.slack.responses(url) == []
        return payload
    return reply(bot, url)


def all_text(payload):
    return json.dumps(payload, ensure_ascii=False)


def click_share(bot, payload, *, user, channel, expect=2):
    url = bot.slack.response_url(channel)
    action = block_actions(
        Action.METRIC_SHARE.value,
        message=payload,
        channel_id=channel,
        user_id=user,
        is_ephemeral=True,
        response_url=url,
    )
    assert bot.interact(action).status == 200
    return responses(bot, url, count=expect)


def test_metric_command_acks_at_once_and_answers_ephemerally_by_response_url(bot):
    started = time.perf_counter()
    response, url = bot.slash("/metric", "dau 7d")
    assert response.status == 200
    assert time.perf_counter() - started < 2
    payload = reply(bot, url)
    assert payload.get("response_type", "ephemeral") == "ephemeral"
    text = all_text(payload)
    assert "DAU" in text and "Nov 16 – Nov 22, 2026" in text
    assert "vs Nov 9 – Nov 15, 2026" in text
    assert "Data through Nov 23, 10:00 PT" in text
    assert "looker.example.com" in text
    assert "metric_share" in text


def test_metric_help_lists_the_catalog(bot):
    text = all_text(acked(bot, ""))
    assert "`dau`" in text and "`mrr`" in text and "Usage" in text


def test_metric_command_suggests_close_names_for_unknown_metric_and_offers_a_request(bot):
    payload = acked(bot, "mua last month")
    assert "`mau`" in all_text(payload)
    button = payload["blocks"][0]["accessory"]
    assert button["action_id"] == "metric_open_request"
    prefill = json.loads(button["value"])
    assert "mua last month" in prefill["title"] and "mua last month" in prefill["problem"]


def test_bad_period_lists_the_accepted_forms(bot):
    text = all_text(acked(bot, "dau fortnight"))
    assert "last month" in text and "2026-10-01..2026-10-31" in text


def test_unknown_account_says_so_and_suggests(bot):
    _, url = bot.slash("/metric", "mau for Globx")
    text = all_text(reply(bot, url))
    assert "No account matches" in text and "Globex" in text


def test_mentions_in_the_command_are_never_echoed_live(bot):
    text = all_text(miss(bot, "<!channel> <@U0BOB> dau"))
    assert "<!channel>" not in text and "<@U0BOB>" not in text
    assert "&lt;!channel&gt;" in text


def test_revenue_metric_is_refused_outside_revenue_channels(bot, warehouse):
    text = all_text(acked(bot, "mrr", channel=GENERAL))
    assert "revenue" in text and f"<#{REVENUE}>" in text
    assert "$" not in text
    assert warehouse.queries == 0


def test_revenue_metric_is_answered_in_a_revenue_channel_and_to_revenue_users(bot):
    _, url = bot.slash("/metric", "mrr", channel=REVENUE)
    assert f"${9 * 213:,}" in all_text(reply(bot, url))
    _, url = bot.slash("/metric", "arr", user="U0CFO", channel=GENERAL)
    assert f"${108 * 213:,}" in all_text(reply(bot, url))


def test_share_posts_the_same_answer_publicly_attributed_to_the_asker(bot):
    _, url = bot.slash("/metric", "searches 30d", user="U0ALICE", channel=GENERAL)
    answer = reply(bot, url)
    posted = click_share(bot, answer, user="U0ALICE", channel=GENERAL)
    public = [p for p in posted if p.get("response_type") == "in_channel"]
    assert len(public) == 1
    assert "<@U0ALICE>" in all_text(public[0])
    headline = answer["blocks"][0]["text"]["text"]
    assert public[0]["blocks"][0]["text"]["text"] == headline
    assert "metric_share" not in all_text(public[0])


def test_share_never_leaks_revenue_into_a_channel_that_may_not_see_it(bot):
    _, url = bot.slash("/metric", "mrr", user="U0CFO", channel=GENERAL)
    answer = reply(bot, url)
    assert "$" in all_text(answer)
    posted = click_share(bot, answer, user="U0CFO", channel=GENERAL, expect=1)
    assert not [p for p in posted if p.get("response_type") == "in_channel"]
    assert "won't post it in this channel" in all_text(posted)
    assert "$" not in all_text(posted)


def test_slow_lookup_posts_still_working_then_the_answer(tmp_path):
    warehouse = FakeWarehouse(delay=0.6)
    with BotHarness(
        data_dir=tmp_path, warehouse=warehouse, now=lambda: NOW, metric_still_working_seconds=0.1
    ) as bot:
        started = time.perf_counter()
        response, url = bot.slash("/metric", "wau")
        assert response.status == 200 and time.perf_counter() - started < 0.5
        payloads = responses(bot, url, count=2)
    assert len(payloads) == 2
    assert "Still working" in payloads[0]["text"]
    assert "WAU" in all_text(payloads[1])


def test_query_timeout_tells_the_user_what_happened(tmp_path):
    warehouse = FakeWarehouse(error=WarehouseTimeout("job timed out"))
    with BotHarness(data_dir=tmp_path, warehouse=warehouse, now=lambda: NOW) as bot:
        _, url = bot.slash("/metric", "mau")
        text = all_text(reply(bot, url))
    assert "cancelled" in text and "once" in text and "Traceback" not in text


def test_identical_lookups_are_answered_from_one_query(bot, warehouse):
    urls = [bot.slash("/metric", "WAU last week")[1] for _ in range(5)]
    for url in urls:
        assert "WAU" in all_text(reply(bot, url))
    assert warehouse.queries == 1


def test_request_button_opens_the_intake_modal_prefilled_with_what_was_asked(bot):
    offer = miss(bot, "churn by plan last month")
    action = block_actions(
        Action.METRIC_OPEN_REQUEST.value,
        message=offer,
        channel_id="C0ANALYTICS",
        user_id="U0ALICE",
        is_ephemeral=True,
        trigger_id=bot.slack.issue_trigger_id(),
        response_url=bot.slack.response_url("C0ANALYTICS"),
    )
    assert bot.interact(action).status == 200
    view = bot.slack.wait_for("views.open")[0].args["view"]
    if isinstance(view, str):
        view = json.loads(view)
    initial = [
        b["element"].get("initial_value", "") for b in view["blocks"] if b["type"] == "input"
    ]
    assert any("churn by plan last month" in v for v in initial)


def test_help_comes_back_in_the_ack_even_while_every_worker_is_busy(tmp_path):
    warehouse = FakeWarehouse(delay=1.5)
    with BotHarness(
        data_dir=tmp_path, warehouse=warehouse, now=lambda: NOW, worker_threads=1
    ) as bot:
        bot.slash("/metric", "wau")
        started = time.perf_counter()
        response, _ = bot.slash("/metric", "help")
        elapsed = time.perf_counter() - started
        assert "`dau`" in response.text and elapsed < 1.0


# --- Cody Pro on the demo warehouse, checked against the raw SSC rows ----------------------

YESTERDAY = dt.date(2026, 11, 22)  # /metric's default period at NOW (Mon Nov 23, 10:00 PT)
PRICE = 10.0  # not the $9 default: the price must come from settings.cody_price_usd


class CountingWarehouse:
    """The demo DuckDB warehouse, counting the queries that reach it."""

    def __init__(self, path):
        self.inner = DuckDBWarehouse(path, timeout_s=60)
        self.queries = 0

    def query(self, sql, params=None, labels=None):
        self.queries += 1
        return self.inner.query(sql, params, labels=labels)

    def close(self):
        self.inner.close()


@pytest.fixture
def cody_bot(tmp_path, demo_warehouse_path):
    warehouse = CountingWarehouse(demo_warehouse_path)
    with BotHarness(
        data_dir=tmp_path,
        warehouse=warehouse,
        now=lambda: NOW,
        revenue_channels=[REVENUE],
        revenue_users=["U0CFO"],
        cody_price_usd=PRICE,
    ) as harness:
        harness.demo = warehouse
        yield harness
    warehouse.close()


def number(text):
    """`1,234` / `$12,340` as a number."""
    return float(text.replace("$", "").replace(",", ""))


def headline_value(payload):
    text = payload["blocks"][0]["text"]["text"]
    return number(re.search(r"\n\*([^*]+)\*", text).group(1))


def field_values(payload):
    """{label: value} of the answer's fields (`*label*\nvalue  change`)."""
    out = {}
    for block in payload["blocks"]:
        for field in block.get("fields") or []:
            label, rest = field["text"].split("\n", 1)
            out[label.strip("*")] = number(rest.split()[0])
    return out


def test_mrr_uses_the_configured_seat_price(cody_bot, demo_warehouse_path):
    _, url = cody_bot.slash("/metric", "mrr", channel=REVENUE)
    payload = reply(cody_bot, url)

    active = len(RawSSC(demo_warehouse_path).active_users(YESTERDAY))
    assert active > 0
    assert headline_value(payload) == active * PRICE
    assert "Nov 22, 2026" in all_text(payload)


def test_cody_pro_summary_shows_every_daily_field_in_a_revenue_channel(
    cody_bot, demo_warehouse_path
):
    _, url = cody_bot.slash("/metric", "cody_pro", channel=REVENUE)
    payload = reply(cody_bot, url)

    expected = RawSSC(demo_warehouse_path).fields(YESTERDAY, price=PRICE)
    assert expected["new_subscribers"] or expected["retained_subscribers"]
    assert headline_value(payload) == expected["active_subscribers"]
    assert field_values(payload) == {
        "New subscribers": expected["new_subscribers"],
        "Retained subscribers": expected["retained_subscribers"],
        "Canceled subscribers": expected["canceled_subscribers"],
        "Subscribers billed (new + retained)": expected["daily_subscribers"],
        "Revenue billed": expected["daily_revenue"],
        "Revenue added (new)": expected["daily_revenue_added"],
        "Revenue retained": expected["daily_revenue_retained"],
        "MRR": expected["mrr"],
        "ARR": expected["arr"],
    }
    assert "Nov 22, 2026" in all_text(payload)


def test_cody_pro_summary_is_refused_outside_revenue_channels(cody_bot):
    text = all_text(acked(cody_bot, "cody pro", channel=GENERAL))
    assert "revenue" in text and f"<#{REVENUE}>" in text
    assert "$" not in text
    assert cody_bot.demo.queries == 0


def test_every_answer_from_the_demo_warehouse_says_demo_data(bot):
    _, url = bot.slash("/metric", "dau 7d")
    payload = reply(bot, url)
    contexts = [b for b in payload["blocks"] if b["type"] == "context"]
    assert any("*demo data*" in e["text"] for b in contexts for e in b["elements"])


def test_a_lookup_acked_while_the_process_stops_is_answered(tmp_path):
    # The worker pool takes no more work once a stop has begun (Socket Mode may still
    # hand a listener a request): the lookup then runs where it was acked.
    with BotHarness(data_dir=tmp_path, warehouse=FakeWarehouse(), now=lambda: NOW) as bot:
        bot.deps.work.shutdown(wait=True)
        response, url = bot.slash("/metric", "dau 7d")
        assert response.status == 200
        (answer,) = bot.slack.wait_for_responses(1, timeout=10)
        assert "DAU" in json.dumps(answer.payload)
