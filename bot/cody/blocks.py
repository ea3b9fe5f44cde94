"""Block Kit for the Cody Pro daily post.

All wording users read in the post lives here. Builders are pure: a CodyReport in, a
Message out. The fallback text carries the headline numbers and the sparkline, so
notifications and clients without images still show the trend.

`show_revenue=False` (the post's channel is not in REVENUE_CHANNELS): no revenue figure
anywhere, neither in the blocks nor in the fallback text; one line says why.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.cody.report import SSC_TABLES, Change, CodyReport, fmt_day, fmt_time
from bot.slack_text import Message
from bot.sparkline import sparkline

LABELS = {
    "active_subscribers": "Active subscribers",
    "new_subscribers": "New subscribers",
    "retained_subscribers": "Retained subscribers",
    "canceled_subscribers": "Canceled subscribers",
    "daily_subscribers": "Daily subscribers",
    "daily_revenue": "Daily revenue",
    "daily_revenue_added": "Revenue added",
    "daily_revenue_retained": "Revenue retained",
    "mrr": "MRR",
    "arr": "ARR",
}
MONEY = {"daily_revenue", "daily_revenue_added", "daily_revenue_retained", "mrr", "arr"}


def fmt_count(n: float) -> str:
    return f"{n:,.0f}"


def fmt_money(usd: float) -> str:
    sign = "-" if usd < 0 else ""
    usd = abs(usd)
    return f"{sign}${usd:,.0f}" if usd == round(usd) else f"{sign}${usd:,.2f}"


def fmt_value(name: str, value: float) -> str:
    return fmt_money(value) if name in MONEY else fmt_count(value)


def fmt_signed(n: int) -> str:
    return f"{n:+,d}"


def fmt_change(name: str, change: Change) -> str:
    """'+12 (+1.0%)'; '+$90 (+1.0%)'; '±0'; '+5 (from 0)'."""
    delta = change.delta
    if delta == 0:
        return "±0"
    sign = "+" if delta > 0 else "−"
    amount = fmt_value(name, abs(delta))
    pct = change.pct
    suffix = " (from 0)" if pct is None else f" ({sign}{abs(pct):.1f}%)"
    return f"{sign}{amount}{suffix}"


def _weekday(day: dt.date) -> str:
    return f"{day:%a}"


def _field(report: CodyReport, name: str, note: str = "") -> str:
    value = fmt_value(name, getattr(report.day, name))
    previous = fmt_change(name, report.vs_previous(name))
    week = fmt_change(name, report.vs_week_ago(name))
    since = f"{previous} vs {_weekday(report.previous.date)}"
    week_since = f"{week} vs last {_weekday(report.day.date)}"
    return f"*{LABELS[name]}*{note}\n{value}\n{since} · {week_since}"


def _plain_field(report: CodyReport, name: str, note: str = "") -> str:
    return f"*{LABELS[name]}*{note}\n{fmt_value(name, getattr(report.day, name))}"


def _trend_line(report: CodyReport) -> str:
    active = [d.active_subscribers for d in report.trend]
    return (
        f"*{len(report.trend)}-day trend, active subscribers:* `{sparkline(active)}` "
        f"(low {fmt_count(min(active))}, high {fmt_count(max(active))})"
    )


def _reconciliation_line(report: CodyReport) -> str | None:
    rec = report.reconciliation
    if rec is None:
        return None
    rate = rec.match_rate_pct
    rate_text = "no subscribers on either side" if rate is None else f"{rate:.1f}% match"
    threshold = f"{rec.threshold_pct:g}%"
    verdict = (
        f":warning: below the {threshold}" if rec.below_threshold else f"(threshold {threshold})"
    )
    return (
        f"*Stripe reconciliation:* {rate_text} {verdict}\n"
        f"SSC {fmt_count(rec.ssc_active)} · Stripe ({rec.dataset}) {fmt_count(rec.stripe_active)}"
        f" · in both {fmt_count(rec.matched)} · SSC only {fmt_count(rec.ssc_only)}"
        f" · Stripe only {fmt_count(rec.stripe_only)}"
    )


REVENUE_HIDDEN = (
    ":lock: Revenue figures are hidden: this channel is not in `REVENUE_CHANNELS`. "
    "To show them here, add this channel's ID to `REVENUE_CHANNELS`."
)


def _source_line(report: CodyReport, *, show_revenue: bool) -> str:
    synced = f", synced through {fmt_time(report.synced_through)}" if report.synced_through else ""
    chart_note = " Chart attached."  # the job uploads the trend chart with every post
    if not show_revenue:
        return f"Source: SSC ({', '.join(SSC_TABLES)}){synced}. Dates in Pacific time.{chart_note}"
    return (
        f"Source: SSC ({', '.join(SSC_TABLES)}){synced}. Dates in Pacific time; "
        f"revenue at {fmt_money(report.price_usd)} per seat per month. "
        f"Revenue figures are internal (GAAP numbers come from Stripe).{chart_note}"
    )


def _blocks(report: CodyReport, title: str, *, show_revenue: bool) -> list[dict[str, Any]]:
    day = report.day
    blocks: list[Block] = [HeaderBlock(text=title)]
    for warning in report.warnings:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f":warning: *Unusual:* {warning}")))
    net_today = fmt_signed(day.net_change)
    blocks.append(
        SectionBlock(
            fields=[
                MarkdownTextObject(text=_field(report, "active_subscribers")),
                MarkdownTextObject(text=_field(report, "new_subscribers")),
                MarkdownTextObject(text=_field(report, "retained_subscribers")),
                MarkdownTextObject(text=_field(report, "canceled_subscribers")),
                MarkdownTextObject(text=_field(report, "daily_subscribers", " (new + retained)")),
                MarkdownTextObject(
                    text=f"*Net subscriber change* (new − canceled)\n{net_today} on the day · "
                    f"{fmt_signed(report.month_to_date_net)} month to date "
                    f"({fmt_count(report.month_to_date_new)} new, "
                    f"{fmt_count(report.month_to_date_canceled)} canceled since "
                    f"{day.date:%b} 1)"
                ),
            ]
        )
    )
    if show_revenue:
        blocks.append(DividerBlock())
        blocks.append(
            SectionBlock(
                fields=[
                    MarkdownTextObject(text=_field(report, "mrr")),
                    MarkdownTextObject(text=_plain_field(report, "arr", " (MRR × 12)")),
                    MarkdownTextObject(text=_plain_field(report, "daily_revenue")),
                    MarkdownTextObject(text=_plain_field(report, "daily_revenue_added", " (new)")),
                    MarkdownTextObject(
                        text=_plain_field(report, "daily_revenue_retained", " (retained)")
                    ),
                ]
            )
        )
    blocks.append(SectionBlock(text=MarkdownTextObject(text=_trend_line(report))))
    reconciliation = _reconciliation_line(report)
    if reconciliation:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=reconciliation)))
    source = _source_line(report, show_revenue=show_revenue)
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=source)]))
    if not show_revenue:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=REVENUE_HIDDEN)]))
    return [block.to_dict() for block in blocks]


def _fallback_text(report: CodyReport, lead: str, *, show_revenue: bool) -> str:
    day = report.day
    active_change = fmt_change("active_subscribers", report.vs_previous("active_subscribers"))
    revenue = f"; MRR {fmt_money(day.mrr)}, ARR {fmt_money(day.arr)}" if show_revenue else ""
    text = (
        f"{lead}: {fmt_count(day.active_subscribers)} active subscribers, {active_change} vs "
        f"the day before; {fmt_count(day.new_subscribers)} new, "
        f"{fmt_count(day.retained_subscribers)} retained, "
        f"{fmt_count(day.canceled_subscribers)} canceled{revenue}. {len(report.trend)}-day "
        f"trend: {sparkline([d.active_subscribers for d in report.trend])}"
    )
    if report.warnings:
        text += " ⚠ " + " ".join(report.warnings)
    return text


def build_cody_daily_message(report: CodyReport, *, show_revenue: bool = True) -> Message:
    """The morning post (with the trend chart uploaded beside it). `show_revenue=False`
    when the channel may not see revenue: counts, changes, trend and reconciliation only."""
    title = f"Cody Pro · {fmt_day(report.day.date)}"
    lead = f"Cody Pro for {fmt_day(report.day.date)}"
    return Message(
        text=_fallback_text(report, lead, show_revenue=show_revenue),
        blocks=_blocks(report, title, show_revenue=show_revenue),
    )
