"""`/metric` in Slack: the command, its "Share in channel" button and `@databot NAME
[PERIOD]` mentions. What each replies is decided in bot/metric/command.py; slow work runs
after the ack (run_after_ack). The same listeners serve HTTP and Socket Mode."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel
from slack_bolt import Ack, App, BoltContext
from slack_bolt.context.respond import Respond

from bot.deps import Deps
from bot.ids import Action, Command, Event
from bot.metric.command import Reply, Send, metric_command, metric_mention, share_metric_answer
from bot.metric.lookup import metric_service
from bot.metric.model import ShareValue
from handlers.errors import AFTER_ACK, Subcommand, effects_after_ack, once, run_after_ack


def register(app: App, deps: Deps, subcommands: Sequence[Subcommand] = ()) -> None:
    """`subcommands`: other features' `/metric WORD ...`, tried first."""
    metric_service(deps)  # loads and validates the catalog now, not on the first lookup
    for subcommand in subcommands:  # they run under /metric's claim, after the ack
        if not getattr(subcommand.listener, AFTER_ACK, False):
            raise TypeError(f"{subcommand.listener} must be effects_after_ack")
    listeners = MetricListeners(deps, subcommands)
    app.command(Command.METRIC)(listeners.handle_metric_command)
    app.action(Action.METRIC_SHARE)(listeners.handle_metric_share)
    app.event(Event.APP_MENTION)(listeners.handle_metric_mention)


class MetricCommandBody(BaseModel):
    """The fields of a slash command's payload that /metric reads."""

    text: str = ""
    user_id: str | None = None
    channel_id: str | None = None


class MentionEvent(BaseModel):
    """The fields of an `app_mention` event that a lookup reads."""

    text: str = ""
    user: str | None = None
    channel: str
    ts: str
    thread_ts: str | None = None


class EventEnvelope(BaseModel):
    event_id: str
    event: MentionEvent


def sender(respond: Respond, context: BoltContext) -> Send:
    """A flow's replies, through the interaction's response URL. Each is an effect, so it
    claims the delivery first (a "still working" note may fire before the work starts):
    a repeat sends nothing."""

    def send(reply: Reply) -> None:
        if not once(context):
            return
        respond(
            response_type=reply.response_type,
            replace_original=reply.replace_original,
            **reply.message.send_kwargs(),
        )

    return send


class MetricListeners:
    def __init__(self, deps: Deps, subcommands: Sequence[Subcommand] = ()) -> None:
        self.deps = deps
        self.subcommands = subcommands

    @effects_after_ack
    def handle_metric_command(
        self, ack: Ack, body: dict, respond: Respond, context: BoltContext
    ) -> None:
        for subcommand in self.subcommands:
            if subcommand.matches(body.get("text")):
                subcommand.listener(ack, body, respond, context)
                return
        command = MetricCommandBody.model_validate(body)
        reply = metric_command(
            self.deps,
            command.text,
            user=command.user_id,
            channel=command.channel_id,
            send=sender(respond, context),
        )
        if reply.ack is not None:
            ack(response_type="ephemeral", **reply.ack.send_kwargs())
        else:
            ack()
        if reply.after_ack is not None:
            run_after_ack(
                self.deps,
                context,
                body,
                respond,
                reply.after_ack,
                cancel=reply.cancel,
                behind_acks=reply.behind_acks,
            )

    @effects_after_ack
    def handle_metric_share(
        self, ack: Ack, body: dict, respond: Respond, context: BoltContext
    ) -> None:
        ack()
        run_after_ack(self.deps, context, body, respond, self._share, body, respond, context)

    def _share(self, body: dict, respond: Respond, context: BoltContext) -> None:
        # After the ack: a malformed button value takes the one error path too.
        value = ShareValue.model_validate_json(body["actions"][0]["value"])
        share_metric_answer(
            self.deps,
            value,
            user=(body.get("user") or {}).get("id"),
            channel=(body.get("channel") or {}).get("id"),
            send=sender(respond, context),
        )

    def handle_metric_mention(self, ack: Ack, body: dict, context: BoltContext) -> None:
        ack()
        envelope = EventEnvelope.model_validate(body)
        event = envelope.event
        # Errors reach the asker ephemerally in the channel (the one error path).
        where = {"user_id": event.user, "channel_id": event.channel}
        run_after_ack(
            self.deps,
            context,
            where,
            None,
            lambda: metric_mention(
                self.deps,
                event.text,
                user=event.user,
                channel=event.channel,
                ts=event.ts,
                thread_ts=event.thread_ts,
                event_id=envelope.event_id,
            ),
        )
