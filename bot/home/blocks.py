"""The Home tab's view (views.publish). Pure; every string from GitHub is truncated, then
escaped for Slack (an issue titled `<!channel>` pings nobody)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.home.model import HomeData, HomeRequest, UrgentIssue
from bot.ids import Action
from bot.slack_text import escape_mrkdwn, mrkdwn_link, truncate

TITLE_MAX = 120


def _people(logins: list[str]) -> str:
    if not logins:
        return "nobody yet"
    return ", ".join(escape_mrkdwn(f"@{login}") for login in logins[:5])


def _when(at: dt.datetime | None, tz: ZoneInfo) -> str:
    return f"{at.astimezone(tz):%b %-d, %H:%M}" if at else "–"


def _request_line(r: HomeRequest, tz: ZoneInfo) -> str:
    title = truncate(r.title, TITLE_MAX, one_line=True)
    head = mrkdwn_link(r.url, f"#{r.number} {title}") if r.url else f"*{escape_mrkdwn(title)}*"
    return (
        f"{head}\n{escape_mrkdwn(r.status)} · assigned: {_people(r.assignees)} · "
        f"updated {_when(r.updated_at, tz)}"
    )


def _urgent_line(u: UrgentIssue, tz: ZoneInfo) -> str:
    title = truncate(u.title, TITLE_MAX, one_line=True)
    return (
        f":rotating_light: {mrkdwn_link(u.url, f'#{u.number} {title}')} · "
        f"{_people(u.assignees)} · opened {_when(u.created_at, tz)}"
    )


SECTION_MAX = 3000


def _urgent_list(data: HomeData, tz: ZoneInfo) -> str:
    """The urgent issues, one line each, cut by whole lines (never inside a link or an
    escaped entity) to fit one section, with "… and N more" for the rest."""
    urgent = data.urgent or []
    total = max(data.urgent_total, len(urgent))
    lines: list[str] = []
    for u in urgent:
        line = _urgent_line(u, tz)
        rest = total - len(lines) - 1
        more = f"\n… and {rest} more" if rest else ""
        if len("\n".join([*lines, line])) + len(more) > SECTION_MAX:
            break
        lines.append(line)
    if total > len(lines):
        lines.append(f"… and {total - len(lines)} more")
    return "\n".join(lines)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, 3000)))


def build_home_view(data: HomeData, tz: ZoneInfo) -> View:
    blocks: list[Any] = [
        HeaderBlock(text="Data & Analytics"),
        ActionsBlock(
            elements=[
                ButtonElement(
                    action_id=Action.HOME_NEW_REQUEST,
                    text="New data request",
                    style="primary",
                    value="home",
                )
            ]
        ),
    ]
    who = (
        f"*On support this week:* {escape_mrkdwn(data.support.display)} (<@{data.support.slack}>)"
        if data.support
        else "*On support this week:* nobody is set up (SUPPORT_ANALYSTS)"
    )
    if data.support_next:
        who += f"; next week {escape_mrkdwn(data.support_next.display)}"
    if data.sprint is None:
        sprint = "*This sprint:* unknown (GitHub did not answer)"
    else:
        dates = f"{data.sprint.start:%a %b %-d} – {data.sprint.end:%a %b %-d}"
        named = (
            f"{escape_mrkdwn(truncate(data.sprint.milestone, 100))}, "
            if data.sprint.milestone
            else ""
        )
        sprint = f"*This sprint:* {named}{dates}"
    blocks.append(_section(f"{sprint}\n{who}"))
    blocks.append(DividerBlock())
    blocks.append(_section("*Your requests*"))
    if not data.requests:
        blocks.append(_section("None yet. Use *New data request* above, or `/data-request`."))
    for request in data.requests:
        blocks.append(_section(_request_line(request, tz)))
    if data.github_down:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(text="GitHub did not answer: statuses may be out of date.")
                ]
            )
        )
    blocks.append(DividerBlock())
    blocks.append(_section("*Urgent issues open now*"))
    if data.urgent is None:
        blocks.append(_section("GitHub did not answer; try again in a minute."))
    elif not data.urgent:
        blocks.append(_section("None. :tada:"))
    else:
        blocks.append(_section(_urgent_list(data, tz)))
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text=f"As of {data.today:%a %b %-d}.")])
    )
    return View(type="home", blocks=blocks)
