"""Who handles a request: the weekly support rotation and the business units' analysts,
through the real app (modal submitted over signed HTTP, issue created on the stand-in)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from bot.ids import RequestBlock
from bot.settings import Analyst, Settings
from bot.support.model import support_week
from sandbox.slack_requests import view_submission
from tests.conftest import TEST_NOW
from tests.intake.test_intake_flow import answer, new_request_modal, submit
from tests.support.checkout import checkout_env

ANA = {"github": "ana-lopez", "slack": "U0ANA", "name": "Ana Lopez"}
BEN = {"github": "ben-k", "slack": "U0BEN", "name": "Ben Kim"}
CAI = {"github": "cai", "slack": "U0CAI"}
DANA = {"github": "dana-f", "slack": "U0DANA", "name": "Dana Fox"}
START = dt.date(2026, 1, 5)


def expected_on_support(analysts: list[dict], day: dt.date) -> dict:
    """Independently: walk the weeks from the start, one analyst each, until `day`."""
    week, index = START, 0
    while week + dt.timedelta(days=7) <= day:
        week += dt.timedelta(days=7)
        index = (index + 1) % len(analysts)
    return analysts[index]


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_the_analyst_on_support_changes_every_monday_in_the_team_time_zone():
    s = settings(support_analysts=[ANA, BEN, CAI], support_rotation_start=START)
    day = START
    while day < dt.date(2027, 3, 1):
        assert support_week(s, day).analyst == Analyst(**expected_on_support([ANA, BEN, CAI], day))
        day += dt.timedelta(days=1)
    # Sunday 23:30 and Monday 00:30 in Los Angeles are both Monday in UTC.
    from bot.support.model import route

    la = s.tz
    sunday_night = dt.datetime(2026, 11, 29, 23, 30, tzinfo=la)
    monday_early = dt.datetime(2026, 11, 30, 0, 30, tzinfo=la)
    assert route(s, None, sunday_night.astimezone(dt.UTC)).analyst == Analyst(
        **expected_on_support([ANA, BEN, CAI], dt.date(2026, 11, 29))
    )
    assert route(s, None, monday_early.astimezone(dt.UTC)).analyst == Analyst(
        **expected_on_support([ANA, BEN, CAI], dt.date(2026, 11, 30))
    )


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"support_rotation_start": "2026-01-06"}, "Tuesday"),
        ({"support_analysts": [{"github": "ana"}]}, "slack"),
        ({"business_unit_analysts": {"Legal": DANA}}, "Legal"),
        ({"thread_mirror_channels": ["#analytics"]}, "not a channel id"),
    ],
)
def test_bad_routing_settings_are_refused_in_plain_words(values, named):
    with pytest.raises(ValueError, match=named):
        settings(**values)


@pytest.fixture
def bot(make_bot, sqlite_store):
    with make_bot(
        sqlite_store,
        support_analysts=[ANA, BEN, CAI],
        support_rotation_start=START,
        business_unit_analysts={"Finance": DANA},
    ) as h:
        h.slack.add_channel("C0ANALYTICS", "analytics")
        for uid, name in (("U0ALICE", "Alice Chen"), ("U0ANA", "Ana Lopez"), ("U0DANA", "Dana")):
            h.slack.add_user(uid, real_name=name)
        yield h


def file_request(bot, **extra) -> dict:
    view = new_request_modal(bot)
    base = {RequestBlock.TITLE: "Seats", "q:problem": "p", "q:end_state": "e", "q:why": "w"}
    values = answer(**{**base, **extra})
    submit(bot, view_submission(view, values))
    [issue] = bot.github.issues()
    return issue


def posts_to(bot, user: str) -> list[dict]:
    return [
        c.args
        for c in bot.slack.calls("chat.postMessage")
        if c.args.get("channel") == user and c.error is None
    ]


def test_a_new_request_is_assigned_to_the_analyst_on_support_and_the_requester_is_told(bot):
    on_support = expected_on_support([ANA, BEN, CAI], TEST_NOW.date())
    issue = file_request(bot)
    assert [a["login"] for a in issue["assignees"]] == [on_support["github"]]
    [reply] = posts_to(bot, "U0ALICE")
    who = on_support.get("name") or "@" + on_support["github"]
    assert f"{who}, on support this week, has it." in json.dumps(reply["blocks"])
    # Not urgent: nobody is pinged.
    assert posts_to(bot, on_support["slack"]) == []


def test_the_business_unit_labels_the_issue_and_routes_it_to_its_analyst(bot):
    issue = file_request(bot, **{RequestBlock.BUSINESS_UNIT: "Finance"})
    assert "unit: Finance" in [label["name"] for label in issue["labels"]]
    assert [a["login"] for a in issue["assignees"]] == [DANA["github"]]
    assert "### Business unit\n\nFinance" in issue["body"]
    [reply] = posts_to(bot, "U0ALICE")
    assert "Dana Fox, aligned with Finance, has it." in json.dumps(reply["blocks"])


def test_a_unit_without_an_analyst_goes_to_the_rotation(bot):
    on_support = expected_on_support([ANA, BEN, CAI], TEST_NOW.date())
    issue = file_request(bot, **{RequestBlock.BUSINESS_UNIT: "Marketing"})
    assert "unit: Marketing" in [label["name"] for label in issue["labels"]]
    assert [a["login"] for a in issue["assignees"]] == [on_support["github"]]


def test_an_urgent_request_pings_its_analyst_and_support_at_once_by_dm_once(bot):
    on_support = expected_on_support([ANA, BEN, CAI], TEST_NOW.date())
    issue = file_request(
        bot, **{RequestBlock.BUSINESS_UNIT: "Finance", RequestBlock.URGENT: ["urgent"]}
    )
    for analyst in (DANA, on_support):
        [ping] = posts_to(bot, analyst["slack"])
        assert (
            f"#{issue['number']}" in json.dumps(ping["blocks"]) and "urgent" in ping["text"].lower()
        )
    from bot.intake.filing import drain_outbox

    drain_outbox(bot.deps)  # a later pass pings nobody again
    assert len(posts_to(bot, DANA["slack"])) == 1


def test_mention_mode_mentions_the_analyst_in_the_issue_instead_of_assigning(
    make_bot, sqlite_store
):
    with make_bot(sqlite_store, support_analysts=[ANA], support_routing="mention") as bot:
        bot.slack.add_user("U0ALICE", real_name="Alice Chen")
        issue = file_request(bot)
    assert issue["assignees"] == []
    assert f"@{ANA['github']}: this one is yours (on support this week)." in issue["body"]


def test_the_modal_keeps_the_chosen_unit_and_everything_typed_on_a_validation_error(bot):
    view = new_request_modal(bot)
    past = (TEST_NOW - dt.timedelta(days=3)).date()
    values = answer(
        **{
            RequestBlock.TITLE: "Seats",
            "q:problem": "p",
            "q:end_state": "e",
            "q:why": "w",
            RequestBlock.BUSINESS_UNIT: "Finance",
            RequestBlock.DUE_DATE: past,
        }
    )
    response = bot.interact(view_submission(view, values))
    assert response.json()["response_action"] == "errors"
    assert bot.github.issues() == [] and bot.slack.calls("views.update") == []
    # Slack keeps the modal (and its values) open on response_action=errors; nothing stored.
    from bot.intake.outbox import list_requests

    assert list_requests(bot.deps) == []


def test_databot_support_prints_this_and_next_weeks_analyst(tmp_path):
    analysts = [ANA, BEN, CAI]
    env = {
        "SUPPORT_ANALYSTS": json.dumps(analysts),
        "SUPPORT_ROTATION_START": START.isoformat(),
        "DATA_DIR": str(tmp_path),
    }
    day = dt.date(2026, 12, 2)  # a Wednesday
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "support", "--date", day.isoformat(), "--json"],
        capture_output=True,
        text=True,
        env=checkout_env(env),
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    this, upcoming = (
        expected_on_support(analysts, day),
        expected_on_support(analysts, day + dt.timedelta(days=7)),
    )
    assert shown["this_week"]["analyst"]["github"] == this["github"]
    assert shown["next_week"]["analyst"]["github"] == upcoming["github"]
    assert shown["this_week"]["start"] == "2026-11-30" and shown["this_week"]["end"] == "2026-12-06"
    text = subprocess.run(
        [sys.executable, "-m", "bot.cli", "support", "--date", day.isoformat()],
        capture_output=True,
        text=True,
        env=checkout_env(env),
        cwd=tmp_path,
        timeout=60,
    ).stdout
    assert text.splitlines()[0].startswith("This week Mon Nov 30 – Sun Dec 6: ")
