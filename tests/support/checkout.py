"""Subprocesses run the checkout the tests live in.

`python -m bot.cli` in a subprocess imports `bot` from wherever the venv's editable
install points, and a git worktree shares main's venv: without this, a worktree's tests
would run main's code. Put this checkout first on PYTHONPATH.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def checkout_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with this checkout first on PYTHONPATH."""
    rest = env.get("PYTHONPATH")
    return {**env, "PYTHONPATH": os.pathsep.join([str(CHECKOUT), *([rest] if rest else [])])}


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without Slack/GitHub settings, plus `overrides`, running
    this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_"))}
    return checkout_env({**env, **overrides})


def spawn_serve(data_dir: Path, port: int, **settings: str):
    """`databot serve` as deployed: settings from the environment, on 127.0.0.1:`port`."""
    import subprocess
    import sys

    # No GCP_PROJECT here: serve runs on the demo warehouse only when told to.
    settings = {"DEMO_WAREHOUSE": "true", **settings}
    env = clean_env(HOST="127.0.0.1", PORT=str(port), DATA_DIR=str(data_dir), **settings)
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        env=env,
        cwd=data_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
