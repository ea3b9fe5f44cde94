"""`databot demo` as a newcomer runs it: the real CLI, embedded defaults, a fresh data dir."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support.checkout import checkout_env


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory) -> str:
    data_dir = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_"))}
    env["DATA_DIR"] = str(data_dir)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo"],
        env=checkout_env(env),
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
