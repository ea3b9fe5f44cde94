"""The flows behind `/metric`'s Slack surfaces, one function per surface: the command and
the "Share in channel" button. Each decides which outcome becomes which reply; the listeners
in handlers/metric.py only ack, call one of them and send what it says.

Replies that need no warehouse (help, typos, unreadable periods, refusals) go back in the
ack itself, so they never queue behind slow lookups. A lookup is acked at once and runs
after the ack (Slack gives up on an ack after 3 seconds), answering through the response
URL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Literal, TypeVar

from slack_sdk.errors import SlackApiError

from bot.charts import render_line_png
from bot.deps import Deps
from bot.errors import DatabotError, InputError
from bot.metric.account import account_card
from bot.metric.blocks import (
    build_metric_help,
    build_metric_help_one,
    build_metric_message,
    build_metric_picture,
    build_metric_shared,
    build_metric_working,
    build_request_offer,
)
from bot.metric.card import build_account_card
from bot.metric.lookup import (
    MetricService,
    StillWorking,
    may_see_in,
    may_see_known,
    metric_service,
)
from bot.metric.model import (
    AccountRequest,
    Answer,
    HelpRequest,
    MetricQuery,
    NoData,
    ShareValue,
    UnknownAccount,
    UnknownMetric,
    prefill_for,
    refusal,
)
from bot.slack_post import post_once, slack_error
from bot.slack_text import Message
from bot.warehouse import embedded

logger = logging.getLogger(__name__)
T = TypeVar("T")

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
    # Called instead of `after_ack` when it will not run (a repeated delivery).
    cancel: Callable[[], None] | None = None
    # False: `after_ack` starts by waiting on a remote warehouse, so it starts at once
    # (handlers.errors.run_after_ack), and its replies claim the delivery and wait for
    # the acks in flight before they are built.
    behind_acks: bool = True


def metric_command(
    deps: Deps, text: str, *, user: str | None, channel: str | None, send: Send
) -> CommandReply:
    """`/metric text` asked by `user` in `channel`; the lookup (if any) answers by `send`."""
    service = metric_service(deps)
    try:
        parsed = service.parse(text)
    except UnknownMetric as exc:
        return _maybe_account(deps, service, exc, text, send)
    except tuple(OFFER_REASONS) as exc:
        return CommandReply(ack=_offer(exc, text))
    except DatabotError as exc:
        return CommandReply(ack=Message(text=exc.user_message))
    if isinstance(parsed, HelpRequest):
        if parsed.metric is not None:
            return CommandReply(
                ack=build_metric_help_one(parsed.metric, service.catalog, deps.settings)
            )
        return CommandReply(ack=build_metric_help(service.catalog))
    if isinstance(parsed, AccountRequest):
        return _card_after_ack(deps, parsed.name, text, send)
    # Decided in the ack when the settings tell; when a revenue channel is named by
    # `#name`, after it (resolving the name may ask Slack).
    allowed = may_see_known(deps, parsed.metric, user=user, channel=channel)
    if allowed is False:
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
        if allowed is None:
            try:
                seen = may_see_in(deps, parsed.metric, user=user, channel=channel)
            except BaseException:
                note.finish()
                raise
            if not seen:
                note.finish()
                send(Reply(Message(text=refusal(parsed.metric, deps.settings))))
                replied.set_result(None)
                return replied

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

    return CommandReply(after_ack=lookup, cancel=note.finish, behind_acks=embedded(deps.warehouse))


def _maybe_account(
    deps: Deps, service: MetricService, exc: UnknownMetric, text: str, send: Send
) -> CommandReply:
    """`/metric NAME` where NAME is no metric: the account card when NAME names one
    account. Matching needs the account list: with it cached the reply comes in the ack;
    otherwise the list is read after the ack and the miss (if it is one) follows by the
    response URL."""
    if service.accounts_known():
        if service.match_account(exc.typed) is not None:
            return _card_after_ack(deps, exc.typed, text, send)
        return CommandReply(ack=_offer(exc, text))
    if exc.suggestions:  # a typo of a metric name: answer it now, as before
        return CommandReply(ack=_offer(exc, text))

    def after() -> None:
        if service.match_account(exc.typed) is not None:
            _card(deps, exc.typed, text, send)
        else:
            send(Reply(_offer(exc, text)))

    return CommandReply(after_ack=after)


def _card_after_ack(deps: Deps, name: str, text: str, send: Send) -> CommandReply:
    return CommandReply(after_ack=lambda: _card(deps, name, text, send))


def _card(deps: Deps, name: str, text: str, send: Send) -> None:
    note = StillWorking(
        deps.settings.metric_still_working_seconds,
        lambda: send(Reply(build_metric_working(text))),
    )
    try:
        card = account_card(metric_service(deps), name)
    except tuple(OFFER_REASONS) as exc:
        note.finish()
        send(Reply(_offer(exc, text)))
        return
    finally:
        note.finish()
    send(Reply(build_account_card(card, deps.settings)))


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
    deps.acks.wait_turn()  # a lookup that started at once: a burst's acks go back first
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
    if not may_see_in(deps, metric, user=None, channel=channel):
        refused = Message(text=refusal(metric, deps.settings, sharing=True))
        send(Reply(refused, replace_original=False))
        return
    query = MetricQuery(metric, value.period, value.account, by=value.by, defaulted=value.defaulted)
    answer = service.answer(query)
    shared = build_metric_message(answer, deps.settings, shared_by=user)
    send(Reply(shared, response_type="in_channel", replace_original=False))
    send(Reply(build_metric_shared(), replace_original=True))
    if channel is not None:
        # The public copy is posted by response URL, which gives no ts to thread under:
        # the picture follows it in the channel.
        upload_picture(deps, answer, channel=channel, thread_ts=None)


def upload_picture(deps: Deps, answer: Answer, *, channel: str, thread_ts: str | None) -> None:
    """The answer's trend as a PNG (with alt text) where a picture is wanted: beside a
    public answer. The answer is out already, so a failed upload is logged, not raised."""
    picture = build_metric_picture(answer)
    if picture is None:
        return
    png = render_line_png(
        picture.labels, picture.values, title=picture.title, y_label=picture.y_label
    )
    try:
        deps.slack.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            file_uploads=[
                {
                    "content": png,
                    "filename": picture.filename,
                    "title": picture.title,
                    "alt_txt": picture.alt_text,
                }
            ],
        )
    except (SlackApiError, OSError) as exc:
        logger.warning(
            "metric %s: the chart was not uploaded to %s (%s)",
            answer.metric.name,
            channel,
            slack_error(exc),
        )


# --------------------------------------------------------------------------- @databot


MENTION_KEY = "metric:mention:{event_id}"
_USER_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")


def mention_text(text: str) -> str:
    """`<@UDATABOT> dau 7d` -> `dau 7d`: every user mention dropped (the bot's own and any
    other: they are not part of a lookup)."""
    return " ".join(_USER_MENTION.sub(" ", text or "").split())


def metric_mention(
    deps: Deps,
    text: str,
    *,
    user: str | None,
    channel: str,
    ts: str,
    thread_ts: str | None,
    event_id: str,
) -> None:
    """`@databot NAME [PERIOD] [for ACCOUNT]` in a channel or thread: answered in the
    thread (the mention's own thread, or one started on the mention). The answer is public,
    so a revenue metric is answered only in a revenue channel, whoever asks (as "Share in
    channel"). Once per event: Slack's retried deliveries (and Socket Mode's) are claimed
    under the event id, and the reply is posted once under the same key
    (bot/slack_post.py)."""
    if not deps.store.claim(MENTION_KEY.format(event_id=event_id)):
        logger.info("app_mention %s: already answered", event_id)
        return
    key = MENTION_KEY.format(event_id=event_id)
    thread = thread_ts or ts
    asked = mention_text(text)

    def post(message: Message) -> None:
        post_once(
            deps,
            key,
            channel=channel,
            thread_ts=thread,
            unfurl_links=False,
            **message.send_kwargs(),
        )

    def said(fn: Callable[[], T]) -> T | None:
        # A refusal in words instead of the value: an offer of a data request, or the reason.
        try:
            return fn()
        except tuple(OFFER_REASONS) as exc:
            post(_offer(exc, asked))
        except DatabotError as exc:
            post(Message(text=exc.user_message))
        return None

    service = metric_service(deps)
    parsed = said(lambda: service.parse(asked))
    if parsed is None:
        return
    if isinstance(parsed, HelpRequest):
        if parsed.metric is not None:
            post(build_metric_help_one(parsed.metric, service.catalog, deps.settings))
        else:
            post(build_metric_help(service.catalog))
        return
    if isinstance(parsed, AccountRequest):
        name = parsed.name
        card = said(lambda: account_card(service, name))
        if card is not None:
            post(build_account_card(card, deps.settings))
        return
    if not may_see_in(deps, parsed.metric, user=None, channel=channel):
        post(Message(text=refusal(parsed.metric, deps.settings, sharing=True)))
        return
    query = parsed
    answer = said(lambda: service.answer(query))
    if answer is None:
        return
    post(build_metric_message(answer, deps.settings, shared_by=user))
    upload_picture(deps, answer, channel=channel, thread_ts=thread)
