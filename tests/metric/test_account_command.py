"""The account card, `by DIMENSION` and the default-period wording through the real app:
signed `/metric` requests over HTTP, answers at the loopback response_url, the demo
warehouse behind it; numbers checked against plain Python over the raw rows."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from bot.metric.periods import Period
from bot.warehouse import DuckDBWarehouse
from sandbox.harness import BotHarness
from tests.metric.test_handbook_metrics import (
    busiest_event_account,
    latest_pings,
    raw,  # noqa: F401 - the module-scoped raw rows fixture
    summed,
)
from tests.metric.test_metric_values import AS_OF

D = dt.date
CARD_PERIOD = Period(D(2026, 10, 24), D(2026, 11, 22))


@pytest.fixture
def bot(tmp_path, demo_warehouse_path):
    warehouse = DuckDBWarehouse(demo_warehouse_path, timeout_s=60)
    with BotHarness(data_dir=tmp_path, warehouse=warehouse, now=lambda: AS_OF) as harness:
        yield harness
    warehouse.close()


def answer(bot, text):
    """The one ephemeral reply to `/metric text`, in the ack or by the response URL."""
    response, url = bot.slash("/metric", text)
    assert response.status == 200
    if response.text:
        return response.json()
    deadline = time.monotonic() + 30
    while not bot.slack.responses(url):
        assert time.monotonic() < deadline, f"no answer to /metric {text}"
        time.sleep(0.01)
    bot.wait_idle()
    return bot.slack.responses(url)[-1].payload


def text_of(payload):
    return json.dumps(payload, ensure_ascii=False)


def account_of(rows):
    return busiest_event_account(rows, Period(D(2026, 10, 1), D(2026, 10, 31)))


def test_metric_account_answers_one_card(bot, raw):  # noqa: F811
    account = account_of(raw)
    payload = answer(bot, f"account {account.upper()}")
    text = text_of(payload)
    assert f"Account overview: {account}" in payload["text"]
    mau = summed("mau")(raw, CARD_PERIOD, account)
    assert f"Monthly users (pings)*\\n{mau:,}" in text
    for label in ("DAU/MAU", "Seats", "Version", "Deployment", "Hosting", "Telemetry"):
        assert f"*{label}" in text
    for label in ("Code hosts", "Repos", "Instances", "Cody usage"):
        assert f"*{label}*" in text
    repos = sum(p["repos"] for p in latest_pings(raw, CARD_PERIOD, account).values() if p["repos"])
    assert f"{repos:,}" in text


def test_metric_with_an_account_name_answers_the_card(bot, raw):  # noqa: F811
    account = account_of(raw)
    payload = answer(bot, account)
    assert payload["text"].startswith(f"Account overview: {account}")
    # Once the account list is known, a name that is neither answers as before.
    payload = answer(bot, "churn by plan")
    assert "I don't know a metric" in text_of(payload) and "metric_open_request" in text_of(payload)


def test_near_miss_account_gets_did_you_mean(bot, raw):  # noqa: F811
    account = account_of(raw)
    typo = account[:2] + account[3:]
    text = text_of(answer(bot, f"account {typo}"))
    assert "Did you mean" in text and account in text


def test_by_dimension_is_answered_as_a_breakdown(bot, raw):  # noqa: F811
    payload = answer(bot, "monthly_users 2026-10 by hosting")
    text = text_of(payload)
    assert "Monthly users (pings)* by hosting type" in text
    rows = summed("mau")(raw, Period(D(2026, 10, 1), D(2026, 10, 31)), by="hosting")
    for label, value in rows.items():
        assert label in text and f"{value:,}" in text


def test_unknown_dimension_lists_the_supported_ones(bot):
    text = text_of(answer(bot, "searches 30d by colour"))
    assert "`by deployment`" in text and "`by hosting`" in text and "`by account`" in text
    text = text_of(answer(bot, "dau 7d by deployment"))
    assert "has no breakdowns" in text and "`searches`" in text


def test_a_default_period_says_it_is_the_default(bot):
    payload = answer(bot, "wau")
    assert "last week, the default for WAU" in text_of(payload)
    payload = answer(bot, "searches")
    assert "the last 30 days, the default for Searches" in text_of(payload)
