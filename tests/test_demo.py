"""`databot demo` as a newcomer runs it: the real CLI, embedded defaults, a fresh data dir."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.checkout import checkout_env

# A log line as bot/logs.py writes it: it belongs in the demo's log file, never in the story.
LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} [A-Z]+ ", re.M)


def run_demo(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_"))}
    env["DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", *args],
        env=checkout_env(env),
        cwd=data_dir,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """One data dir for the module: the first demo generates the warehouse, the rest reuse it."""
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def demo_run(data_dir) -> subprocess.CompletedProcess:
    result = run_demo(data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def demo_output(demo_run) -> str:
    return demo_run.stdout


def test_demo_keeps_log_lines_out_of_the_story_in_the_file_it_names(demo_run, data_dir):
    named = re.search(r"^Log lines go to (.+)$", demo_run.stdout, flags=re.M)
    assert named, demo_run.stdout[:500]
    log = Path(named.group(1))
    assert log.parent == data_dir.resolve()
    assert LOG_LINE.search(log.read_text()), "the log file has the log lines"
    assert "slack command -> 200" in log.read_text()
    assert not LOG_LINE.search(demo_run.stdout)
    assert demo_run.stderr == ""


def test_demo_shows_progress_while_it_generates_the_warehouse_the_first_time(demo_run):
    from bot.warehouse_demo import STEPS

    line = next(x for x in demo_run.stdout.splitlines() if "Generating the demo warehouse" in x)
    for number, step in enumerate(STEPS, start=1):
        assert f"{number}/{len(STEPS)} {step}" in line
    assert re.search(r"done in \d+ s\.$", line)


def test_demo_scene_plays_that_scene_alone_on_the_cached_warehouse(demo_run, data_dir):
    result = run_demo(data_dir, "--scene", "urgent")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    banners = re.findall(r"^={72}\n(.+)\n={72}$", result.stdout, flags=re.M)
    assert banners and all(b.startswith("Urgent issues") for b in banners), banners
    assert "Generating the demo warehouse" not in result.stdout  # made by the first run
    assert not LOG_LINE.search(result.stdout)


def test_demo_unknown_scene_is_one_line_listing_the_scenes(data_dir):
    from sandbox.demo import SCENES

    result = run_demo(data_dir, "--scene", "metirc")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "metirc" in result.stderr and ", ".join(SCENES) in result.stderr


def test_demo_list_names_every_scene_with_its_title(data_dir):
    from sandbox.demo import SCENES

    result = run_demo(data_dir, "--list")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == SCENES
    assert all(len(line.split(maxsplit=1)) == 2 for line in result.stdout.splitlines())


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


def scene(output: str, title: str) -> str:
    """The text of one scene: from its title to the next scene's banner."""
    start = output.index(title)
    end = output.find("=" * 72 + "\n", output.index("\n", start) + 73)
    return output[start : end if end != -1 else None]


def test_demo_metric_scene_answers_shares_refuses_revenue_and_helps(demo_output):
    text = scene(demo_output, "/metric: the numbers people ask for")
    assert "`cody_pro` All Cody Pro daily fields" in text and ":lock: _revenue_" in text
    assert re.search(
        r"^\*DAU\* · \w{3} \w{3} \d+, \d{4} \(yesterday, the default for DAU\)$", text, flags=re.M
    )
    assert "*Searches* by deployment type" in text and "Account overview:" in text
    assert re.search(r"\(cached answer in \d+ ms\)", text)
    assert "Asked by @U0ALICE" in text and "Shared in the channel." in text
    # Revenue: refused in #analytics, answered in #finance.
    assert "*Cody Pro MRR* is revenue data" in text and "Ask in #C0FINANCE" in text
    assert re.search(r"^\*Cody Pro MRR\* · ", text, flags=re.M)
    assert "Did you mean `mau`?" in text
    assert "I can't read the period “fortnight”" in text
    assert "Traceback" not in text


def test_demo_cody_pro_summary_fields_agree_with_each_other(demo_output):
    from bot.settings import Settings

    price = Settings.model_fields["cody_price_usd"].default
    text = scene(demo_output, "/metric: the numbers people ask for")
    summary = text[text.index("*Cody Pro: active subscribers* · ") :]
    active = int(re.search(r"^\*([\d,]+)\*", summary, flags=re.M).group(1).replace(",", ""))

    def field(label: str) -> float:
        value = re.search(rf"^\*{re.escape(label)}\*\n\$?([\d,]+)", summary, flags=re.M)
        assert value, f"{label} missing from the cody_pro summary"
        return float(value.group(1).replace(",", ""))

    new, retained = field("New subscribers"), field("Retained subscribers")
    billed = field("Subscribers billed (new + retained)")
    assert billed == new + retained
    assert field("Canceled subscribers") >= 0
    assert field("Revenue billed") == billed * price
    assert field("Revenue added (new)") == new * price
    assert field("Revenue retained") == retained * price
    assert field("MRR") == active * price
    assert field("ARR") == active * price * 12


def test_demo_urgent_scene_keeps_one_message_per_issue_and_pings_nobody(demo_output):
    text = scene(demo_output, "Urgent issues in #analytics")
    assert "GitHub delivers `issues.labeled` (delivery-1) -> HTTP 202" in text
    # One message for the issue: posted once, then updated as it is assigned and closed.
    (number,) = set(re.findall(r"\*🚨 Urgent issue\*  #(\d+) Exec revenue dashboard", text))
    assert text.count(f"#{number} Exec revenue dashboard") == 3
    assert len(re.findall(r"^--- message in C0ANALYTICS updated ---$", text, flags=re.M)) == 2
    assert "assigned to @bob" in text and "*✅ closed by @bob after" in text
    # The redelivered webhook is acknowledged and changes nothing.
    redelivered = text[text.index("GitHub redelivers") : text.index("nothing was posted")]
    assert "-> HTTP 200" in redelivered and "--- message" not in redelivered
    # The hostile title shows as typed: no live @channel, user mention or hidden link.
    hostile = next(line for line in text.splitlines() if "click" in line and "evil" in line)
    assert "<!channel> <@U0CEO> click <https://evil.example|here>" in hostile
    assert "@channel" not in hostile and "@U0CEO" not in hostile.replace("<@U0CEO>", "")
    assert "304 Not Modified" in text


# --- databot demo -i: the person types, clicks and fills in the modal -----------------------


def in_a_month() -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat()


@pytest.fixture(scope="module")
def session(demo_run, data_dir) -> str:
    """One interactive session, typed line by line as a person would."""
    typed = [
        "/metirc dau",  # a typo
        "metric dau",  # not a slash command at all
        "/metric dau 7d",
        "click 1",  # Share in channel
        "click 9",  # no such button
        "/data-request Churn by plan",
        "",  # Request type: keep
        "",  # Title: keep what the command typed
        "Which plans churn fastest?",
        "",  # end of the multi-line answer
        "Retention curves per plan",
        "",
        "",  # Why: required, so asked again
        "Pricing review in December",
        "",
        "",  # Requested by: keep
        "1",  # Timeline: urgent
        "2020-02-30",  # not a date: the date picker refuses it
        "2020-01-01",  # a date in the past: the bot refuses it
        "@bob",  # People involved
        "3",  # Frequency: weekly
        "7",  # Which group is it for: Finance
        in_a_month(),  # only the refused field is asked again
        "quit",
    ]
    result = run_demo(data_dir, "-i", stdin="\n".join(typed) + "\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr == ""
    return result.stdout


def test_interactive_demo_answers_a_mistyped_command_with_the_commands(session):
    from bot.ids import Command

    commands = ", ".join(c.value for c in Command)
    answer = session[session.index("slack> /metirc dau") :].splitlines()[1]
    assert answer.startswith("/metirc is not a command here") and commands in answer
    plain = session[session.index("slack> metric dau") :]
    assert commands in plain[: plain.index("slack> ", 10)]
    assert "Unhandled request" not in session and "@app." not in session


def test_interactive_demo_numbers_the_buttons_and_clicks_them(session):
    lookup = session[session.index("slack> /metric dau 7d") : session.index("slack> click 1")]
    assert "buttons: [1] Share in channel" in lookup
    clicked = session[session.index("slack> click 1") : session.index("slack> click 9")]
    assert "--- reply (in channel) ---" in clicked and "Asked by @U0ALICE" in clicked
    nothing = session[session.index("slack> click 9") :].splitlines()[1]
    assert nothing.startswith("Click which button?") and "[1]" in nothing


def test_interactive_demo_fills_in_and_submits_the_request_modal(session):
    modal = session[session.index("slack> /data-request") :]
    assert "Filling in “New data request”" in modal
    assert modal.count("This field is required.") == 1  # Why, left empty once
    assert "Slack's date picker takes a date like" in modal
    assert "Needed by: The due date is in the past" in modal
    after_error = modal[modal.index("Needed by: The due date is in the past") :]
    # Only the refused field is asked again; what was typed before it is kept.
    assert after_error.count("date (YYYY-MM-DD)> ") == 1
    assert "Which plans churn" not in after_error.split("(you press")[1]
    assert "(you press “File request”)" in after_error
    filed = re.search(r"^Filed #(\d+) Churn by plan ", after_error, flags=re.M)
    assert filed, after_error[-2000:]
    assert "It's marked *urgent*" in after_error


def test_interactive_demo_keeps_what_was_typed_when_the_request_type_changes(demo_run, data_dir):
    typed = [
        "shortcut",  # Slack's shortcuts menu
        "shortcut 1",
        "!cancel",
        "/data-request Churn by plan",
        "2",  # another request type: Slack tells the app at once, the modal is redrawn
        "",  # Title: still what the command typed
        "Which plans churn fastest?",
        "",
        "!cancel",
        "/data-request Second one",
        "",  # the input ends in the middle of the modal
    ]
    result = run_demo(data_dir, "-i", stdin="\n".join(typed) + "\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    menu = result.stdout[result.stdout.index("slack> shortcut\n") :].splitlines()[1]
    assert menu.startswith("shortcuts: [1] New data request")
    picked = result.stdout[result.stdout.index("slack> shortcut 1") :]
    assert "Filling in “New data request”" in picked.split("slack> ")[1]
    redrawn = result.stdout[result.stdout.index("--- modal (views.update) ---") :]
    assert "[ Ad-hoc analysis v ]" in redrawn.split("\n\n")[0]
    assert "now: Churn by plan" in redrawn
    assert "(modal closed; nothing was sent)" in redrawn
    assert "Filed #" not in result.stdout


def test_demo_subscriptions_scene_delivers_one_subscription_and_one_alert_once(demo_output):
    scene = demo_output.split("Subscriptions and alerts (issue 14)")[1]
    assert "Subscribed" in scene and "Alert set" in scene
    assert "revenue data" in scene  # mrr refused in #analytics
    assert scene.count("--- message in C0ANALYTICS ---") == 2  # the alert and the delivery
    assert "nothing posted again." in scene
    assert "sub-" in scene and "alert-" in scene
