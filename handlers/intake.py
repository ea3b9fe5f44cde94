"""Request intake in Slack: /data-request, the "New data request" shortcut, the "Turn into
data request" message shortcut and the /metric "open a request" button all open the same
modal; its submission is stored in the outbox before the ack and filed after it. The flows
are in bot/intake/modal.py."""

from __future__ import annotations

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.deps import Deps
from bot.ids import Action, Command, Shortcut, View
from bot.intake import modal
from bot.intake.filing import file_request
from bot.intake.mirror import take_thread_reply
from bot.intake.modal import (
    MetricButton,
    Placeholder,
    RequestCommand,
    ShownModal,
    ThreadShortcut,
    Trigger,
    TypeChange,
)
from bot.intake.model import ThreadReply
from handlers.errors import run_after_ack, user_message_for


def register(app: App, deps: Deps) -> None:
    listeners = IntakeListeners(deps)
    app.command(Command.DATA_REQUEST)(listeners.handle_request_command)
    app.shortcut(Shortcut.NEW_REQUEST)(listeners.handle_request_shortcut)
    app.shortcut(Shortcut.THREAD_TO_REQUEST)(listeners.handle_request_thread_shortcut)
    app.action(Action.METRIC_OPEN_REQUEST)(listeners.handle_request_metric_button)
    app.action(Action.REQUEST_TYPE_SELECT)(listeners.handle_request_type_change)
    app.view(View.REQUEST)(listeners.handle_request_submission)
    # message.channels / message.groups: replies in a request's thread (Bolt acks events
    # itself, before the listener runs).
    app.event("message")(listeners.handle_thread_reply)


class IntakeListeners:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # --- opening the modal ----------------------------------------------------------------

    def handle_request_command(self, ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        modal.open_from_command(self.deps, client, RequestCommand.model_validate(body))

    def handle_request_shortcut(self, ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        modal.open_from_shortcut(self.deps, client, Trigger.model_validate(body))

    def handle_request_metric_button(self, ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        modal.open_from_metric_button(self.deps, client, MetricButton.model_validate(body))

    def handle_request_thread_shortcut(
        self, ack: Ack, body: dict, client: WebClient, context: BoltContext
    ) -> None:
        ack()
        shortcut = ThreadShortcut.model_validate(body)
        placeholder = modal.open_thread_placeholder(client, shortcut.trigger_id)
        run_after_ack(
            self.deps, context, body, None, self._fill_from_thread, client, shortcut, placeholder
        )

    def _fill_from_thread(
        self, client: WebClient, shortcut: ThreadShortcut, placeholder: Placeholder
    ) -> None:
        try:
            modal.fill_from_thread(self.deps, client, shortcut, placeholder)
        except Exception as error:  # noqa: BLE001 - the one error path, shown in the modal
            # The user is looking at the modal, not the channel: say it there.
            modal.show_notice(client, placeholder, user_message_for(error))

    # --- inside the modal -----------------------------------------------------------------

    def handle_request_type_change(self, ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        modal.switch_request_type(self.deps, client, TypeChange.model_validate(body))

    def handle_request_submission(
        self, ack: Ack, body: dict, view: dict, context: BoltContext
    ) -> None:
        answer = modal.submit_modal(self.deps, ShownModal.model_validate(view))
        if answer.errors is not None:
            ack(response_action="errors", errors=answer.errors)
            return
        ack(response_action="update", view=answer.view)
        if answer.file_id is not None:
            run_after_ack(self.deps, context, body, None, file_request, self.deps, answer.file_id)

    # --- the request's thread -------------------------------------------------------------

    def handle_thread_reply(self, body: dict, event: dict, context: BoltContext) -> None:
        if "channel" not in event or "ts" not in event:
            return  # not a message in a conversation (nothing of ours)
        reply = ThreadReply.model_validate(event)
        if not reply.is_person_reply:
            return  # edits, deletions, bot posts, top-level messages
        run_after_ack(
            self.deps,
            context,
            body,
            None,
            take_thread_reply,
            self.deps,
            reply,
            body.get("event_id"),
        )
