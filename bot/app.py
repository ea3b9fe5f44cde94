"""The app factory: the one place in bot/ that imports slack_bolt."""

from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor

from slack_bolt import App

from bot.deps import Deps
from handlers import register_all

logger = logging.getLogger(__name__)


def build_app(deps: Deps, *, listener_executor: Executor | None = None) -> App:
    """The Bolt app with every handler registered. `listener_executor` runs the listeners
    that do not run in the request's own thread (handlers.AckInline); the sandbox passes
    one it can wait on."""
    settings = deps.settings
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    app = App(
        client=deps.slack,
        signing_secret=signing_secret,
        # Socket Mode has no HTTP signature to check; HTTP mode always checks it.
        request_verification_enabled=signing_secret is not None,
        # Listeners that call Slack after their ack (opening a modal) run here; Bolt's
        # default of 5 would queue the 6th behind five slow views.open calls.
        listener_executor=listener_executor
        or ThreadPoolExecutor(settings.listener_threads, thread_name_prefix="databot-listener"),
        token_verification_enabled=False,
        logger=logging.getLogger("slack_bolt"),
    )
    register_all(app, deps)
    return app


def build_socket_mode_handler(app: App, app_token: str):
    """Socket Mode transport (no public URL): Slack sends events over a websocket."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    return SocketModeHandler(app, app_token)
