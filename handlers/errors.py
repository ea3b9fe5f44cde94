"""The one error path: domain errors become a user-safe message on the surface the user is
on; anything unexpected is logged once with a short correlation id that the user sees."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.context.respond import Respond

from bot.deps import Deps
from bot.errors import DatabotError
from bot.slack_gate import VERIFIED, allowed_response_url

logger = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on my side (ref `{ref}`). The team has the details."


def register(app: App, deps: Deps) -> None:
    hosts = deps.settings.slack_response_url_hosts

    @app.error
    def _error(
        error: Exception, body: dict, request: BoltRequest, respond: Respond | None, client
    ) -> None:
        handle_error(error, body, request, respond, client, hosts=hosts)

    app.use(refuse_foreign_response_urls(deps))


def is_verified(request: BoltRequest) -> bool:
    """Whether Slack sent this request: signed and checked by the HTTP gate (which marks
    it; no client can), or delivered over the authenticated Socket Mode connection."""
    return request.mode == "socket_mode" or bool(request.context.get(VERIFIED))


def refuse_foreign_response_urls(deps: Deps) -> Callable[..., Any]:
    """Global middleware: a payload naming a response_url that is not Slack's is dropped
    before any listener could `respond()` to it."""
    hosts = deps.settings.slack_response_url_hosts

    def middleware(body: dict, next: Callable[[], Any]) -> Any:
        urls = [body.get("response_url")] if body.get("response_url") else []
        urls += [u.get("response_url") for u in body.get("response_urls") or []]
        if any(not allowed_response_url(u, hosts) for u in urls):
            logger.warning("Slack request with a response_url outside %s dropped", hosts)
            return BoltResponse(status=400, body="response_url is not Slack's\n")
        return next()

    return middleware


def user_message_for(error: BaseException) -> str:
    """The text to show for `error`; logs unexpected errors with a correlation id."""
    if isinstance(error, DatabotError):
        logger.info("user-facing error: %s", error)
        return error.user_message
    ref = uuid.uuid4().hex[:8]
    logger.error("unhandled error ref=%s", ref, exc_info=error, extra={"ref": ref})
    return APOLOGY.format(ref=ref)


def handle_error(
    error: Exception,
    body: dict,
    request: BoltRequest,
    respond: Respond | None,
    client,
    *,
    hosts: list[str],
) -> None:
    if not is_verified(request):
        # Never act on what a stranger sent, not even to apologise (the gate answers 401
        # before Bolt sees such a request; this is the second lock).
        logger.warning("error on an unverified Slack request ignored: %s", type(error).__name__)
        return
    text = user_message_for(error)
    tell_user(text, body=body, respond=respond, client=client, hosts=hosts)


def tell_user(text: str, *, body: dict, respond: Respond | None, client, hosts: list[str]) -> None:
    """Ephemeral note to whoever triggered `body`, by response_url when Slack gave one and
    it is one of Slack's `hosts` (settings.slack_response_url_hosts)."""
    try:
        urls = [body.get("response_url")] + [
            u.get("response_url") for u in body.get("response_urls") or []
        ]
        url = next((u for u in urls if u), None)
        if url is not None and not allowed_response_url(url, hosts):
            logger.warning("not answering a response_url outside %s", hosts)
            return
        if respond is not None and url is not None:
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
    as a listener's (user-safe message or apology with correlation id). Work may return a
    Future, whose error (when it completes) takes that path too."""

    def _tell(error: BaseException) -> None:
        tell_user(
            user_message_for(error),
            body=body,
            respond=respond,
            client=deps.slack,
            hosts=deps.settings.slack_response_url_hosts,
        )

    def _later(done: Future) -> None:
        error = done.exception()
        if error is not None:
            _tell(error)

    def _guarded() -> Any:
        deps.acks.wait_turn()  # the acks of a burst go back before its lookups start
        try:
            result = work(*args)
        except Exception as error:  # noqa: BLE001 - the one error path
            _tell(error)
            return None
        if isinstance(result, Future):
            # Work that finishes off this thread (a lookup joining one in flight): its
            # error takes the same path when it comes.
            result.add_done_callback(_later)
        return result

    try:
        return deps.work.submit(_guarded)
    except RuntimeError:  # stopping (the pool takes no more work): run it here instead
        done: Future = Future()
        done.set_result(_guarded())
        return done
