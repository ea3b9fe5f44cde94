"""Block Kit for `/metric`: the answer, the help, the misses. Pure builders, no I/O; each
returns a `Message` (the notification text and the blocks).

All user-facing wording of the feature lives here (and in the messages of the errors in
bot/metric/model.py). Text from outside (account names, dimension values) is escaped for
mrkdwn.
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.ids import Action
from bot.metric.catalog import Catalog, Sensitivity, Unit
from bot.metric.model import Answer, DataRequestPrefill, format_through
from bot.metric.periods import ACCEPTED_FORMS
from bot.settings import Settings
from bot.slack_text import DEMO_DATA_NOTE, DEMO_DATA_TEXT, Message, escape_mrkdwn, truncate
from bot.sparkline import sparkline

SECTION_LIMIT = 3000  # Slack's limit on a section's text
BUTTON_VALUE_LIMIT = 2000
BREAKDOWN_ROWS = 10

USAGE = (
    "`/metric NAME [PERIOD] [by DIMENSION] [for ACCOUNT]`, "
    "e.g. `/metric dau 7d`, `/metric mau last month for Acme` or "
    "`/metric searches 30d by deployment`; `/metric account Acme` gives an account's overview"
)
WORKING = "Still working on `/metric {text}`: the warehouse is taking a moment. The answer follows."
HELP_TEXT = "How to use /metric"
SHARED = "Shared in the channel."


# --------------------------------------------------------------------------- numbers


def format_value(value: float | None, unit: Unit) -> str:
    if value is None:
        return "no data"
    if unit is Unit.RATIO:
        return f"{value:.2f}"
    if unit is Unit.PERCENT:
        return f"{value:.1f}%"
    if unit is Unit.USD:
        return f"${value:,.0f}"
    if abs(value) >= 100 or value == int(value):
        return f"{round(value):,}"
    return f"{value:,.1f}"


def format_change(value: float | None, previous: float | None, unit: Unit) -> str:
    """Change vs the previous period: relative for counts and money, absolute for ratios
    and percentages (a ratio going 0.20 -> 0.22 is +0.02, not +10%)."""
    if value is None or previous is None:
        return "no data to compare"
    diff = value - previous
    arrow = "▲" if diff > 0 else "▼" if diff < 0 else "="
    if unit is Unit.RATIO:
        return f"{arrow} {abs(diff):.2f}" if diff else "no change"
    if unit is Unit.PERCENT:
        return f"{arrow} {abs(diff):.1f} pts" if diff else "no change"
    if previous == 0:
        return "no change" if value == 0 else f"{arrow} from 0"
    pct = 100 * diff / abs(previous)
    if round(pct, 1) == 0:
        return "no change"
    return f"{arrow} {abs(pct):.1f}%"


# --------------------------------------------------------------------------- answer


def build_metric_text(answer: Answer, settings: Settings) -> str:
    """Plain text of an answer: the CLI output; its first line, escaped, is the notification
    text of the message."""
    field, value, previous = answer.headline
    unit = field.unit
    lines = [
        f"{answer.metric.title}{_for(answer, plain=True)}: {format_value(value, unit)}",
        f"  period: {answer.period.label()}{_widened(answer)}",
        f"  vs {answer.previous_period.label()}: {format_value(previous, unit)} "
        f"({format_change(value, previous, unit)})",
    ]
    spark = sparkline(answer.trend)
    if spark:
        lines.append(f"  trend: {spark}  ({answer.trend_label})")
    for f, v, p in answer.values[1:]:
        lines.append(f"  {f.label}: {format_value(v, f.unit)} ({format_change(v, p, f.unit)})")
    for i, row in enumerate(answer.breakdown, 1):
        lines.append(
            f"  {i:>2}. {row.label[:30]:<30} {format_value(row.value, unit):>10}  "
            f"{format_change(row.value, row.previous, unit)}"
        )
    lines.append(f"  {_freshness(answer, settings)}")
    if answer.metric.note:
        lines.append(f"  note: {answer.metric.note}")
    lines.append(f"  dashboard: {answer.metric.dashboard}")
    if settings.uses_demo_warehouse:
        lines.append(f"  {DEMO_DATA_TEXT}")
    return "\n".join(lines)


def build_metric_message(
    answer: Answer,
    settings: Settings,
    *,
    shared_by: str | None = None,
) -> Message:
    """The answer. `shared_by` (a user id) marks the public copy posted by "Share in
    channel"; the ephemeral original carries the share button instead. The notification
    text is the headline, escaped (an account name comes from the warehouse, and Slack acts
    on `<!channel>` in this text too)."""
    metric = answer.metric
    field, value, previous = answer.headline
    unit = field.unit
    title = (
        f"*{escape_mrkdwn(metric.title)}*{_for(answer)} · {answer.period.label()}{_widened(answer)}"
    )
    headline = (
        f"*{format_value(value, unit)}*   {format_change(value, previous, unit)} "
        f"vs {answer.previous_period.label()} ({format_value(previous, unit)})"
    )
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=truncate(f"{title}\n{headline}", SECTION_LIMIT)))
    ]
    spark = sparkline(answer.trend)
    if spark:
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=f"`{spark}`  trend, {answer.trend_label}")]
            )
        )
    if len(answer.values) > 1:
        blocks.append(
            SectionBlock(
                fields=[
                    MarkdownTextObject(
                        text=f"*{escape_mrkdwn(f.label)}*\n{format_value(v, f.unit)}  "
                        f"{format_change(v, p, f.unit)}"
                    )
                    for f, v, p in answer.values[1:11]
                ]
            )
        )
    if answer.breakdown:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_breakdown_table(answer))))
    context = [_freshness(answer, settings), f"<{metric.dashboard}|Dashboard>"]
    if metric.note:
        context.append(escape_mrkdwn(metric.note))
    if shared_by:
        context.append(f"Asked by <@{shared_by}>")
    blocks.append(
        ContextBlock(
            elements=[MarkdownTextObject(text=truncate(" · ".join(context), SECTION_LIMIT))]
        )
    )
    if settings.uses_demo_warehouse:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=DEMO_DATA_NOTE)]))
    if not shared_by:
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text="Share in channel",
                        action_id=Action.METRIC_SHARE.value,
                        value=answer.share_value().model_dump_json(),
                    )
                ]
            )
        )
    text = escape_mrkdwn(build_metric_text(answer, settings).splitlines()[0])
    return Message(text=text, blocks=_dicts(blocks))


def _dicts(blocks: list[Block]) -> list[dict]:
    return [b.to_dict() for b in blocks]


def _for(answer: Answer, *, plain: bool = False) -> str:
    by = f" by {answer.by.label}" if answer.by else ""
    if not answer.account:
        return by
    account = answer.account if plain else escape_mrkdwn(answer.account)
    return f"{by} for {account}"


def _widened(answer: Answer) -> str:
    """What the reader should know about the period: a default, a widened window, a
    default moved back to the last complete day."""
    notes = []
    if answer.defaulted:
        notes.append(answer.default_note())
    if answer.period.days != answer.asked.days:
        notes.append(f"{answer.metric.min_days}-day minimum for {answer.metric.title}")
    if answer.shifted_from is not None:
        last = answer.shifted_from.end
        notes.append(f"ends on the last complete day: {last:%a %b} {last.day} is not complete yet")
    return f" ({'; '.join(notes)})" if notes else ""


def _freshness(answer: Answer, settings: Settings) -> str:
    through = f"data through {format_through(answer.data_through, settings)}"
    if not answer.complete:
        return f"⚠ {through}: this period is not complete yet"
    if not answer.recent:
        return "Data complete for this period"
    return through[0].upper() + through[1:]


def _breakdown_table(answer: Answer) -> str:
    unit = answer.headline[0].unit
    rows = answer.breakdown[:BREAKDOWN_ROWS]
    width = min(28, max(len(r.label) for r in rows))
    lines = []
    for i, row in enumerate(rows, 1):
        label = truncate(row.label, width)
        lines.append(
            f"{i:>2}. {label:<{width}} {format_value(row.value, unit):>9}  "
            f"{format_change(row.value, row.previous, unit)}"
        )
    rest = len(answer.breakdown) - len(rows)
    if rest > 0:
        lines.append(f"    … and {rest} more")
    # Inside a code block mrkdwn is not parsed, but <, > and & still need escaping.
    return truncate("```" + escape_mrkdwn("\n".join(lines)) + "```", SECTION_LIMIT)


# --------------------------------------------------------------------------- help & misses


def build_metric_help(catalog: Catalog) -> Message:
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=f"*Look up a number* with {USAGE}.\nPERIOD is one of "
                + ", ".join(ACCEPTED_FORMS)
                + ". Names are case-insensitive; periods are Pacific time."
            )
        )
    ]
    for group, metrics in catalog.groups().items():
        lines = [f"*{escape_mrkdwn(group)}*"]
        for m in metrics:
            lock = " :lock: _revenue_" if m.sensitivity is Sensitivity.REVENUE else ""
            account = " · for an account" if m.account_filter else ""
            if m.dimensions:
                account += " · by " + "/".join(d.value for d in m.dimensions)
            lines.append(
                f"• `{m.name}` {escape_mrkdwn(m.description)} "
                f"_(default {m.default_period}{account})_" + lock
            )
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=truncate("\n".join(lines), SECTION_LIMIT)))
        )
    blocks.append(
        _offer_section(
            "Not in the catalog?",
            DataRequestPrefill(
                title="New metric: ",
                problem="I looked for a metric in /metric and it is not in the catalog. "
                "What I need to know:",
            ),
        )
    )
    return Message(text=HELP_TEXT, blocks=_dicts(blocks))


def build_request_offer(message: str, prefill: DataRequestPrefill) -> Message:
    """A miss the catalog has no answer for: what went wrong, and a button that opens a data
    request prefilled with what was asked."""
    return Message(text=message, blocks=_dicts([_offer_section(message, prefill)]))


def _offer_section(message: str, prefill: DataRequestPrefill) -> SectionBlock:
    section = SectionBlock(text=MarkdownTextObject(text=truncate(message, SECTION_LIMIT)))
    value = prefill.model_dump_json()
    if len(value) > BUTTON_VALUE_LIMIT:
        prefill = DataRequestPrefill(title=prefill.title[:150], problem=prefill.problem[:1500])
        value = prefill.model_dump_json()
    section.accessory = ButtonElement(
        text="Open a data request", action_id=Action.METRIC_OPEN_REQUEST.value, value=value
    )
    return section


def build_metric_working(text: str) -> Message:
    """The note a slow lookup posts before its answer (text only)."""
    return Message(text=WORKING.format(text=escape_mrkdwn(" ".join(text.split())[:80])))


def build_metric_shared() -> Message:
    """What replaces the asker's ephemeral answer once it is posted in the channel."""
    return Message(text=SHARED)
