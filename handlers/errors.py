"""The one error path: domain errors become a user-safe message on the surface the user is
on; anything unexpected is logged once with a short correlation id that the user sees.

Also what every listener passes through on the way: the verified check, the response_url
check, and the claim that makes a repeated delivery do nothing (bot/slack_gate.py "Once"):
before the listener runs (ClaimFirst, the default), or for a listener marked
`effects_after_ack`, in run_after_ack."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, NamedTuple, TypeVar

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.context.respond import Respond
from slack_bolt.middleware import Middleware

from bot.deps import Deps
from bot.errors import DatabotError
from bot.slack_gate import DELIVERY, VERIFIED, allowed_response_url

logger = logging.getLogger(__name__)

L = TypeVar("L", bound=Callable[..., Any])

APOLOGY = "Sorry, something went wrong on my side (ref `{ref}`). The team has the details."


def register(app: App, deps: Deps) -> None:
    hosts = deps.settings.slack_response_url_hosts

    @app.error
    def _error(
        error: Exception, body: dict, request: BoltRequest, respond: Respond | None, client
    ) -> None:
        handle_error(error, body, request, respond, client, hosts=hosts)

    app.use(RefuseForeignResponseUrls(hosts))


def is_verified(request: BoltRequest) -> bool:
    """Whether Slack sent this request: signed and checked by the HTTP gate (which marks
    it; no client can), or delivered over the authenticated Socket Mode connection."""
    return request.mode == "socket_mode" or bool(request.context.get(VERIFIED))


def once(context: BoltContext) -> bool:
    """Whether this is the first delivery of the request's work, claiming it if no effect
    has yet (bot/slack_gate.Delivery; raises when the state database cannot be written).
    Socket Mode requests carry no Delivery: nothing is claimed for them."""
    delivery = context.get(DELIVERY)
    return delivery is None or delivery.first()


AFTER_ACK = "databot_effects_after_ack"


def effects_after_ack(listener: L) -> L:
    """Marks a listener whose every effect comes after its ack, through run_after_ack (or
    is the ack's own answer): its delivery is claimed there, off the ack path, instead of
    before it runs (ClaimFirst)."""
    setattr(listener, AFTER_ACK, True)
    return listener


class Subcommand(NamedTuple):
    """Another feature's `/metric WORD ...`: `/metric` is one Bolt listener, which hands
    the request over when `matches(text)`. (Bolt builds every tried listener's arguments,
    so a second `/metric` listener with a matcher cost every lookup two builds.) The
    listener takes (ack, body, respond, context) and is `effects_after_ack`, as /metric's."""

    matches: Callable[[str | None], bool]
    listener: Callable[..., None]


class ClaimFirst(Middleware):
    """Listener middleware, on every listener not marked `effects_after_ack`: claims the
    delivery before the listener runs. A repeat gets an empty 200 and runs nothing."""

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        if once(req.context):
            return next()
        return BoltResponse(status=200, body="")


class RefuseForeignResponseUrls(Middleware):
    """Global middleware: a payload naming a response_url that is not Slack's
    (settings.slack_response_url_hosts) is dropped before any listener could `respond()`
    to it. A Middleware class, not a function: Bolt builds a function's arguments on
    every request."""

    def __init__(self, hosts: list[str]) -> None:
        self.hosts = hosts

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        body = req.body
        urls = [body.get("response_url")] if body.get("response_url") else []
        urls += [u.get("response_url") for u in body.get("response_urls") or []]
        if any(not allowed_response_url(u, self.hosts) for u in urls):
            logger.warning("Slack request with a response_url outside %s dropped", self.hosts)
            return BoltResponse(status=400, body="response_url is not Slack's\n")
        return next()


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
    try:
        if not once(request.context):
            return  # a repeat's error: the first delivery answers
    except Exception:  # noqa: BLE001 - the state database is down: still tell the user
        logger.warning("could not claim the delivery of a failed request")
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
    deps: Deps,
    context: BoltContext,
    body: dict,
    respond: Respond | None,
    work: Callable[..., Any],
    *args: Any,
    cancel: Callable[[], None] | None = None,
    behind_acks: bool = True,
) -> Future:
    """Run slow `work` on deps.work after the listener acked; its errors take the same path
    as a listener's (user-safe message or apology with correlation id). Work may return a
    Future, whose error (when it completes) takes that path too. A repeated delivery (the
    claim is made here for listeners marked `effects_after_ack`) runs nothing; `cancel`
    is called when `work` does not run (a repeat, or the claim failed).

    `behind_acks=False` is for work that starts by waiting on something remote (a lookup
    on BigQuery): it starts at once, not after the burst's acks (bot/ack_first.py), and
    claims the delivery itself before each effect (`once`), waiting its turn there."""

    def _tell(error: BaseException) -> None:
        # An error message is an effect too: a repeat's (work that claims per effect runs
        # for a repeat too) says nothing. A claim that fails still lets the user hear.
        try:
            if not once(context):
                return
        except Exception:  # noqa: BLE001 - the state database is down: still tell the user
            logger.warning("could not claim the delivery of a failed request")
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
        if behind_acks:
            deps.acks.wait_turn()  # the acks of a burst go back before its lookups start
        started = False
        try:
            if behind_acks and not once(context):
                return None
            started = True
            result = work(*args)
        except Exception as error:  # noqa: BLE001 - the one error path
            _tell(error)
            return None
        finally:
            if not started and cancel is not None:
                cancel()
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
