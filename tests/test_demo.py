"""`databot demo` as a newcomer runs it: the real CLI, embedded defaults, a fresh data dir."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory) -> str:
    data_dir = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_"))}
    env["DATA_DIR"] = str(data_dir)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo"],
        env=env,
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def test_demo_serves_the_real_app_and_plays_every_scene(demo_output):
    from sandbox.demo import SCENES

    assert "bot listening on http://127.0.0.1:" in demo_output
    assert demo_output.count("=" * 72) >= 2 * len(SCENES)


def test_demo_turns_a_thread_into_one_issue_and_survives_github_down(demo_output):
    assert "Filed #1" in demo_output
    assert "This thread already has a request: #1" in demo_output
    assert "queued" in demo_output and "Filed #2" in demo_output


def test_demo_posts_the_sprint_digest_once_on_the_first_monday(demo_output):
    assert "Mon Nov 23 09:00 PST: both clocks ticked; posts so far: 1" in demo_output
    assert "Mon Nov 30 09:00 PST: both clocks ticked; posts so far: 1" in demo_output
    assert "sprint-digest  2026-11-23  posted" in demo_output
