"""Request intake in Slack: /data-request, the "New data request" shortcut, the "Turn into
data request" message shortcut and the /metric "open a request" button all open the same
modal; its submission is stored in the outbox before the ack and filed after it."""

from __future__ import annotations

import logging

from pydantic import BaseModel
from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.deps import Deps
from bot.ids import Action, Command, RequestBlock, Shortcut, View
from bot.intake import outbox as intake
from bot.intake.blocks import (
    TEXT_MAX,
    TITLE_MAX,
    ModalState,
    Prefill,
    build_notice_view,
    build_request_exists_view,
    build_request_loading_view,
    build_request_modal,
    build_request_received_view,
    clip,
    modal_errors,
    prefill_from_thread,
    read_modal_values,
    submission_from_modal,
)
from bot.intake.forms import builtin_forms
from bot.intake.markdown import slack_to_plain
from bot.intake.outbox import Source, ThreadMessage
from handlers.errors import run_after_ack, user_message_for

logger = logging.getLogger(__name__)

THREAD_FETCH_LIMIT = 200


def register(app: App, deps: Deps) -> None:
    listeners = IntakeListeners(deps)
    app.command(Command.DATA_REQUEST)(listeners.handle_request_command)
    app.shortcut(Shortcut.NEW_REQUEST)(listeners.handle_request_shortcut)
    app.shortcut(Shortcut.THREAD_TO_REQUEST)(listeners.handle_request_thread_shortcut)
    app.action(Action.METRIC_OPEN_REQUEST)(listeners.handle_request_metric_button)
    app.action(Action.REQUEST_TYPE_SELECT)(listeners.handle_request_type_change)
    app.view(View.REQUEST)(listeners.handle_request_submission)


class MetricRequestSeed(BaseModel):
    """The value of the /metric answer's "open a request" button."""

    title: str = ""
    problem: str = ""


class IntakeListeners:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # --- opening the modal (views.open must happen within 3 s of the trigger) ----------

    def _open(self, client: WebClient, trigger_id: str, state: ModalState, prefill: Prefill):
        forms = intake.request_forms(self.deps)
        view = build_request_modal(forms, forms[0], state, prefill)
        client.views_open(trigger_id=trigger_id, view=view)

    def handle_request_command(self, ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        user = body["user_id"]
        prefill = Prefill(
            title=clip((body.get("text") or "").strip(), TITLE_MAX), requester_id=user
        )
        state = ModalState(source=Source.COMMAND, submitted_by=user)
        self._open(client, body["trigger_id"], state, prefill)

    def handle_request_shortcut(self, ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        user = body["user"]["id"]
        state = ModalState(source=Source.SHORTCUT, submitted_by=user)
        self._open(client, body["trigger_id"], state, Prefill(requester_id=user))

    def handle_request_metric_button(self, ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        user = body["user"]["id"]
        try:
            seed = MetricRequestSeed.model_validate_json(body["actions"][0].get("value") or "{}")
        except ValueError:
            seed = MetricRequestSeed()
        prefill = Prefill(
            title=clip(seed.title, TITLE_MAX),
            problem=clip(seed.problem, TEXT_MAX),
            requester_id=user,
        )
        state = ModalState(source=Source.METRIC, submitted_by=user)
        self._open(client, body["trigger_id"], state, prefill)

    def handle_request_thread_shortcut(self, ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        # Reading the thread (the state store, conversations.replies, users.info per person)
        # can take longer than the trigger_id's 3 s: open a small modal now, fill it after.
        opened = client.views_open(trigger_id=body["trigger_id"], view=build_request_loading_view())
        view = opened["view"]
        run_after_ack(
            self.deps, body, None, self._fill_from_thread, client, body, view["id"], view["hash"]
        )

    def _fill_from_thread(self, client: WebClient, body: dict, view_id: str, view_hash: str):
        try:
            self._read_into_modal(client, body, view_id, view_hash)
        except Exception as error:  # noqa: BLE001 - the one error path, shown in the modal
            # The user is looking at the modal, not the channel: say it there.
            self._replace(client, view_id, view_hash, build_notice_view(user_message_for(error)))

    def _read_into_modal(self, client: WebClient, body: dict, view_id: str, view_hash: str):
        channel = body["channel"]["id"]
        message = body["message"]
        root = message.get("thread_ts") or message["ts"]
        existing = intake.request_for_thread(self.deps, channel, root)
        if existing is not None:
            self._replace(client, view_id, view_hash, build_request_exists_view(existing))
            return
        thread = self._read_thread(client, channel, root, message)
        intake.save_thread_draft(self.deps, channel, root, thread)
        # Mentions in the first message become names (users.info, cached per process).
        plain = slack_to_plain(thread[0].text, intake.user_namer(self.deps))
        state = ModalState(
            source=Source.MESSAGE,
            submitted_by=body["user"]["id"],
            channel_id=channel,
            thread_ts=root,
            thread_messages=len(thread),
        )
        forms = intake.request_forms(self.deps)
        modal = build_request_modal(
            forms, forms[0], state, prefill_from_thread(thread, plain=plain)
        )
        self._replace(client, view_id, view_hash, modal)

    @staticmethod
    def _replace(client: WebClient, view_id: str, view_hash: str, view) -> None:
        """views.update guarded by the opened view's hash, so it never overwrites a view that
        changed meanwhile; a modal the user closed is simply gone."""
        try:
            client.views_update(view_id=view_id, hash=view_hash, view=view)
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error not in ("hash_conflict", "not_found"):
                raise
            logger.info("request modal %s not updated: %s", view_id, error)

    def _read_thread(
        self, client: WebClient, channel: str, root: str, message: dict
    ) -> list[ThreadMessage]:
        try:
            found = client.conversations_replies(channel=channel, ts=root, limit=THREAD_FETCH_LIMIT)
            messages = found.get("messages") or []
        except SlackApiError as exc:
            # e.g. not_in_channel: the shortcut's own message is still worth a request
            logger.info("could not read thread %s/%s: %s", channel, root, exc.response.get("error"))
            messages = [message]
        return [
            ThreadMessage(user=m.get("user"), ts=m["ts"], text=m.get("text") or "")
            for m in messages
            if m.get("ts")
        ] or [ThreadMessage(user=message.get("user"), ts=root, text=message.get("text") or "")]

    # --- inside the modal ---------------------------------------------------------------

    def handle_request_type_change(self, ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        view = body["view"]
        state = ModalState.model_validate_json(view["private_metadata"])
        forms = intake.request_forms(self.deps)
        chosen = intake.find_form(forms, body["actions"][0]["selected_option"]["value"])
        current = intake.find_form(forms, state.form_key)
        if chosen is None:
            chosen = forms[0]
        # Keep what was typed: Slack resets inputs whose initial values change on update.
        prefill = read_modal_values(view["state"]["values"], current) if current else Prefill()
        client.views_update(
            view_id=view["id"],
            hash=view["hash"],
            view=build_request_modal(forms, chosen, state, prefill),
        )

    def handle_request_submission(self, ack: Ack, body: dict, view: dict) -> None:
        deps = self.deps
        state = ModalState.model_validate_json(view["private_metadata"])
        form = intake.find_form(intake.request_forms(deps) + builtin_forms(), state.form_key)
        if form is None:
            ack(
                response_action="errors",
                errors={RequestBlock.TYPE: "This request type has changed; pick it again."},
            )
            return
        thread = (
            intake.load_thread_draft(deps, state.channel_id, state.thread_ts)
            if state.source is Source.MESSAGE and state.channel_id and state.thread_ts
            else []
        )
        submission = submission_from_modal(view["state"]["values"], form, state, thread)
        errors = intake.validate_submission(submission, deps.today())
        if errors:
            ack(response_action="errors", errors=modal_errors(errors))
            return
        # Stored before the ack: once Slack closes the modal, the request is in the outbox.
        dedupe_key = f"view:{view['id']}"
        result = intake.submit_request(deps, submission, dedupe_key)
        if result.created or result.row.dedupe_key == dedupe_key:
            ack(response_action="update", view=build_request_received_view(result.row))
        else:
            ack(response_action="update", view=build_request_exists_view(result.row))
        if result.created:
            run_after_ack(deps, body, None, intake.file_request, deps, result.row.id)
