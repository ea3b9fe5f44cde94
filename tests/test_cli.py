from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.checkout import CHECKOUT, checkout_env


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


BAD_SETTINGS = [
    # (variable, value, what the one line says)
    ("REVENUE_CHANNELS", "C123", 'REVENUE_CHANNELS: not valid JSON (give a JSON list, e.g. ["'),
    ("REVENUE_USERS", '["alice"]', "REVENUE_USERS: 'alice' is not a Slack id"),
    ("REVENUE_CHANNELS", '["finance"]', "REVENUE_CHANNELS: 'finance' is not a Slack id"),
    ("JOB_SCHEDULES", "{sprint-digest: off}", "JOB_SCHEDULES: not valid JSON (give a JSON object"),
    ("JOB_SCHEDULES", '{"sprint-digst": "off"}', "JOB_SCHEDULES: unknown job id 'sprint-digst'"),
    ("SLACK_RESPONSE_URL_HOSTS", "hooks.slack.com", "SLACK_RESPONSE_URL_HOSTS: not valid JSON"),
    ("SLACK_APP_TOKEN", "xoxb-secret-1", "SLACK_APP_TOKEN: must be the app-level token"),
    ("DATABASE_URL", "db.example.com:5432", "DATABASE_URL: not a database URL"),
    ("DATABASE_URL", "mysql://u:secret@h/db", "DATABASE_URL: mysql is not a supported database"),
    ("FOLLOWUP_CHANGES", '["assigned", "shipped"]', "FOLLOWUP_CHANGES: unknown change 'shipped'"),
    ("FOLLOWUP_COMMENTS", "some", "FOLLOWUP_COMMENTS: Input should be 'all' or 'questions'"),
]


@pytest.mark.parametrize(("name", "value", "says"), BAD_SETTINGS)
@pytest.mark.parametrize("command", ["check", "serve"])
def test_a_bad_setting_is_one_plain_line_and_exit_2(tmp_path, command, name, value, says):
    result = run_cli(command, env={"DATA_DIR": str(tmp_path), name: value}, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("databot: Invalid settings: "), lines
    assert says in lines[0]
    assert "secret" not in lines[0]  # a token or password is never repeated


UNREACHABLE = [
    ("postgresql://postgres@127.0.0.1:1/test", "connection refused"),
    ("postgresql://nobody_databot@127.0.0.1:5432/test", "authentication failed"),
    (
        "postgresql://postgres@127.0.0.1:5432/no_such_db_databot",
        'the database "no_such_db_databot" does not exist',
    ),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("url", "reason"), UNREACHABLE)
@pytest.mark.parametrize("command", ["serve", "clock"])
def test_an_unreachable_state_database_stops_start_up_with_the_reason(
    tmp_path, postgres_engine, command, url, reason
):
    env = {"DATABASE_URL": url, "DEMO_WAREHOUSE": "true", "SLACK_BOT_TOKEN": "xoxb-1"}
    result = run_cli(command, env={**env, "SLACK_SIGNING_SECRET": "s"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("databot: DATABASE_URL: cannot reach the state database: ")
    assert reason in lines[0]


@pytest.mark.postgres
@pytest.mark.parametrize(("url", "reason"), UNREACHABLE)
def test_check_says_why_the_state_database_is_unreachable(tmp_path, postgres_engine, url, reason):
    result = run_cli("check", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 1
    assert f"[FAIL] state database unreachable ({reason}" in result.stdout


@pytest.mark.parametrize("command", ["serve", "clock"])
def test_serve_and_clock_need_gcp_project_or_the_demo_asked_for(tmp_path, command):
    env = {"DATA_DIR": str(tmp_path), "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    result = run_cli(command, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "databot: Cannot start: GCP_PROJECT is not set: set it to the BigQuery project, or set "
        "DEMO_WAREHOUSE=true to run on the embedded demo data (invented numbers)."
    ]
    assert list(tmp_path.iterdir()) == []


def test_check_fails_the_demo_warehouse_for_a_real_slack_workspace(tmp_path):
    env = {"DATA_DIR": str(tmp_path), "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    for demo in ("false", "true"):
        result = run_cli("check", env={**env, "DEMO_WAREHOUSE": demo}, cwd=tmp_path)
        assert result.returncode == 1
        assert "[FAIL] warehouse: embedded demo data (invented numbers)" in result.stdout
    # Pointed at a stand-in Slack, the demo warehouse is only a warning.
    local = run_cli("check", env={**env, "SLACK_API_URL": "http://127.0.0.1:9/api/"}, cwd=tmp_path)
    assert "[ok  ] warehouse: embedded DuckDB demo data" in local.stdout


def test_check_in_an_empty_folder_creates_no_file(tmp_path):
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 1  # no Slack credentials
    assert "manifest.yml matches the commands" in result.stdout
    assert "state database reachable (sqlite), schema revision none" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_check_reads_an_existing_sqlite_state_without_writing(tmp_path):
    from bot.store import Store

    store = Store(f"sqlite:///{tmp_path / '.databot' / 'state.db'}")
    store.migrate()
    store.close()
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    result = run_cli("check", cwd=tmp_path)
    assert "state database reachable (sqlite), schema revision " in result.stdout
    assert "schema revision none" not in result.stdout
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("databot ")


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


def test_posts_sprint_and_requests_speak_json_for_scripts(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    from bot.cli import main

    assert main(["sprint", "--date", "2026-11-25", "--json"]) == 0
    sprint = json.loads(capsys.readouterr().out)
    assert sprint["current"]["start"] == "2026-11-23"  # SPRINT_ANCHOR 2026-01-05 + 23 sprints
    assert sprint["next"]["start"] == "2026-12-07"
    assert main(["posts", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"runs": [], "clock_heartbeat": None}
    assert main(["requests", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"requests": []}
