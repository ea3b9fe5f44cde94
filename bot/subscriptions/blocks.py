"""Block Kit for subscriptions and alerts. Pure builders, no I/O; each returns a `Message`.
All user-facing wording of the feature lives here (and in the errors of model.py).

A delivery and an alert carry /metric's own answer (built by bot.metric.blocks, chart
included), so a subscribed number reads exactly like an asked one.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.ids import Action
from bot.metric.blocks import format_value
from bot.metric.catalog import Metric
from bot.slack_text import Message, escape_mrkdwn, truncate
from bot.subscriptions.model import (
    ALERT_USAGE,
    SUBSCRIBE_USAGE,
    Condition,
    Item,
    ItemValue,
    Kind,
    Status,
)

SECTION_LIMIT = 3000
MANAGE = "`/metric subscriptions` lists and manages them"


def _dicts(blocks: list[Block]) -> list[dict]:
    return [b.to_dict() for b in blocks]


def describe(item: Item, title: str | None = None) -> str:
    """One line, mrkdwn: what the item is."""
    name = f"*{escape_mrkdwn(title or item.metric)}*"
    if item.period_text:
        name += f" {escape_mrkdwn(item.period_text)}"
    if item.account:
        name += f" for {escape_mrkdwn(item.account)}"
    if item.by:
        name += f" by {item.by.value}"
    if item.kind is Kind.SUBSCRIPTION and item.schedule:
        return f"{name}, {item.schedule.describe()}, in <#{item.channel}>"
    assert item.rule is not None
    return f"{name} {item.rule.describe()}, in <#{item.channel}>"


def when(moment: dt.datetime | None, tz: ZoneInfo) -> str:
    if moment is None:
        return "not scheduled"
    local = moment.astimezone(tz)
    return f"{local:%a %b} {local.day}, {local:%H:%M %Z}"


def build_created(item: Item, title: str, next_run: dt.datetime | None, tz: ZoneInfo) -> Message:
    if item.kind is Kind.SUBSCRIPTION:
        head = f":white_check_mark: Subscribed: {describe(item, title)}."
        tail = f"First delivery {when(next_run, tz)} (team time, {tz.key})."
    else:
        head = f":white_check_mark: Alert set: {describe(item, title)}."
        tail = (
            "Checked once per complete period of data; it posts when the condition becomes "
            "true, and again only after it has been false for a whole period."
        )
    text = f"{head} {tail} {MANAGE}."
    section = SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_LIMIT)))
    section.accessory = ButtonElement(
        text="Undo",
        action_id=Action.SUBSCRIPTION_DELETE.value,
        value=ItemValue(id=item.id).model_dump_json(),
    )
    return Message(text=text, blocks=_dicts([section]))


def build_usage(word: str) -> Message:
    usage = ALERT_USAGE if word == "alert" else SUBSCRIBE_USAGE
    return Message(text=f"Usage: {usage}. {MANAGE}.")


def build_delivery(item: Item, answer: Message) -> Message:
    """A subscription's post: the /metric answer and a line saying why it is here."""
    assert item.schedule is not None
    why = f"Subscription of <@{item.creator}>, {item.schedule.describe()} · {MANAGE}"
    extra = ContextBlock(elements=[MarkdownTextObject(text=why)]).to_dict()
    return Message(text=answer.text, blocks=[*answer.blocks, extra])


def build_delivery_no_data(item: Item, reason: str) -> Message:
    """A subscription's post for a complete period without rows (e.g. an account whose
    instances send no user-level events): said as what it is, not as late data."""
    section = SectionBlock(text=MarkdownTextObject(text=truncate(reason, SECTION_LIMIT)))
    return build_delivery(item, Message(text=reason, blocks=_dicts([section])))


def build_alert_fired(
    item: Item,
    metric: Metric,
    answer: Message,
    value: float,
    previous: float | None,
    period_label: str,
    unit,
) -> Message:
    """The alert's post: value, threshold, the answer (chart included), a link to the
    answer (its dashboard), snooze buttons."""
    assert item.rule is not None
    rule = item.rule
    shown = format_value(value, unit)
    name = escape_mrkdwn(metric.title) + (
        f" for {escape_mrkdwn(item.account)}" if item.account else ""
    )
    if rule.condition is Condition.CHANGES:
        before = format_value(previous, unit)
        pct = 0.0 if not previous else 100 * (value - previous) / abs(previous)
        head = (
            f":rotating_light: *{name}* changed by {pct:+.1f}% vs the previous {rule.compare}: "
            f"{shown} (was {before}) for {period_label}. Threshold: {rule.threshold:g}%."
        )
    else:
        head = (
            f":rotating_light: *{name}* is {rule.condition} {format_value(rule.threshold, unit)}: "
            f"{shown} for {period_label}. Threshold: {rule.condition} "
            f"{format_value(rule.threshold, unit)}."
        )
    link = f"<{metric.dashboard}|Open the answer in the dashboard>"
    blocks: list[dict] = [
        SectionBlock(
            text=MarkdownTextObject(text=truncate(f"{head}\n{link}", SECTION_LIMIT))
        ).to_dict(),
        *answer.blocks,
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Alert of <@{item.creator}>: it posts again only after the condition "
                    f"has been false for a whole {rule.compare} · {MANAGE}"
                )
            ]
        ).to_dict(),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Snooze 1 day",
                    action_id=Action.ALERT_SNOOZE.value,
                    value=ItemValue(id=item.id, days=1).model_dump_json(),
                ),
                ButtonElement(
                    text="Snooze 1 week",
                    action_id=Action.ALERT_SNOOZE_WEEK.value,
                    value=ItemValue(id=item.id, days=7).model_dump_json(),
                ),
            ]
        ).to_dict(),
    ]
    text = escape_mrkdwn(f"Alert: {metric.title} {rule.describe()}: {shown} for {period_label}")
    return Message(text=text, blocks=blocks)


def build_alert_no_data(item: Item, title: str, reason: str) -> Message:
    text = (
        f":grey_question: Alert {describe(item, title)}: {reason} "
        "This is not a crossing; I will say it again only after data comes back."
    )
    return Message(text=text)


def build_stopped_notice(item: Item, title: str, reason: str) -> Message:
    """To the creator, by DM, when databot stopped their item."""
    what = "subscription" if item.kind is Kind.SUBSCRIPTION else "alert"
    return Message(
        text=f":no_entry: I stopped your {what} {describe(item, title)}: {reason} {MANAGE}."
    )


def build_snoozed(item: Item, until: dt.datetime, tz: ZoneInfo) -> Message:
    return Message(text=f":zzz: Alert {describe(item)} snoozed until {when(until, tz)}.")


def build_not_yours(item: Item) -> Message:
    return build_done(
        f"`{item.job_name}` was set up by <@{item.creator}>, so only they can change it. "
        f"Ask them, or make your own with {SUBSCRIBE_USAGE}."
    )


def build_done(text: str) -> Message:
    return Message(text=text)


def build_list(
    items: list[Item],
    titles: dict[str, str],
    next_runs: dict[int, dt.datetime | None],
    last_results: dict[int, str],
    tz: ZoneInfo,
    *,
    viewer: str | None,
) -> Message:
    """`/metric subscriptions`: the person's and the channel's items; the viewer's own
    ones with buttons, others' with who set them up (only they may change them)."""
    if not items:
        text = (
            f"No subscriptions or alerts here yet. Make one with {SUBSCRIBE_USAGE}, or "
            f"{ALERT_USAGE}."
        )
        return Message(text=text)
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=f"*Your and this channel's subscriptions and alerts* ({len(items)})"
            )
        )
    ]
    for item in items[:20]:
        state = "" if item.status is Status.ACTIVE else f" · _{item.status}_"
        if item.status_reason:
            state += f" ({truncate(item.status_reason, 200)})"  # databot's own words
        if item.snoozed_until:
            state += f" · snoozed until {when(item.snoozed_until, tz)}"
        kind = ":calendar:" if item.kind is Kind.SUBSCRIPTION else ":bell:"
        line = (
            f"{kind} `{item.job_name}` {describe(item, titles.get(item.metric))}{state}\n"
            f"Next: {when(next_runs.get(item.id), tz) if item.status is Status.ACTIVE else '-'}"
            f" · Last: {escape_mrkdwn(last_results.get(item.id, 'nothing yet'))}"
        )
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(line, SECTION_LIMIT))))
        if item.creator != viewer:
            owner = f"Set up by <@{item.creator}>: only they can pause or delete it."
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=owner)]))
            continue
        value = ItemValue(id=item.id).model_dump_json()
        toggle = (
            ButtonElement(text="Pause", action_id=Action.SUBSCRIPTION_PAUSE.value, value=value)
            if item.status is Status.ACTIVE
            else ButtonElement(
                text="Resume", action_id=Action.SUBSCRIPTION_RESUME.value, value=value
            )
        )
        blocks.append(
            ActionsBlock(
                elements=[
                    toggle,
                    ButtonElement(
                        text="Delete",
                        action_id=Action.SUBSCRIPTION_DELETE.value,
                        value=value,
                        style="danger",
                    ),
                ]
            )
        )
    if len(items) > 20:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"… and {len(items) - 20} more: `databot subscriptions`"
                    )
                ]
            )
        )
    return Message(text=f"{len(items)} subscriptions and alerts", blocks=_dicts(blocks))
