"""Block Kit (and terminal text) for the account card, `/metric account NAME`. Pure
builders, no I/O. Account names and every value from the warehouse are escaped."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.metric.blocks import format_value
from bot.metric.catalog import Unit
from bot.metric.model import TELEMETRY_MEANING, AccountCard, Answer, format_through
from bot.settings import Settings
from bot.slack_text import DEMO_DATA_NOTE, DEMO_DATA_TEXT, Message, escape_mrkdwn, truncate
from bot.sparkline import sparkline

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000


def _change(answer: Answer) -> str:
    field, value, previous = answer.headline
    if value is None or previous is None:
        return ""
    diff = value - previous
    arrow = "▲" if diff > 0 else "▼" if diff < 0 else "="
    if field.unit is Unit.RATIO:
        return f"{arrow} {abs(diff):.2f}" if diff else "no change"
    if field.unit is Unit.PERCENT:
        return f"{arrow} {abs(diff):.1f} pts" if diff else "no change"
    if previous == 0:
        return "no change" if value == 0 else f"{arrow} from 0"
    pct = 100 * diff / abs(previous)
    return "no change" if round(pct, 1) == 0 else f"{arrow} {abs(pct):.1f}%"


def _number(answer: Answer | None) -> str:
    if answer is None:
        return "unavailable"
    field, value, _ = answer.headline
    change = _change(answer)
    return format_value(value, field.unit) + (f"  {change} vs the 30 days before" if change else "")


def _tally(pairs: list[tuple[str, int]]) -> str:
    if not pairs:
        return "unknown"
    return ", ".join(f"{v} ×{n}" if len(pairs) > 1 or n > 1 else v for v, n in pairs)


def card_facts(card: AccountCard) -> list[tuple[str, str]]:
    """(label, plain value) of every line of the card, in order: shared by Slack and the
    terminal (Slack escapes them)."""
    facts: list[tuple[str, str]] = []
    mau = _number(card.monthly_users)
    if card.monthly_users is not None:
        spark = sparkline(card.monthly_users.trend)
        if spark:
            mau += f"  {spark}"
    facts.append(("Monthly users (pings)", mau))
    facts.append(("DAU/MAU (event data)", _number(card.dau_mau)))
    seats = f"{card.seats_purchased:,} purchased" if card.seats_purchased else "none purchased"
    consumption = card.seat_consumption
    if consumption is not None:
        seats += f", {format_value(consumption.headline[1], Unit.PERCENT)} consumed"
    facts.append(("Seats", seats))
    versions = card.versions()
    if versions:
        latest = next((i.latest_version for i in card.instances if i.latest_version), None)
        parts = []
        for version, behind, n in versions:
            if behind == 0:
                where = "latest"
            elif behind is None:
                where = "not a known release"
            else:
                where = f"{behind} release{'s' if behind != 1 else ''} behind {latest}"
            parts.append(f"{version} ({where})" + (f" ×{n}" if n > 1 else ""))
        facts.append(("Version", ", ".join(parts)))
    else:
        facts.append(("Version", "unknown (no ping in these 30 days)"))
    facts.append(("Deployment", _tally(card.counts("deployment_type"))))
    facts.append(("Hosting", _tally(card.counts("hosting_type"))))
    telemetry = _tally(card.counts("telemetry_status"))
    facts.append(("Telemetry", f"{telemetry}; so: {TELEMETRY_MEANING[card.telemetry]}"))
    hosts = card.code_hosts
    facts.append(("Code hosts", ", ".join(hosts) if hosts else "unavailable"))
    repos = card.repos
    facts.append(("Repos", f"{repos:,}" if repos is not None else "unavailable"))
    facts.append(
        (
            "Instances",
            f"{len(card.instances)} licensed, {len(card.pinged)} pinged in these 30 days",
        )
    )
    cody = card.cody_users
    if cody is None:
        facts.append(("Cody usage", "unavailable"))
    else:
        events = cody.values[1][1] if len(cody.values) > 1 else None
        text = f"{_number(cody)} users"
        if events is not None:
            text += f", {round(events):,} events"
        facts.append(("Cody usage", text))
    return facts


def _freshness(card: AccountCard, settings: Settings) -> str:
    through = f"data through {format_through(card.data_through, settings)}"
    if not card.complete:
        return f"⚠ {through}: the last day is not complete yet"
    return through[0].upper() + through[1:]


def build_account_card_text(card: AccountCard, settings: Settings) -> str:
    """The card as plain text: the terminal (`databot metric account NAME`) and the first
    line is the notification text."""
    kind = "customer" if card.is_customer else "not a customer"
    lines = [
        f"Account overview: {card.account} ({kind})",
        f"  period: {card.period.label()} (the last 30 complete days)",
    ]
    lines += [f"  {label}: {value}" for label, value in card_facts(card)]
    for gap in card.unavailable:
        lines.append(f"  unavailable: {gap.what}: {gap.why}")
    lines.append(f"  {_freshness(card, settings)}")
    if settings.uses_demo_warehouse:
        lines.append(f"  {DEMO_DATA_TEXT}")
    return "\n".join(lines)


def build_account_card(card: AccountCard, settings: Settings) -> Message:
    kind = "customer" if card.is_customer else "not a customer"
    head = (
        f"*Account overview: {escape_mrkdwn(card.account)}* ({kind})\n"
        f"{card.period.label()} (the last 30 complete days)"
    )
    fields = [
        MarkdownTextObject(
            text=truncate(f"*{label}*\n{escape_mrkdwn(value)}", FIELD_LIMIT),
        )
        for label, value in card_facts(card)
    ]
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=head))]
    # Slack allows at most 10 fields per section.
    for start in range(0, len(fields), 10):
        blocks.append(SectionBlock(fields=fields[start : start + 10]))
    if card.unavailable:
        lines = [f"• *{escape_mrkdwn(g.what)}*: {escape_mrkdwn(g.why)}" for g in card.unavailable]
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=truncate("*Not available*\n" + "\n".join(lines), SECTION_LIMIT)
                )
            )
        )
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_freshness(card, settings))]))
    if settings.uses_demo_warehouse:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=DEMO_DATA_NOTE)]))
    text = escape_mrkdwn(build_account_card_text(card, settings).splitlines()[0])
    return Message(text=text, blocks=[b.to_dict() for b in blocks])
