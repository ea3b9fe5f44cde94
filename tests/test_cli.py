from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.checkout import CHECKOUT, checkout_env


def run_python(*args: str, env: dict[str, str] | None = None, cwd=None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_"))}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=checkout_env(clean),
        cwd=cwd,
        timeout=120,
    )


def run_cli(*args: str, env: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess:
    return run_python("-m", "bot.cli", *args, env=env, cwd=cwd)


def test_the_cli_in_a_subprocess_runs_this_checkout(tmp_path):
    result = run_python("-c", "import bot; print(bot.__file__)", cwd=tmp_path)
    assert Path(result.stdout.strip()) == CHECKOUT / "bot" / "__init__.py"


def test_serve_without_credentials_says_what_to_set_without_a_traceback(tmp_path):
    result = run_cli("serve", env={"DATA_DIR": str(tmp_path)}, cwd=tmp_path)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is not set" in result.stderr
    assert "SLACK_SIGNING_SECRET is not set: needed for HTTP mode" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_setting_is_named_in_plain_words(tmp_path):
    result = run_cli("check", env={"TIMEZONE": "Mars/Olympus", "PORT": "x"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "TIMEZONE" in result.stderr and "PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_explains_a_misconfiguration(tmp_path):
    result = run_cli(
        "check",
        env={"DATA_DIR": str(tmp_path), "SLACK_BOT_TOKEN": "xoxb-1"},
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "SLACK_SIGNING_SECRET is not set: needed for HTTP mode" in result.stdout
    assert "GITHUB_TOKEN is not set" in result.stdout
    assert "state database reachable (sqlite)" in result.stdout


def test_check_reports_an_unreachable_state_database(tmp_path):
    result = run_cli(
        "check",
        env={
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "state database unreachable" in result.stdout
    assert "DATABASE_URL" in result.stdout


def test_check_warns_that_the_cody_post_hides_revenue_outside_revenue_channels(tmp_path):
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "DATA_DIR": str(tmp_path)}
    refused = run_cli("check", env={**env, "CODY_CHANNEL": "C0GENERAL"}, cwd=tmp_path)
    assert "CODY_CHANNEL C0GENERAL is not in REVENUE_CHANNELS" in refused.stdout
    assert "will leave out revenue" in refused.stdout
    allowed = run_cli(
        "check",
        env={**env, "CODY_CHANNEL": "C0REVENUE", "REVENUE_CHANNELS": '["C0REVENUE"]'},
        cwd=tmp_path,
    )
    assert "is not in REVENUE_CHANNELS" not in allowed.stdout


def test_check_prints_the_schedules_in_words(tmp_path):
    env = {"DATA_DIR": str(tmp_path), "JOB_SCHEDULES": '{"sprint-digest": "0 9 * * 1"}'}
    result = run_cli("check", env=env, cwd=tmp_path)
    assert "sprint-digest: at 09:00 on Monday (America/Los_Angeles); next: Mon " in result.stdout
    assert "cody-daily: at 09:00 every day (America/Los_Angeles); next: " in result.stdout


def test_a_bad_cron_is_a_settings_error_naming_the_variable(tmp_path):
    result = run_cli("check", env={"JOB_SCHEDULES": '{"sprint-digest": "0 9 * * 8"}'}, cwd=tmp_path)
    assert result.returncode == 2
    assert "JOB_SCHEDULES: " in result.stderr and "day of week 8 is out of range" in result.stderr
    assert "Traceback" not in result.stderr
