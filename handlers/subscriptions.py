"""Subscriptions and alerts in Slack: `/metric subscribe|alert|subscriptions` (handed over
by /metric's own listener on the first word), the "Subscribe" button on /metric answers,
and the pause / resume / delete / snooze buttons. What each replies is decided in
bot/subscriptions/command.py."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel
from slack_bolt import Ack, App, BoltContext
from slack_bolt.context.respond import Respond

from bot.deps import Deps
from bot.ids import Action
from bot.slack_text import Message
from bot.subscriptions.command import (
    delete_button,
    is_feature_text,
    pause_button,
    resume_button,
    snooze_button,
    subscribe_button,
    subscriptions_command,
)
from bot.subscriptions.model import ItemValue, SubscribeValue
from handlers.errors import Subcommand, effects_after_ack, run_after_ack


def register(app: App, deps: Deps) -> Subcommand:
    """Registers the buttons; returns `/metric subscribe|alert|subscriptions` for /metric's
    own listener to hand over (handlers/metric.py)."""
    listeners = SubscriptionListeners(deps)
    app.action(Action.METRIC_SUBSCRIBE)(listeners.handle_subscribe_button)
    app.action(Action.SUBSCRIPTION_PAUSE)(listeners.item_button(pause_button))
    app.action(Action.SUBSCRIPTION_RESUME)(listeners.item_button(resume_button))
    app.action(Action.SUBSCRIPTION_DELETE)(listeners.item_button(delete_button))
    app.action(Action.ALERT_SNOOZE)(listeners.item_button(snooze_button))
    app.action(Action.ALERT_SNOOZE_WEEK)(listeners.item_button(snooze_button))

    return Subcommand(is_feature_text, listeners.handle_subscription_command)


class CommandBody(BaseModel):
    text: str = ""
    user_id: str | None = None
    channel_id: str | None = None


def _ids(body: dict) -> tuple[str | None, str | None]:
    return (body.get("user") or {}).get("id"), (body.get("channel") or {}).get("id")


def _send(respond: Respond, message: Message, *, replace: bool = False) -> None:
    respond(response_type="ephemeral", replace_original=replace, **message.send_kwargs())


class SubscriptionListeners:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @effects_after_ack
    def handle_subscription_command(
        self, ack: Ack, body: dict, respond: Respond, context: BoltContext
    ) -> None:
        ack()
        command = CommandBody.model_validate(body)

        def work() -> None:
            message = subscriptions_command(
                self.deps, command.text, user=command.user_id, channel=command.channel_id
            )
            _send(respond, message)

        run_after_ack(self.deps, context, body, respond, work)

    @effects_after_ack
    def handle_subscribe_button(
        self, ack: Ack, body: dict, respond: Respond, context: BoltContext
    ) -> None:
        ack()

        def work() -> None:
            value = SubscribeValue.model_validate_json(body["actions"][0]["value"])
            user, channel = _ids(body)
            _send(respond, subscribe_button(self.deps, value, user=user, channel=channel))

        run_after_ack(self.deps, context, body, respond, work)

    def item_button(self, flow: Callable[..., Message]) -> Callable[..., None]:
        @effects_after_ack
        def handle(ack: Ack, body: dict, respond: Respond, context: BoltContext) -> None:
            ack()

            def work() -> None:
                value = ItemValue.model_validate_json(body["actions"][0]["value"])
                user, _ = _ids(body)
                _send(respond, flow(self.deps, value, user=user))

            run_after_ack(self.deps, context, body, respond, work)

        handle.__name__ = f"handle_{flow.__name__}"
        return handle
