"""Block Kit for the sprint posts (digest, planning reminder, check-in). Pure: no I/O;
every builder takes the post's content (bot/sprints/content.py) and returns a Message.

Slack's limits, enforced here in one place: a section's text is at most 3,000 characters,
a header's 150, a message at most 50 blocks. Long lists are cut at whole lines and end
with "…and N more" linking the full GitHub search; titles are shortened at a word.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.slack_text import Message, escape_mrkdwn, truncate
from bot.sprints.calendar import format_range
from bot.sprints.content import (
    CheckIn,
    IssueItem,
    IssueSet,
    PlanningReminder,
    SprintDigest,
    group_by_type,
)

SECTION_MAX = 3000
HEADER_MAX = 150
TITLE_MAX = 90
# Room kept at the end of a section for the "…and N more" line.
MORE_RESERVE = 200
FALLBACK_MAX = 3000


def issue_line(item: IssueItem, *, flag_unassigned: bool = True) -> str:
    who = ", ".join(escape_mrkdwn(a) for a in item.assignees)
    if not who:
        who = ":warning: _unassigned_" if flag_unassigned else "_unassigned_"
    title = escape_mrkdwn(truncate(item.title, TITLE_MAX, one_line=True))
    return f"• <{item.url}|#{item.number}> {title} — {who}"


def fit_lines(heading: str, lines: Sequence[tuple[str, bool]], hidden: int, more_url: str) -> str:
    """`heading` and as many whole `lines` as fit one section; (text, is_item) lines.

    `hidden` counts items not in `lines` at all (beyond the first search page); items cut
    here are added to it for the "…and N more" link.
    """
    budget = SECTION_MAX - MORE_RESERVE
    out = [heading]
    size = len(heading)
    left_out = 0
    for text, is_item in lines:
        if left_out or size + 1 + len(text) > budget:
            left_out += 1 if is_item else 0
            continue
        out.append(text)
        size += 1 + len(text)
    # A group heading left dangling with none of its items is noise.
    while len(out) > 1 and not out[-1].startswith("•") and left_out:
        out.pop()
    more = left_out + hidden
    if more:
        out.append(f"…and {more:,} more: <{more_url}|see all on GitHub>")
    return "\n".join(out)


def _grouped_lines(
    items: list[IssueItem], type_labels: list[str], skip: set[str]
) -> list[tuple[str, bool]]:
    lines: list[tuple[str, bool]] = []
    for name, members in group_by_type(items, type_labels, skip):
        lines.append((f"*{escape_mrkdwn(name[:1].upper() + name[1:])}* ({len(members)})", False))
        lines.extend((issue_line(i), True) for i in members)
    return lines


def _issue_section(
    heading: str, issues: IssueSet, lines: Sequence[tuple[str, bool]], empty: str
) -> SectionBlock:
    if not issues.items:
        return _section(f"{heading}\n{empty}")
    hidden = max(0, issues.total - len(issues.items))
    return _section(fit_lines(heading, lines, hidden, issues.search_url))


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_MAX)))


def _header(text: str) -> HeaderBlock:
    title = truncate(text, HEADER_MAX, one_line=True)
    return HeaderBlock(text=PlainTextObject(text=title, emoji=True))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(text, SECTION_MAX))])


def _render(blocks: list[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]  # to_dict() validates Slack's limits


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def build_digest_message(d: SprintDigest) -> Message:
    """The Monday digest."""
    skip = {d.urgent_label.lower()}
    wins_n = d.wins.total
    plan_n = d.plan.total
    unassigned = d.plan.unassigned
    repo_url = d.wins.search_url.split("/issues?")[0]

    blocks: list[Block] = [
        _header(f":rocket: {d.sprint.name} starts today"),
        _context(
            f"{format_range(d.sprint.start, d.sprint.end)} · <{repo_url}|{escape_mrkdwn(d.repo)}>"
        ),
        _issue_section(
            f"*:trophy: Wins from {escape_mrkdwn(d.previous.name)}:* "
            f"{_plural(wins_n, 'issue')} done",
            d.wins,
            _grouped_lines(d.wins.items, d.type_labels, skip),
            "_Nothing was closed as completed in the last sprint._",
        ),
        DividerBlock(),
    ]

    where = {
        "milestone": f"in the {escape_mrkdwn(d.sprint.milestone or '')} milestone",
        "label": "with the sprint label",
        "no milestone": "open in the repo (this sprint has no milestone yet)",
        "open issues": "open in the repo (no sprint milestone or label is set up)",
    }[d.plan_source]
    plan_heading = f"*:dart: The plan for this sprint:* {_plural(plan_n, 'issue')} {where}"
    if unassigned:
        shown = ", ".join(f"<{i.url}|#{i.number}>" for i in unassigned[:20])
        extra = len(unassigned) - 20
        plan_heading += (
            f"\n:warning: *{_plural(len(unassigned), 'issue')} unassigned:* {shown}"
            + (f" and {extra} more" if extra > 0 else "")
            + " — who takes them?"
        )
    blocks.append(
        _issue_section(
            plan_heading,
            d.plan,
            _grouped_lines(d.plan.items, d.type_labels, skip),
            "_No open issues planned for this sprint yet._",
        )
    )
    if d.slipped is not None and d.slipped.total:
        blocks.append(
            _issue_section(
                f"*:hourglass: Slipped from {escape_mrkdwn(d.previous.name)}:* "
                f"{_plural(d.slipped.total, 'issue')} still open",
                d.slipped,
                [(issue_line(i), True) for i in d.slipped.items],
                "",
            )
        )
    if d.urgent.total:
        blocks.append(
            _issue_section(
                f"*:rotating_light: Urgent, still open:* {_plural(d.urgent.total, 'issue')}",
                d.urgent,
                [(issue_line(i), True) for i in d.urgent.items],
                "",
            )
        )
    blocks.append(DividerBlock())
    ahead = f"*:calendar: Looking ahead:* next sprint is {escape_mrkdwn(d.upcoming.describe())}."
    if d.plan_url:
        ahead += f" <{d.plan_url}|The plan for the next 2–4 weeks>"
    blocks.append(_section(ahead))
    blocks.append(
        _context("Issues closed as “not planned” are not counted. Lists come from GitHub search.")
    )

    slipped_n = d.slipped.total if d.slipped is not None else 0
    text = (
        f"{escape_mrkdwn(d.sprint.name)} starts today: {_plural(wins_n, 'issue')} done in "
        f"{escape_mrkdwn(d.previous.name)}, {plan_n:,} planned ({len(unassigned)} unassigned), "
        f"{slipped_n:,} slipped, {d.urgent.total:,} urgent open."
    )
    return Message(text=truncate(text, FALLBACK_MAX), blocks=_render(blocks))


def build_planning_message(r: PlanningReminder) -> Message:
    starts = f"{r.sprint.start:%A %b} {r.sprint.start.day}"
    blocks: list[Block] = [
        _header(f":clipboard: Sprint planning: {r.sprint.name}"),
        _section(
            f"{escape_mrkdwn(r.sprint.name)} starts {starts}. Before planning, please look at the "
            "requests below: give each an owner, or decide it waits."
        ),
        _issue_section(
            f"*Unassigned open requests:* {r.unassigned.total:,}",
            r.unassigned,
            [(issue_line(i, flag_unassigned=False), True) for i in r.unassigned.items],
            "_None: every open request has an owner._",
        ),
        _issue_section(
            f"*Untriaged ({escape_mrkdwn(r.untriaged_means)}):* {r.untriaged.total:,}",
            r.untriaged,
            [(issue_line(i), True) for i in r.untriaged.items],
            "_None._",
        ),
    ]
    if r.plan_url:
        blocks.append(_section(f"<{r.plan_url}|The plan for the next 2–4 weeks>"))
    text = (
        f"Sprint planning for {escape_mrkdwn(r.sprint.name)} ({starts}): "
        f"{r.unassigned.total:,} unassigned and {r.untriaged.total:,} untriaged requests."
    )
    return Message(text=text, blocks=_render(blocks))


def build_checkin_message(c: CheckIn) -> Message:
    since = f"{c.since:%A %b} {c.since.day}"
    blocks: list[Block] = [
        _header(f":mag: Mid-sprint check-in: {c.sprint.name}"),
        _section(
            f"{c.stale.total:,} of {c.open_total:,} open sprint issues have had no update since "
            f"{since}. A short status comment on each helps decide what to push out or pull in."
        ),
        _issue_section(
            "*No update this week:*",
            c.stale,
            [(issue_line(i), True) for i in c.stale.items],
            "_Every open sprint issue was updated this week._",
        ),
    ]
    name = escape_mrkdwn(c.sprint.name)
    text = f"Mid-sprint check-in for {name}: {c.stale.total:,} issues with no update."
    return Message(text=text, blocks=_render(blocks))
