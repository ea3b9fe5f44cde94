"""Text from Slack made safe for where it goes on GitHub, in one place.

GitHub renders issue bodies as Markdown with some HTML and turns `@name` into a mention that
notifies a person or a whole team. Text people typed or pasted in Slack must read the same
on GitHub but must not ping anyone, render HTML, or break the layout around it (an unclosed
code fence would swallow the rest of the issue).
"""

from __future__ import annotations

import re
from collections.abc import Callable

# A zero-width space after "@" stops GitHub's mention (and team mention) linking while the
# text still reads "@team"; the HTML entity survives GitHub's sanitiser.
MENTION_BREAK = "@&#8203;"
_MENTION = re.compile(r"(?<![\w@`])@(?=[A-Za-z0-9])")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)

# Longer text is kept whole but folded, so one pasted log does not bury the request.
COLLAPSE_CHARS = 2000
COLLAPSE_LINES = 30


def _escape_plain(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MENTION.sub(MENTION_BREAK, text)


def _escape_line(line: str) -> str:
    """Escape a line outside code fences; inline code spans are shown verbatim by GitHub
    (no HTML, no mentions), so they are left alone."""
    out: list[str] = []
    last = 0
    for match in _CODE_SPAN.finditer(line):
        out.append(_escape_plain(line[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_escape_plain(line[last:]))
    return "".join(out)


def github_markdown(text: str) -> str:
    """Slack-typed text as GitHub Markdown: no mentions, no HTML, code kept verbatim, every
    code fence closed."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    fence: str | None = None
    for line in lines:
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                out.append(line)
            else:
                out.append(_escape_line(line))
        else:
            out.append(line)
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                if not line.strip()[len(match.group(1)) :].strip():
                    fence = None
    if fence is not None:
        out.append(fence)
    return "\n".join(out)


def github_title(text: str, limit: int = 256) -> str:
    """Issue titles are plain text on GitHub (no mentions, no HTML); one line, capped."""
    title = " ".join(text.split())
    return title if len(title) <= limit else title[: limit - 1] + "…"


def code_block(text: str, language: str = "") -> str:
    """A fenced block that `text` cannot close early: the fence is longer than any run of
    backticks inside it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def quote(markdown: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in markdown.split("\n"))


def collapse_if_long(markdown: str, summary: str) -> str:
    """Fold long Markdown into a <details> section instead of cutting it."""
    if len(markdown) <= COLLAPSE_CHARS and markdown.count("\n") < COLLAPSE_LINES:
        return markdown
    # Blank lines around the content make GitHub render Markdown inside the HTML block.
    return f"<details>\n<summary>{_escape_plain(summary)}</summary>\n\n{markdown}\n\n</details>"


# --- Slack message text ---------------------------------------------------------------

_SLACK_TOKEN = re.compile(r"<([^<>]+)>")


def slack_to_plain(text: str, user_name: Callable[[str], str] = lambda uid: uid) -> str:
    """Slack's message format (`<@U123>`, `<#C1|name>`, `<url|label>`, &amp;-escaped) as the
    plain text a person reads in Slack. The result still needs github_markdown()."""

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + (label or user_name(target[1:]))
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!subteam^"):
            return label or "@team"
        if target.startswith("!"):
            return "@" + (label or target[1:].split("^")[0]).lstrip("@")
        return f"{label} ({target})" if label and label != target else target

    plain = _SLACK_TOKEN.sub(replace, text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
