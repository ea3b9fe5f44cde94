"""The Slack layer's registration: every feature listener reaches Bolt, most frequent kinds
first (Bolt tries listeners in order), and a decorator the ordering does not know fails
loudly instead of dropping a listener."""

from __future__ import annotations

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
