"""The Slack layer. Bolt runs only the first matching listener, so the order of listeners
is behaviour: keep the error handler first, and within a kind of request the feature order
below. `/metric` is one listener: it hands `/metric subscribe|alert|subscriptions` over.

Bolt also tries listeners one by one, each matcher a call with its arguments injected
(about 0.04 ms), so across kinds the most frequent go first: slash commands, then events
(every message in a channel the bot is in), then buttons, modals and shortcuts. Before,
a `/metric` request tried six subscription buttons first, and a channel message sixteen
listeners.

Listeners marked `effects_after_ack` (they ack and hand their work over) run in the
request's own thread (AckInline); the rest on Bolt's listener pool."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.listener import Listener
from slack_bolt.listener.listener_error_handler import ListenerErrorHandler
from slack_bolt.listener.thread_runner import ThreadListenerRunner

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


class AckInline(ThreadListenerRunner):
    """Bolt's listener runner, except for listeners marked `effects_after_ack`: those run
    in the request's own thread, and their ack goes back as they return. Bolt otherwise
    hands every listener to its pool and polls for the ack every 10 ms; under a burst of
    lookups that hop and the polling cost more than the listener itself (ack p99 1.35-1.8x
    a bare Bolt app, 1.0-1.25x inline: README "Ack under a burst"). A marked listener only
    acks and calls run_after_ack, so nothing slow runs before its ack. The others (opening
    a modal, `views.update`, events) keep Bolt's pool: their Slack calls after the ack must
    not hold the ack back."""

    def __init__(self, pooled: ThreadListenerRunner) -> None:
        self._pooled = pooled
        super().__init__(
            logger=pooled.logger,
            process_before_response=True,
            listener_error_handler=pooled.listener_error_handler,
            listener_start_handler=pooled.listener_start_handler,
            listener_completion_handler=pooled.listener_completion_handler,
            listener_executor=pooled.listener_executor,
            lazy_listener_runner=pooled.lazy_listener_runner,
        )

    @classmethod
    def install(cls, app: App) -> None:
        # Bolt has no public setter for its runner; App.dispatch reads this attribute.
        app._listener_runner = cls(app.listener_runner)

    # One error handler for both ways of running: `app.error` sets it after this is in.
    @property
    def listener_error_handler(self) -> ListenerErrorHandler:
        return self._pooled.listener_error_handler

    @listener_error_handler.setter
    def listener_error_handler(self, handler: ListenerErrorHandler) -> None:
        self._pooled.listener_error_handler = handler

    def run(
        self,
        request: BoltRequest,
        response: BoltResponse,
        listener_name: str,
        listener: Listener,
        starting_time: float | None = None,
    ) -> BoltResponse | None:
        if getattr(listener.ack_function, errors.AFTER_ACK, False):
            return super().run(request, response, listener_name, listener, starting_time)
        return self._pooled.run(request, response, listener_name, listener, starting_time)


def register_all(app: App, deps: Deps) -> None:
    AckInline.install(app)
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
