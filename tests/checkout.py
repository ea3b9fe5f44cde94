"""Subprocesses run the checkout the tests live in.

`python -m bot.cli` in a subprocess imports `bot` from wherever the venv's editable
install points, and a git worktree shares main's venv: without this, a worktree's tests
would run main's code. Put this checkout first on PYTHONPATH.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def checkout_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with this checkout first on PYTHONPATH."""
    rest = env.get("PYTHONPATH")
    return {**env, "PYTHONPATH": os.pathsep.join([str(CHECKOUT), *([rest] if rest else [])])}
