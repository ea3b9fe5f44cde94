"""The one error path: domain errors become a user-safe message on the surface the user is
on; anything unexpected is logged once with a short correlation id that the user sees."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from slack_bolt import App
from slack_bolt.context.respond import Respond

from bot.deps import Deps
from bot.errors import DatabotError

logger = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on my side (ref `{ref}`). The team has the details."


def register(app: App, deps: Deps) -> None:
    app.error(handle_error)


def user_message_for(error: BaseException) -> str:
    """The text to show for `error`; logs unexpected errors with a correlation id."""
    if isinstance(error, DatabotError):
        logger.info("user-facing error: %s", error)
        return error.user_message
    ref = uuid.uuid4().hex[:8]
    logger.error("unhandled error ref=%s", ref, exc_info=error)
    return APOLOGY.format(ref=ref)


def handle_error(error: Exception, body: dict, respond: Respond | None, client, logger) -> None:
    text = user_message_for(error)
    tell_user(text, body=body, respond=respond, client=client)


def tell_user(text: str, *, body: dict, respond: Respond | None, client) -> None:
    """Ephemeral note to whoever triggered `body`, by response_url when Slack gave one."""
    try:
        if respond is not None and (body.get("response_url") or body.get("response_urls")):
            respond(text=text, response_type="ephemeral", replace_original=False)
            return
        user = (body.get("user") or {}).get("id") or body.get("user_id")
        channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
        if user and channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        elif user:
            client.chat_postMessage(channel=user, text=text)
    except Exception:
        logger.exception("could not tell the user about an error")


def run_after_ack(
    deps: Deps, body: dict, respond: Respond | None, work: Callable[..., Any], *args: Any
) -> Future:
    """Run slow `work` on deps.work after the listener acked; its errors take the same path
    as a listener's (user-safe message or apology with correlation id)."""

    def _guarded() -> Any:
        try:
            return work(*args)
        except Exception as error:  # noqa: BLE001 - the one error path
            tell_user(user_message_for(error), body=body, respond=respond, client=deps.slack)
            return None

    return deps.work.submit(_guarded)
