"""The flows behind `/metric`'s Slack surfaces, one function per surface: the command and
the "Share in channel" button. Each decides which outcome becomes which reply; the listeners
in handlers/metric.py only ack, call one of them and send what it says.

Replies that need no warehouse (help, typos, unreadable periods, refusals) go back in the
ack itself, so they never queue behind slow lookups. A lookup is acked at once and runs
after the ack (Slack gives up on an ack after 3 seconds), answering through the response
URL.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Literal

from bot.deps import Deps
from bot.errors import DatabotError, InputError
from bot.metric.blocks import (
    build_metric_help,
    build_metric_message,
    build_metric_shared,
    build_metric_working,
    build_request_offer,
)
from bot.metric.lookup import StillWorking, metric_service
from bot.metric.model import (
    Answer,
    HelpRequest,
    MetricQuery,
    NoData,
    ShareValue,
    UnknownAccount,
    UnknownMetric,
    may_see,
    prefill_for,
    refusal,
)
from bot.slack_text import Message

# Misses the catalog has no answer for: the reply offers a data request, prefilled with what
# was asked and why nothing came back. Any other error takes the one error path.
OFFER_REASONS: dict[type[InputError], str] = {
    UnknownMetric: "the catalog has no metric by that name",
    UnknownAccount: "no account matched",
    NoData: "there was no data for that period",
}


@dataclass(frozen=True)
class Reply:
    """One message through the interaction's response URL. `replace_original` (for a
    button's message): True swaps the message the button sat on, False keeps it, None
    leaves it to Slack."""

    message: Message
    response_type: Literal["ephemeral", "in_channel"] = "ephemeral"
    replace_original: bool | None = None


Send = Callable[[Reply], None]


@dataclass(frozen=True)
class CommandReply:
    """What the /metric listener does: ack with `ack` (ephemeral) when the catalog alone
    answers, else ack empty and run `after_ack` (the lookup) after it."""

    ack: Message | None = None
    # May return a future: the lookup then completes (and fails) there, off this thread.
    after_ack: Callable[[], Future[None] | None] | None = None


def metric_command(
    deps: Deps, text: str, *, user: str | None, channel: str | None, send: Send
) -> CommandReply:
    """`/metric text` asked by `user` in `channel`; the lookup (if any) answers by `send`."""
    service = metric_service(deps)
    try:
        parsed = service.parse(text)
    except tuple(OFFER_REASONS) as exc:
        return CommandReply(ack=_offer(exc, text))
    except DatabotError as exc:
        return CommandReply(ack=Message(text=exc.user_message))
    if isinstance(parsed, HelpRequest):
        return CommandReply(ack=build_metric_help(service.catalog))
    if not may_see(parsed.metric, deps.settings, user=user, channel=channel):
        return CommandReply(ack=Message(text=refusal(parsed.metric, deps.settings)))
    # Started at the ack, so time spent queued for a worker thread counts too.
    note = StillWorking(
        deps.settings.metric_still_working_seconds,
        lambda: send(Reply(build_metric_working(text))),
    )

    def lookup() -> Future[None]:
        # Returns at once when an identical lookup is in flight (here or on another
        # replica): the reply goes out when that query completes, and no worker waits.
        replied: Future[None] = Future()
        replied.set_running_or_notify_cancel()

        def deliver(answering: Future[Answer]) -> None:
            try:
                _answer(deps, answering, text, note, send)
            except BaseException as exc:  # noqa: BLE001 - the caller's one error path
                replied.set_exception(exc)
            else:
                replied.set_result(None)
            finally:
                note.finish()

        try:
            answering = metric_service(deps).answer_async(parsed)
        except tuple(OFFER_REASONS) as exc:
            note.finish()
            send(Reply(_offer(exc, text)))
            replied.set_result(None)
            return replied
        except BaseException:
            note.finish()
            raise
        if answering.done():  # this thread ran the query (or the cache had it)
            deliver(answering)
        else:
            # Joined a query in flight: when it completes, each waiting reply is sent from
            # the pool, in parallel, rather than one after another by the query's thread.
            answering.add_done_callback(lambda done: _submit(deps, deliver, done))
        return replied

    return CommandReply(after_ack=lookup)


def _submit(deps: Deps, deliver: Callable[[Future[Answer]], None], done: Future[Answer]) -> None:
    try:
        deps.work.submit(deliver, done)
    except RuntimeError:  # the pool is shutting down: reply from here
        deliver(done)


def _answer(
    deps: Deps, answering: Future[Answer], text: str, note: StillWorking, send: Send
) -> None:
    try:
        answer = answering.result()
    except tuple(OFFER_REASONS) as exc:
        note.finish()
        send(Reply(_offer(exc, text)))
        return
    note.finish()  # from here on no "still working" note can follow the answer
    send(Reply(build_metric_message(answer, deps.settings)))


def _offer(exc: InputError, text: str) -> Message:
    return build_request_offer(exc.user_message, prefill_for(text, OFFER_REASONS[type(exc)]))


def share_metric_answer(
    deps: Deps, value: ShareValue, *, user: str | None, channel: str | None, send: Send
) -> None:
    """The "Share in channel" button, clicked by `user` in `channel`: post the same answer
    publicly, attributed to them. The lookup is redone (a cache hit within the freshness
    window) rather than trusting blocks from the client. Runs after the ack."""
    service = metric_service(deps)
    metric = service.catalog.get(value.metric)
    if metric is None:
        raise InputError(f"`{value.metric}` is no longer in the catalog; ask again.")
    # Everyone in the channel will see it: the clicker's own permission is not enough.
    if not may_see(metric, deps.settings, user=None, channel=channel):
        refused = Message(text=refusal(metric, deps.settings, sharing=True))
        send(Reply(refused, replace_original=False))
        return
    answer = service.answer(MetricQuery(metric, value.period, value.account))
    shared = build_metric_message(answer, deps.settings, shared_by=user)
    send(Reply(shared, response_type="in_channel", replace_original=False))
    send(Reply(build_metric_shared(), replace_original=True))
