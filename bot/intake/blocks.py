"""Block Kit for request intake: the request modal (built from an issue form), reading its
submission back, and every message the requester sees. Pure functions, no I/O; all
user-facing wording of the feature is here.

Slack limits that shape this module (enforced by slack_sdk.models in to_dict()):
modal title <= 24 chars, <= 100 blocks, input label <= 2000, placeholder <= 150,
plain_text_input value <= 3000, option text <= 75, <= 100 options per select,
<= 10 checkboxes, private_metadata <= 3000 chars.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import BaseModel, Field
from slack_sdk.models.blocks import (
    CheckboxesElement,
    ContextBlock,
    DatePickerElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticMultiSelectElement,
    StaticSelectElement,
    UserMultiSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View as ModalView

from bot.ids import Action, RequestBlock, View
from bot.intake.forms import MAX_FIELDS, FieldKind, FormField, IssueForm
from bot.intake.model import Frequency, RequestRow, Source, Status, Submission, ThreadMessage
from bot.slack_text import Message, escape_mrkdwn, truncate

TITLE_MAX = 150  # leaves room for a form's title prefix within GitHub's 256
TEXT_MAX = 3000  # Slack's plain_text_input maximum
OPTION_TEXT_MAX = 75
QUESTION_PREFIX = "q:"

FREQUENCY_LABELS = {
    Frequency.ONE_TIME: "One-time",
    Frequency.DAILY: "Ongoing: daily",
    Frequency.WEEKLY: "Ongoing: weekly",
    Frequency.MONTHLY: "Ongoing: monthly",
}


def markdown_to_mrkdwn(markdown: str) -> str:
    """A form's Markdown text as Slack shows it: bold, links and headings; the rest as is."""
    text = escape_mrkdwn(markdown)
    text = re.sub(r"\*\*(.+?)\*\*", r"*\1*", text)
    text = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", r"<\2|\1>", text)
    return re.sub(r"(?m)^#{1,6}\s+(.+)$", r"*\1*", text)


class ModalState(BaseModel):
    """What travels in the modal's private_metadata (the form answers are in view.state)."""

    source: Source
    submitted_by: str
    form_key: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    thread_messages: int = 0  # the transcript itself waits in the state store (kv)
    thread_total: int | None = None  # the thread's length when longer than what was read
    thread_link: str | None = None  # its permalink, shown when not all of it was read


class Prefill(BaseModel):
    """Initial values: from a thread, a /metric answer, or the modal before a type switch."""

    title: str = ""
    answers: dict[str, str | list[str]] = Field(default_factory=dict)
    problem: str = ""  # goes to the form's problem question (see problem_field)
    requester_id: str | None = None
    people: list[str] = Field(default_factory=list)
    urgent: bool = False
    due_date: dt.date | None = None
    frequency: Frequency = Frequency.ONE_TIME
    business_unit: str | None = None


def problem_field(form: IssueForm) -> FormField | None:
    """Where a problem statement from elsewhere goes: the field with id "problem", else the
    first long-text question."""
    return form.field("problem") or next(
        (f for f in form.questions if f.kind is FieldKind.TEXTAREA), None
    )


def prefill_from_thread(messages: list[ThreadMessage], *, plain: str) -> Prefill:
    """Title proposed from the thread's first message (its first sentence); `plain` is
    that message as readable text. The original author is preselected as the requester."""
    first_line = next((line.strip() for line in plain.splitlines() if line.strip()), "")
    first_line = re.split(r"(?<=[?.!])\s", first_line, maxsplit=1)[0]
    root_user = messages[0].user if messages else None
    return Prefill(
        title=truncate(first_line, TITLE_MAX),
        problem=truncate(plain.strip(), TEXT_MAX),
        requester_id=root_user,
        people=[root_user] if root_user else [],
    )


def _question_block(field: FormField, initial: str | list[str] | None) -> InputBlock | SectionBlock:
    block_id = QUESTION_PREFIX + field.id
    label = truncate(field.label, 2000)
    hint = truncate(field.description, 2000) if field.description else None
    if field.kind in (FieldKind.INPUT, FieldKind.TEXTAREA):
        value = initial if isinstance(initial, str) and initial else field.value
        return InputBlock(
            block_id=block_id,
            label=label,
            hint=hint,
            optional=not field.required,
            element=PlainTextInputElement(
                action_id=Action.REQUEST_INPUT,
                multiline=field.kind is FieldKind.TEXTAREA,
                placeholder=truncate(field.placeholder, 150) if field.placeholder else None,
                initial_value=truncate(value, TEXT_MAX) if value else None,
                max_length=TEXT_MAX,
            ),
        )
    if field.kind is FieldKind.DROPDOWN:
        options = [
            Option(value=str(i), text=truncate(text, OPTION_TEXT_MAX))
            for i, text in enumerate(field.options[:100])
        ]
        chosen = [
            options[i]
            for i, text in enumerate(field.options[:100])
            if (text in initial if isinstance(initial, list) else text == initial)
        ]
        if not chosen and field.default is not None and field.default < len(options):
            chosen = [options[field.default]]
        element: Any
        if field.multiple:
            element = StaticMultiSelectElement(
                action_id=Action.REQUEST_INPUT, options=options, initial_options=chosen or None
            )
        else:
            element = StaticSelectElement(
                action_id=Action.REQUEST_INPUT,
                options=options,
                initial_option=chosen[0] if chosen else None,
            )
        return InputBlock(
            block_id=block_id, label=label, hint=hint, optional=not field.required, element=element
        )
    if field.kind is FieldKind.CHECKBOXES:
        boxes = field.checkboxes[:10]
        options = [
            Option(
                value=str(i),
                text=truncate(c.label, OPTION_TEXT_MAX),
                description="Required" if c.required else None,
            )
            for i, c in enumerate(boxes)
        ]
        ticked = set(initial or []) if isinstance(initial, list) else set()
        chosen = [options[i] for i, c in enumerate(boxes) if c.label in ticked]
        # Required is per box on GitHub; Slack can only require "at least one", so the
        # submission handler checks each required box and names the missing ones.
        return InputBlock(
            block_id=block_id,
            label=label,
            hint=hint,
            optional=True,
            element=CheckboxesElement(
                action_id=Action.REQUEST_INPUT, options=options, initial_options=chosen or None
            ),
        )
    text = truncate(markdown_to_mrkdwn(field.value.strip()), 3000) or " "
    return SectionBlock(block_id=block_id, text=MarkdownTextObject(text=text))


def build_request_modal(
    forms: list[IssueForm],
    form: IssueForm,
    state: ModalState,
    prefill: Prefill,
    units: list[str] | None = None,
) -> ModalView:
    """The request modal for `form`; the type select re-renders it for another form.
    `units`: the business units it asks about (settings.business_units; none: no question)."""
    state = state.model_copy(update={"form_key": form.key})
    blocks: list[Any] = []
    if state.thread_messages:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_thread_note(state))]))
    type_options = [
        Option(value=f.key, text=truncate(f.name, OPTION_TEXT_MAX)) for f in forms[:100]
    ]
    blocks.append(
        InputBlock(
            block_id=RequestBlock.TYPE,
            label="Request type",
            dispatch_action=True,
            element=StaticSelectElement(
                action_id=Action.REQUEST_TYPE_SELECT,
                options=type_options,
                initial_option=next(o for o in type_options if o.value == form.key),
            ),
        )
    )
    if form.description:
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=truncate(escape_mrkdwn(form.description), 3000))]
            )
        )
    blocks.append(
        InputBlock(
            block_id=RequestBlock.TITLE,
            label="Title",
            hint="One line: what you need.",
            element=PlainTextInputElement(
                action_id=Action.REQUEST_INPUT,
                initial_value=truncate(prefill.title, TITLE_MAX) or None,
                max_length=TITLE_MAX,
            ),
        )
    )
    target = problem_field(form)
    for field in form.fields[:MAX_FIELDS]:
        initial = prefill.answers.get(field.id)
        if initial is None and target is not None and field.id == target.id and prefill.problem:
            initial = prefill.problem
        if field.kind is FieldKind.MARKDOWN and not field.value.strip():
            continue
        blocks.append(_question_block(field, initial))
    blocks.extend(_standard_blocks(state, prefill))
    if units:
        blocks.append(_unit_block(units, prefill.business_unit))
    return ModalView(
        type="modal",
        callback_id=View.REQUEST,
        title="New data request",
        submit="File request",
        close="Cancel",
        private_metadata=state.model_dump_json(exclude_none=True),
        blocks=blocks,
    )


def _thread_note(state: ModalState) -> str:
    count = state.thread_messages
    total = state.thread_total or count
    if total <= count:
        return (
            f"From a thread in <#{state.channel_id}>: its {count} "
            f"message{'s' if count != 1 else ''} and link go into the issue."
        )
    # Slack permalinks are plain https URLs (no "|" or ">"), safe inside <...>.
    where = (
        f"the rest is in the thread: <{state.thread_link}>"
        if state.thread_link
        else ("the rest stays in the thread")
    )
    return (
        f"From a thread in <#{state.channel_id}>: {count:,} of {total:,} messages included "
        f"in the issue, with its link; {where}"
    )


def _standard_blocks(state: ModalState, prefill: Prefill) -> list[Any]:
    urgent = Option(value="urgent", text="Urgent: it cannot wait for sprint planning")
    frequency_options = [Option(value=f.value, text=FREQUENCY_LABELS[f]) for f in Frequency]
    return [
        InputBlock(
            block_id=RequestBlock.REQUESTER,
            label="Requested by",
            element=UserSelectElement(
                action_id=Action.REQUEST_INPUT,
                initial_user=prefill.requester_id or state.submitted_by,
            ),
        ),
        InputBlock(
            block_id=RequestBlock.URGENT,
            label="Timeline",
            optional=True,
            element=CheckboxesElement(
                action_id=Action.REQUEST_INPUT,
                options=[urgent],
                initial_options=[urgent] if prefill.urgent else None,
            ),
        ),
        InputBlock(
            block_id=RequestBlock.DUE_DATE,
            label="Needed by",
            optional=True,
            element=DatePickerElement(
                action_id=Action.REQUEST_INPUT,
                initial_date=prefill.due_date.isoformat() if prefill.due_date else None,
            ),
        ),
        InputBlock(
            block_id=RequestBlock.PEOPLE,
            label="People involved",
            hint="Who is involved, who drives it.",
            optional=True,
            element=UserMultiSelectElement(
                action_id=Action.REQUEST_INPUT, initial_users=prefill.people or None
            ),
        ),
        InputBlock(
            block_id=RequestBlock.FREQUENCY,
            label="Frequency",
            element=StaticSelectElement(
                action_id=Action.REQUEST_INPUT,
                options=frequency_options,
                initial_option=next(o for o in frequency_options if o.value == prefill.frequency),
            ),
        ),
    ]


def _unit_block(units: list[str], chosen: str | None) -> InputBlock:
    # The option's value is the group's name (settings: at most 75 characters, unique).
    options = [Option(value=u, text=truncate(u, OPTION_TEXT_MAX)) for u in units[:100]]
    initial = next((o for o in options if o.value == chosen), None)
    return InputBlock(
        block_id=RequestBlock.BUSINESS_UNIT,
        label="Which group is it for?",
        hint="It goes to that group's analyst, when it has one.",
        optional=True,
        element=StaticSelectElement(
            action_id=Action.REQUEST_INPUT, options=options, initial_option=initial
        ),
    )


# --- reading the modal back -------------------------------------------------------------


def _value(values: dict, block_id: str) -> dict:
    block = values.get(block_id) or {}
    return next(iter(block.values()), {}) if block else {}


def read_modal_values(values: dict, form: IssueForm, units: list[str] | None = None) -> Prefill:
    """view.state.values -> answers keyed by field id (option texts, not indexes). A
    business unit counts only when it is one of `units`."""
    answers: dict[str, str | list[str]] = {}
    for field in form.questions:
        element = _value(values, QUESTION_PREFIX + field.id)
        if not element:
            continue
        if field.kind in (FieldKind.INPUT, FieldKind.TEXTAREA):
            answers[field.id] = element.get("value") or ""
        elif field.kind is FieldKind.DROPDOWN:
            picked = element.get("selected_options") or (
                [element["selected_option"]] if element.get("selected_option") else []
            )
            found = [_by_index(field.options, o.get("value")) for o in picked]
            texts = [t for t in found if t is not None]
            answers[field.id] = texts if field.multiple else (texts[0] if texts else "")
        elif field.kind is FieldKind.CHECKBOXES:
            labels = [c.label for c in field.checkboxes]
            picked = [
                _by_index(labels, o.get("value")) for o in element.get("selected_options") or []
            ]
            answers[field.id] = [t for t in picked if t is not None]
    due = _value(values, RequestBlock.DUE_DATE).get("selected_date")
    frequency = (_value(values, RequestBlock.FREQUENCY).get("selected_option") or {}).get("value")
    unit = (_value(values, RequestBlock.BUSINESS_UNIT).get("selected_option") or {}).get("value")
    return Prefill(
        business_unit=unit if unit in (units or []) else None,
        title=_value(values, RequestBlock.TITLE).get("value") or "",
        answers=answers,
        requester_id=_value(values, RequestBlock.REQUESTER).get("selected_user"),
        people=_value(values, RequestBlock.PEOPLE).get("selected_users") or [],
        urgent=bool(_value(values, RequestBlock.URGENT).get("selected_options")),
        due_date=dt.date.fromisoformat(due) if due else None,
        frequency=Frequency(frequency) if frequency in set(Frequency) else Frequency.ONE_TIME,
    )


def _by_index(items: list[str], value: str | None) -> str | None:
    if value is None or not value.isdigit() or int(value) >= len(items):
        return None
    return items[int(value)]


def submission_from_modal(
    values: dict,
    form: IssueForm,
    state: ModalState,
    thread: list[ThreadMessage],
    units: list[str] | None = None,
) -> Submission:
    read = read_modal_values(values, form, units)
    return Submission(
        business_unit=read.business_unit,
        form=form,
        title=read.title,
        answers=read.answers,
        urgent=read.urgent,
        due_date=read.due_date,
        people=read.people,
        frequency=read.frequency,
        requester_id=read.requester_id or state.submitted_by,
        submitted_by=state.submitted_by,
        source=state.source,
        channel_id=state.channel_id,
        thread_ts=state.thread_ts,
        thread=thread,
        thread_total=state.thread_total if thread else None,
    )


def modal_errors(errors: dict[str, str]) -> dict[str, str]:
    """validate_submission()'s errors keyed by block_id, for response_action=errors."""
    fixed = {"title": RequestBlock.TITLE.value, "due_date": RequestBlock.DUE_DATE.value}
    return {fixed.get(key, QUESTION_PREFIX + key): message for key, message in errors.items()}


def form_gone_errors() -> dict[str, str]:
    """For response_action=errors: the modal's request type is no longer offered."""
    return {RequestBlock.TYPE: "This request type has changed; pick it again."}


# --- what the requester sees afterwards -------------------------------------------------


def _where(sub: Submission) -> str:
    return "in this thread" if sub.source is Source.MESSAGE and sub.thread_ts else "here in a DM"


def build_notice_view(text: str) -> ModalView:
    """A one-message modal (Close only); `text` is mrkdwn we wrote."""
    return ModalView(
        type="modal",
        callback_id=View.REQUEST,
        title="New data request",
        close="Close",
        blocks=[SectionBlock(text=MarkdownTextObject(text=truncate(text, 3000)))],
    )


def _title(row: RequestRow) -> str:
    """The requester-typed title, truncated and escaped for any mrkdwn (blocks and `text`)."""
    return escape_mrkdwn(truncate(row.title, 200))


def _issue_link(row: RequestRow) -> str:
    return f"<{row.issue_url}|#{row.issue_number} {_title(row)}>"


def build_request_loading_view() -> ModalView:
    """Opened at once by the message shortcut (the trigger_id expires after 3 s); replaced by
    the request modal once the thread is read."""
    return build_notice_view(":hourglass_flowing_sand: Reading the thread…")


def build_request_received_view(row: RequestRow) -> ModalView:
    where = "in the thread" if _where(row.submission) == "in this thread" else "in a DM"
    return build_notice_view(
        f":inbox_tray: Got it: *{_title(row)}*.\n"
        f"I'm filing it on GitHub now and will post the issue link {where}."
    )


def build_request_exists_view(row: RequestRow) -> ModalView:
    """Shown instead of a second modal (or after a duplicate submission) for a thread that
    already has a request."""
    if row.status is Status.FILED and row.issue_url:
        text = f"This thread already has a request: {_issue_link(row)}."
    else:
        text = (
            f"This thread already has a request, *{_title(row)}*. "
            "It is queued and will get its GitHub link in the thread once filed."
        )
    return build_notice_view(text)


def build_request_filed_message(row: RequestRow, handler: str | None = None) -> Message:
    """`handler`: who has it and why, plain text ("Ana Lopez, on support this week")."""
    text = f"Filed {_issue_link(row)} for the D&amp;A team."
    if row.submission.urgent:
        text += " It's marked *urgent*, so it shows up in #analytics."
    if handler:
        text += f" {escape_mrkdwn(handler)} has it."
    return Message(
        # The notification text is mrkdwn too: a typed "<!channel>" would ping everyone.
        text=f"Filed #{row.issue_number}: {_title(row)} {row.issue_url}",
        blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()],
    )


def build_support_ping_message(row: RequestRow, why: str) -> Message:
    """The DM to an analyst about a new urgent request (`why`: plain text, e.g. "on support
    this week")."""
    text = (
        f":rotating_light: New *urgent* request {_issue_link(row)}, from <@{row.requester_id}>. "
        f"You're {escape_mrkdwn(why)}."
    )
    return Message(
        text=f"Urgent request #{row.issue_number}: {_title(row)}",
        blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()],
    )


def build_request_queued_message(row: RequestRow, *, ref: str | None = None) -> Message:
    """The once-only note that a request waits in the queue. `ref` is set when the cause is a
    bug of ours, not GitHub: the wording then says so, with the reference in the log."""
    if ref is None and row.last_error is None:
        # Nothing failed: filing is just late (e.g. the bot restarted while filing it).
        why = "but filing it is taking longer than usual, so it's queued"
    elif ref is None:
        why = "but GitHub isn't available right now, so it's queued"
    else:
        why = (
            f"but something went wrong on my side while filing it (ref `{ref}`; the team has "
            "the details), so it's queued and I'll keep trying"
        )
    text = (
        f":hourglass_flowing_sand: Your request *{_title(row)}* is saved, {why}. "
        f"I'll post the issue link {_where(row.submission)} once it's filed; nothing to redo."
    )
    return Message(
        text=f"Request queued: {_title(row)}",
        blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()],
    )


def build_request_failed_message(row: RequestRow) -> Message:
    text = (
        f":warning: GitHub refused your request *{_title(row)}* "
        f"({escape_mrkdwn(row.last_error or 'unknown reason')}). It's saved, and the D&amp;A team "
        f"can file it again once that's fixed (request `{row.id[:8]}`)."
    )
    return Message(
        text=f"Request not filed: {_title(row)}",
        blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()],
    )
