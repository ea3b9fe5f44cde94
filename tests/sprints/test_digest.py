"""The sprint posts' content, built from a loopback GitHub holding a realistic sprint.

Expected issue lists are computed from the seeded issues by the rules of the feature
(closed as completed inside the last sprint's local dates, open in this sprint's milestone,
...), not copied from the code under test.
"""

from __future__ import annotations

import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from github import Auth, Github
from slack_sdk import WebClient

from bot.deps import Deps
from bot.github import GitHubGateway
from bot.scheduling import runner, runs
from bot.scheduling.clock import Clock
from bot.settings import Settings
from bot.sprints.blocks import SECTION_MAX
from bot.sprints.jobs import SprintCheckinJob, SprintDigestJob, SprintPlanningJob
from sandbox.github_api import FakeGitHub
from sandbox.slack_api import FakeSlack

PT = ZoneInfo("America/Los_Angeles")
REPO = "acme/analytics"
PLAN_URL = "https://github.com/orgs/acme/projects/7/views/3"


def pacific(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PT)


SPRINT_23 = (pacific(2026, 11, 9), pacific(2026, 11, 23))  # [start, next start)

ISSUES = [
    # closed as completed during Sprint 23: wins
    dict(title="Weekly active users dashboard for Cody", labels=["dashboard"],
         assignees=["alice"], milestone="Sprint 23", closed_at=pacific(2026, 11, 12, 15)),
    dict(title="Churn analysis for Q3 enterprise accounts", labels=["analysis"],
         assignees=["bob"], milestone="Sprint 23", closed_at=pacific(2026, 11, 19, 11)),
    dict(title="Fix duplicate events in the dotcom pipeline", labels=["bug"],
         assignees=["carol"], milestone="Sprint 23", closed_at=pacific(2026, 11, 20, 23, 30)),
    dict(title="Define the 'active instance' business metric", labels=["metric"],
         assignees=["alice"], milestone="Sprint 23", closed_at=pacific(2026, 11, 16, 9)),
    dict(title="Seat utilisation by account <enterprise>", labels=["dashboard"],
         assignees=["dave"], closed_at=pacific(2026, 11, 10, 10)),
    dict(title="Exec deck numbers for the board", labels=["urgent", "analysis"],
         assignees=["bob"], closed_at=pacific(2026, 11, 18, 17)),
    # closed, but not wins
    dict(title="Redash query for a marketing email", labels=["analysis"], assignees=["dave"],
         milestone="Sprint 23", closed_at=pacific(2026, 11, 13, 10), state_reason="not_planned"),
    dict(title="Old request from Sprint 22", labels=["bug"], assignees=["carol"],
         closed_at=pacific(2026, 11, 6, 10)),
    dict(title="Closed late on the Sunday before Sprint 23", labels=["bug"], assignees=["carol"],
         closed_at=pacific(2026, 11, 8, 23, 30)),  # Nov 9 in UTC, Nov 8 in Pacific
    dict(title="Closed this morning", labels=["metric"], assignees=["alice"],
         closed_at=pacific(2026, 11, 23, 8)),
    # open in Sprint 24: the plan
    dict(title="Cody Pro retention cohort chart", labels=["dashboard"], assignees=["alice"],
         milestone="Sprint 24"),
    dict(title="Search usage by deployment type", labels=["analysis"], milestone="Sprint 24"),
    dict(title="Seat consumption metric for customers", labels=["metric"], assignees=["bob"],
         milestone="Sprint 24"),
    dict(title="Broken pings for air-gapped instances", labels=["bug"], milestone="Sprint 24"),
    dict(title="Revenue dashboard shows zero for Nov 21", labels=["bug", "urgent"],
         assignees=["dave"], milestone="Sprint 24"),
    # open in Sprint 23: slipped
    dict(title="Instance version adoption report", labels=["analysis"], assignees=["carol"],
         milestone="Sprint 23"),
    # open, in no sprint
    dict(title="Someday: NPS analysis", labels=["analysis"]),
]  # fmt: skip


def seed(fake: FakeGitHub, issues=ISSUES) -> dict[str, int]:
    fake.create_milestone("Sprint 22", due_on="2026-11-06T08:00:00Z")
    fake.create_milestone("Sprint 23", due_on="2026-11-20T08:00:00Z")
    fake.create_milestone("Sprint 24", due_on="2026-12-04T08:00:00Z")
    fake.create_milestone("Q1 planning", due_on="2026-12-15T08:00:00Z")
    numbers = {}
    for spec in issues:
        spec = dict(spec)
        closed = spec.pop("closed_at", None)
        if closed is not None:
            spec.update(state="closed", closed_at=closed.astimezone(dt.UTC))
            spec.setdefault("state_reason", "completed")
        spec.setdefault("created_at", dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
        numbers[spec["title"]] = fake.create_issue(**spec)["number"]
    return numbers


def expected(numbers, rule) -> set[int]:
    return {numbers[i["title"]] for i in ISSUES if rule(i)}


def is_win(i) -> bool:
    closed = i.get("closed_at")
    return (
        closed is not None
        and i.get("state_reason", "completed") == "completed"
        and SPRINT_23[0] <= closed < SPRINT_23[1]
    )


@pytest.fixture
def github():
    with FakeGitHub(repo=REPO) as fake:
        yield fake


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


def make_deps(store, github, slack, clock, per_page=100, **settings) -> Deps:
    gh = Github(
        base_url=github.url,
        lazy=True,
        auth=Auth.Token(github.token),
        seconds_between_requests=0,
        seconds_between_writes=0,
        per_page=per_page,
        retry=None,
    )
    values = dict(
        github_repo=REPO,
        github_api_url=github.url,
        sprint_plan_url=PLAN_URL,
        request_type_labels=["dashboard", "analysis", "metric", "bug"],
        analytics_channel="#analytics",
        owner_channel="U0OWNER",
    )
    values.update(settings)
    return Deps(
        settings=Settings(_env_file=None, **values),
        store=store,
        warehouse=None,
        slack=WebClient(token=slack.token, base_url=slack.api_url),
        github=GitHubGateway(gh, REPO),
        work=ThreadPoolExecutor(1),
        now=clock,
    )


@pytest.fixture
def deps(store, github, slack, clock):
    return make_deps(store, github, slack, clock)


def section_numbers(blocks, heading: str) -> set[int]:
    for block in blocks:
        text = block.get("text", {}).get("text", "")
        if block["type"] == "section" and heading in text.split("\n")[0]:
            body = text.split("\n", 1)[1] if "\n" in text else ""
            return {int(n) for n in re.findall(r"^• <[^|]+\|#(\d+)>", body, re.M)}
    return set()


def section_text(blocks, heading: str) -> str:
    return next(b["text"]["text"] for b in blocks if heading in b.get("text", {}).get("text", ""))


def block_texts(blocks) -> str:
    out = []
    for b in blocks:
        if "text" in b:
            out.append(b["text"]["text"])
        out += [e.get("text", "") for e in b.get("elements", [])]
    return "\n".join(out)


def test_digest_has_wins_plan_slipped_and_urgent_from_the_sprint(deps, github):
    numbers = seed(github)
    post = SprintDigestJob(deps).build(deps, "2026-11-23")
    blocks = post.blocks

    wins = expected(numbers, is_win)
    assert section_numbers(blocks, "Wins from Sprint 23") == wins
    plan = expected(numbers, lambda i: "closed_at" not in i and i.get("milestone") == "Sprint 24")
    assert section_numbers(blocks, "The plan for this sprint") == plan
    slipped = expected(
        numbers, lambda i: "closed_at" not in i and i.get("milestone") == "Sprint 23"
    )
    assert section_numbers(blocks, "Slipped from Sprint 23") == slipped
    urgent = expected(numbers, lambda i: "closed_at" not in i and "urgent" in i["labels"])
    assert section_numbers(blocks, "Urgent, still open") == urgent

    text = block_texts(blocks)
    assert blocks[0]["text"]["text"] == ":rocket: Sprint 24 starts today"
    assert f"{len(wins)} issues done" in text
    assert f"{len(plan)} issues in the Sprint 24 milestone" in text
    # Unassigned plan issues are called out by number.
    unassigned = expected(
        numbers, lambda i: i.get("milestone") == "Sprint 24" and not i.get("assignees")
    )
    callout = next(line for line in text.splitlines() if "unassigned:*" in line)
    assert set(map(int, re.findall(r"\|#(\d+)>", callout))) == unassigned
    assert f"<{PLAN_URL}|The plan for the next 2–4 weeks>" in text
    # Outside text is escaped for mrkdwn.
    assert "Seat utilisation by account &lt;enterprise&gt;" in text
    assert "Sprint 23 milestone" not in text and "Nov 23 – Dec 4, 2026" in text
    assert post.channel == "#analytics"
    assert "Sprint 24 starts today" in post.text


def test_mentions_and_links_in_issue_titles_render_as_text_in_the_digest(deps, github):
    title = "<!channel> Q4 numbers & <https://evil.example|click here> <@U0BOSS>"
    seed(github)
    number = github.create_issue(
        title=title,
        labels=["analysis"],
        assignees=["alice"],
        milestone="Sprint 24",
        created_at=dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
    )["number"]
    post = SprintDigestJob(deps).build(deps, "2026-11-23")

    text = block_texts(post.blocks) + "\n" + post.text
    line = next(x for x in text.splitlines() if f"|#{number}>" in x)
    assert (
        "&lt;!channel&gt; Q4 numbers &amp; &lt;https://evil.example|click here&gt; "
        "&lt;@U0BOSS&gt;" in line
    )
    for live in ("<!channel>", "<@U0BOSS>", "<https://evil"):
        assert live not in text


def test_wins_are_grouped_by_request_type_with_assignees(deps, github):
    numbers = seed(github)
    blocks = SprintDigestJob(deps).build(deps, "2026-11-23").blocks
    wins = next(
        b["text"]["text"] for b in blocks if "Wins from" in b.get("text", {}).get("text", "")
    )
    groups = re.findall(r"^\*(\w+)\* \((\d+)\)$", wins, re.M)
    dashboards = [i for i in ISSUES if is_win(i) and i["labels"][0] == "dashboard"]
    assert groups[0] == ("Dashboard", str(len(dashboards)))
    assert [g for g, _ in groups] == ["Dashboard", "Analysis", "Metric", "Bug"]
    line = next(x for x in wins.splitlines() if "Churn analysis" in x)
    assert (
        line.endswith("— bob")
        and f"#{numbers['Churn analysis for Q3 enterprise accounts']}>" in line
    )


@pytest.mark.parametrize("per_page", [30, 100])
def test_the_digest_costs_a_few_requests_whatever_the_repo_size(
    store, github, slack, clock, per_page
):
    deps = make_deps(store, github, slack, clock, per_page=per_page)
    seed(github)
    github.add_many_issues(
        1500,
        factory=lambda i: {
            "title": f"Closed request {i}",
            "state": "closed",
            "state_reason": "completed",
            "closed_at": pacific(2026, 11, 12).astimezone(dt.UTC),
            "labels": ["analysis"],
        },
    )
    before = github.count()
    post = SprintDigestJob(deps).build(deps, "2026-11-23")
    # wins, plan, slipped, urgent: one page each, however many issues match.
    assert github.count("GET", r"/search/issues") == 4
    assert github.count() - before <= 6  # + the milestones, once an hour
    wins = 1500 + sum(1 for i in ISSUES if is_win(i))
    assert f"{wins:,} issues done" in section_text(post.blocks, "Wins from")


def long_title(i: int) -> str:
    return f"Request {i}: " + " ".join(["quarterly-retention-breakdown"] * 6)


def test_a_very_large_sprint_fits_slack_and_links_to_the_rest(deps, github, slack):
    seed(github, [])
    github.add_many_issues(
        800,
        factory=lambda i: {
            "title": long_title(i),
            "state": "closed",
            "state_reason": "completed",
            "closed_at": pacific(2026, 11, 12).astimezone(dt.UTC),
            "labels": [["dashboard", "analysis", "metric", "bug"][i % 4]],
            "assignees": [f"analyst{i % 7}"],
        },
    )
    github.add_many_issues(
        400,
        factory=lambda i: {"title": long_title(1000 + i), "milestone": "Sprint 24"},
    )
    post = SprintDigestJob(deps).build(deps, "2026-11-23")

    for block in post.blocks:
        assert len(block.get("text", {}).get("text", "")) <= SECTION_MAX
    assert len(post.blocks) <= 50
    wins = next(
        b["text"]["text"] for b in post.blocks if "Wins from" in b.get("text", {}).get("text", "")
    )
    shown = re.findall(r"^• <[^|]+\|#\d+> (.*) — analyst\d$", wins, re.M)
    more = re.search(r"…and ([\d,]+) more: <([^|]+)\|see all on GitHub>", wins)
    assert shown and more
    assert int(more.group(1).replace(",", "")) == 800 - len(shown)
    assert "reason%3Acompleted" in more.group(2)
    for title in shown:  # shortened at a word, never mid-word
        assert title.endswith("…")
        stem = title[:-1]
        full = next(long_title(i) for i in range(800) if long_title(i).startswith(stem))
        assert full[len(stem)] == " "
    assert "800 issues done" in wins
    # Slack accepts it as is.
    deps.slack.chat_postMessage(channel="#analytics", text=post.text, blocks=post.blocks)
    assert slack.violations == []


def test_without_milestones_the_plan_uses_the_sprint_label(store, github, slack, clock):
    deps = make_deps(store, github, slack, clock, sprint_label="current-sprint")
    github.create_issue("Labelled, planned", labels=["current-sprint", "dashboard"],
                        created_at="2026-11-23T17:30:00Z")  # fmt: skip
    github.create_issue("Labelled, from last sprint", labels=["current-sprint"],
                        created_at="2026-11-10T12:00:00Z")  # fmt: skip
    github.create_issue("Not in the sprint", labels=["analysis"])
    clock.set(pacific(2026, 11, 23, 9).astimezone(dt.UTC))
    blocks = SprintDigestJob(deps).build(deps, "2026-11-23").blocks
    assert section_numbers(blocks, "The plan for this sprint") == {1, 2}
    assert section_numbers(blocks, "Slipped from") == {2}
    assert "with the sprint label" in block_texts(blocks)


def test_digest_job_is_due_on_the_first_monday_of_each_sprint_only(deps, github):
    seed(github, [])
    job = SprintDigestJob(deps)
    due = {day: job.period_for(pacific(2026, 11, day, 9), PT) for day in (16, 23, 30)} | {
        "dec7": job.period_for(pacific(2026, 12, 7, 9), PT)
    }
    assert due == {16: None, 23: "2026-11-23", 30: None, "dec7": "2026-12-07"}


def test_planning_reminder_is_due_the_week_before_a_sprint(deps, github):
    seed(github, [])
    job = SprintPlanningJob(deps)
    assert job.period_for(pacific(2026, 11, 19, 10), PT) == "2026-11-23"
    assert job.period_for(pacific(2026, 11, 12, 10), PT) is None
    assert SprintCheckinJob(deps).period_for(pacific(2026, 11, 27, 10), PT) == "2026-11-23"
    assert SprintCheckinJob(deps).period_for(pacific(2026, 12, 4, 10), PT) is None
    assert not job.enabled and not SprintCheckinJob(deps).enabled  # noisy: off by default


def test_planning_reminder_lists_unassigned_and_untriaged_requests(deps, github):
    numbers = seed(github)
    blocks = SprintPlanningJob(deps).build(deps, "2026-12-07").blocks
    open_issues = [i for i in ISSUES if "closed_at" not in i]
    assert section_numbers(blocks, "Unassigned open requests") == {
        numbers[i["title"]] for i in open_issues if not i.get("assignees")
    }
    assert section_numbers(blocks, "Untriaged") == {
        numbers[i["title"]] for i in open_issues if not i.get("milestone")
    }
    assert "Sprint planning: Sprint" in blocks[0]["text"]["text"]


def test_checkin_lists_sprint_issues_with_no_update_this_week(deps, github):
    numbers = seed(github, [])
    github.create_issue("Quiet", milestone="Sprint 24", updated_at="2026-11-20T12:00:00Z")
    github.create_issue("Busy", milestone="Sprint 24", updated_at="2026-11-25T12:00:00Z")
    del numbers
    blocks = SprintCheckinJob(deps).build(deps, "2026-11-23").blocks
    assert section_numbers(blocks, "No update this week") == {1}
    assert "1 of 2 open sprint issues" in block_texts(blocks)


def test_the_clock_posts_the_digest_once_on_the_right_mondays(deps, github, slack, clock):
    seed(github)
    clock_ = Clock(deps, [SprintDigestJob(deps), SprintPlanningJob(deps)])
    day = pacific(2026, 11, 16, 9)
    while day < pacific(2026, 12, 22):
        for minute in (0, 1, 30):  # several ticks per due time
            clock.set(day + dt.timedelta(minutes=minute))
            clock_.tick()
        day += dt.timedelta(days=1)

    headers = [m["blocks"][0]["text"]["text"] for m in slack.messages("#analytics")]
    assert headers == [
        ":rocket: Sprint 24 starts today",
        ":rocket: Sprint Dec 7–18, 2026 starts today",
        ":rocket: Sprint Dec 21, 2026 – Jan 1, 2027 starts today",
    ]
    records = runs.list_runs(deps.store, job="sprint-digest")
    assert sorted(r.period for r in records if r.status == "posted") == [
        "2026-11-23",
        "2026-12-07",
        "2026-12-21",
    ]


# --- the CLI: databot post / posts / sprint ------------------------------------------------


@pytest.fixture
def cli_env(tmp_path, github, slack, monkeypatch):
    env = {
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_API_URL": slack.api_url,
        "GITHUB_TOKEN": github.token,
        "GITHUB_API_URL": github.url,
        "GITHUB_REPO": REPO,
        "ANALYTICS_CHANNEL": "#analytics",
        "SPRINT_PLAN_URL": PLAN_URL,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        import bot.github  # noqa: F401 - the real gateway, once it exists
    except ImportError:
        gh = Github(base_url=github.url, auth=Auth.Token(github.token), lazy=True,
                    seconds_between_requests=0, seconds_between_writes=0)  # fmt: skip
        monkeypatch.setattr(
            "bot.deps.make_github",
            lambda settings: SimpleNamespace(gh=gh, repo=gh.get_repo(REPO)),
        )
    return env


@pytest.fixture
def cli_sprint(cli_env, github):
    seed(github)
    return cli_env


def test_dry_run_prints_the_digest_and_posts_nothing(cli_sprint, slack, capsys):
    from bot.cli import main

    assert main(["post", "sprint-digest", "--date", "2026-11-23", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Sprint 24 starts today" in out
    assert "Wins from Sprint 23:* 6 issues done" in out
    assert "Churn analysis for Q3 enterprise accounts — bob" in out
    assert "dry run" in out
    assert slack.calls("chat.postMessage") == []
    assert main(["posts"]) == 0
    assert "No scheduled runs recorded yet." in capsys.readouterr().out


def test_post_by_hand_goes_out_once_and_posts_lists_it(cli_sprint, slack, capsys):
    from bot.cli import main

    assert main(["post", "sprint-digest", "--date", "2026-11-23"]) == 0
    first = capsys.readouterr().out
    assert main(["post", "sprint-digest", "--date", "2026-11-23"]) == 0
    second = capsys.readouterr().out
    assert len(slack.calls("chat.postMessage")) == 1
    link = slack.calls("chat.getPermalink")
    assert link and "posted https://" in first
    assert "already posted" in second and "nothing posted" in second

    assert main(["posts"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["WHEN", "JOB", "PERIOD", "STATUS", "CHANNEL", "LINK", "/", "WHY"]
    assert table[1].split()[2:5] == ["sprint-digest", "2026-11-23", "posted"]
    assert "https://sandbox.slack.com/archives/" in table[1]


def test_post_on_a_day_with_nothing_due_says_which_days_work(cli_sprint, capsys):
    from bot.cli import main

    assert main(["post", "sprint-digest", "--date", "2026-11-24"]) == 2
    err = capsys.readouterr().err
    assert "nothing due on Tue Nov 24, 2026" in err and "0 9 * * mon" in err
    assert main(["post", "weekly-nonsense"]) == 2
    assert "Jobs: sprint-digest" in capsys.readouterr().err


def test_sprint_command_prints_the_sprints_from_milestones(cli_sprint, capsys):
    from bot.cli import main

    assert main(["sprint", "--date", "2026-11-25"]) == 0
    out = capsys.readouterr().out
    assert "Current:  Sprint 24 (Nov 23 – Dec 4, 2026)" in out
    assert "Previous: Sprint 23 (Nov 9–20, 2026)" in out
    assert "Next:     Sprint Dec 7–18, 2026" in out


def test_github_failing_makes_the_digest_retry_then_tell_the_owner(deps, github, slack, clock):
    seed(github)
    github.fail_next("GET", "/search/issues", status=502, times=100)
    clock.set(pacific(2026, 11, 23, 9).astimezone(dt.UTC))
    job = SprintDigestJob(deps)
    first = runner.run_period(deps, job, "2026-11-23")
    assert first.status == "waiting" and "GitHub search failed (HTTP 502)" in first.detail
    for _ in range(6):  # retried every 30 minutes for 3 hours
        clock.advance(minutes=30)
        runner.run_period(deps, job, "2026-11-23")
    record = runs.get_run(deps.store, "sprint-digest", "2026-11-23")
    assert record.status == "failed"
    assert [m["text"] for m in slack.messages("U0OWNER")] == [
        ":warning: Sprint digest for 2026-11-23 was not posted: GitHub search failed (HTTP 502)"
    ]


def test_the_clock_process_posts_what_is_due_once_and_stops_on_sigterm(
    cli_env, slack, monkeypatch, capsys
):
    import os
    import signal
    import threading
    import time

    from bot.cli import main

    # A sprint that started this week (real time: the clock process reads the real clock),
    # and a digest due every minute: the clock's start-up catch-up must post it, once.
    today = dt.datetime.now(PT).date()
    monkeypatch.setenv("SPRINT_ANCHOR", (today - dt.timedelta(days=today.weekday())).isoformat())
    monkeypatch.setenv("JOB_SCHEDULES", '{"sprint-digest": "* * * * *"}')
    monkeypatch.setenv("DEMO_WAREHOUSE", "true")  # no GCP_PROJECT: clock needs the demo asked for

    def stop_when_posted():
        deadline = time.monotonic() + 20
        while not slack.calls("chat.postMessage") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    threading.Thread(target=stop_when_posted, daemon=True).start()
    try:
        assert main(["clock"]) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)

    digests = [c for c in slack.calls("chat.postMessage") if "starts today" in c.args["text"]]
    assert len(digests) == 1
    assert main(["posts"]) == 0
    assert "sprint-digest" in capsys.readouterr().out


def test_planning_and_checkin_when_enabled_post_on_their_days(store, github, slack, clock):
    deps = make_deps(
        store, github, slack, clock, sprint_planning_enabled=True, sprint_checkin_enabled=True
    )
    seed(github)
    clock_ = Clock(deps, [SprintPlanningJob(deps), SprintCheckinJob(deps)])
    day = pacific(2026, 11, 16, 10)
    while day < pacific(2026, 12, 13):
        clock.set(day.astimezone(dt.UTC))
        clock_.tick()
        day += dt.timedelta(days=1)

    posted = [
        (r.job, r.period, r.created_at.astimezone(PT).strftime("%a %b %d"))
        for r in sorted(runs.list_runs(deps.store), key=lambda r: r.created_at)
        if r.status == "posted"
    ]
    assert posted == [
        ("sprint-planning", "2026-11-23", "Thu Nov 19"),
        ("sprint-checkin", "2026-11-23", "Fri Nov 27"),
        ("sprint-planning", "2026-12-07", "Thu Dec 03"),
        ("sprint-checkin", "2026-12-07", "Fri Dec 11"),
    ]


def test_a_sprint_without_its_milestone_yet_says_so(deps, github):
    seed(github)
    blocks = SprintDigestJob(deps).build(deps, "2026-12-07").blocks
    assert "Wins from Sprint 24" in block_texts(blocks)
    assert "this sprint has no milestone yet" in block_texts(blocks)
