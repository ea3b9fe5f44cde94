"""The GitHub issue a request becomes, rendered from its Submission. Pure: the user names
and the permalink are handed in."""

from __future__ import annotations

from collections.abc import Callable

from bot.intake.forms import FieldKind, FormField
from bot.intake.markdown import (
    code_block,
    collapse_if_long,
    github_markdown,
    github_title,
    quote,
    slack_to_plain,
    starts_with_fence,
)
from bot.intake.model import MARKER, PART_MARKER, IssueDraft, Submission, ThreadMessage

NO_RESPONSE = "_No response_"
BODY_MAX = 65_536  # GitHub's limit on an issue body and on a comment, in characters
# Every valid submission is filed. Answers that do not fit the body continue in comments on
# the same issue rather than being cut: what was typed into the modal exists nowhere else,
# so a cut would lose it. The Slack thread is different: it stays in Slack, so it is quoted
# in the space left and linked (see _thread).
# The answers get this much of the body; the rest is for the standard questions, the thread
# and the footer. The split depends on the stored answers only (not on user names, which
# Slack tells at render time), so a retry renders the same comments and posts only the
# ones missing (each is found by its PART_MARKER).
ANSWERS_IN_BODY = 32_768
PART_MAX = BODY_MAX - 1_000  # a comment's answers, leaving room for its marker and heading
PEOPLE_MAX = 10_000  # "People involved" beyond this is summed up, keeping the body in limit


def render_issue(
    sub: Submission,
    request_id: str,
    *,
    permalink: str | None,
    user_name: Callable[[str], str] = lambda uid: uid,
    urgent_label: str = "urgent",
    labels: list[str] | None = None,
    assignees: list[str] | None = None,
    routed: str | None = None,
) -> IssueDraft:
    """The issue: body laid out like GitHub's own rendering of the form, then the standard
    questions, the Slack thread, and who asked. All Slack text is escaped for GitHub.
    `labels` are added to the form's (the business unit's); `assignees` are GitHub logins;
    `routed` is a line of our own Markdown above the footer (the analyst it goes to, with a
    deliberate @mention when SUPPORT_ROUTING=mention)."""
    title = sub.title.strip()
    prefix = sub.form.title_prefix
    if prefix and not title.lower().startswith(prefix.strip().lower()):
        title = prefix + title
    parts = [f"<!-- {MARKER.format(id=request_id)} -->"]
    answers = [
        _section(field.label, _answer(field, sub.answers.get(field.id)))
        for field in sub.form.questions
    ]
    in_body, comments = _split_answers(answers, request_id)
    parts.extend(in_body)
    if comments:
        left = len(answers) - len(in_body)
        parts.append(
            f"_The answers to the {left} remaining question{'s' if left != 1 else ''} are too "
            f"long for the issue body: they continue in the {len(comments)} comment"
            f"{'s' if len(comments) != 1 else ''} below._"
        )
    timeline = "Urgent" if sub.urgent else "Not urgent"
    parts.append(_section("Timeline", timeline))
    parts.append(_section("Needed by", sub.due_date.isoformat() if sub.due_date else ""))
    people = [_person(user_name, uid) for uid in sub.people]
    parts.append(_section("People involved", _people(people)))
    parts.append(_section("Frequency", sub.frequency.label))
    if sub.business_unit:
        parts.append(_section("Business unit", github_markdown(sub.business_unit)))
    requester = _person(user_name, sub.requester_id)
    footer = f"Requested by {requester} in Slack"
    if sub.submitted_by != sub.requester_id:
        footer += f", filed by {_person(user_name, sub.submitted_by)}"
    footer = f"---\n<sub>{footer}, via databot.</sub>"
    if permalink or sub.thread:
        budget = BODY_MAX - sum(len(p) + 2 for p in [*parts, footer]) - 200
        total = max(sub.thread_total or 0, len(sub.thread))
        thread = _thread(sub.thread, permalink, user_name, budget, total)
        parts.append(_section("Slack thread", thread))
    if routed:
        parts.append(routed)
    parts.append(footer)
    all_labels = [*sub.form.labels, *([urgent_label] if sub.urgent else []), *(labels or [])]
    return IssueDraft(
        title=github_title(title),
        body="\n\n".join(parts) + "\n",
        labels=list(dict.fromkeys(all_labels)),
        assignees=list(assignees or []),
        comments=comments,
    )


def _split_answers(sections: list[str], request_id: str) -> tuple[list[str], list[str]]:
    """The answer sections that go in the body (the first ones, up to ANSWERS_IN_BODY), and
    the comments the others continue in, in order, each within GitHub's limit."""
    used, cut = 0, len(sections)
    for index, section in enumerate(sections):
        used += len(section) + 2
        if used > ANSWERS_IN_BODY:
            cut = index
            break
    packed: list[str] = []
    for section in sections[cut:]:
        for piece in _pieces(section, PART_MAX):
            if packed and len(packed[-1]) + 2 + len(piece) <= PART_MAX:
                packed[-1] += "\n\n" + piece
            else:
                packed.append(piece)
    total = len(packed)
    comments = [
        f"<!-- {PART_MARKER.format(id=request_id, n=n, total=total)} -->\n\n"
        f"_The request's answers, continued ({n} of {total})._\n\n{text}\n"
        for n, text in enumerate(packed, start=1)
    ]
    return sections[:cut], comments


def _pieces(text: str, size: int) -> list[str]:
    """`text` in pieces of at most `size` characters, cut at line ends where possible. Slack's
    input limits keep any one answer far below a comment's size; this only guarantees it."""
    pieces: list[str] = []
    while len(text) > size:
        cut = text.rfind("\n", 0, size)
        cut = cut if cut > 0 else size
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return [*pieces, text]


def _people(names: list[str]) -> str:
    lines: list[str] = []
    used = 0
    for index, name in enumerate(names):
        used += len(name) + 3
        if used > PEOPLE_MAX:
            lines.append(f"- … and {len(names) - index} more")
            break
        lines.append(f"- {name}")
    return "\n".join(lines)


def _section(label: str, answer: str) -> str:
    return f"### {label}\n\n{answer or NO_RESPONSE}"


def _answer(field: FormField, answer: str | list[str] | None) -> str:
    if field.kind is FieldKind.CHECKBOXES:
        ticked = set(answer or [])
        return "\n".join(
            f"- [{'X' if c.label in ticked else ' '}] {c.label}" for c in field.checkboxes
        )
    if isinstance(answer, list):
        return github_markdown(", ".join(answer)) if answer else ""
    text = (answer or "").strip("\n")
    if not text.strip():
        return ""
    if field.render:  # GitHub puts such answers in a code block: shown verbatim
        return code_block(text, field.render)
    return collapse_if_long(github_markdown(text), f"{field.label} ({len(text):,} characters)")


def _person(user_name: Callable[[str], str], uid: str) -> str:
    return github_markdown(user_name(uid))


def _thread(
    messages: list[ThreadMessage],
    permalink: str | None,
    user_name: Callable[[str], str],
    budget: int,
    total: int,
) -> str:
    """The thread's link, then its messages quoted while they fit `budget`; when not all of
    the thread's `total` messages are quoted, a line says how many are and where the rest
    is."""
    lines = [permalink] if permalink else []
    if messages:
        quotes: list[str] = []
        # the link twice (above and in the count line), the count line, the <details> wrapper
        used = 2 * len(permalink or "") + 400
        for m in messages:
            text = github_markdown(slack_to_plain(m.text, user_name))
            # A fence must start its line: after "**Name:** " it would be text, and the code
            # github_markdown left verbatim would be live Markdown (mentions, HTML).
            sep = "\n" if starts_with_fence(text) else " "
            one = quote(f"**{_person(user_name, m.user) if m.user else 'unknown'}:**{sep}{text}")
            if used + len(one) > budget:
                # GitHub refuses bodies over 65,536 characters; the rest stays in Slack.
                left = len(messages) - len(quotes)
                quotes.append(
                    f"> _… {left} more message{'s' if left != 1 else ''} in the Slack thread._"
                )
                break
            quotes.append(one)
            used += len(one) + 3
        included = sum(not q.startswith("> _… ") for q in quotes)
        if included < total:
            where = (
                f"the rest is in the thread: {permalink}" if permalink else "the rest is in Slack"
            )
            lines.append(f"{included:,} of {total:,} messages included; {where}")
        quoted = "\n>\n".join(quotes)
        count = f"{len(messages)} message{'s' if len(messages) != 1 else ''}"
        if len(messages) > 3:
            quoted = f"<details>\n<summary>The thread ({count})</summary>\n\n{quoted}\n\n</details>"
        else:
            quoted = collapse_if_long(quoted, f"The thread ({count})")
        lines.append(quoted)
    return "\n\n".join(lines)
