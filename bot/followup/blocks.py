"""The replies a requester gets in the request's thread (or DM) as its issue moves: all the
wording of the feature. Builders return `bot.slack_text.Message` and do no I/O.

Everything from GitHub (titles, logins, milestone titles, comment bodies) is shortened with
`truncate` first, then escaped with `escape_mrkdwn`: a comment holding `<!channel>`, HTML or
a disguised link (`<http://evil|http://good>`) shows those characters, pings nobody and
hides no link. A long comment is cut to an excerpt with a link to the whole of it.
"""

from __future__ import annotations

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from bot.followup.model import Change, Update
from bot.github import IssueRef
from bot.slack_text import Message, escape_mrkdwn, mrkdwn_link, truncate

TITLE_LIMIT = 120
# A section's text may hold 3,000 characters; escaping can make text longer (`&` is
# `&amp;`), so the excerpt is cut until its escaped form fits this budget.
EXCERPT_BUDGET = 2400
LOGIN_LIMIT = 60


def _quoted(escaped: str) -> str:
    lines = escaped.splitlines() or [""]
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines)


def excerpt(text: str, limit: int) -> tuple[str, bool]:
    """The escaped excerpt of `text` (at most `limit` characters before escaping), quoted
    line by line, and whether it was cut. The quoted form, its `> ` prefixes counted, fits
    EXCERPT_BUDGET: a comment of many short lines stays one section."""
    text = text.strip()
    cut = truncate(text, limit)
    while len(quoted := _quoted(escape_mrkdwn(cut))) > EXCERPT_BUDGET:
        cut = truncate(text, max(len(cut) - (len(quoted) - EXCERPT_BUDGET) - 1, 1))
    return quoted, cut != text


def _who(login: str | None) -> str:
    return f"*{escape_mrkdwn(truncate(login, LOGIN_LIMIT))}*" if login else "Someone"


def _issue(issue: IssueRef) -> str:
    return mrkdwn_link(
        issue.url, f"#{issue.number} {truncate(issue.title, TITLE_LIMIT, one_line=True)}"
    )


def _headline(update: Update, issue: IssueRef) -> tuple[str, str]:
    """(mrkdwn headline, plain notification text) for one change."""
    ref = _issue(issue)
    n = f"#{issue.number}"
    match update.kind:
        case Change.ASSIGNED:
            who = _who(update.login)
            return f":eyes: {who} picked this up: {ref}", f"{n}: {update.login} picked this up"
        case Change.SCHEDULED:
            sprint = escape_mrkdwn(truncate(update.milestone or "", TITLE_LIMIT, one_line=True))
            return (
                f":calendar: {ref} is scheduled into *{sprint}*.",
                f"{n} is scheduled into {update.milestone}",
            )
        case Change.COMMENT:
            return (
                f":speech_balloon: {_who(update.login)} commented on {ref}:",
                f"{n}: a comment from {update.login or 'the team'}",
            )
        case Change.DELIVERED:
            return (
                f":white_check_mark: Delivered: {ref} is closed as completed.",
                f"{n} is delivered",
            )
        case Change.NOT_PLANNED:
            reason = escape_mrkdwn(update.reason or "not planned")
            return (
                f":no_entry_sign: {ref} is closed as *{reason}*.",
                f"{n} is closed as {update.reason or 'not planned'}",
            )
        case Change.REOPENED:
            return f":arrows_counterclockwise: {ref} is reopened.", f"{n} is reopened"
        case Change.URGENT:
            return (
                f":rotating_light: {ref} is now marked *urgent*: it shows up in the analytics "
                "channel.",
                f"{n} is now urgent",
            )
    raise ValueError(update.kind)  # pragma: no cover - every kind is matched above


def build_followup_message(
    update: Update, issue: IssueRef, *, requester: str | None, excerpt_chars: int
) -> Message:
    """One reply. `requester` (a Slack user id) is mentioned in a thread reply, so they are
    notified; None in a DM, which notifies by itself."""
    headline, plain = _headline(update, issue)
    if requester:
        headline = f"<@{requester}> {headline}"
    blocks = [SectionBlock(text=MarkdownTextObject(text=headline)).to_dict()]
    if update.excerpt is not None and update.excerpt.strip():
        quoted, cut = excerpt(update.excerpt, excerpt_chars)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=quoted)).to_dict())
        link = update.link or issue.url
        label = "Read the rest on GitHub" if cut else "Open on GitHub"
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=mrkdwn_link(link, label))]).to_dict()
        )
    elif update.link:  # a comment without text, or a close whose comment was told before
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=mrkdwn_link(update.link, "Open on GitHub"))]
            ).to_dict()
        )
    text = escape_mrkdwn(truncate(f"{plain}: {issue.title}", 300, one_line=True))
    return Message(text=text, blocks=blocks)
