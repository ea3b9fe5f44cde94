"""Text from outside (GitHub titles, bodies, logins; user input) on its way into Slack.

Slack's mrkdwn gives `<...>` its meaning: `<!channel>`, `<!here>`, `<@U123>`, `<#C123>`,
`<!subteam^S1>` ping people and `<https://x|label>` hides a link behind any label. Slack
documents exactly three characters to escape, `&`, `<` and `>`; once they are entities
none of those constructs can form, and Slack shows the text as typed. Bare `@channel`
text does not ping as long as messages are sent without `link_names` (we never set it).

`escape_mrkdwn` is the one escaping function: every module that puts outside text into a
mrkdwn field (section text, context, the notification `text`) calls it; `truncate` is the
one way to shorten text for a Slack limit; `Message` is what every builder returns.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field

_MRKDWN_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})

ELLIPSIS = "…"


def escape_mrkdwn(text: str) -> str:
    """Make outside text render literally in a mrkdwn field: no pings, no hidden links."""
    return text.translate(_MRKDWN_ENTITIES)


def truncate(text: str, limit: int, *, one_line: bool = False) -> str:
    """Cut `text` to at most `limit` characters, marking the cut with an ellipsis.

    `one_line`: for a list item or a header: whitespace is collapsed first and the cut
    falls between words (unless that would lose more than half), never inside one.
    Truncate BEFORE escaping: cutting escaped text could split an entity like `&lt;`.
    """
    if one_line:
        text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ELLIPSIS), 0)]
    if one_line:
        space = cut.rfind(" ")
        if space > limit // 2:
            cut = cut[:space]
        cut = cut.rstrip(" ,.;:-")
    return cut + ELLIPSIS


def mrkdwn_link(url: str, label: str) -> str:
    """A mrkdwn link whose label is shown literally.

    The label is escaped. In the URL, `|` (which would end the URL early and turn the rest
    into the label), `<`, `>` and spaces are percent-encoded and `&` becomes `&amp;`, as
    Slack asks for URLs in mrkdwn.
    """
    safe_url = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")
    return f"<{escape_mrkdwn(safe_url)}|{escape_mrkdwn(label)}>"


class Message(BaseModel):
    """What every Block Kit builder returns: the notification/fallback `text` (it must stand
    on its own: notifications and screen readers show only it) and the `blocks` as dicts
    (built with slack_sdk.models and `to_dict()`, which enforces Slack's limits)."""

    text: str
    blocks: list[dict[str, Any]] = Field(default_factory=list)

    def send_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for chat.postMessage / chat.update / respond()."""
        return {"text": self.text, "blocks": self.blocks or None}


# Said on every /metric answer and scheduled post built from the embedded demo warehouse
# (settings.uses_demo_warehouse): its numbers are invented, and nobody may take them for real.
DEMO_DATA_TEXT = "demo data: invented numbers from the embedded demo warehouse"
DEMO_DATA_NOTE = f":test_tube: *demo data*{DEMO_DATA_TEXT.removeprefix('demo data')}"


def demo_data_block() -> dict[str, Any]:
    """The context line that marks an answer or post as demo data (a Block Kit dict)."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": DEMO_DATA_NOTE}]}
