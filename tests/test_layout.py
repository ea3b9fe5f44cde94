"""The layout STYLE.md asks for, kept by a test rather than by memory."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The app factory and the HTTP adapter are the only places in bot/ that know Bolt.
BOLT_ALLOWED = {"bot/app.py", "bot/web.py"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_app_factory_and_web_adapter_import_slack_bolt():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "bot").rglob("*.py")
        if str(path.relative_to(ROOT)) not in BOLT_ALLOWED
        and any(m.split(".")[0] == "slack_bolt" for m in imported_modules(path))
    ]
    assert offenders == []


def test_no_settings_or_app_built_at_import_time():
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "handlers").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
                func = node.value.func
                name = getattr(func, "id", getattr(func, "attr", ""))
                assert name not in {"Settings", "App"}, f"{path}: {name}() at import time"


def defined_functions(name: str) -> list[str]:
    """Modules under bot/ and handlers/ defining a top-level function called `name`."""
    out = []
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "handlers").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body):
            out.append(str(path.relative_to(ROOT)))
    return out


def test_one_sparkline_for_every_trend():
    # The /metric answer and the Cody Pro post must draw a trend the same way.
    assert defined_functions("sparkline") == ["bot/sparkline.py"]


# Escapers for other targets (GitHub Markdown/HTML), which are not Slack's.
ESCAPER_ALLOWED = {
    "bot/slack_text.py",  # the one: escape_mrkdwn
    "bot/intake/markdown.py",  # GitHub Markdown: HTML entities and @mentions
}


def test_one_slack_mrkdwn_escaper():
    offenders = []
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "handlers").rglob("*.py")]:
        rel = str(path.relative_to(ROOT))
        if rel in ESCAPER_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            # text.replace("<", "&lt;") and friends: a hand-made escaper
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", "") == "replace"
                and len(node.args) == 2
                and all(isinstance(a, ast.Constant) for a in node.args)
                and node.args[1].value in ("&lt;", "&gt;", "&amp;")
            ):
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == [], "use bot.slack_text.escape_mrkdwn"
