"""The urgent-issue message in #analytics, and the daily reminder of urgent issues nobody
has picked up. All user-facing wording of the feature lives here; builders return
`bot.slack_text.Message` and do no I/O.

Every piece of text from GitHub (title, logins, labels) goes through `escape_mrkdwn`, so
an issue titled `<!channel>` shows those characters and pings nobody.
"""

from __future__ import annotations

import datetime as dt

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from bot.slack_text import Message, escape_mrkdwn, mrkdwn_link, truncate
from bot.urgent.model import AlertState, AlertStatus

# Titles can be 256 characters on GitHub; a shorter cut keeps the message scannable.
TITLE_LIMIT = 150
# GitHub allows 100 labels of up to 50 characters; ten keep the details line far below
# Slack's 3,000-character limit for a text object.
LABEL_LIMIT = 10
# One section per issue in the digest (3,000 characters each); Slack allows 50 blocks.
DIGEST_LIMIT = 20


def format_duration(delta: dt.timedelta) -> str:
    """`45m`, `3h`, `2d 4h`: how long something took, to the precision people care about."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes and hours < 3 else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


# Slack renders this in each reader's time zone and keeps "today"/"yesterday" right as days
# pass, so the age never goes stale without us editing the message. Only documented
# tokens: a client that cannot render it shows the fallback.
OPENED_TEMPLATE = "{date_short_pretty} at {time}"


def slack_date(when: dt.datetime, template: str, fallback: str) -> str:
    return f"<!date^{int(when.timestamp())}^{template}|{escape_mrkdwn(fallback)}>"


def opened_at(created: dt.datetime, now: dt.datetime) -> str:
    """When the issue was opened, as Slack shows it; the fallback also gives the age then."""
    fallback = (
        f"{created.astimezone(dt.UTC):%b %-d %H:%M} UTC, {format_duration(now - created)} ago"
    )
    return slack_date(created, OPENED_TEMPLATE, fallback)


def _issue_ref(state: AlertState) -> str:
    return f"#{state.number} {truncate(state.title, TITLE_LIMIT)}"


def _logins(logins: list[str]) -> str:
    return ", ".join(f"@{escape_mrkdwn(login)}" for login in logins)


def headline(state: AlertState, *, now: dt.datetime) -> str:
    """One line saying where the issue stands; also the notification text (plain words)."""
    if state.status is AlertStatus.URGENT:
        return "🚨 Urgent issue"
    if state.status is AlertStatus.CLOSED:
        took = format_duration((state.closed_at or now) - state.created_at)
        who = f" by @{state.closed_by}" if state.closed_by else ""
        if state.not_planned:
            return f"⛔ closed as not planned{who} after {took}"
        return f"✅ closed{who} after {took}"
    if state.status is AlertStatus.NOT_URGENT:
        return "⬇️ no longer urgent"
    if state.status is AlertStatus.TRANSFERRED:
        return "➡️ moved to another repository"
    return "🗑️ issue deleted"


def build_urgent_message(state: AlertState, *, now: dt.datetime) -> Message:
    """The one message that tracks an urgent issue."""
    ref = _issue_ref(state)
    link = mrkdwn_link(state.url, ref)
    if state.status is not AlertStatus.URGENT:
        link = f"~{link}~"
    status = escape_mrkdwn(headline(state, now=now))
    first = SectionBlock(text=MarkdownTextObject(text=f"*{status}*  {link}"))

    details = [
        f"opened by @{escape_mrkdwn(state.author)} {opened_at(state.created_at, now)}",
        f"assigned to {_logins(state.assignees)}" if state.assignees else "*unassigned*",
    ]
    if state.labels:
        shown = ", ".join(f"`{escape_mrkdwn(truncate(x, 50))}`" for x in state.labels[:LABEL_LIMIT])
        more = len(state.labels) - LABEL_LIMIT
        details.append("labels: " + shown + (f" +{more} more" if more > 0 else ""))
    if state.due is not None:
        # Recorded, not computed from `now`: the message is only edited when its state
        # changes, so the flag must be part of the state (see AlertState.overdue).
        overdue = state.status is AlertStatus.URGENT and state.overdue
        details.append(f"due {state.due:%a %b %-d, %Y}" + (" (overdue)" if overdue else ""))
    if state.slack_thread:
        details.append(mrkdwn_link(state.slack_thread, "Slack thread"))
    details.append(escape_mrkdwn(state.repo))
    context = ContextBlock(elements=[MarkdownTextObject(text=" · ".join(details))])

    # The notification text is mrkdwn too (it shows in push notifications): escape it.
    text = escape_mrkdwn(f"{headline(state, now=now)}: {ref} ({state.repo})")
    return Message(text=text, blocks=[first.to_dict(), context.to_dict()])


def build_urgent_digest(states: list[AlertState], *, hours: float, now: dt.datetime) -> Message:
    """The reminder (bot/urgent/reminder.py) of urgent issues nobody has picked up."""
    states = sorted(states, key=lambda s: s.created_at)
    shown = states[:DIGEST_LIMIT]
    noun = "issue" if len(states) == 1 else "issues"
    limit = f"{hours:g}h"
    header = f"⏰ {len(states)} urgent {noun} still unassigned after more than {limit}"
    blocks = [SectionBlock(text=MarkdownTextObject(text=f"*{escape_mrkdwn(header)}*")).to_dict()]
    for s in shown:
        opened = opened_at(s.created_at, now)
        line = (
            f"• {mrkdwn_link(s.url, _issue_ref(s))} — opened by @{escape_mrkdwn(s.author)} {opened}"
        )
        blocks.append(SectionBlock(text=MarkdownTextObject(text=line)).to_dict())
    if len(states) > len(shown):
        more = f"…and {len(states) - len(shown)} more"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=more)]).to_dict())
    return Message(text=escape_mrkdwn(header), blocks=blocks)
