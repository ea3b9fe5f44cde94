"""The Home tab through the real app: a signed `app_home_opened` event draws it with
views.publish; it lists the person's own requests, the urgent issues open now, this sprint
and who is on support; its button opens the request modal; filing redraws it."""

from __future__ import annotations

import datetime as dt
import json
import re
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import requests

from bot.github import GitHubIssue
from bot.home.blocks import build_home_view
from bot.home.model import HomeData, UrgentIssue
from bot.home.tab import _status
from bot.ids import Action, RequestBlock, View
from bot.intake.model import Status
from sandbox.slack_requests import app_home_opened_event, view_submission
from tests.conftest import TEST_NOW
from tests.intake.test_intake_flow import answer, new_request_modal, submit

ANA = {"github": "ana-lopez", "slack": "U0ANA", "name": "Ana Lopez"}
BEN = {"github": "ben-k", "slack": "U0BEN", "name": "Ben Kim"}


@pytest.fixture
def bot(make_bot, sqlite_store):
    with make_bot(
        sqlite_store, support_analysts=[ANA, BEN], support_rotation_start=dt.date(2026, 1, 5)
    ) as h:
        h.slack.add_channel("C0ANALYTICS", "analytics")
        h.slack.add_user("U0ALICE", real_name="Alice Chen")
        h.slack.add_user("U0CAROL", real_name="Carol Diaz")
        yield h


def file_request(bot, title: str, user: str) -> dict:
    view = new_request_modal(bot, user=user)
    values = answer(
        **{RequestBlock.TITLE: title, "q:problem": "p", "q:end_state": "e", "q:why": "w"}
    )
    submit(bot, view_submission(view, values, user_id=user))
    return next(i for i in bot.github.issues() if i["title"] == title)


def on_github(bot, method: str, path: str, body: dict) -> None:
    """A person changes the issue on github.com (here: the stand-in)."""
    response = requests.request(
        method,
        f"{bot.github.url}/repos/{bot.settings.github_repo}{path}",
        json=body,
        headers={"Authorization": f"Bearer {bot.settings.github_token.get_secret_value()}"},
        timeout=10,
    )
    response.raise_for_status()


def open_home(bot, user: str) -> dict:
    before = len(bot.slack.calls("views.publish"))
    assert bot.event(app_home_opened_event(user)).status == 200
    bot.wait_idle()
    calls = bot.slack.calls("views.publish")
    assert len(calls) == before + 1
    call = calls[-1]
    assert call.error is None, call.error
    assert call.args["user_id"] == user
    view = call.args["view"]
    return json.loads(view) if isinstance(view, str) else view


def text_of(view: dict) -> str:
    parts = []
    for block in view["blocks"]:
        parts.append((block.get("text") or {}).get("text", ""))
        parts.extend(
            e.get("text", "") for e in block.get("elements") or [] if isinstance(e.get("text"), str)
        )
    return "\n".join(parts)


def test_the_home_tab_lists_the_persons_requests_urgent_issues_sprint_and_support(bot):
    mine = file_request(bot, "Seats by plan", "U0ALICE")
    done = file_request(bot, "Churn by cohort", "U0ALICE")
    theirs = file_request(bot, "Carol's dashboard", "U0CAROL")
    on_github(bot, "POST", f"/issues/{mine['number']}/assignees", {"assignees": ["ana-lopez"]})
    on_github(
        bot, "PATCH", f"/issues/{done['number']}", {"state": "closed", "state_reason": "completed"}
    )
    urgent = bot.github.create_issue(
        "<!channel> pipeline *down*", labels=["urgent"], user="mallory"
    )

    view = open_home(bot, "U0ALICE")
    assert view["type"] == "home"
    shown = text_of(view)
    assert f"#{mine['number']} Seats by plan" in shown and mine["html_url"] in shown
    assert f"#{done['number']} Churn by cohort" in shown
    assert "Carol" not in shown and theirs["html_url"] not in shown
    line = next(b["text"]["text"] for b in view["blocks"] if mine["html_url"] in json.dumps(b))
    assert "Open, in progress" in line and "@ana-lopez" in line
    done_line = next(b["text"]["text"] for b in view["blocks"] if done["html_url"] in json.dumps(b))
    assert "Delivered" in done_line
    # The urgent issue, escaped: its title pings nobody.
    assert urgent["html_url"] in shown
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown
    # This sprint, computed from the anchor independently: 14-day sprints from 2026-01-05.
    today = TEST_NOW.astimezone(bot.settings.tz).date()
    start = dt.date(2026, 1, 5) + dt.timedelta(days=((today - dt.date(2026, 1, 5)).days // 14) * 14)
    end = start + dt.timedelta(days=11)  # the Friday of its second week
    assert f"{start:%a %b %-d} – {end:%a %b %-d}" in shown
    weeks = (today - dt.timedelta(days=today.weekday()) - dt.date(2026, 1, 5)).days // 7
    assert [ANA, BEN][weeks % 2]["name"] in shown
    assert bot.slack.violations == []


def test_the_new_request_button_opens_the_request_modal(bot):
    view = open_home(bot, "U0ALICE")
    before = len(bot.slack.calls("views.open"))
    assert bot.click(Action.HOME_NEW_REQUEST, "home", view=view, user="U0ALICE").status == 200
    [call] = bot.slack.wait_for("views.open", before + 1)[before:]
    assert call.error is None
    assert bot.slack.views()[-1]["callback_id"] == View.REQUEST


def test_filing_a_request_redraws_the_home_tab_of_someone_who_opened_it(bot):
    open_home(bot, "U0ALICE")
    before = len(bot.slack.calls("views.publish"))
    issue = file_request(bot, "Seats by plan", "U0ALICE")
    calls = bot.slack.calls("views.publish")[before:]
    assert [c.args["user_id"] for c in calls] == ["U0ALICE"]
    view = calls[-1].args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert issue["html_url"] in text_of(view)
    # Carol never opened her Home tab: filing for her publishes nothing.
    file_request(bot, "Carol's request", "U0CAROL")
    assert [c.args["user_id"] for c in bot.slack.calls("views.publish")[before:]] == ["U0ALICE"]


def test_the_messages_tab_draws_nothing_and_github_down_still_draws_the_tab(bot):
    assert bot.event(app_home_opened_event("U0ALICE", tab="messages")).status == 200
    bot.wait_idle()
    assert bot.slack.calls("views.publish") == []
    file_request(bot, "Seats by plan", "U0ALICE")
    bot.github.fail_next(status=503, times=50)
    shown = text_of(open_home(bot, "U0ALICE"))
    assert "Seats by plan" in shown and "GitHub did not answer" in shown


NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)


def test_ten_urgent_issues_with_ampersand_titles_keep_every_link_whole():
    """Titles like "R&D <-> Ops & Finance: ..." escape to 5x their length: the urgent section
    is cut by whole lines to fit 3,000 characters, never inside a `<url|label>` link, and
    says how many more there are."""
    title = "R&D & Ops " + "& QA " * 40
    urgent = [
        UrgentIssue(
            number=100 + i,
            title=title,
            url=f"https://github.com/acme/analytics/issues/{100 + i}",
            assignees=["ana-lopez", "ben-k", "cai-zhang", "dana-fox", "eve-smith"],
            created_at=NOW,
        )
        for i in range(10)
    ]
    data = HomeData(user_id="U0ALICE", urgent=urgent, urgent_total=12, today=NOW.date())
    view = build_home_view(data, ZoneInfo("America/Los_Angeles")).to_dict()
    [section] = [
        b
        for b in view["blocks"]
        if b["type"] == "section" and ":rotating_light:" in b["text"]["text"]
    ]
    text = section["text"]["text"]
    # Every "<" opens a link that is closed, and no entity is cut (`&am…`).
    assert text.count("<") == text.count(">"), text[-200:]
    assert not re.search(r"&[a-z]*…", text), text[-200:]
    shown = text.count("<https://github.com/acme/analytics/issues/")
    assert 0 < shown <= 10 and len(text) <= 3000
    assert text.endswith(f"… and {12 - shown} more"), text[-200:]


@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        ("duplicate", "Closed: duplicate"),
        ("not_planned", "Closed: not planned"),
        ("completed", "Delivered"),
        (None, "Delivered"),
    ],
)
def test_a_closed_request_shows_its_close_reason_and_only_completed_is_delivered(reason, shown):
    """Follow-ups tell "closed as duplicate": the Home tab does not say Delivered then."""
    issue = GitHubIssue.model_validate(
        {
            "number": 7,
            "title": "x",
            "html_url": "https://github.com/acme/analytics/issues/7",
            "state": "closed",
            "state_reason": reason,
            "labels": [],
            "assignees": [],
            "created_at": NOW.isoformat(),
            "updated_at": NOW.isoformat(),
            "closed_at": NOW.isoformat(),
        }
    )
    row = SimpleNamespace(status=Status.FILED)  # all _status reads of the row
    assert _status(row, issue) == shown  # type: ignore[arg-type]


def test_redrawing_the_home_tab_costs_no_rate_limit_until_an_issue_changes(bot):
    # 500 people opening Home ten requests each would spend GitHub's 5,000 requests an
    # hour; an unchanged issue is read with a conditional request (a 304 is free).
    filed = [file_request(bot, f"Report {n}", "U0ALICE") for n in range(3)]
    open_home(bot, "U0ALICE")
    used = bot.github.rate_limit_used
    again = open_home(bot, "U0ALICE")
    assert bot.github.rate_limit_used == used  # three 304s
    assert all(f"#{i['number']} Report" in text_of(again) for i in filed)

    first = filed[0]
    on_github(
        bot, "PATCH", f"/issues/{first['number']}", {"state": "closed", "state_reason": "completed"}
    )
    used = bot.github.rate_limit_used
    fresh = open_home(bot, "U0ALICE")
    line = next(b["text"]["text"] for b in fresh["blocks"] if first["html_url"] in json.dumps(b))
    assert "Delivered" in line
    assert bot.github.rate_limit_used == used + 1  # only the changed issue was sent again


def test_a_deleted_issue_shows_as_filed_and_the_others_still_come_from_github(bot):
    gone, kept = (file_request(bot, f"Report {n}", "U0ALICE") for n in range(2))
    on_github(
        bot, "PATCH", f"/issues/{kept['number']}", {"state": "closed", "state_reason": "completed"}
    )
    bot.github.fail_next("GET", rf"/issues/{gone['number']}$", status=404, times=5)
    view = open_home(bot, "U0ALICE")
    shown = text_of(view)
    line = next(b["text"]["text"] for b in view["blocks"] if kept["html_url"] in json.dumps(b))
    assert "Delivered" in line  # read from GitHub after the missing one
    assert f"#{gone['number']} Report 0" in shown
    assert "GitHub did not answer" not in shown  # one missing issue is not an outage
