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
from bot.intake.model import MARKER, IssueDraft, Submission, ThreadMessage

NO_RESPONSE = "_No response_"
BODY_MAX = 65_536  # GitHub's limit on an issue body, in characters


def render_issue(
    sub: Submission,
    request_id: str,
    *,
    permalink: str | None,
    user_name: Callable[[str], str] = lambda uid: uid,
    urgent_label: str = "urgent",
) -> IssueDraft:
    """The issue: body laid out like GitHub's own rendering of the form, then the standard
    questions, the Slack thread, and who asked. All Slack text is escaped for GitHub."""
    title = sub.title.strip()
    prefix = sub.form.title_prefix
    if prefix and not title.lower().startswith(prefix.strip().lower()):
        title = prefix + title
    parts = [f"<!-- {MARKER.format(id=request_id)} -->"]
    for field in sub.form.questions:
        parts.append(_section(field.label, _answer(field, sub.answers.get(field.id))))
    timeline = "Urgent" if sub.urgent else "Not urgent"
    parts.append(_section("Timeline", timeline))
    parts.append(_section("Needed by", sub.due_date.isoformat() if sub.due_date else ""))
    people = [_person(user_name, uid) for uid in sub.people]
    parts.append(_section("People involved", "\n".join(f"- {p}" for p in people)))
    parts.append(_section("Frequency", sub.frequency.label))
    requester = _person(user_name, sub.requester_id)
    footer = f"Requested by {requester} in Slack"
    if sub.submitted_by != sub.requester_id:
        footer += f", filed by {_person(user_name, sub.submitted_by)}"
    footer = f"---\n<sub>{footer}, via databot.</sub>"
    if permalink or sub.thread:
        budget = BODY_MAX - sum(len(p) + 2 for p in [*parts, footer]) - 200
        thread = _thread(sub.thread, permalink, user_name, budget)
        parts.append(_section("Slack thread", thread))
    parts.append(footer)
    labels = list(dict.fromkeys([*sub.form.labels, *([urgent_label] if sub.urgent else [])]))
    return IssueDraft(title=github_title(title), body="\n\n".join(parts) + "\n", labels=labels)


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
) -> str:
    lines = [permalink] if permalink else []
    if messages:
        quotes: list[str] = []
        used = len(permalink or "") + 200
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
        quoted = "\n>\n".join(quotes)
        count = f"{len(messages)} message{'s' if len(messages) != 1 else ''}"
        if len(messages) > 3:
            quoted = f"<details>\n<summary>The thread ({count})</summary>\n\n{quoted}\n\n</details>"
        else:
            quoted = collapse_if_long(quoted, f"The thread ({count})")
        lines.append(quoted)
    return "\n\n".join(lines)
