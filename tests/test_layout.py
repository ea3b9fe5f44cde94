"""The layout STYLE.md asks for, kept by a test rather than by memory."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import grimp

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


# --- import contracts (../shared/LAYOUT.md, "Rules") -----------------------------------
#
# The graph is grimp's (every import statement, at module level, inside functions and under
# TYPE_CHECKING alike): a circle hidden in a function is still a circle.

PLATFORM = {
    "bot.settings",
    "bot.cron",
    "bot.deps",
    "bot.errors",
    "bot.ids",
    "bot.logs",
    "bot.store",
    "bot.tables",
    "bot.migrations",
    "bot.warehouse",
    "bot.warehouse_demo",
    "bot.github",
    "bot.slack_channels",
    "bot.slack_gate",
    "bot.telemetry",
    "bot.slack_post",
    "bot.slack_text",
    "bot.sparkline",
    "bot.charts",
    "bot.sql",
    "bot.render",
    "bot.manifest",
}
FEATURES = (
    "metric",
    "intake",
    "urgent",
    "sprints",
    "cody",
    "support",
    "home",
    "subscriptions",
    "followup",
)
# Where one feature may use another (named in bot/features.py), as (importer, imported).
SEAMS = {
    ("intake", "urgent"),
    ("intake", "support"),
    ("intake", "home"),
    ("home", "intake"),
    ("home", "sprints"),
    ("home", "support"),
    ("subscriptions", "metric"),
    ("followup", "intake"),
    ("intake", "followup"),
}
# Inside each feature, lowest first: a module may import its own layer or lower ones.
# The first layer is the model tier (types and rules, no I/O); blocks are pure builders.
FEATURE_LAYERS: dict[str, list[set[str]]] = {
    "metric": [
        {"periods", "catalog", "model"},
        {"blocks", "card"},
        {"rollups"},
        {"lookup", "account"},
        {"command", "cli"},
    ],
    "intake": [
        {"model", "forms", "markdown"},
        {"blocks", "issue"},
        {"outbox"},
        {"filing"},
        {"modal", "mirror"},
    ],
    "urgent": [{"model"}, {"blocks"}, {"alerts"}, {"webhook", "poller", "reminder"}],
    "sprints": [{"calendar", "content"}, {"blocks"}, {"search"}, {"jobs"}],
    "cody": [{"report"}, {"blocks", "chart"}, {"job"}],
    "support": [{"model"}],
    "home": [{"model"}, {"blocks"}, {"tab"}],
    "subscriptions": [{"model"}, {"blocks"}, {"records"}, {"delivery"}, {"command", "cli"}],
    "followup": [{"model"}, {"blocks"}, {"replies"}, {"webhook", "poller"}],
}
# Outside libraries and the one module (or package) of bot/ that may import each.
GATEWAYS = {
    "github": {"bot.github"},
    "requests": {"bot.github", "bot.warehouse"},  # BigQuery's transport errors are requests''
    "duckdb": {"bot.warehouse", "bot.warehouse_demo"},
    "google": {"bot.warehouse"},
    "slack_bolt": {"bot.app", "bot.web"},
    # `databot demo` comes from sandbox/ through an entry point; bot/ never imports it.
    "sandbox": set(),
}


@functools.cache
def graph():
    return grimp.build_graph(
        "bot", "handlers", include_external_packages=True, exclude_type_checking_imports=False
    )


def _modules(prefix: str = "") -> list[str]:
    g = graph()
    return sorted(m for m in g.modules if m.startswith(prefix) and not g.is_module_squashed(m))


def _imports(module: str) -> set[str]:
    return graph().find_modules_directly_imported_by(module)


def _feature_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "bot" and parts[1] in FEATURES else None


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), over bot/handlers."""
    nodes = [m for m in _modules() if m.startswith(("bot", "handlers"))]
    known = set(nodes)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in _imports(node) & known:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in nodes:
        if node not in index:
            visit(node)
    return found


def test_no_import_circles_at_module_level_or_inside_functions():
    assert _cycles() == []


def test_platform_imports_no_feature_and_no_scheduling_internals():
    offenders = [
        f"{m} -> {i}"
        for m in _modules("bot")
        if m in PLATFORM or m.split(".")[:2] == ["bot", "sql"] or m.startswith("bot.migrations")
        for i in _imports(m)
        if _feature_of(i) or i.startswith(("bot.scheduling", "handlers", "bot.features"))
    ]
    assert offenders == []


def test_features_import_only_the_platform_scheduling_job_and_named_seams():
    offenders = []
    for m in _modules("bot"):
        feature = _feature_of(m)
        if feature is None:
            continue
        for i in _imports(m):
            other = _feature_of(i)
            if other and other != feature and (feature, other) not in SEAMS:
                offenders.append(f"{m} -> {i}")
            if i.startswith("bot.scheduling") and i != "bot.scheduling.job":
                offenders.append(f"{m} -> {i} (features hand jobs to the runner, not call it)")
            if i.startswith(("handlers", "bot.features", "bot.app", "bot.web", "bot.cli")):
                offenders.append(f"{m} -> {i}")
    assert offenders == []


def test_inside_a_feature_model_then_blocks_then_flows():
    offenders = []
    for feature, layers in FEATURE_LAYERS.items():
        rank = {name: n for n, layer in enumerate(layers) for name in layer}
        package = f"bot.{feature}"
        present = {m.removeprefix(package + ".") for m in _modules(package + ".")}
        unplaced = present - set(rank) - {"__init__"}
        assert not unplaced, f"{package}: place {sorted(unplaced)} in FEATURE_LAYERS"
        for name in present & set(rank):
            for i in _imports(f"{package}.{name}"):
                if _feature_of(i) == feature and i != package:
                    target = i.removeprefix(package + ".")
                    if rank.get(target, -1) > rank[name]:
                        offenders.append(f"{package}.{name} -> {target}")
    assert offenders == []


def test_each_outside_library_has_one_gateway_module():
    offenders = [
        f"{m} -> {lib}"
        for m in _modules("bot")
        for lib in GATEWAYS
        if lib in {i.split(".")[0] for i in _imports(m)} and m not in GATEWAYS[lib]
    ]
    assert offenders == []


def _function_level_imports(path: Path) -> list[str]:
    """Imports of our own modules inside a function body."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            names = []
            if isinstance(inner, ast.ImportFrom) and inner.module:
                names = [inner.module]
            elif isinstance(inner, ast.Import):
                names = [a.name for a in inner.names]
            for name in names:
                if name.split(".")[0] in ("bot", "handlers", "sandbox"):
                    found.append(f"{path.relative_to(ROOT)}:{inner.lineno} {name}")
    return sorted(set(found))


# A function-level import of our own code is allowed only for a reason other than dodging
# a circle: here, keeping `databot check`/`metric` from loading what they never use.
LAZY_ALLOWED = {
    "bot/cli.py",  # each subcommand imports only what it runs (start-up time of the CLI)
}


def test_no_function_level_imports_that_dodge_a_circle():
    offenders = [
        line
        for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "handlers").rglob("*.py")]
        if str(path.relative_to(ROOT)) not in LAZY_ALLOWED
        for line in _function_level_imports(path)
    ]
    assert offenders == []
