"""The Slack layer's registration: every feature listener reaches Bolt, most frequent kinds
first (Bolt tries listeners in order), and a decorator the ordering does not know fails
loudly instead of dropping a listener."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from handlers import KINDS, _ByKind


def test_listeners_are_made_on_the_app_by_kind_in_call_order():
    made: list[tuple[str, str]] = []

    class App:
        def __getattr__(self, kind):
            return lambda *args, **kwargs: lambda listener: made.append((kind, listener))

    by_kind = _ByKind()
    by_kind.action("share")("share-button")
    by_kind.command("/metric", matchers=["subscriptions"])("subscribe-command")
    by_kind.event("message")("thread-reply")
    by_kind.command("/metric")("metric-command")
    by_kind.view("request")("submission")
    by_kind.replay(App())  # type: ignore[arg-type]
    assert made == [
        ("command", "subscribe-command"),  # before /metric itself, as registered
        ("command", "metric-command"),
        ("event", "thread-reply"),
        ("action", "share-button"),
        ("view", "submission"),
    ]
    assert KINDS[0] == "command"


def test_a_decorator_the_ordering_does_not_know_is_refused():
    with pytest.raises(AttributeError, match="add it to KINDS"):
        _ByKind().options("picker")


def test_the_bot_registers_every_listener_with_commands_first(make_bot, sqlite_store):
    with make_bot(sqlite_store) as bot:
        names = [listener.ack_function.__name__ for listener in bot.app._listeners]
    assert names[0] == "handle_metric_command"  # `/metric subscribe ...` is handed over
    assert len(names) == len(set(names)) + 1  # the two snooze buttons share a handler
    assert names.index("handle_thread_reply") < names.index("handle_metric_share")


def test_a_lookup_is_acked_while_every_listener_thread_waits_on_slack(make_bot, sqlite_store):
    # Two /data-request modals whose views.open Slack answers slowly hold both listener
    # threads; /metric listeners run in the request's own thread, so a lookup is still
    # acked (and answered) meanwhile instead of queueing behind them.
    with make_bot(sqlite_store, listener_threads=2) as bot:
        bot.slack.delay_next("views.open", 2.5, times=2)  # within the trigger's 3 s
        with ThreadPoolExecutor(2) as pool:
            opening = [pool.submit(bot.slash, "/data-request") for _ in range(2)]
            while bot.listeners.pending() < 2:
                time.sleep(0.01)  # both listeners have started
            response, url = bot.slash("/metric", "searches")
            assert response.status == 200
            assert bot.listeners.pending() == 2  # still in views.open
            bot.deps.work.wait_idle(10)
            assert bot.listeners.pending() == 2
            (answer,) = bot.slack.responses(url)
            assert "Searches" in answer.payload["text"]
            assert all(f.result()[0].status == 200 for f in opening)
        bot.listeners.wait_idle(10)
        assert len(bot.slack.views()) == 2  # the modals opened too
