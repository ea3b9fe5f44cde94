"""`/metric`: ack at once, look the number up after the ack, answer through the response
URL (ephemeral, with "Share in channel")."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App
from slack_bolt.context.respond import Respond

from bot.deps import Deps
from bot.errors import DatabotError, InputError
from bot.ids import Action, Command
from bot.metric.blocks import (
    build_metric_fallback,
    build_metric_help,
    build_metric_message,
    build_metric_working,
    build_request_offer,
)
from bot.metric.lookup import (
    HelpRequest,
    MetricQuery,
    NoData,
    ShareValue,
    StillWorking,
    UnknownAccount,
    UnknownMetric,
    may_see,
    metric_service,
    prefill_for,
    refusal,
)
from handlers.errors import run_after_ack

logger = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    metric_service(deps)  # loads and validates the catalog now, not on the first lookup

    @app.command(Command.METRIC.value)
    def _command(ack: Ack, body: dict, respond: Respond) -> None:
        handle_metric_command(deps, ack, body, respond)

    @app.action(Action.METRIC_SHARE.value)
    def _share(ack: Ack, body: dict, respond: Respond) -> None:
        handle_metric_share(deps, ack, body, respond)


def handle_metric_command(deps: Deps, ack: Ack, body: dict, respond: Respond) -> None:
    # Help, typos, unreadable periods and refusals need no warehouse: they go back in the
    # ack itself, so they never queue behind slow lookups. A lookup is acked at once and
    # runs after the ack: Slack gives up on an ack after 3 seconds.
    text = body.get("text") or ""
    parsed = reply_without_warehouse(deps, body, ack)
    if parsed is None:
        return
    ack()
    note = StillWorking(
        deps.settings.metric_still_working_seconds,
        lambda: respond(text=build_metric_working(text), response_type="ephemeral"),
    )
    run_after_ack(deps, body, respond, answer_metric_command, deps, body, respond, parsed, note)


def reply_without_warehouse(deps: Deps, body: dict, ack: Ack) -> MetricQuery | None:
    """Ack with the reply when the command can be answered from the catalog alone;
    otherwise return the lookup to run (and leave the ack to the caller)."""
    service = metric_service(deps)
    text = body.get("text") or ""
    try:
        parsed = service.parse(text)
    except UnknownMetric as exc:
        _ack_offer(ack, exc, text, "the catalog has no metric by that name")
        return None
    except DatabotError as exc:
        ack(text=exc.user_message, response_type="ephemeral")
        return None
    if isinstance(parsed, HelpRequest):
        blocks = build_metric_help(service.catalog)
        ack(text="How to use /metric", blocks=_dicts(blocks), response_type="ephemeral")
        return None
    user, channel = body.get("user_id"), body.get("channel_id")
    if not may_see(parsed.metric, deps.settings, user=user, channel=channel):
        ack(text=refusal(parsed.metric, deps.settings), response_type="ephemeral")
        return None
    return parsed


def answer_metric_command(
    deps: Deps, body: dict, respond: Respond, parsed: MetricQuery, note: StillWorking
) -> None:
    try:
        _answer_metric_command(deps, body, respond, parsed, note)
    finally:
        note.finish()


def _answer_metric_command(
    deps: Deps, body: dict, respond: Respond, parsed: MetricQuery, note: StillWorking
) -> None:
    service = metric_service(deps)
    text = body.get("text") or ""
    try:
        answer = service.answer(parsed)
    except UnknownAccount as exc:
        note.finish()
        _offer_request(respond, exc, text, "no account matched")
        return
    except NoData as exc:
        note.finish()
        _offer_request(respond, exc, text, "there was no data for that period")
        return
    note.finish()  # from here on no "still working" note can follow the answer
    respond(
        text=build_metric_fallback(answer, deps.settings),
        blocks=build_metric_message(answer, deps.settings),
        response_type="ephemeral",
    )


def _dicts(blocks: list) -> list[dict]:
    return [b.to_dict() for b in blocks]


def _ack_offer(ack: Ack, exc: InputError, text: str, reason: str) -> None:
    blocks = build_request_offer(exc.user_message, prefill_for(text, reason))
    ack(text=exc.user_message, blocks=_dicts(blocks), response_type="ephemeral")


def _offer_request(respond: Respond, exc: InputError, text: str, reason: str) -> None:
    respond(
        text=exc.user_message,
        blocks=build_request_offer(exc.user_message, prefill_for(text, reason)),
        response_type="ephemeral",
    )


def handle_metric_share(deps: Deps, ack: Ack, body: dict, respond: Respond) -> None:
    ack()
    run_after_ack(deps, body, respond, share_metric_answer, deps, body, respond)


def share_metric_answer(deps: Deps, body: dict, respond: Respond) -> None:
    """Post the same answer publicly, attributed to whoever clicked. The lookup is redone
    (a cache hit within the freshness window) rather than trusting blocks from the client."""
    service = metric_service(deps)
    value = ShareValue.model_validate_json(body["actions"][0]["value"])
    metric = service.catalog.get(value.metric)
    if metric is None:
        raise InputError(f"`{value.metric}` is no longer in the catalog; ask again.")
    user = (body.get("user") or {}).get("id")
    channel = (body.get("channel") or {}).get("id")
    # Everyone in the channel will see it: the clicker's own permission is not enough.
    if not may_see(metric, deps.settings, user=None, channel=channel):
        respond(
            text=refusal(metric, deps.settings, sharing=True),
            response_type="ephemeral",
            replace_original=False,
        )
        return
    answer = service.answer(MetricQuery(metric, value.period, value.account))
    respond(
        text=build_metric_fallback(answer, deps.settings),
        blocks=build_metric_message(answer, deps.settings, shared_by=user),
        response_type="in_channel",
        replace_original=False,
    )
    respond(text="Shared in the channel.", response_type="ephemeral", replace_original=True)
