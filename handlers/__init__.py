"""The Slack layer. Bolt runs only the first matching listener, so the order of the
`register` calls below is behaviour: keep the error handler first."""

from __future__ import annotations

from slack_bolt import App

from bot.deps import Deps
from handlers import errors
from handlers import home as home_handlers
from handlers import intake as intake_handlers
from handlers import metric as metric_handlers
from handlers import subscriptions as subscription_handlers


def register_all(app: App, deps: Deps) -> None:
    errors.register(app, deps)
    # Feature modules register here, in this order:
    # Before metric: it takes `/metric subscribe|alert|subscriptions` (a matcher).
    subscription_handlers.register(app, deps)
    metric_handlers.register(app, deps)
    intake_handlers.register(app, deps)
    home_handlers.register(app, deps)
