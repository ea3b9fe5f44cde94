"""Block Kit for `/metric`: the answer, the help, the misses. Pure builders, no I/O; each
returns a `Message` (the notification text and the blocks).

All user-facing wording of the feature lives here (and in the messages of the errors in
bot/metric/model.py). Text from outside (account names, dimension values) is escaped for
mrkdwn.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    RawTextObject,
    SectionBlock,
    TableBlock,
)

from bot.charts import MAX_CATEGORIES, DataVisualizationBlock, build_chart_block
from bot.ids import Action
from bot.metric.catalog import Catalog, Metric, Sensitivity, Unit
from bot.metric.model import (
    Answer,
    DataRequestPrefill,
    channel_ref,
    format_through,
    tables_read,
)
from bot.metric.periods import ACCEPTED_FORMS, Period
from bot.settings import Settings
from bot.slack_text import DEMO_DATA_NOTE, DEMO_DATA_TEXT, Message, escape_mrkdwn, truncate
from bot.sparkline import sparkline

SECTION_LIMIT = 3000  # Slack's limit on a section's text
BUTTON_VALUE_LIMIT = 2000
BREAKDOWN_ROWS = 10
CELL_LIMIT = 200  # characters shown in one table cell
ALT_TEXT_LIMIT = 1000  # Slack's limit on a file's alt_txt

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


def comparisons(answer: Answer) -> list[tuple[str, str, float | None]]:
    """(vs what, short name, its value) for the headline: the previous period, and for
    one day also the same weekday a week earlier ("vs Sun", "vs last Mon")."""
    prev = answer.previous_period
    if answer.period.days == 1:
        out = [(f"vs {prev.start:%a}", f"{prev.start:%a}", answer.headline[2])]
        week = answer.week_ago_period
        if week is not None and answer.week_ago is not None:
            out.append((f"vs last {week.start:%a}", f"last {week.start:%a}", answer.week_ago))
        return out
    return [(f"vs {prev.label()}", prev.label(), answer.headline[2])]


def _comparison_text(answer: Answer) -> str:
    field, value, _ = answer.headline
    unit = field.unit
    return ", ".join(
        f"{format_change(value, other, unit)} {vs} ({format_value(other, unit)})"
        for vs, _, other in comparisons(answer)
    )


def build_metric_notification(answer: Answer) -> str:
    """The message's `text`: what a notification and a screen reader say. It states the
    value, the period and the change on its own (the blocks may not be shown). Plain text
    (an account name from the warehouse is escaped: Slack acts on `<!channel>` here too)."""
    field, value, _ = answer.headline
    text = (
        f"{answer.metric.title}{_for(answer, plain=True)}: {format_value(value, field.unit)} "
        f"for {answer.period.label()}{_widened(answer)}; {_comparison_text(answer)}"
    )
    return escape_mrkdwn(text)


def build_metric_text(answer: Answer, settings: Settings) -> str:
    """Plain text of an answer: the CLI output."""
    field, value, previous = answer.headline
    unit = field.unit
    lines = [
        f"{answer.metric.title}{_for(answer, plain=True)}: {format_value(value, unit)}",
        f"  period: {answer.period.label()}{_widened(answer)}",
    ]
    lines.append(
        f"  vs {answer.previous_period.label()}: {format_value(previous, unit)} "
        f"({format_change(value, previous, unit)})"
    )
    week = answer.week_ago_period
    if week is not None and answer.week_ago is not None:
        lines.append(
            f"  vs {week.label()} (same weekday): {format_value(answer.week_ago, unit)} "
            f"({format_change(value, answer.week_ago, unit)})"
        )
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
    channel" (or asked with @databot); the ephemeral original carries the share button
    instead. A trend is a native chart (line), a breakdown a table block and a bar chart;
    the sparkline stays as text for clients that draw no chart."""
    metric = answer.metric
    field, value, _ = answer.headline
    unit = field.unit
    title = (
        f"*{escape_mrkdwn(metric.title)}*{_for(answer)} · {answer.period.label()}{_widened(answer)}"
    )
    headline = f"*{format_value(value, unit)}*   {_comparison_text(answer)}"
    blocks: list[Block | DataVisualizationBlock] = [
        SectionBlock(text=MarkdownTextObject(text=truncate(f"{title}\n{headline}", SECTION_LIMIT)))
    ]
    trend_chart = build_trend_chart(answer)
    if trend_chart is not None:
        blocks.append(trend_chart)
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
        blocks.append(build_breakdown_table(answer))
        rest = len(answer.breakdown) - BREAKDOWN_ROWS
        if rest > 0:
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"… and {rest} more")]))
        bars = build_breakdown_chart(answer)
        if bars is not None:
            blocks.append(bars)
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
                    ),
                    # Handled by the subscriptions feature (same value: the lookup).
                    ButtonElement(
                        text="Subscribe",
                        action_id=Action.METRIC_SUBSCRIBE.value,
                        value=answer.share_value().model_dump_json(),
                    ),
                ]
            )
        )
    return Message(text=build_metric_notification(answer), blocks=_dicts(blocks))


def _dicts(blocks: Sequence[Block | DataVisualizationBlock]) -> list[dict]:
    return [b.to_dict() for b in blocks]


def point_label(period: Period) -> str:
    """A trend point's dates, short enough for a chart label (20 characters)."""
    if period.days == 1:
        return f"{period.start:%b} {period.start.day}"
    if period.start.month == period.end.month:
        return f"{period.start:%b} {period.start.day}–{period.end.day}"
    return f"{period.start:%b} {period.start.day} – {period.end:%b} {period.end.day}"


def build_trend_chart(answer: Answer) -> DataVisualizationBlock | None:
    """The trend as a line chart: the last 20 points (Slack's limit on categories)."""
    if len(answer.trend) < 2 or len(answer.trend_periods) != len(answer.trend):
        return None
    points = list(zip(answer.trend_periods, answer.trend, strict=True))[-MAX_CATEGORIES:]
    if sum(v is not None for _, v in points) < 2:
        return None
    field = answer.headline[0]
    first, last = points[0][0], points[-1][0]
    span = Period(first.start, last.end).label()
    return build_chart_block(
        "line",
        f"{answer.metric.title}{_for(answer, plain=True)} · {span}",
        [point_label(p) for p, _ in points],
        {answer.metric.title: [v for _, v in points]},
        x_label=_trend_kind(answer),
        y_label=_unit_label(field.unit, field.label),
    )


class ChartPicture(BaseModel):
    """What the PNG of an answer's trend shows: points, title, and the alt text read to
    people who cannot see it (Slack's `alt_txt`, at most 1,000 characters)."""

    labels: list[str]
    values: list[float | None]
    title: str
    y_label: str
    alt_text: str
    filename: str


def build_metric_picture(answer: Answer) -> ChartPicture | None:
    """The trend as a picture (PNG, for "Share in channel" and @databot answers), or None
    when there is no trend to draw. Every point, not only the last 20 of the block chart."""
    points = [(p, v) for p, v in zip(answer.trend_periods, answer.trend, strict=False)]
    known = [(p, v) for p, v in points if v is not None]
    if len(known) < 2:
        return None
    field = answer.headline[0]
    unit = field.unit
    low = min(known, key=lambda pv: pv[1])
    high = max(known, key=lambda pv: pv[1])
    span = Period(points[0][0].start, points[-1][0].end).label()
    title = f"{answer.metric.title}{_for(answer, plain=True)} · {span}"
    alt = (
        f"Line chart of {answer.metric.title}{_for(answer, plain=True)}, "
        f"{answer.trend_label} ({span}): lowest {format_value(low[1], unit)} "
        f"({point_label(low[0])}), highest {format_value(high[1], unit)} "
        f"({point_label(high[0])}), latest {format_value(known[-1][1], unit)} "
        f"({point_label(known[-1][0])})."
    )
    return ChartPicture(
        labels=[point_label(p) for p, _ in points],
        values=[v for _, v in points],
        title=title,
        y_label=_unit_label(unit, field.label),
        alt_text=truncate(alt, ALT_TEXT_LIMIT),
        filename=f"{answer.metric.name}-{answer.period.end.isoformat()}.png",
    )


def _trend_kind(answer: Answer) -> str:
    days = {p.days for p in answer.trend_periods}
    if days == {1}:
        return "day"
    if len(days) == 1:
        return f"{days.pop()}-day period"
    return answer.trend_label


def build_breakdown_chart(answer: Answer) -> DataVisualizationBlock | None:
    """A breakdown as bars: this period and the one it is compared with."""
    rows = [r for r in answer.breakdown if r.value is not None][:MAX_CATEGORIES]
    if not rows:
        return None
    field = answer.headline[0]
    series: dict[str, list[float | None]] = {"This period": [r.value for r in rows]}
    if any(r.previous is not None for r in rows):
        series["Previous"] = [r.previous for r in rows]
    return build_chart_block(
        "bar",
        f"{answer.metric.title}{_for(answer, plain=True)} · {answer.period.label()}",
        [r.label for r in rows],
        series,
        y_label=_unit_label(field.unit, field.label),
    )


def build_breakdown_table(answer: Answer) -> TableBlock:
    """A breakdown as Slack's table block: rank, value, change (the first BREAKDOWN_ROWS)."""
    unit = answer.headline[0].unit
    rows = answer.breakdown[:BREAKDOWN_ROWS]
    header = ["#", answer.metric.dimension or "", answer.headline[0].label, "change"]

    def cells(texts: list[str]) -> list[RawTextObject]:
        # Table cells are plain text (not mrkdwn): no escaping, but never empty.
        return [RawTextObject(text=truncate(t, CELL_LIMIT) or "–") for t in texts]

    body = [
        cells(
            [
                str(i),
                row.label,
                format_value(row.value, unit),
                format_change(row.value, row.previous, unit),
            ]
        )
        for i, row in enumerate(rows, 1)
    ]
    return TableBlock(
        rows=[cells([h.replace("_", " ") for h in header]), *body],
        column_settings=[{"align": "right"}, None, {"align": "right"}, {"align": "right"}],
    )


def _unit_label(unit: Unit, label: str) -> str:
    return f"{label} (USD)" if unit is Unit.USD else label


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


# --------------------------------------------------------------------------- help & misses


def build_metric_help(catalog: Catalog) -> Message:
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=f"*Look up a number* with {USAGE}.\nPERIOD is one of "
                + ", ".join(ACCEPTED_FORMS)
                + ". Names are case-insensitive; periods are Pacific time. "
                "`/metric help NAME` explains one metric; `@databot dau 7d` in a channel "
                "or thread answers there, in the thread."
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


def _metric_facts(metric: Metric, catalog: Catalog, settings: Settings) -> list[tuple[str, str]]:
    """(what, mrkdwn) lines of `/metric help NAME`."""
    if metric.sensitivity is Sensitivity.REVENUE:
        where = ", ".join(channel_ref(c) for c in settings.revenue_channels)
        people = len(settings.revenue_users)
        if not where and not people:
            who = ":lock: revenue data: answered nowhere yet (REVENUE_CHANNELS is empty)"
        else:
            who = (
                ":lock: revenue data: answered only"
                + (f" in {where}" if where else "")
                + (" or" if where and people else "")
                + (f" to the {people} people in REVENUE_USERS" if people else "")
                + "; shared only into revenue channels"
            )
    else:
        who = "everyone, in any channel"
    tables = tables_read(metric, catalog)
    facts = [
        ("Definition", escape_mrkdwn(metric.description)),
        ("Tables", ", ".join(f"`{t}`" for t in tables) or "see the SQL in the catalog"),
        ("Default period", f"`{escape_mrkdwn(metric.default_period)}`"),
        ("Who may see it", who),
        ("Owner", escape_mrkdwn(metric.owner)),
        ("Dashboard", f"<{metric.dashboard}|{escape_mrkdwn(metric.dashboard)}>"),
    ]
    if metric.min_days > 1:
        facts.append(("Minimum window", f"{metric.min_days} days (shorter periods are widened)"))
    if metric.account_filter:
        facts.append(("By account", f"yes: `/metric {metric.name} 30d for ACCOUNT`"))
    if metric.aliases:
        facts.append(("Also called", ", ".join(f"`{escape_mrkdwn(a)}`" for a in metric.aliases)))
    if metric.note:
        facts.append(("Caveat", escape_mrkdwn(metric.note)))
    return facts


def build_metric_help_one(metric: Metric, catalog: Catalog, settings: Settings) -> Message:
    """`/metric help NAME`: one metric explained."""
    lines = [f"*`{metric.name}`: {escape_mrkdwn(metric.title)}* ({escape_mrkdwn(metric.group)})"]
    lines += [f"*{what}:* {text}" for what, text in _metric_facts(metric, catalog, settings)]
    lines.append(f"Try `/metric {metric.name}` or `/metric {metric.name} last 7 days`.")
    section = SectionBlock(text=MarkdownTextObject(text=truncate("\n".join(lines), SECTION_LIMIT)))
    return Message(text=f"About {metric.name}: {metric.description}", blocks=_dicts([section]))


def build_metric_help_text(metric: Metric, catalog: Catalog, settings: Settings) -> str:
    """`databot metric help NAME`: the same facts for a terminal."""
    lines = [f"{metric.name}: {metric.title} ({metric.group})"]
    for what, text in _metric_facts(metric, catalog, settings):
        plain = re.sub(r"<([^|>]+)\|[^>]*>", r"\1", text).replace("`", "")
        lines.append(f"  {what.lower()}: {plain.replace(':lock: ', '')}")
    return "\n".join(lines)


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
