"""Block Kit as a person reads it in Slack, as plain text for a terminal.

Used by `databot demo` to print every message and modal the bot sends, and handy in test
failure messages. Links `<url|text>` read as `text (url)`, mentions `<@U1>` as `@U1`,
buttons as `[ Button ]`, selects as `[ Choice v ]`, dividers as a rule.
"""

from __future__ import annotations

import html
import re
from typing import Any

RULE = "-" * 60
_SPECIAL = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def mrkdwn(text: str) -> str:
    """Slack's markup for links, mentions and dates as a reader sees it; entities decoded."""

    def replace(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            return "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!subteam^"):
            return label or "@group"
        if target.startswith("!date^"):
            return label or target.split("^", 2)[1]
        if target.startswith("!"):
            return "@" + target[1:]
        if label:
            return f"{label} ({target})"
        return target

    return html.unescape(_SPECIAL.sub(replace, text))


def _text(obj: Any) -> str:
    if obj is None:
        return ""
    if isinstance(obj, str):
        return obj
    text = obj.get("text", "")
    return mrkdwn(text) if obj.get("type") == "mrkdwn" else html.unescape(text)


def _option_text(option: dict[str, Any] | None) -> str:
    return _text(option.get("text")) if option else ""


def _element(element: dict[str, Any]) -> str:
    kind = element.get("type", "")
    placeholder = _text(element.get("placeholder"))
    if kind == "button":
        return f"[ {_text(element.get('text'))} ]"
    if kind == "overflow":
        return "[ ... ]"
    if kind == "image":
        return f"(image: {element.get('alt_text', '')})"
    if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
        shown = element.get("initial_value") or placeholder or ""
        if element.get("multiline"):
            return f"[ {shown} ]\n  [ ...                                         ]"
        return f"[ {shown:<30} ]"
    if kind in ("static_select", "external_select"):
        shown = _option_text(element.get("initial_option")) or placeholder or "Select"
        return f"[ {shown} v ]"
    if kind in ("multi_static_select", "multi_external_select"):
        chosen = ", ".join(_option_text(o) for o in element.get("initial_options", []))
        return f"[ {chosen or placeholder or 'Select'} v ]"
    if kind in ("users_select", "multi_users_select"):
        users = element.get("initial_users") or (
            [element["initial_user"]] if element.get("initial_user") else []
        )
        shown = ", ".join("@" + u for u in users) or placeholder or "Select a person"
        return f"[ {shown} v ]"
    if kind in (
        "conversations_select",
        "channels_select",
        "multi_conversations_select",
        "multi_channels_select",
    ):
        initial = element.get("initial_conversation") or element.get("initial_channel")
        return f"[ {('#' + initial) if initial else placeholder or 'Select a channel'} v ]"
    if kind == "datepicker":
        return f"[ {element.get('initial_date') or placeholder or 'Select a date'} v ]"
    if kind == "timepicker":
        return f"[ {element.get('initial_time') or placeholder or 'Select time'} v ]"
    if kind == "datetimepicker":
        return "[ date v ] [ time v ]"
    if kind in ("checkboxes", "radio_buttons"):
        ticked: list[dict[str, Any]] = element.get("initial_options") or (
            [element["initial_option"]] if element.get("initial_option") else []
        )
        chosen_values = {o.get("value") for o in ticked}
        on, off = ("[x]", "[ ]") if kind == "checkboxes" else ("(o)", "( )")
        return "\n".join(
            f"{on if o.get('value') in chosen_values else off} {_option_text(o)}"
            for o in element.get("options", [])
        )
    if kind == "rich_text_input":
        return f"[ {placeholder or ''} ]"
    return f"[{kind}]"


def _rich_text(elements: list[dict[str, Any]]) -> str:
    def inline(items: list[dict[str, Any]]) -> str:
        parts = []
        for item in items:
            kind = item.get("type")
            if kind == "text":
                parts.append(item.get("text", ""))
            elif kind == "link":
                text, url = item.get("text"), item.get("url", "")
                parts.append(f"{text} ({url})" if text else url)
            elif kind == "user":
                parts.append("@" + item.get("user_id", ""))
            elif kind == "channel":
                parts.append("#" + item.get("channel_id", ""))
            elif kind == "emoji":
                parts.append(f":{item.get('name', '')}:")
            elif kind == "broadcast":
                parts.append("@" + item.get("range", "here"))
            elif kind == "date":
                parts.append(item.get("fallback", ""))
        return "".join(parts)

    lines = []
    for element in elements:
        kind = element.get("type")
        if kind == "rich_text_section":
            lines.append(inline(element.get("elements", [])))
        elif kind == "rich_text_list":
            ordered = element.get("style") == "ordered"
            indent = "  " * int(element.get("indent", 0))
            for n, item in enumerate(element.get("elements", []), start=1):
                bullet = f"{n}." if ordered else "*"
                lines.append(f"{indent}{bullet} {inline(item.get('elements', []))}")
        elif kind == "rich_text_preformatted":
            lines.append("```\n" + inline(element.get("elements", [])) + "\n```")
        elif kind == "rich_text_quote":
            lines.extend("> " + line for line in inline(element.get("elements", [])).split("\n"))
    return "\n".join(lines)


def _fields(fields: list[dict[str, Any]]) -> list[str]:
    texts = [_text(f) for f in fields]
    if any("\n" in t for t in texts) or any(len(t) > 36 for t in texts):
        return texts
    # Slack lays section fields out in two columns.
    lines = []
    for i in range(0, len(texts), 2):
        pair = texts[i : i + 2]
        lines.append(pair[0].ljust(38) + pair[1] if len(pair) == 2 else pair[0])
    return [line.rstrip() for line in lines]


def render_block(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "header":
        text = _text(block.get("text"))
        return f"{text}\n{'=' * len(text)}"
    if kind == "section":
        parts = []
        if block.get("text"):
            parts.append(_text(block["text"]))
        if block.get("fields"):
            parts.extend(_fields(block["fields"]))
        text = "\n".join(parts)
        accessory = block.get("accessory")
        if accessory:
            shown = _element(accessory)
            text = f"{text}\n    {shown}" if "\n" in shown or "\n" in text else f"{text}  {shown}"
        return text
    if kind == "divider":
        return RULE
    if kind == "context":
        pieces = []
        for element in block.get("elements", []):
            if element.get("type") == "image":
                pieces.append(f"({element.get('alt_text', 'image')})")
            else:
                pieces.append(_text(element))
        return "  " + "  |  ".join(pieces)
    if kind in ("actions", "context_actions"):
        return "  ".join(_element(e) for e in block.get("elements", []))
    if kind == "image":
        title = _text(block.get("title"))
        shown = f"[image: {block.get('alt_text', '')}]"
        return f"{title}\n{shown}" if title else shown
    if kind == "input":
        label = _text(block.get("label"))
        if block.get("optional"):
            label += " (optional)"
        lines = [label, _element(block.get("element", {}))]
        if block.get("hint"):
            lines.append("  " + _text(block["hint"]))
        return "\n".join(lines)
    if kind == "rich_text":
        return _rich_text(block.get("elements", []))
    if kind == "markdown":
        return block.get("text", "")
    if kind == "table":
        rows = []
        for row in block.get("rows", []):
            cells = []
            for cell in row:
                if cell.get("type") == "raw_text":
                    cells.append(cell.get("text", ""))
                else:
                    cells.append(_rich_text(cell.get("elements", [])))
            rows.append(" | ".join(cells))
        return "\n".join(rows)
    if kind == "data_visualization":
        return _chart(block)
    if kind == "file":
        return f"[file {block.get('external_id', '')}]"
    if kind == "video":
        return f"[video: {_text(block.get('title'))}]"
    return f"[{kind} block]"


CHART_WIDTH = 30  # characters of the longest bar


def _chart(block: dict[str, Any]) -> str:
    """A chart as text: its title, then one row per category with a bar per series
    (scaled to the largest value) and the values."""
    chart = block.get("chart") or {}
    title = f"[{chart.get('type', 'chart')} chart] {block.get('title', '')}"
    if chart.get("type") == "pie":
        rows = [(s.get("label", ""), [s.get("value")]) for s in chart.get("segments", [])]
        names: list[str] = []
    else:
        series = chart.get("series") or []
        names = [s.get("name", "") for s in series]
        by_label = [{p.get("label"): p.get("value") for p in s.get("data", [])} for s in series]
        categories = (chart.get("axis_config") or {}).get("categories") or []
        rows = [(c, [values.get(c) for values in by_label]) for c in categories]
    numbers = [abs(v) for _, vs in rows for v in vs if isinstance(v, int | float)]
    top = max(numbers, default=0) or 1
    width = max((len(str(label)) for label, _ in rows), default=0)
    lines = [title]
    if len(names) > 1:
        lines.append(
            "  " + "  ".join(f"{BAR_MARKS[i % len(BAR_MARKS)]} {n}" for i, n in enumerate(names))
        )
    for label, values in rows:
        for i, v in enumerate(values):
            shown = "" if v is None else f"{v:,.2f}".rstrip("0").rstrip(".")
            bar = (
                ""
                if v is None
                else BAR_MARKS[i % len(BAR_MARKS)] * round(abs(v) / top * CHART_WIDTH)
            )
            head = str(label) if i == 0 else ""
            lines.append(f"  {head:<{width}} {bar} {shown}".rstrip())
    return "\n".join(lines)


BAR_MARKS = "█░▒▓"


def render_blocks(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(render_block(b) for b in blocks)


def render_message(payload: dict[str, Any]) -> str:
    """A message (chat.postMessage args, a response_url body, a stored message) as read.

    With blocks, Slack shows the blocks (text is only the notification fallback).
    """
    parts = []
    blocks = payload.get("blocks")
    if blocks:
        parts.append(render_blocks(blocks))
    elif payload.get("text"):
        parts.append(mrkdwn(payload["text"]))
    for attachment in payload.get("attachments") or []:
        inner = render_message(attachment) if attachment.get("blocks") else ""
        inner = inner or mrkdwn(attachment.get("text") or attachment.get("fallback") or "")
        parts.append("\n".join("| " + line for line in inner.split("\n")))
    for file in payload.get("files") or []:
        parts.append(f"[file: {file.get('title') or file.get('name')}]")
    if payload.get("replace_original"):
        parts.insert(0, "(replaces the original message)")
    if payload.get("delete_original"):
        parts.insert(0, "(deletes the original message)")
    return "\n".join(parts)


def render_view(view: dict[str, Any]) -> str:
    """A modal (or home tab) as read: title bar, blocks, then Close / Submit buttons."""
    title = _text(view.get("title")) or ("Home" if view.get("type") == "home" else "")
    width = 60
    lines = [
        "+" + "-" * (width - 2) + "+",
        f"| {title:<{width - 4}} |",
        "+" + "-" * (width - 2) + "+",
    ]
    lines.append(render_blocks(view.get("blocks", [])))
    buttons = []
    if view.get("close") or view.get("submit"):
        buttons.append(f"[ {_text(view.get('close')) or 'Cancel'} ]")
    if view.get("submit"):
        buttons.append(f"[ {_text(view['submit'])} ]")
    if buttons:
        lines.append(" " * 20 + "  ".join(buttons))
    return "\n".join(lines)
