"""The request modal's flows, one per thing a listener in handlers/intake.py hands over:
open it from each trigger (views.open must happen within 3 s of the trigger), read a thread
into it after the placeholder, switch its request type, take its submission."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import AliasPath, BaseModel, Field
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View as ModalView

from bot.intake import outbox
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
    form_gone_errors,
    modal_errors,
    prefill_from_thread,
    read_modal_values,
    submission_from_modal,
)
from bot.intake.filing import user_namer
from bot.intake.forms import builtin_forms, find_form
from bot.intake.markdown import slack_to_plain
from bot.intake.model import Source, ThreadMessage, validate_submission
from bot.slack_text import truncate

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.deps import Deps

logger = logging.getLogger(__name__)

# The most messages of one thread a request quotes (read in pages; the rest stays in the
# thread, and the modal and the issue say how many are included and link it).
THREAD_MESSAGES_MAX = 1_000
# conversations.replies: Slack recommends no more than 200 messages a page.
THREAD_PAGE_SIZE = 200


# --- what the listeners hand over, parsed from Slack's payloads ---------------------------


class RequestCommand(BaseModel):
    """`/data-request [title]`."""

    user_id: str
    trigger_id: str
    text: str | None = None


class Trigger(BaseModel):
    """A shortcut or a button: who used it, and the trigger_id views.open needs."""

    user_id: str = Field(validation_alias=AliasPath("user", "id"))
    trigger_id: str


class MetricRequestSeed(BaseModel):
    """The value of the /metric answer's "open a request" button."""

    title: str = ""
    problem: str = ""


class MetricButton(Trigger):
    value: str | None = Field(default=None, validation_alias=AliasPath("actions", 0, "value"))


class ShortcutMessage(BaseModel):
    ts: str
    thread_ts: str | None = None
    user: str | None = None
    text: str | None = None


class ThreadShortcut(Trigger):
    """The "Turn into data request" message shortcut, on any message of a thread."""

    channel_id: str = Field(validation_alias=AliasPath("channel", "id"))
    message: ShortcutMessage

    @property
    def root(self) -> str:
        return self.message.thread_ts or self.message.ts


class ShownModal(BaseModel):
    """The request modal as Slack sends it back (with a block action in it, or submitted)."""

    id: str
    hash: str | None = None
    private_metadata: str
    state_values: dict[str, Any] = Field(validation_alias=AliasPath("state", "values"))

    @property
    def modal_state(self) -> ModalState:
        return ModalState.model_validate_json(self.private_metadata)


class TypeChange(BaseModel):
    view: ShownModal
    form_key: str = Field(validation_alias=AliasPath("actions", 0, "selected_option", "value"))


class Placeholder(BaseModel):
    """The small modal the message shortcut opens at once; replaced once the thread is read."""

    view_id: str
    view_hash: str


@dataclass(frozen=True)
class SubmissionAck:
    """How the listener acks a submission: with `errors` shown in the modal, or with `view`
    replacing it; `file_id` is the request to file after the ack (None: nothing new)."""

    errors: dict[str, str] | None = None
    view: ModalView | None = None
    file_id: str | None = None


# --- opening the modal ------------------------------------------------------------------


def open_from_command(deps: Deps, client: WebClient, command: RequestCommand) -> None:
    user = command.user_id
    prefill = Prefill(title=truncate((command.text or "").strip(), TITLE_MAX), requester_id=user)
    state = ModalState(source=Source.COMMAND, submitted_by=user)
    _open(deps, client, command.trigger_id, state, prefill)


def open_from_shortcut(deps: Deps, client: WebClient, trigger: Trigger) -> None:
    user = trigger.user_id
    state = ModalState(source=Source.SHORTCUT, submitted_by=user)
    _open(deps, client, trigger.trigger_id, state, Prefill(requester_id=user))


def open_from_metric_button(deps: Deps, client: WebClient, click: MetricButton) -> None:
    user = click.user_id
    try:
        seed = MetricRequestSeed.model_validate_json(click.value or "{}")
    except ValueError:
        seed = MetricRequestSeed()
    prefill = Prefill(
        title=truncate(seed.title, TITLE_MAX),
        problem=truncate(seed.problem, TEXT_MAX),
        requester_id=user,
    )
    state = ModalState(source=Source.METRIC, submitted_by=user)
    _open(deps, client, click.trigger_id, state, prefill)


def _open(
    deps: Deps, client: WebClient, trigger_id: str, state: ModalState, prefill: Prefill
) -> None:
    forms = outbox.request_forms(deps)
    view = build_request_modal(forms, forms[0], state, prefill, deps.settings.business_units)
    client.views_open(trigger_id=trigger_id, view=view)


# --- from a thread: a placeholder at once, the modal after the ack ------------------------


def open_thread_placeholder(client: WebClient, trigger_id: str) -> Placeholder:
    """Reading the thread (the state store, conversations.replies, users.info per person)
    can take longer than the trigger_id's 3 s: open a small modal now, fill it after."""
    opened = client.views_open(trigger_id=trigger_id, view=build_request_loading_view())
    view = opened["view"]
    return Placeholder(view_id=view["id"], view_hash=view["hash"])


def fill_from_thread(
    deps: Deps, client: WebClient, shortcut: ThreadShortcut, placeholder: Placeholder
) -> None:
    """The placeholder becomes the request modal filled from the thread, or says which
    request the thread already has."""
    channel, root = shortcut.channel_id, shortcut.root
    existing = outbox.request_for_thread(deps, channel, root)
    if existing is not None:
        replace_view(client, placeholder, build_request_exists_view(existing))
        return
    thread, total = _read_thread(client, shortcut)
    outbox.save_thread_draft(deps, channel, root, thread)
    # Mentions in the first message become names (users.info, cached per process).
    plain = slack_to_plain(thread[0].text, user_namer(deps))
    longer = total > len(thread)
    state = ModalState(
        source=Source.MESSAGE,
        submitted_by=shortcut.user_id,
        channel_id=channel,
        thread_ts=root,
        thread_messages=len(thread),
        thread_total=total if longer else None,
        thread_link=_thread_link(client, channel, root) if longer else None,
    )
    forms = outbox.request_forms(deps)
    modal = build_request_modal(
        forms,
        forms[0],
        state,
        prefill_from_thread(thread, plain=plain),
        deps.settings.business_units,
    )
    replace_view(client, placeholder, modal)


def show_notice(client: WebClient, placeholder: Placeholder, text: str) -> None:
    """`text` (mrkdwn we wrote) in place of the placeholder: the user is looking there."""
    replace_view(client, placeholder, build_notice_view(text))


def replace_view(client: WebClient, placeholder: Placeholder, view: ModalView) -> None:
    """views.update guarded by the opened view's hash, so it never overwrites a view that
    changed meanwhile; a modal the user closed is simply gone."""
    try:
        client.views_update(view_id=placeholder.view_id, hash=placeholder.view_hash, view=view)
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error not in ("hash_conflict", "not_found"):
            raise
        logger.info("request modal %s not updated: %s", placeholder.view_id, error)


def _read_thread(client: WebClient, shortcut: ThreadShortcut) -> tuple[list[ThreadMessage], int]:
    """The thread's first THREAD_MESSAGES_MAX messages (page by page, following Slack's
    next_cursor), and how many messages the thread has in all (at least as many)."""
    channel, root, message = shortcut.channel_id, shortcut.root, shortcut.message
    messages: list[dict[str, Any]] = []
    seen: set[str] = set()
    total = 0
    cursor: str | None = None
    while len(messages) < THREAD_MESSAGES_MAX:
        page_size = min(THREAD_PAGE_SIZE, THREAD_MESSAGES_MAX - len(messages))
        try:
            # slack_sdk leaves out arguments that are None (the first page has no cursor).
            found = client.conversations_replies(
                channel=channel, ts=root, limit=page_size, cursor=cursor
            )
        except SlackApiError as exc:
            # e.g. not_in_channel: the shortcut's own message is still worth a request; a
            # later page that fails leaves what was read (the issue says how much).
            logger.info("could not read thread %s/%s: %s", channel, root, exc.response.get("error"))
            if not messages:
                messages = [message.model_dump()]
            cursor = None
            break
        for m in found.get("messages") or []:
            ts = m.get("ts")
            if ts == root:  # the parent says how many replies the thread has
                total = max(total, int(m.get("reply_count") or 0) + 1)
            if ts and ts not in seen:  # the parent may head every page: keep it once
                seen.add(ts)
                messages.append(m)
        cursor = (found.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            break
    thread = [
        ThreadMessage(user=m.get("user"), ts=m["ts"], text=m.get("text") or "")
        for m in messages[:THREAD_MESSAGES_MAX]
        if m.get("ts")
    ] or [ThreadMessage(user=message.user, ts=root, text=message.text or "")]
    more = 1 if cursor or len(messages) > len(thread) else 0  # more, but not counted by Slack
    return thread, max(total, len(thread) + more)


def _thread_link(client: WebClient, channel: str, root: str) -> str | None:
    """The thread's permalink, for the modal's "the rest is in the thread"."""
    try:
        return client.chat_getPermalink(channel=channel, message_ts=root)["permalink"]
    except SlackApiError as exc:
        logger.info("no permalink for %s/%s: %s", channel, root, exc.response.get("error"))
        return None


# --- inside the modal -------------------------------------------------------------------


def switch_request_type(deps: Deps, client: WebClient, change: TypeChange) -> None:
    """The modal again, for the request type just chosen."""
    view = change.view
    state = view.modal_state
    forms = outbox.request_forms(deps)
    chosen = find_form(forms, change.form_key)
    current = find_form(forms, state.form_key)
    if chosen is None:
        chosen = forms[0]
    # Keep what was typed: Slack resets inputs whose initial values change on update.
    units = deps.settings.business_units
    prefill = read_modal_values(view.state_values, current, units) if current else Prefill()
    client.views_update(
        view_id=view.id,
        hash=view.hash,
        view=build_request_modal(forms, chosen, state, prefill, units),
    )


def submit_modal(deps: Deps, view: ShownModal) -> SubmissionAck:
    """Check the submission and store it in the outbox; what to ack with, and what to file
    after the ack."""
    state = view.modal_state
    form = find_form(outbox.request_forms(deps) + builtin_forms(), state.form_key)
    if form is None:
        return SubmissionAck(errors=form_gone_errors())
    thread = (
        outbox.load_thread_draft(deps, state.channel_id, state.thread_ts)
        if state.source is Source.MESSAGE and state.channel_id and state.thread_ts
        else []
    )
    submission = submission_from_modal(
        view.state_values, form, state, thread, deps.settings.business_units
    )
    errors = validate_submission(submission, deps.today())
    if errors:
        return SubmissionAck(errors=modal_errors(errors))
    # Stored before the ack: once Slack closes the modal, the request is in the outbox.
    dedupe_key = f"view:{view.id}"
    result = outbox.submit_request(deps, submission, dedupe_key)
    if result.created or result.row.dedupe_key == dedupe_key:
        shown = build_request_received_view(result.row)
    else:
        shown = build_request_exists_view(result.row)
    return SubmissionAck(view=shown, file_id=result.row.id if result.created else None)
