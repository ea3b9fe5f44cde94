"""What a wheel installed without the dev extras needs: every outside module the shipped
packages import is a declared runtime dependency, and every data file read at run time is
package data. (`make wheel-check` proves it end to end on a real wheel.)"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from tests.support.checkout import CHECKOUT

PYPROJECT = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
SHIPPED = ("bot", "handlers", "sandbox")
# Shipped but test-only: the loopback Socket Mode server (websockets, a dev extra). Nothing
# the demo or the bot runs imports it (sandbox/slack_api.py names it for typing only).
TEST_ONLY = {CHECKOUT / "sandbox" / "socket_mode.py"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    return {canonical(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}


def imported_top_levels(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_runtime_import_is_a_declared_dependency():
    runtime = declared()
    distributions = importlib.metadata.packages_distributions()
    ours = set(SHIPPED) | {"tests"}
    undeclared: dict[str, set[str]] = {}
    for package in SHIPPED:
        for path in (CHECKOUT / package).rglob("*.py"):
            if path in TEST_ONLY:
                continue
            for name in imported_top_levels(path) - ours - set(sys.stdlib_module_names):
                dists = {canonical(d) for d in distributions.get(name, [name])}
                if not dists & runtime:
                    undeclared.setdefault(name, set()).add(str(path.relative_to(CHECKOUT)))
    assert undeclared == {}, f"imported but not in [project] dependencies: {undeclared}"


def test_duckdb_timestamps_need_pytz_which_is_declared():
    assert "pytz" in declared()


def test_every_data_file_in_bot_is_package_data():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["bot"]
    bot = CHECKOUT / "bot"
    data = [
        p.relative_to(bot).as_posix()
        for p in bot.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert "manifest.yml" in data
    missing = [f for f in data if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert missing == []
