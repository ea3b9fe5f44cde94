"""The intake domain: the issue as GitHub will show it, escaping, validation, and the
outbox's exactly-once filing (on SQLite and PostgreSQL), with Slack on loopback and a small
scripted stand-in for our own GitHub gateway. The real gateway against the loopback GitHub
API is exercised in test_github_gateway.py and test_intake_flow.py."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa
from github import GithubException
from slack_sdk import WebClient

from bot import tables
from bot.deps import Deps
from bot.github import IssueRef
from bot.intake import outbox
from bot.intake.filing import drain_outbox, file_request
from bot.intake.forms import builtin_forms, parse_issue_form
from bot.intake.issue import render_issue
from bot.intake.markdown import github_markdown, slack_to_plain
from bot.intake.model import (
    Frequency,
    Source,
    Status,
    Submission,
    ThreadMessage,
    validate_submission,
)
from bot.intake.outbox import (
    get_request,
    list_requests,
    request_for_thread,
    requeue,
    submit_request,
    take_lease,
)
from bot.settings import Settings
from sandbox.slack_api import FakeSlack
from tests.support.forms import DASHBOARD_FORM

ANALYSIS = next(f for f in builtin_forms() if f.key == "builtin-analysis")
DASHBOARD = parse_issue_form("dashboard", DASHBOARD_FORM)


class ScriptedGitHub:
    """Our GitHubGateway's three calls, in memory, with scripted failures."""

    def __init__(self) -> None:
        self.issues: list[dict] = []
        self.failures: list[Exception] = []
        self.lose_next_response = False
        self.creates = 0
        self.lock = threading.Lock()
        self.slow: threading.Event | None = None

    def create_issue(self, title: str, body: str, labels: list[str]) -> IssueRef:
        if self.slow is not None:
            self.slow.wait(5)
        with self.lock:
            self.creates += 1
            if self.failures:
                raise self.failures.pop(0)
            number = len(self.issues) + 1
            self.issues.append({"number": number, "title": title, "body": body, "labels": labels})
            if self.lose_next_response:
                self.lose_next_response = False
                raise requests.exceptions.ReadTimeout("read timed out")
        return IssueRef(number, f"https://github.example/acme/analytics/issues/{number}", title)

    def find_issue_with_marker(self, marker: str, since: dt.datetime) -> IssueRef | None:
        for issue in self.issues:
            if marker in issue["body"]:
                url = f"https://github.example/acme/analytics/issues/{issue['number']}"
                return IssueRef(issue["number"], url, issue["title"])
        return None

    def read_issue_forms(self) -> dict[str, str]:
        return {}


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        fake.add_channel("C0ANALYTICS", "analytics")
        fake.add_user("U0ALICE", name="alice", real_name="Alice Chen")
        fake.add_user("U0BOB", name="bob", real_name="Bob Ortiz")
        yield fake


@pytest.fixture
def github():
    return ScriptedGitHub()


@pytest.fixture
def deps(store, slack, github, clock):
    work = ThreadPoolExecutor(4)
    d = Deps(
        settings=Settings(_env_file=None),
        store=store,
        warehouse=None,
        slack=WebClient(token=slack.token, base_url=slack.api_url),
        github=github,
        work=work,
        now=clock,
    )
    yield d
    work.shutdown(wait=True)


def submission(**overrides) -> Submission:
    values = {
        "form": ANALYSIS,
        "title": "Weekly searches by deployment type",
        "answers": {
            "problem": "How many searches per week come from each deployment type?",
            "end_state": "A bar chart per week, to decide where to invest.",
            "why": "Q1 planning for the search team.",
        },
        "urgent": False,
        "due_date": dt.date(2026, 12, 4),
        "people": ["U0ALICE", "U0BOB"],
        "frequency": Frequency.WEEKLY,
        "requester_id": "U0ALICE",
        "submitted_by": "U0ALICE",
        "source": Source.COMMAND,
    }
    values.update(overrides)
    return Submission(**values)


NAMES = {"U0ALICE": "Alice Chen", "U0BOB": "Bob Ortiz"}


# --- the issue -------------------------------------------------------------------------


def test_builtin_request_renders_like_a_github_form_with_marker_and_labels():
    draft = render_issue(submission(), "req-1", permalink=None, user_name=NAMES.get)
    assert draft.title == "Weekly searches by deployment type"
    assert draft.labels == ["data-request", "analysis"]
    assert draft.body == (
        "<!-- databot-request: req-1 -->\n\n"
        "### Problem or question\n\n"
        "How many searches per week come from each deployment type?\n\n"
        "### End state\n\n"
        "A bar chart per week, to decide where to invest.\n\n"
        "### Why\n\n"
        "Q1 planning for the search team.\n\n"
        "### Timeline\n\nNot urgent\n\n"
        "### Needed by\n\n2026-12-04\n\n"
        "### People involved\n\n- Alice Chen\n- Bob Ortiz\n\n"
        "### Frequency\n\nOngoing, weekly\n\n"
        "---\n<sub>Requested by Alice Chen in Slack, via databot.</sub>\n"
    )


def test_repo_form_answers_follow_github_layout_prefix_and_urgent_label():
    sub = submission(
        form=DASHBOARD,
        title="Upgrades to 5.x",
        answers={
            "problem": "Which instances upgraded?",
            "end_state": "",
            "audience": ["Leadership", "Sales"],
            "tool": "Looker",
            "sql": "SELECT `version` FROM pings -- ```",
            "terms": ["I checked that no existing dashboard answers this"],
        },
        urgent=True,
        due_date=None,
        people=[],
        frequency=Frequency.ONE_TIME,
    )
    draft = render_issue(sub, "req-2", permalink=None, user_name=NAMES.get)
    assert draft.title == "[Dashboard]: Upgrades to 5.x"
    assert draft.labels == ["dashboard", "triage", "urgent"]
    sections = draft.body.split("\n\n### ")
    assert sections[1:9] == [
        "What question should the dashboard answer?\n\nWhich instances upgraded?",
        "End state\n\n_No response_",
        "Existing dashboard (if a change)\n\n_No response_",
        "Audience\n\nLeadership, Sales",
        "Tool\n\nLooker",
        # the answer holds three backticks, so the fence is longer: it cannot close early
        "Query you started from\n\n````sql\nSELECT `version` FROM pings -- ```\n````",
        "Before you submit\n\n- [X] I checked that no existing dashboard answers this\n"
        "- [ ] I can review a draft within a week",
        "Timeline\n\nUrgent",
    ]
    assert "Thanks for asking" not in draft.body  # markdown elements are not answers


def test_title_prefix_is_not_doubled_when_the_title_already_has_it():
    sub = submission(form=DASHBOARD, title="[dashboard]: Upgrades")
    assert render_issue(sub, "r", permalink=None).title == "[dashboard]: Upgrades"


def test_thread_is_quoted_with_names_and_link_and_filer_named_when_not_requester():
    thread = [
        ThreadMessage(user="U0BOB", ts="1.1", text="Can we get <@U0ALICE|alice> a number?"),
        ThreadMessage(user="U0ALICE", ts="1.2", text="Sure &amp; thanks"),
    ]
    sub = submission(
        source=Source.MESSAGE,
        channel_id="C0ANALYTICS",
        thread_ts="1.1",
        thread=thread,
        requester_id="U0BOB",
    )
    body = render_issue(sub, "r", permalink="https://x.slack.com/p1", user_name=NAMES.get).body
    assert (
        "### Slack thread\n\nhttps://x.slack.com/p1\n\n"
        "> **Bob Ortiz:** Can we get @&#8203;alice a number?\n>\n"
        "> **Alice Chen:** Sure &amp; thanks\n\n"
    ) in body
    assert body.endswith(
        "Requested by Bob Ortiz in Slack, filed by Alice Chen, via databot.</sub>\n"
    )


# --- escaping Slack text for GitHub ------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "on_github"),
    [
        ("ping @acme/data-team now", "ping @&#8203;acme/data-team now"),
        ("@alice and @bob", "@&#8203;alice and @&#8203;bob"),
        ("mail me at ana@example.com", "mail me at ana@example.com"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("A & B <b>bold</b>", "A &amp; B &lt;b&gt;bold&lt;/b&gt;"),
        ("run `SELECT a < b` @team", "run <code>SELECT a &lt; b</code> @&#8203;team"),
        ("```\nx < y @team\n```\nafter @x", "```\nx < y @team\n```\nafter @&#8203;x"),
        ("```sql\nSELECT 1\n-- never closed", "```sql\nSELECT 1\n-- never closed\n```"),
        # A code span closes only on a backtick run of its own length (CommonMark): "``"
        # does not close "`", so these are plain text on GitHub and must be escaped.
        (
            "`@data-team/analysts`` please",
            "`@&#8203;data-team/analysts`` please",
        ),
        ("`<img src=x>``", "`&lt;img src=x&gt;``"),
        # An escaped backtick opens nothing.
        ("\\`@team`", "\\`@&#8203;team`"),
        # A real span that holds text GitHub must not act on is written as <code>, so it
        # stays inert even where Markdown would pair its backticks differently.
        ("`a\n`@team`", "`a\n<code>@&#8203;team</code>"),
        ("`` a ` @team ``", "<code>a &#96; @&#8203;team</code>"),
        # Backtick fences cannot have a backtick in their info string: not a fence.
        ("```x`\n@team\n```", "```x`\n@&#8203;team\n```\n```"),
        # Issue references would link (and notify the issue): shown, not linked.
        ("see #123 and acme/web#9, C# 7", "see #&#8203;123 and acme/web#&#8203;9, C# 7"),
        ("`SELECT 1` and `x > 0`", "`SELECT 1` and `x > 0`"),
    ],
)
def test_github_markdown_neutralises_mentions_and_html_but_keeps_code(typed, on_github):
    assert github_markdown(typed) == on_github


def test_very_long_paste_is_kept_whole_in_a_collapsed_section():
    paste = "\n".join(f"row {i}: value {i * 7}" for i in range(150))
    sub = submission(answers={**submission().answers, "problem": paste})
    body = render_issue(sub, "r", permalink=None).body
    section = body.split("### Problem or question\n\n")[1].split("\n\n### ")[0]
    assert section.startswith("<details>\n<summary>Problem or question (")
    assert section.endswith("</details>")
    assert all(f"row {i}: value {i * 7}" in section for i in range(150))


def test_slack_message_format_becomes_readable_text():
    text = (
        "<@U0ALICE> see <#C0ANALYTICS|analytics> and <https://looker.example/d/1|the dash> "
        "<!here> <!subteam^S1|@data> a &lt; b &amp;&amp; c &gt; d"
    )
    assert slack_to_plain(text, NAMES.get) == (
        "@Alice Chen see #analytics and the dash (https://looker.example/d/1) "
        "@here @data a < b && c > d"
    )


# --- validation ---------------------------------------------------------------------------


def test_validation_names_blank_answers_unticked_required_boxes_and_past_dates():
    sub = submission(
        form=DASHBOARD,
        title="   ",
        answers={"problem": "  \n ", "end_state": "ok", "tool": "Looker", "terms": []},
        due_date=dt.date(2026, 11, 1),
    )
    errors = validate_submission(sub, today=dt.date(2026, 11, 23))
    assert errors == {
        "title": "Give the request a short title.",
        "problem": "What question should the dashboard answer? is required.",
        "terms": "Please confirm: I checked that no existing dashboard answers this",
        "due_date": "The due date is in the past; pick today or a later date.",
    }
    assert validate_submission(submission(), today=dt.date(2026, 11, 23)) == {}


# --- the outbox --------------------------------------------------------------------------


def test_same_submission_twice_is_stored_once(deps):
    first = submit_request(deps, submission(), "view:V1")
    again = submit_request(deps, submission(title="changed"), "view:V1")
    assert first.created and not again.created
    assert again.row.id == first.row.id
    assert len(list_requests(deps)) == 1


def test_concurrent_submissions_of_one_view_store_exactly_one(deps):
    barrier = threading.Barrier(8)

    def submit(_):
        barrier.wait()
        return submit_request(deps, submission(), "view:VRACE")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(submit, range(8)))
    assert sum(r.created for r in results) == 1
    assert len({r.row.id for r in results}) == 1
    assert len(list_requests(deps)) == 1


def test_two_modals_on_one_thread_race_and_only_one_request_exists(deps):
    barrier = threading.Barrier(6)

    def submit(i):
        barrier.wait()
        sub = submission(source=Source.MESSAGE, channel_id="C0ANALYTICS", thread_ts="9.1")
        return submit_request(deps, sub, f"view:V{i}")

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(submit, range(6)))
    assert sum(r.created for r in results) == 1
    assert request_for_thread(deps, "C0ANALYTICS", "9.1").id == results[0].row.id


def test_filed_request_replies_in_the_thread_with_link_number_and_title(deps, slack, github):
    root = slack.seed_thread("C0ANALYTICS", [{"user": "U0BOB", "text": "Need weekly searches"}])
    sub = submission(source=Source.MESSAGE, channel_id="C0ANALYTICS", thread_ts=root)
    row = submit_request(deps, sub, "view:V1").row
    done = file_request(deps, row.id)
    assert done.status is Status.FILED and done.notified_at is not None
    assert done.issue_number == 1
    assert (
        f"https://sandbox.slack.com/archives/C0ANALYTICS/p{root.replace('.', '')}"
        in (github.issues[0]["body"])
    )
    replies = [m for m in slack.thread("C0ANALYTICS", root) if m["ts"] != root]
    assert len(replies) == 1
    shown = replies[0]["blocks"][0]["text"]["text"]
    assert (
        "<https://github.example/acme/analytics/issues/1|#1 Weekly searches by deployment type>"
        in shown
    )
    # filing again (a second worker, a retry) does nothing more
    file_request(deps, row.id)
    drain_outbox(deps)
    assert github.creates == 1
    assert len(slack.thread("C0ANALYTICS", root)) == 2


def test_github_outage_queues_tells_once_and_retries_with_backoff(deps, slack, github, clock):
    github.failures = [GithubException(502, {"message": "Bad Gateway"}) for _ in range(3)]
    row = submit_request(deps, submission(), "view:V1").row
    after = file_request(deps, row.id)
    assert after.status is Status.QUEUED and after.attempts == 1
    assert after.next_attempt_at == clock() + dt.timedelta(seconds=30)
    assert after.last_error == "GitHub error (HTTP 502)"

    assert drain_outbox(deps).filed == 0  # not due yet: no call
    assert github.creates == 1
    clock.advance(seconds=30)
    drain_outbox(deps)
    assert get_request(deps, row.id).next_attempt_at == clock() + dt.timedelta(seconds=60)
    clock.advance(seconds=60)
    drain_outbox(deps)
    clock.advance(seconds=120)
    report = drain_outbox(deps)
    assert report.filed == 1 and report.notified == 1
    final = get_request(deps, row.id)
    assert final.status is Status.FILED and final.attempts == 4
    dms = slack.messages("U0ALICE")
    assert [("queued" in m["text"], "Filed #1:" in m["text"]) for m in dms] == [
        (True, False),
        (False, True),
    ]


def test_rate_limit_retry_after_is_honoured_when_longer_than_backoff(deps, github, clock):
    github.failures = [GithubException(403, {"message": "x"}, headers={"Retry-After": "600"})]
    row = submit_request(deps, submission(), "view:V1").row
    after = file_request(deps, row.id)
    assert after.status is Status.QUEUED
    assert after.next_attempt_at == clock() + dt.timedelta(seconds=600)


def test_lost_create_response_is_found_by_marker_not_filed_twice(deps, github, clock):
    github.lose_next_response = True
    row = submit_request(deps, submission(), "view:V1").row
    assert file_request(deps, row.id).status is Status.QUEUED
    assert len(github.issues) == 1  # GitHub made it; we did not hear back
    clock.advance(minutes=5)
    done = file_request(deps, row.id)
    assert done.status is Status.FILED and done.issue_number == 1
    assert len(github.issues) == 1 and github.creates == 1


def test_refused_request_fails_visibly_and_can_be_requeued(deps, slack, github):
    github.failures = [GithubException(422, {"message": "Validation Failed"})]
    row = submit_request(deps, submission(), "view:V1").row
    failed = file_request(deps, row.id)
    assert failed.status is Status.FAILED
    assert failed.last_error == "GitHub rejected the issue (HTTP 422): Validation Failed"
    assert [r.id for r in list_requests(deps, [Status.QUEUED, Status.FAILED])] == [row.id]
    shown = slack.messages("U0ALICE")[0]["blocks"][0]["text"]["text"]
    assert "GitHub refused your request *Weekly searches by deployment type*" in shown
    assert "(GitHub rejected the issue (HTTP 422): Validation Failed)" in shown
    assert drain_outbox(deps).filed == 0  # failed rows wait for a person
    requeue(deps, row.id)
    assert drain_outbox(deps).filed == 1
    assert list_requests(deps, [Status.QUEUED, Status.FAILED]) == []


def test_without_github_token_requests_wait_and_are_filed_once_configured(deps, slack, github):
    deps.github = None
    row = submit_request(deps, submission(), "view:V1").row
    waiting = file_request(deps, row.id)
    drain_outbox(deps)
    assert waiting.status is Status.QUEUED
    assert waiting.last_error == "GitHub is not configured (GITHUB_TOKEN is not set)"
    assert len(slack.messages("U0ALICE")) == 1  # one "queued" note, not one per pass
    deps.github = github  # the token is set and the bot restarted
    assert drain_outbox(deps).filed == 1
    assert len(github.issues) == 1


def test_concurrent_filers_create_one_issue(deps, github):
    row = submit_request(deps, submission(), "view:V1").row
    github.slow = threading.Event()
    barrier = threading.Barrier(5)

    def file(_):
        barrier.wait()
        return file_request(deps, row.id)

    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(file, i) for i in range(5)]
        github.slow.set()
        [f.result() for f in futures]
    assert github.creates == 1
    assert get_request(deps, row.id).status is Status.FILED


def test_crash_while_holding_the_lease_is_resumed_after_it_expires(deps, github, clock):
    row = submit_request(deps, submission(), "view:V1").row
    from bot.intake.outbox import take_lease

    # a worker leased it, maybe created the issue, then died
    assert take_lease(deps, row.id, status=Status.QUEUED, count_attempt=True)
    github.issues.append(
        {"number": 1, "title": "t", "body": f"<!-- databot-request: {row.id} -->", "labels": []}
    )
    assert drain_outbox(deps).filed == 0  # lease still held
    from bot.intake.outbox import filing_lease

    clock.advance(seconds=filing_lease(deps.settings).total_seconds() + 1)
    assert drain_outbox(deps).filed == 1
    assert github.creates == 0 and get_request(deps, row.id).issue_number == 1


def test_thread_title_proposal_is_the_first_sentence_and_author_is_requester():
    from bot.intake.blocks import prefill_from_thread

    thread = [
        ThreadMessage(user="U0BOB", ts="1.1", text="x"),
        ThreadMessage(user="U0AL", ts="1.2", text="y"),
    ]
    prefill = prefill_from_thread(
        thread, plain="\nHow many searches per week? We need it for Q1. Thanks!\nMore detail"
    )
    assert prefill.title == "How many searches per week?"
    assert prefill.problem == "How many searches per week? We need it for Q1. Thanks!\nMore detail"
    assert (prefill.requester_id, prefill.people) == ("U0BOB", ["U0BOB"])


def test_databot_requests_lists_queued_and_failed_and_retries_on_request(
    tmp_path, monkeypatch, capsys
):
    from bot.cli import main
    from bot.store import Store

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api/")  # nothing listens there
    for name in ("GITHUB_TOKEN", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    deps = Deps(
        settings=Settings(_env_file=None),
        store=store,
        warehouse=None,
        slack=WebClient(base_url="http://127.0.0.1:9/"),
        github=None,
        work=None,
        now=lambda: dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC),
    )
    queued = submit_request(deps, submission(title="Seats by plan"), "view:V1").row
    failed = submit_request(deps, submission(title="Churn"), "view:V2").row
    from bot.intake.outbox import update_request

    update_request(
        deps, failed.id, status="failed", last_error="GitHub rejected the issue (HTTP 422)"
    )
    store.close()

    assert main(["requests"]) == 0
    out = capsys.readouterr().out
    assert f"{queued.id}  queued" in out and "Seats by plan" in out
    assert f"{failed.id}  failed" in out
    assert "last error: GitHub rejected the issue (HTTP 422)" in out

    assert main(["requests", "--retry", failed.id]) == 0
    out = capsys.readouterr().out
    assert f"{failed.id}: queued" in out
    assert main(["requests", "--retry", "no-such-id"]) == 1


def test_modal_for_an_oversized_form_stays_within_slack_limits():
    from bot.intake.blocks import ModalState, Prefill, build_request_modal
    from bot.intake.forms import CheckboxOption, FieldKind, FormField, IssueForm

    long = "x" * 5000
    fields = [
        FormField(
            id="pick",
            kind=FieldKind.DROPDOWN,
            label=long,
            options=[f"{i} {long}" for i in range(150)],
        ),
        FormField(
            id="boxes",
            kind=FieldKind.CHECKBOXES,
            label="Confirm",
            checkboxes=[CheckboxOption(label=f"box {i} {long}") for i in range(15)],
        ),
        *[
            FormField(id=f"t{i}", kind=FieldKind.TEXTAREA, label=f"Q{i}", placeholder=long)
            for i in range(120)
        ],
    ]
    form = IssueForm(key="huge", name="A form with a very long name " + long, fields=fields)
    view = build_request_modal(
        [form],
        form,
        ModalState(source=Source.COMMAND, submitted_by="U0ALICE"),
        Prefill(title=long, problem=long),
    ).to_dict()  # slack_sdk checks every per-element limit here
    assert len(view["blocks"]) <= 100
    assert len(view["private_metadata"]) <= 3000
    pick = next(b for b in view["blocks"] if b.get("block_id") == "q:pick")
    assert len(pick["element"]["options"]) == 100
    assert max(len(o["text"]["text"]) for o in pick["element"]["options"]) <= 75
    title = next(b for b in view["blocks"] if b.get("block_id") == "request_title")
    assert len(title["element"]["initial_value"]) <= 150


def test_outbox_worker_thread_files_queued_requests_until_stopped(deps, github):
    import time

    from bot.intake.filing import start_outbox_worker

    github.failures = [GithubException(503, {})]
    row = submit_request(deps, submission(), "view:V1").row
    file_request(deps, row.id)  # fails: queued for 30 s
    deps.now = lambda: dt.datetime(2026, 11, 23, 19, 0, tzinfo=dt.UTC)  # an hour later
    stop = start_outbox_worker(deps, interval=0.05)
    try:
        deadline = time.monotonic() + 10
        while get_request(deps, row.id).status is not Status.FILED:
            assert time.monotonic() < deadline, "the worker did not file the request"
            time.sleep(0.05)
    finally:
        stop()
    assert github.creates == 2 and len(github.issues) == 1


def test_reply_goes_by_dm_when_the_thread_channel_is_gone_and_retries_when_slack_is_down(
    deps, slack, clock
):
    root = slack.seed_thread("C0ANALYTICS", [{"user": "U0BOB", "text": "Need weekly searches"}])
    sub = submission(source=Source.MESSAGE, channel_id="C0ANALYTICS", thread_ts=root)
    row = submit_request(deps, sub, "view:V1").row
    slack.fail_next("chat.postMessage", "ratelimited", retry_after=0)
    filed = file_request(deps, row.id)
    assert filed.status is Status.FILED and filed.notified_at is None  # link not sent yet
    slack.fail_next("chat.postMessage", "channel_not_found")
    clock.advance(seconds=30)  # replies are retried with backoff
    drain_outbox(deps)
    assert get_request(deps, row.id).notified_at is not None
    [dm] = slack.messages("U0ALICE")
    assert "#1 Weekly searches by deployment type" in dm["blocks"][0]["text"]["text"]


def test_form_markdown_reads_as_slack_mrkdwn_and_stays_escaped():
    from bot.intake.blocks import markdown_to_mrkdwn

    assert (
        markdown_to_mrkdwn(
            "## Before you start\n**Check** the [catalog](https://looker.example/c) <b>&</b>"
        )
        == "*Before you start*\n*Check* the <https://looker.example/c|catalog> "
        "&lt;b&gt;&amp;&lt;/b&gt;"
    )


def test_a_huge_thread_is_quoted_until_githubs_body_limit_and_points_to_slack():
    thread = [
        ThreadMessage(user="U0BOB", ts=f"1.{i}", text=f"message {i} " + "x" * 9000)
        for i in range(20)
    ]
    sub = submission(source=Source.MESSAGE, channel_id="C1", thread_ts="1.0", thread=thread)
    body = render_issue(sub, "r", permalink="https://x.slack.com/p1", user_name=NAMES.get).body
    assert len(body) <= 65_536
    kept = sum(f"message {i} " in body for i in range(20))
    assert 5 <= kept < 20
    assert f"_… {20 - kept} more messages in the Slack thread._" in body
    assert body.endswith("via databot.</sub>\n")


# --- what the requester reads in Slack ----------------------------------------------------


def test_titles_in_slack_notification_text_cannot_ping_or_link(deps, slack, github):
    from bot.intake.blocks import (
        build_request_failed_message,
        build_request_filed_message,
        build_request_queued_message,
    )

    typed = "<!channel> numbers & <https://evil.example|totals>"
    row = submit_request(deps, submission(title=typed), "view:V1").row
    filed = file_request(deps, row.id)
    messages = [
        build_request_filed_message(filed),
        build_request_queued_message(row),
        build_request_failed_message(row),
    ]
    for message in messages:
        shown = message.text + json.dumps(message.blocks)
        assert "<!channel>" not in shown and "<https://evil" not in shown
        assert "&lt;!channel&gt; numbers &amp; &lt;https://evil.example|totals&gt;" in shown
    # what Slack actually received as the DM's notification text
    [dm] = slack.messages("U0ALICE")
    assert dm["text"].startswith("Filed #1: &lt;!channel&gt; numbers &amp; ")


def test_our_own_bug_while_filing_is_not_blamed_on_github_and_gives_a_reference(
    deps, slack, github, caplog
):
    github.failures = [KeyError("labels")]
    row = submit_request(deps, submission(), "view:V1").row
    with caplog.at_level("ERROR", logger="bot.intake.filing"):
        after = file_request(deps, row.id)
    assert after.status is Status.QUEUED  # kept and retried: nothing lost
    [note] = slack.messages("U0ALICE")
    shown = note["blocks"][0]["text"]["text"]
    assert "GitHub" not in shown and "GitHub" not in note["text"]
    assert "queued" in shown and "nothing to redo" in shown
    [logged] = [r for r in caplog.records if r.exc_info]
    ref = re.search(r"ref `([0-9a-f]{8})`", shown).group(1)
    assert ref in logged.getMessage() and ref in after.last_error
    assert "KeyError" in after.last_error


# --- a filing that outlives its lease -------------------------------------------------------


def test_worker_whose_lease_expired_before_creating_does_not_file_a_second_issue(
    deps, slack, github, clock
):
    row = submit_request(deps, submission(), "view:V1").row
    slack.delay_next("users.info", 1.0)  # worker A stalls while rendering the issue
    worker_a = ThreadPoolExecutor(1).submit(file_request, deps, row.id)
    deadline = time.monotonic() + 5
    while get_request(deps, row.id).attempts == 0:  # A has not leased it yet
        assert time.monotonic() < deadline
    # A's lease runs out (however long it is) and worker B takes the request over.
    clock.advance(days=1)
    taken_over = file_request(deps, row.id)
    assert taken_over.status is Status.FILED and taken_over.issue_number == 1
    worker_a.result(timeout=10)
    assert github.creates == 1 and len(github.issues) == 1
    assert get_request(deps, row.id).issue_number == 1


def test_worker_whose_lease_expired_during_the_create_cannot_overwrite_the_filing(
    deps, github, clock, caplog
):
    row = submit_request(deps, submission(), "view:V1").row
    entered, release = threading.Event(), threading.Event()
    create = github.create_issue

    def slow_first_create(title, body, labels):
        if not entered.is_set():
            entered.set()
            release.wait(5)
        return create(title, body, labels)

    github.create_issue = slow_first_create
    worker_a = ThreadPoolExecutor(1).submit(file_request, deps, row.id)
    assert entered.wait(5)
    clock.advance(days=1)
    assert file_request(deps, row.id).issue_number == 1  # B filed it meanwhile
    release.set()
    with caplog.at_level("WARNING", logger="bot.intake.filing"):
        worker_a.result(timeout=10)
    final = get_request(deps, row.id)
    assert final.status is Status.FILED and final.issue_number == 1
    assert any("#2" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


def test_filing_lease_covers_the_worst_case_of_the_configured_github_calls():
    from bot.intake.outbox import filing_lease

    settings = Settings(_env_file=None, github_timeout_seconds=15, github_retries=3)
    # one GET may wait for its timeout on each of 4 tries plus up to 3 capped waits between
    one_get = 4 * 15 + 3 * settings.github_max_wait_seconds
    assert filing_lease(settings).total_seconds() >= 8 * one_get + 15
    slower = Settings(_env_file=None, github_timeout_seconds=60, github_retries=3)
    assert filing_lease(slower) > filing_lease(settings)


# --- the outbox under a Slack that keeps refusing replies ------------------------------------


def test_replies_that_keep_failing_do_not_starve_queued_requests(deps, slack, github, clock):
    slack.fail_next("chat.postMessage", "fatal_error", times=10_000)
    stuck = [submit_request(deps, submission(), f"view:OLD{i}").row for i in range(25)]
    for row in stuck:
        assert file_request(deps, row.id).notified_at is None
    clock.advance(hours=1)  # every failed reply is due again by now
    waiting = submit_request(deps, submission(title="Queued later"), "view:NEW").row
    report = drain_outbox(deps)
    assert report.filed == 1
    assert get_request(deps, waiting.id).status is Status.FILED


def test_a_reply_slack_keeps_refusing_is_retried_with_backoff_then_given_up(
    deps, slack, github, clock, caplog
):
    from bot.intake.filing import NOTIFY_MAX_TRIES

    # Slack refuses exactly as often as the bot tries: were it to try once more, it would
    # get through, and the count below would show it.
    slack.fail_next("chat.postMessage", "fatal_error", times=NOTIFY_MAX_TRIES)
    row = submit_request(deps, submission(), "view:V1").row
    file_request(deps, row.id)

    def tries() -> int:
        return len(slack.calls("chat.postMessage"))

    assert tries() == 1
    drain_outbox(deps)
    assert tries() == 1  # not again on the very next pass
    clock.advance(seconds=29)
    drain_outbox(deps)
    assert tries() == 1
    clock.advance(seconds=1)
    drain_outbox(deps)
    assert tries() == 2
    clock.advance(seconds=59)
    drain_outbox(deps)
    assert tries() == 2  # waits longer each time
    with caplog.at_level("ERROR", logger="bot.intake.filing"):
        for _ in range(50):
            clock.advance(hours=1)
            drain_outbox(deps)
    assert tries() == NOTIFY_MAX_TRIES  # then gives up for good
    final = get_request(deps, row.id)
    assert final.status is Status.FILED and final.notified_at is None
    assert "gave up" in final.last_error and "fatal_error" in final.last_error
    assert any(row.id in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    # `databot requests --retry ID` once Slack works again: the link goes out
    requeue(deps, row.id)
    assert drain_outbox(deps).notified == 1
    assert "Filed #1:" in slack.messages("U0ALICE")[-1]["text"]


def test_a_quoted_message_that_starts_with_a_code_fence_stays_a_code_block():
    # "**Bob:** ```" would be a paragraph, not a fence: the code's "@data-team" would ping.
    thread = [ThreadMessage(user="U0BOB", ts="1.1", text="```\n@data-team SELECT 1\n```")]
    sub = submission(source=Source.MESSAGE, channel_id="C1", thread_ts="1.1", thread=thread)
    body = render_issue(sub, "r", permalink=None, user_name=NAMES.get).body
    assert "> **Bob Ortiz:**\n> ```\n> @data-team SELECT 1\n> ```" in body


# --- a worker that dies while preparing (tracker issue 16, part 3) ----------------------------


def lease_left(deps, request_id: str) -> float:
    """Seconds the request's lease still runs by deps.now (negative: free)."""
    with deps.store.engine.connect() as connection:
        until = connection.execute(
            sa.select(tables.requests.c.lease_until).where(tables.requests.c.id == request_id)
        ).scalar_one()
    return (until - deps.now()).total_seconds()


def test_a_worker_that_dies_before_the_create_is_taken_over_within_two_minutes_and_told_queued(
    deps, slack, github, clock
):
    row = submit_request(deps, submission(), "view:V1").row
    # A worker leased it and was killed while preparing (say, during users.info).
    assert take_lease(deps, row.id, status=Status.QUEUED, count_attempt=True) == 1
    clock.advance(seconds=30)
    assert drain_outbox(deps).filed == 0  # its lease still holds
    assert slack.messages("U0ALICE") == []  # under a minute: nothing to say yet
    clock.advance(seconds=31)
    assert drain_outbox(deps).filed == 0
    [note] = slack.messages("U0ALICE")
    assert note["text"].startswith("Request queued:")
    shown = note["blocks"][0]["text"]["text"]
    assert "taking longer than usual" in shown and "GitHub" not in shown  # GitHub is fine
    clock.advance(seconds=59)  # two minutes after the crash
    assert drain_outbox(deps).filed == 1
    assert github.creates == 1 and len(github.issues) == 1
    clock.advance(minutes=10)
    drain_outbox(deps)
    texts = [m["text"] for m in slack.messages("U0ALICE")]
    assert len(texts) == 2 and texts[1].startswith("Filed #1:")  # told queued once, then filed


def test_the_lease_is_short_while_preparing_and_long_only_around_the_create(deps, github, clock):
    row = submit_request(deps, submission(), "view:V1").row
    assert take_lease(deps, row.id, status=Status.QUEUED, count_attempt=True) == 1
    preparing = lease_left(deps, row.id)
    assert 60 <= preparing <= 120
    clock.advance(seconds=preparing + 1)  # as if that worker died
    during_create = []
    create = github.create_issue

    def watched(title, body, labels):
        during_create.append(lease_left(deps, row.id))
        return create(title, body, labels)

    github.create_issue = watched
    assert file_request(deps, row.id).status is Status.FILED
    post = deps.settings.github_timeout_seconds + deps.settings.github_seconds_between_writes
    assert during_create and during_create[0] >= post + 30  # the POST's worst case, a margin


def test_a_live_worker_renews_its_short_lease_and_is_not_taken_over(
    deps, slack, github, clock, monkeypatch
):
    monkeypatch.setattr(outbox, "HEARTBEAT_SECONDS", 0.05)
    row = submit_request(deps, submission(), "view:V1").row
    slack.delay_next("users.info", 1.5)  # worker A is slow while rendering, but alive
    worker_a = ThreadPoolExecutor(1).submit(file_request, deps, row.id)
    deadline = time.monotonic() + 5
    while get_request(deps, row.id).attempts == 0:
        assert time.monotonic() < deadline
    clock.advance(seconds=outbox.PREPARE_LEASE.total_seconds() + 1)  # its first lease ran out
    time.sleep(0.5)  # ... and its heartbeat renewed it
    assert lease_left(deps, row.id) > 0
    assert file_request(deps, row.id).status is Status.QUEUED  # worker B does not take it
    assert get_request(deps, row.id).attempts == 1
    assert worker_a.result(timeout=10).status is Status.FILED
    assert github.creates == 1


# --- big inputs (tracker issue 16, part 6) ----------------------------------------------------

LONG_FORM = "name: Long request\ndescription: Many questions.\nbody:\n" + "".join(
    f"  - type: textarea\n    id: q{i}\n    attributes:\n      label: Question {i}\n"
    for i in range(1, 26)
)


def long_answers() -> dict[str, str]:
    """25 answers of 3,000 characters (Slack's maximum), with text GitHub needs escaped."""
    answers = {}
    for i in range(1, 26):
        start = f"Answer {i}: "
        answers[f"q{i}"] = (start + "a & b < c @team " * 200)[:3000]
    return answers


def test_answers_too_long_for_the_body_continue_in_comments_nothing_lost_same_on_retry():
    form = parse_issue_form("long", LONG_FORM)
    sub = submission(form=form, answers=long_answers())
    draft = render_issue(sub, "r1", permalink=None, user_name=NAMES.get)
    assert len(draft.body) <= 65_536
    assert draft.comments and all(len(c) <= 65_536 for c in draft.comments)
    everything = draft.body + "".join(draft.comments)
    for answer in long_answers().values():
        assert everything.count(github_markdown(answer)) == 1
    n = len(draft.comments)
    assert f"they continue in the {n} comments below" in draft.body
    assert [c.split("\n", 1)[0] for c in draft.comments] == [
        f"<!-- databot-request-part: r1 {k}/{n} -->" for k in range(1, n + 1)
    ]
    assert "databot-request: r1" not in "".join(draft.comments)  # only the body has MARKER
    # A retry renders the same comments, whatever Slack says the names are by then.
    again = render_issue(sub, "r1", permalink=None, user_name=lambda uid: uid * 40)
    assert again.comments == draft.comments


def test_a_thread_longer_than_was_read_says_how_many_messages_are_included_and_links_it():
    thread = [ThreadMessage(user="U0BOB", ts=f"1.{i}", text=f"message {i}") for i in range(4)]
    sub = submission(
        source=Source.MESSAGE, channel_id="C1", thread_ts="1.0", thread=thread, thread_total=1002
    )
    body = render_issue(sub, "r", permalink="https://x.slack.com/p1", user_name=NAMES.get).body
    assert "4 of 1,002 messages included; the rest is in the thread: https://x.slack.com/p1" in body
    whole = submission(source=Source.MESSAGE, channel_id="C1", thread_ts="1.0", thread=thread)
    assert "included" not in render_issue(whole, "r", permalink="https://x.slack.com/p1").body
