"""Text from Slack made safe for where it goes on GitHub, in one place.

GitHub renders issue bodies as Markdown with some HTML and turns `@name` into a mention that
notifies a person or a whole team. Text people typed or pasted in Slack must read the same
on GitHub but must not ping anyone, render HTML, or break the layout around it (an unclosed
code fence would swallow the rest of the issue).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.slack_text import truncate

# A zero-width space after "@" stops GitHub's mention (and team mention) linking while the
# text still reads "@team"; the HTML entity survives GitHub's sanitiser. The same after "#"
# stops "#123" / "owner/repo#123" becoming a link to (and a cross-reference on) an issue.
MENTION_BREAK = "@&#8203;"
REFERENCE_BREAK = "#&#8203;"
_MENTION = re.compile(r"(?<![\w@])@(?=[A-Za-z0-9])")
_REFERENCE = re.compile(r"(?<!&)#(?=\d)")
# GitHub links "GH-123" to issue #123 (and cross-references it) like "#123": broken alike.
GH_REFERENCE_BREAK = "&#8203;"
_GH_REFERENCE = re.compile(r"(?<![\w-])(GH-)(?=\d)", re.IGNORECASE)
# A backtick fence's info string cannot contain a backtick (CommonMark 4.5): "```x`" is text.
_FENCE = re.compile(r"^ {0,3}(`{3,}(?=[^`]*$)|~{3,})")
# Characters GitHub would read as Markdown inside an inline <code> element.
_CODE_ENTITIES = {"`": "&#96;", "*": "&#42;", "_": "&#95;", "~": "&#126;", "[": "&#91;"}
_CODE_ENTITIES |= {"]": "&#93;", "\\": "&#92;", "|": "&#124;"}

# Longer text is kept whole but folded, so one pasted log does not bury the request.
COLLAPSE_CHARS = 2000
COLLAPSE_LINES = 30


def _escape_plain(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _REFERENCE.sub(REFERENCE_BREAK, _MENTION.sub(MENTION_BREAK, text))
    return _GH_REFERENCE.sub(rf"\1{GH_REFERENCE_BREAK}", text)


def _code_spans(line: str) -> list[tuple[int, int]]:
    """(start, end) of each inline code span in `line`, as CommonMark pairs them: a run of
    N backticks (not backslash-escaped) opens, and only a run of exactly N closes."""
    spans: list[tuple[int, int]] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] == "\\":
            i += 2
            continue
        if line[i] != "`":
            i += 1
            continue
        end = i
        while end < n and line[end] == "`":
            end += 1
        run, j, close = end - i, end, None
        while j < n:
            if line[j] != "`":
                j += 1
                continue
            k = j
            while k < n and line[k] == "`":
                k += 1
            if k - j == run:
                close = k
                break
            j = k
        if close is None:
            i = end  # no closer: the run is literal text
        else:
            spans.append((i, close))
            i = close
    return spans


def _code(span: str) -> str:
    """A code span as GitHub shows it. Spans that hold nothing GitHub acts on stay as typed.
    Others become an inline <code> element with escaped content: a span is found line by line
    here, while Markdown pairs backticks across a paragraph's lines, so a span we see may be
    text on GitHub; escaped, it is inert either way and still reads the same."""
    if "<" not in span and "@" not in span and not _REFERENCE.search(span):
        return span
    run = len(span) - len(span.lstrip("`"))
    content = span[run:-run]
    if content.startswith(" ") and content.endswith(" ") and content.strip(" "):
        content = content[1:-1]  # CommonMark strips one space on each side
    escaped = "".join(_CODE_ENTITIES.get(c, c) for c in _escape_plain(content))
    return f"<code>{escaped}</code>"


def _escape_line(line: str) -> str:
    """Escape a line outside code fences; inline code keeps reading as code."""
    out: list[str] = []
    last = 0
    for start, end in _code_spans(line):
        out.append(_escape_plain(line[last:start]))
        out.append(_code(line[start:end]))
        last = end
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


def starts_with_fence(markdown: str) -> bool:
    return _FENCE.match(markdown.split("\n", 1)[0]) is not None


def github_title(text: str, limit: int = 256) -> str:
    """Issue titles are plain text on GitHub (no mentions, no HTML); one line, capped."""
    return truncate(" ".join(text.split()), limit)


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
