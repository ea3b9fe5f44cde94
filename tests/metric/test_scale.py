"""Scale (issue 15): a lookup costs what its answer needs. Through the real app (signed
/metric requests, answers at the stand-in Slack's response_url) on the demo warehouse, the
BigQuery emulator behind a pricing proxy, and PostgreSQL state shared by two apps."""

from __future__ import annotations

import json
import time

from bot.warehouse import _translate


def responses(bot, url, count=1, timeout=30):
    deadline = time.monotonic() + timeout
    while len(bot.slack.responses(url)) < count:
        assert time.monotonic() < deadline, f"expected {count} responses at {url}"
        time.sleep(0.01)
    bot.wait_idle()
    return [r.payload for r in bot.slack.responses(url)]


def all_text(payload) -> str:
    return json.dumps(payload, ensure_ascii=False)


# --------------------------------------------------------------------- translate once


def test_catalog_sql_is_translated_at_load_and_never_per_lookup(make_bot, sqlite_store):
    _translate.cache_clear()
    with make_bot(sqlite_store) as bot:
        _, url = bot.slash("/metric", "help")
        bot.wait_idle()
        loaded = _translate.cache_info()
        # Every query the catalog can send was translated when the service was built.
        assert loaded.currsize == len(service(bot).catalog_queries())
        for text in ("dau 7d", "wau", "mau last month", "dau 2026-11-01"):
            _, url = bot.slash("/metric", text)
            assert "metric_share" in all_text(responses(bot, url)[0])  # an answer
        after = _translate.cache_info()
    assert after.misses == loaded.misses
    assert after.hits > loaded.hits


def service(bot):
    from bot.metric.lookup import metric_service

    return metric_service(bot.deps)
