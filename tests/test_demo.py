"""`databot demo` as a newcomer runs it: the real CLI, embedded defaults, a fresh data dir."""

from __future__ import annotations

import os
import re
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
    # The scene steps the clock over two Mondays; the count of posts never passes one.
    counts = re.findall(r"both clocks ticked; posts so far: (\d+)", demo_output)
    assert counts[0] == "0" and counts[-1] == "1" and set(counts) == {"0", "1"}
    assert len(re.findall(r"sprint-digest  \d{4}-\d{2}-\d{2}  posted", demo_output)) == 1


def test_demo_holds_back_late_cody_numbers_then_posts_them_once_with_a_chart(demo_output):
    assert len(re.findall(r"The Cody Pro daily post for [\d-]+ is late", demo_output)) == 1
    assert len(re.findall(r"^Cody Pro · \w{3}, ", demo_output, flags=re.M)) == 1
    assert "file uploaded to" in demo_output
    assert "nothing posted again" in demo_output
