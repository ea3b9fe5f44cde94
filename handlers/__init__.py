"""The Slack layer. Bolt runs only the first matching listener, so the order of listeners
is behaviour: keep the error handler first, and within a kind of request the feature order
below. `/metric` is one listener: it hands `/metric subscribe|alert|subscriptions` over.

Bolt also tries listeners one by one, each matcher a call with its arguments injected
(about 0.04 ms), so across kinds the most frequent go first: slash commands, then events
(every message in a channel the bot is in), then buttons, modals and shortcuts. Before,
a `/metric` request tried six subscription buttons first, and a channel message sixteen
listeners."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from slack_bolt import App

from bot.deps import Deps
from handlers import errors
from handlers import home as home_handlers
from handlers import intake as intake_handlers
from handlers import metric as metric_handlers
from handlers import subscriptions as subscription_handlers

# Bolt's listener decorators, most frequent kind of request first.
KINDS = ("command", "event", "action", "view", "shortcut")


class _ByKind:
    """Stands in for the App while the features register: keeps each listener decorator
    call, to make them on the App grouped by KINDS (in call order within a kind)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[tuple, dict, Callable[..., Any]]]] = {k: [] for k in KINDS}

    def __getattr__(self, kind: str) -> Callable[..., Callable[[Callable[..., Any]], None]]:
        if kind not in self.calls:
            raise AttributeError(f"handlers register {kind!r}: add it to KINDS")

        def decorator(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], None]:
            return lambda listener: self.calls[kind].append((args, kwargs, listener))

        return decorator

    def replay(self, app: App) -> None:
        for kind in KINDS:
            for args, kwargs, listener in self.calls[kind]:
                if not getattr(listener, errors.AFTER_ACK, False):
                    # Claimed before it runs: it may act before its ack (handlers/errors.py).
                    middleware = [*kwargs.get("middleware", []), errors.ClaimFirst()]
                    kwargs = {**kwargs, "middleware": middleware}
                getattr(app, kind)(*args, **kwargs)(listener)


def register_all(app: App, deps: Deps) -> None:
    errors.register(app, deps)
    by_kind = _ByKind()
    features = cast(App, by_kind)
    # Feature modules register here, in this order:
    # `/metric subscribe|alert|subscriptions` is handed over by /metric's listener.
    subscribe = subscription_handlers.register(features, deps)
    metric_handlers.register(features, deps, subcommands=[subscribe])
    intake_handlers.register(features, deps)
    home_handlers.register(features, deps)
    by_kind.replay(app)
