"""Request intake end to end: signed Slack requests through the real app over HTTP, with
Slack and GitHub on loopback (sandbox fakes) and the state store on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import handlers.intake
from bot.deps import build_deps
from bot.ids import Action, Command, RequestBlock, Shortcut
from bot.intake import outbox as intake
from bot.intake.filing import drain_outbox
from bot.intake.markdown import github_markdown
from bot.intake.model import Status
from bot.intake.outbox import take_lease
from sandbox.slack_requests import (
    block_actions,
    global_shortcut,
    message_shortcut,
    view_submission,
)
from tests.support.forms import REPO_FORMS

INPUT = Action.REQUEST_INPUT.value
ISSUE_TEMPLATES = ".github/ISSUE_TEMPLATE/"


@pytest.fixture
def bot(make_bot, store):
    """The bot on loopback, on SQLite and on PostgreSQL state (exactly-once must hold on
    both), with PyGithub's pauses between requests turned off."""
    with make_bot(
        store,
        github_seconds_between_requests=0,
        github_seconds_between_writes=0,
        github_retry_backoff_seconds=0,
    ) as h:
        h.slack.add_channel("C0ANALYTICS", "analytics")
        h.slack.add_user("U0ALICE", name="alice", real_name="Alice Chen")
        h.slack.add_user("U0BOB", name="bob", real_name="Bob Ortiz")
        h.slack.add_user("U0CAROL", name="carol", real_name="Carol Diaz")
        yield h


def restarted(bot, clock):
    """A new process on the same state database: fresh dependencies, nothing in memory."""
    return build_deps(bot.settings, store=bot.deps.store, warehouse=bot.deps.warehouse, now=clock)


def opened(bot, payload: dict, method: str = "views.open") -> dict:
    """Send an interaction that opens (or updates) a modal; the modal as Slack holds it.
    Bolt acks first and runs the listener after, so wait for the Web API call."""
    before = len(bot.slack.calls(method))
    response = bot.interact(payload)
    assert response.status == 200
    call = bot.slack.wait_for(method, before + 1)[before]
    assert call.error is None, call.error
    if method == "views.update":
        return bot.slack.view(call.args["view_id"])
    return bot.slack.views()[-1]


def submit(bot, payload: dict, *, files: bool = True):
    """Press Submit. The listener stores the request, acks, then hands filing to deps.work:
    wait for that hand-off and for the work to finish."""
    before = len(bot.deps.work.futures)
    response = bot.interact(payload)
    assert response.status == 200
    if files:
        wait_for_handoff(bot, before)
    bot.wait_idle()
    return response


def wait_for_handoff(bot, before: int) -> None:
    deadline = time.monotonic() + 5
    while len(bot.deps.work.futures) <= before:
        assert time.monotonic() < deadline, "the submission was not handed off for filing"
        time.sleep(0.01)
    bot.wait_idle()


def new_request_modal(bot, user: str = "U0ALICE") -> dict:
    trigger = bot.slack.issue_trigger_id()
    return opened(bot, global_shortcut(Shortcut.NEW_REQUEST, user_id=user, trigger_id=trigger))


def seed_request_thread(bot) -> dict:
    root_ts = bot.slack.seed_thread(
        "C0ANALYTICS",
        [
            {
                "user": "U0BOB",
                "text": "How many searches per week come from each deployment type?\n"
                "@data-team could you look? cc <@U0CAROL>",
            },
            {
                "user": "U0CAROL",
                "text": "We need it for Q1 planning &lt;b&gt;asap&lt;/b&gt; &amp; weekly",
            },
        ],
    )
    return next(m for m in bot.slack.messages("C0ANALYTICS") if m["ts"] == root_ts)


def open_from_thread(bot, message, user="U0ALICE") -> dict:
    """The message shortcut opens a small "reading the thread" modal at once, then updates
    it once the thread is read: the modal as the user finally sees it."""
    trigger = bot.slack.issue_trigger_id()
    before = len(bot.slack.calls("views.update"))
    opened(
        bot, message_shortcut(Shortcut.THREAD_TO_REQUEST, message, user_id=user, trigger_id=trigger)
    )
    call = bot.slack.wait_for("views.update", before + 1)[before]
    assert call.error is None, call.error
    return bot.slack.view(call.args["view_id"])


def answer(**values) -> dict:
    """{block_id: {action_id: value}} for the request modal."""
    return {block: {INPUT: value} for block, value in values.items()}


def test_thread_becomes_a_complete_issue_with_exact_body_labels_and_thread_reply(bot, clock):
    root = seed_request_thread(bot)
    view = open_from_thread(bot, root)
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert inputs[RequestBlock.TITLE]["initial_value"] == (
        "How many searches per week come from each deployment type?"
    )
    assert inputs["q:problem"]["initial_value"].startswith("How many searches per week")
    assert inputs[RequestBlock.REQUESTER]["initial_user"] == "U0BOB"  # who asked in the thread
    assert inputs[RequestBlock.PEOPLE]["initial_users"] == ["U0BOB"]

    due = (clock() + dt.timedelta(days=10)).date()
    submitted = submit(
        bot,
        view_submission(
            view,
            {
                "q:end_state": {INPUT: "A weekly bar chart, to decide where to invest."},
                "q:why": {INPUT: "Q1 planning of the search team (@search-team goal)."},
                RequestBlock.URGENT: {INPUT: ["urgent"]},
                RequestBlock.DUE_DATE: {INPUT: due},
                RequestBlock.PEOPLE: {INPUT: ["U0BOB", "U0CAROL"]},
                RequestBlock.FREQUENCY: {INPUT: "weekly"},
            },
            user_id="U0ALICE",
        ),
    )
    assert submitted.json()["response_action"] == "update"

    [issue] = bot.github.issues()
    [row] = intake.list_requests(bot.deps)
    permalink = f"https://sandbox.slack.com/archives/C0ANALYTICS/p{root['ts'].replace('.', '')}"
    assert issue["title"] == "How many searches per week come from each deployment type?"
    assert [label["name"] for label in issue["labels"]] == ["data-request", "dashboard", "urgent"]
    assert issue["body"] == (
        f"<!-- databot-request: {row.id} -->\n\n"
        "### Problem or question\n\n"
        "How many searches per week come from each deployment type?\n"
        "@&#8203;data-team could you look? cc @&#8203;Carol Diaz\n\n"
        "### End state\n\nA weekly bar chart, to decide where to invest.\n\n"
        "### Why\n\nQ1 planning of the search team (@&#8203;search-team goal).\n\n"
        "### Timeline\n\nUrgent\n\n"
        f"### Needed by\n\n{due.isoformat()}\n\n"
        "### People involved\n\n- Bob Ortiz\n- Carol Diaz\n\n"
        "### Frequency\n\nOngoing, weekly\n\n"
        f"### Slack thread\n\n{permalink}\n\n"
        "> **Bob Ortiz:** How many searches per week come from each deployment type?\n"
        "> @&#8203;data-team could you look? cc @&#8203;Carol Diaz\n"
        ">\n"
        "> **Carol Diaz:** We need it for Q1 planning &lt;b&gt;asap&lt;/b&gt; &amp; weekly\n\n"
        "---\n<sub>Requested by Bob Ortiz in Slack, filed by Alice Chen, via databot.</sub>\n"
    )
    replies = [m for m in bot.slack.thread("C0ANALYTICS", root["ts"]) if m.get("bot_id")]
    assert len(replies) == 1
    shown = replies[0]["blocks"][0]["text"]["text"]
    assert f"<{issue['html_url']}|#{issue['number']} {issue['title']}>" in shown
    filed = intake.get_request(bot.deps, row.id)
    assert filed.status is Status.FILED and filed.notified_at is not None
    assert bot.slack.violations == []


def test_a_thread_with_a_request_shows_the_existing_issue_instead_of_a_new_modal(bot):
    root = seed_request_thread(bot)
    view = open_from_thread(bot, root)
    values = answer(**{"q:end_state": "chart", "q:why": "planning"})
    submit(bot, view_submission(view, values))
    [issue] = bot.github.issues()

    again = open_from_thread(bot, root, user="U0CAROL")
    text = json.dumps(again["blocks"])
    assert "already has a request" in text and issue["html_url"] in text
    assert not any(b["type"] == "input" for b in again["blocks"])
    assert len(bot.github.issues()) == 1


def test_slash_command_modal_shows_inline_errors_and_stores_nothing(bot, clock):
    response, _ = bot.slash(Command.DATA_REQUEST, "Cody churn by cohort", user="U0ALICE")
    assert response.status == 200
    view = bot.slack.wait_for("views.open") and bot.slack.views()[-1]
    yesterday = (clock() - dt.timedelta(days=1)).date()
    submitted = bot.interact(
        view_submission(
            view,
            {
                "q:problem": {INPUT: "   "},
                "q:end_state": {INPUT: "a table"},
                "q:why": {INPUT: "retention goal"},
                RequestBlock.DUE_DATE: {INPUT: yesterday},
            },
        )
    )
    assert submitted.json() == {
        "response_action": "errors",
        "errors": {
            "q:problem": "Problem or question is required.",
            RequestBlock.DUE_DATE: "The due date is in the past; pick today or a later date.",
        },
    }
    assert intake.list_requests(bot.deps) == []
    assert bot.github.count("POST") == 0


def test_slash_command_request_is_answered_by_dm_with_the_issue(bot):
    bot.slash(Command.DATA_REQUEST, "Cody churn by cohort", user="U0ALICE")
    view = bot.slack.wait_for("views.open") and bot.slack.views()[-1]
    title = next(b for b in view["blocks"] if b.get("block_id") == RequestBlock.TITLE)
    assert title["element"]["initial_value"] == "Cody churn by cohort"
    submit(
        bot,
        view_submission(view, answer(**{"q:problem": "p", "q:end_state": "e", "q:why": "w"})),
    )
    [issue] = bot.github.issues()
    [dm] = bot.slack.messages("U0ALICE")
    assert f"#{issue['number']} Cody churn by cohort" in dm["blocks"][0]["text"]["text"]


def test_double_submit_and_concurrent_submits_file_one_issue(bot):
    view = new_request_modal(bot)
    payload = view_submission(
        view,
        answer(**{RequestBlock.TITLE: "Seats", "q:problem": "p", "q:end_state": "e", "q:why": "w"}),
    )
    barrier = threading.Barrier(6)

    def press(_):
        barrier.wait()
        return bot.interact(payload)

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(press, range(6)))
    submit(bot, payload, files=False)  # a late Slack retry: nothing new to file
    wait_for_handoff(bot, 0)
    assert {r.status for r in responses} == {200}
    assert len(intake.list_requests(bot.deps)) == 1
    assert len(bot.github.issues()) == 1
    assert bot.github.count("POST", r"/issues$") == 1
    assert len(bot.slack.messages("U0ALICE")) == 1


def test_github_down_then_back_after_a_restart_files_once_and_replies(bot, clock):
    bot.github.fail_next("POST", r"/issues$", status=503, times=2)
    root = seed_request_thread(bot)
    view = open_from_thread(bot, root)
    submit(bot, view_submission(view, answer(**{"q:end_state": "e", "q:why": "w"})))
    [row] = intake.list_requests(bot.deps, [Status.QUEUED])
    assert row.last_error == "GitHub error (HTTP 503)"
    notes = [m for m in bot.slack.thread("C0ANALYTICS", root["ts"]) if m.get("bot_id")]
    assert len(notes) == 1 and "queued" in notes[0]["text"]
    assert bot.github.count("POST", r"/issues$") == 1  # the client did not re-send the POST

    # The process restarts: a new set of dependencies on the same state database.
    after_restart = restarted(bot, clock)
    clock.advance(seconds=31)
    assert drain_outbox(after_restart).filed == 0  # still down: second 503
    clock.advance(minutes=2)
    report = drain_outbox(after_restart)
    assert report.filed == 1, intake.list_requests(bot.deps)
    [issue] = bot.github.issues()
    notes = [m for m in bot.slack.thread("C0ANALYTICS", root["ts"]) if m.get("bot_id")]
    assert len(notes) == 2 and f"#{issue['number']}" in notes[1]["blocks"][0]["text"]["text"]
    assert intake.list_requests(bot.deps, [Status.QUEUED, Status.FAILED]) == []


def test_lost_create_response_is_found_by_its_marker_not_created_twice(bot, clock):
    bot.github.lose_response_next_create()
    view = new_request_modal(bot)
    submit(
        bot,
        view_submission(
            view,
            answer(
                **{RequestBlock.TITLE: "Seats", "q:problem": "p", "q:end_state": "e", "q:why": "w"}
            ),
        ),
    )
    assert len(bot.github.issues()) == 1  # GitHub made it; the bot heard a 502
    assert intake.list_requests(bot.deps)[0].status is Status.QUEUED
    clock.advance(minutes=1)
    drain_outbox(bot.deps)
    [issue] = bot.github.issues()
    [row] = intake.list_requests(bot.deps)
    assert row.status is Status.FILED and row.issue_number == issue["number"]
    assert bot.github.count("POST", r"/issues$") == 1


def test_rate_limit_longer_than_the_cap_is_rescheduled_not_slept(bot, clock):
    bot.github.rate_limit_next(retry_after=1800, status=403, method="POST")
    view = new_request_modal(bot)
    submit(
        bot,
        view_submission(
            view,
            answer(
                **{RequestBlock.TITLE: "Seats", "q:problem": "p", "q:end_state": "e", "q:why": "w"}
            ),
        ),
    )
    [row] = intake.list_requests(bot.deps)
    assert row.status is Status.QUEUED
    assert row.next_attempt_at >= clock() + dt.timedelta(seconds=1790)


def test_without_a_github_token_requests_are_kept_and_filed_once_one_is_set(bot, clock):
    bot.deps.github = None
    view = new_request_modal(bot)
    submit(
        bot,
        view_submission(
            view,
            answer(
                **{RequestBlock.TITLE: "Seats", "q:problem": "p", "q:end_state": "e", "q:why": "w"}
            ),
        ),
    )
    [row] = intake.list_requests(bot.deps, [Status.QUEUED])
    assert "queued" in bot.slack.messages("U0ALICE")[0]["text"]
    configured = restarted(bot, clock)  # GITHUB_TOKEN set, bot restarted
    assert drain_outbox(configured).filed == 1
    assert bot.github.issues()[0]["title"] == "Seats"


def test_repo_issue_forms_shape_the_modal_and_the_issue(bot):
    for name, text in REPO_FORMS.items():
        bot.github.seed_file(ISSUE_TEMPLATES + name, text)
    intake.refresh_forms(bot.deps)
    view = new_request_modal(bot)
    type_select = next(b for b in view["blocks"] if b.get("block_id") == RequestBlock.TYPE)
    assert [o["text"]["text"] for o in type_select["element"]["options"]] == [
        "Dashboard request",
        "Data bug",
    ]
    # Switch to "Data bug" after typing a title: the modal is rebuilt, the title kept.
    view["state"] = {
        "values": {RequestBlock.TITLE: {INPUT: {"type": "plain_text_input", "value": "Wrong MAU"}}}
    }
    updated = opened(
        bot, block_actions(Action.REQUEST_TYPE_SELECT, "data-bug", view=view), "views.update"
    )
    blocks = {b.get("block_id"): b for b in updated["blocks"]}
    assert "q:where" in blocks and "q:what-is-wrong" in blocks and "q:problem" not in blocks
    assert blocks[RequestBlock.TITLE]["element"]["initial_value"] == "Wrong MAU"

    submit(
        bot,
        view_submission(
            updated, answer(**{"q:where": "Looker MAU tile", "q:what-is-wrong": "Doubled on Nov 2"})
        ),
    )
    [issue] = bot.github.issues()
    assert issue["title"] == "[Bug]: Wrong MAU"
    [dm] = bot.slack.messages("U0ALICE")
    assert f"#{issue['number']} [Bug]: Wrong MAU" in dm["blocks"][0]["text"]["text"]
    assert [label["name"] for label in issue["labels"]] == ["bug", "data-quality"]
    assert (
        "### Where do you see it?\n\nLooker MAU tile\n\n### What is wrong\n\nDoubled on Nov 2"
        in (issue["body"])
    )


def test_required_checkbox_of_a_repo_form_is_enforced_inline(bot):
    bot.github.seed_file(ISSUE_TEMPLATES + "dashboard.yml", REPO_FORMS["dashboard.yml"])
    intake.refresh_forms(bot.deps)
    view = new_request_modal(bot)
    response = bot.interact(
        view_submission(
            view,
            answer(**{RequestBlock.TITLE: "Upgrades", "q:problem": "p", "q:end_state": "e"}),
        )
    )
    assert response.json()["errors"] == {
        "q:terms": "Please confirm: I checked that no existing dashboard answers this"
    }


def test_metric_button_opens_the_modal_prefilled(bot):
    seed = json.dumps({"title": "Weekly active users by plan", "problem": "WAU split by plan"})
    message = {
        "ts": "1700000000.000100",
        "channel": "C0ANALYTICS",
        "blocks": [
            {
                "type": "actions",
                "block_id": "metric_actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": Action.METRIC_OPEN_REQUEST.value,
                        "text": {"type": "plain_text", "text": "Open a request"},
                        "value": seed,
                    }
                ],
            }
        ],
    }
    view = opened(
        bot,
        block_actions(
            Action.METRIC_OPEN_REQUEST,
            message=message,
            user_id="U0BOB",
            trigger_id=bot.slack.issue_trigger_id(),
        ),
    )
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert inputs[RequestBlock.TITLE]["initial_value"] == "Weekly active users by plan"
    assert inputs["q:problem"]["initial_value"] == "WAU split by plan"
    assert inputs[RequestBlock.REQUESTER]["initial_user"] == "U0BOB"


def test_create_that_times_out_after_github_made_the_issue_is_not_filed_twice(
    make_bot, sqlite_store, clock
):
    with make_bot(
        sqlite_store,
        github_seconds_between_requests=0,
        github_seconds_between_writes=0,
        github_timeout_seconds=1,
    ) as bot:
        bot.slack.add_user("U0ALICE", name="alice", real_name="Alice Chen")
        # GitHub is slow: the bot gives up after 1 s, GitHub creates the issue at 1.5 s.
        bot.github.delay_next(1.5, method="POST", path_regex=r"/issues$")
        view = new_request_modal(bot)
        submit(
            bot,
            view_submission(
                view,
                answer(
                    **{
                        RequestBlock.TITLE: "Seats",
                        "q:problem": "p",
                        "q:end_state": "e",
                        "q:why": "w",
                    }
                ),
            ),
        )
        [row] = intake.list_requests(bot.deps)
        assert row.status is Status.QUEUED
        assert row.last_error == "GitHub did not answer in time"
        deadline = time.monotonic() + 5
        while not bot.github.issues():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        clock.advance(minutes=1)
        drain_outbox(bot.deps)
        [issue] = bot.github.issues()
        [row] = intake.list_requests(bot.deps)
        assert row.status is Status.FILED and row.issue_number == issue["number"]
        assert bot.github.count("POST", r"/issues$") == 1


def test_issue_forms_are_cached_not_fetched_on_every_modal_open(bot, clock):
    bot.github.seed_file(ISSUE_TEMPLATES + "data-bug.yaml", REPO_FORMS["data-bug.yaml"])

    def type_names(view):
        block = next(b for b in view["blocks"] if b.get("block_id") == RequestBlock.TYPE)
        return [o["text"]["text"] for o in block["element"]["options"]]

    # Cold cache (a fresh deployment before the worker warmed it): the built-in form now,
    # the repo's forms fetched in the background for the next modal.
    first = new_request_modal(bot)
    bot.wait_idle()
    assert "Data bug" not in type_names(first)
    fetched = bot.github.count("GET", r"/contents/")
    assert fetched >= 1
    for _ in range(3):
        assert type_names(new_request_modal(bot)) == ["Data bug"]
    bot.wait_idle()
    assert bot.github.count("GET", r"/contents/") == fetched

    clock.advance(seconds=bot.settings.intake_forms_ttl_seconds + 1)
    new_request_modal(bot)  # still answered from the cache, refreshed behind it
    bot.wait_idle()
    assert bot.github.count("GET", r"/contents/") > fetched


def test_thread_shortcut_opens_the_modal_in_time_even_when_reading_the_thread_is_slow(bot):
    root = seed_request_thread(bot)
    # Slack's trigger_id lives 3 s; scaled down here, with a thread read slower than that.
    bot.slack.delay_next("conversations.replies", 1.5)
    trigger = bot.slack.issue_trigger_id(valid_for=1.0)
    response = bot.interact(
        message_shortcut(Shortcut.THREAD_TO_REQUEST, root, user_id="U0ALICE", trigger_id=trigger)
    )
    assert response.status == 200
    [opening] = bot.slack.wait_for("views.open")
    assert opening.error is None, opening.error
    loading = bot.slack.views()[-1]
    assert "Reading the thread" in json.dumps(loading["blocks"])

    [update] = bot.slack.wait_for("views.update", timeout=10)
    assert update.error is None, update.error
    assert update.args["view_id"] == loading["id"] and update.args["hash"] == loading["hash"]
    view = bot.slack.view(loading["id"])
    title = next(b for b in view["blocks"] if b.get("block_id") == RequestBlock.TITLE)
    assert title["element"]["initial_value"] == (
        "How many searches per week come from each deployment type?"
    )
    bot.wait_idle()
    assert bot.slack.violations == []


def test_thread_shortcut_shows_a_problem_in_the_modal_not_an_endless_spinner(bot, monkeypatch):
    def broken(*args):
        raise RuntimeError("state store down")

    monkeypatch.setattr(intake, "save_thread_draft", broken)
    root = seed_request_thread(bot)
    view = open_from_thread(bot, root)
    shown = json.dumps(view["blocks"])
    assert "Reading the thread" not in shown
    assert "something went wrong on my side (ref `" in shown


def test_an_urgent_request_appears_in_the_analytics_channel_at_once_with_the_configured_label(
    make_bot, sqlite_store
):
    with make_bot(sqlite_store, urgent_label="p0-urgent") as bot:
        bot.slack.add_channel("C0ANALYTICS", "analytics")
        bot.slack.add_user("U0ALICE", name="alice", real_name="Alice Chen")
        bot.slack.add_user("U0BOB", name="bob", real_name="Bob Ortiz")
        bot.slack.add_user("U0CAROL", name="carol", real_name="Carol Diaz")
        root = seed_request_thread(bot)
        view = open_from_thread(bot, root)
        values = answer(**{"q:end_state": "chart", "q:why": "planning"})
        values[RequestBlock.URGENT] = {INPUT: ["urgent"]}
        submit(bot, view_submission(view, values))
        [issue] = bot.github.issues()
        assert "p0-urgent" in [label["name"] for label in issue["labels"]]
        # No webhook, no poll: the alert comes from filing itself.
        alerts = [
            m
            for m in bot.slack.messages("C0ANALYTICS")
            if not m.get("thread_ts") and issue["html_url"] in json.dumps(m.get("blocks", []))
        ]
        assert len(alerts) == 1


# --- tracker issue 16, part 3: a crash while a request is being prepared ---------------------


def test_a_filer_killed_before_the_create_is_taken_over_within_two_minutes_of_a_restart(
    bot, clock, monkeypatch
):
    def killed_while_preparing(deps, request_id):
        # It took the request, then the process died (kill -9) before the GitHub create.
        take_lease(deps, request_id, status=Status.QUEUED, count_attempt=True)

    monkeypatch.setattr(handlers.intake, "file_request", killed_while_preparing)
    view = new_request_modal(bot)
    values = {RequestBlock.TITLE: "Seats", "q:problem": "p", "q:end_state": "e", "q:why": "w"}
    submit(bot, view_submission(view, answer(**values)))
    assert bot.github.issues() == [] and bot.slack.messages("U0ALICE") == []

    after_restart = restarted(bot, clock)
    clock.advance(seconds=61)
    assert drain_outbox(after_restart).filed == 0  # the dead filer's short lease still holds
    [note] = bot.slack.messages("U0ALICE")
    assert "queued" in note["text"]  # delayed past a minute: the requester is told
    clock.advance(seconds=60)
    assert drain_outbox(after_restart).filed == 1
    [issue] = bot.github.issues()
    assert bot.github.count("POST", r"/issues$") == 1
    dms = bot.slack.messages("U0ALICE")
    assert len(dms) == 2 and f"#{issue['number']}" in dms[1]["text"]


# --- tracker issue 16, part 6: big inputs ----------------------------------------------------


def test_a_thread_of_1002_messages_is_read_in_pages_and_modal_and_issue_say_what_is_included(
    bot,
):
    messages = [{"user": "U0BOB", "text": "Weekly searches by deployment type?"}]
    messages += [{"user": "U0CAROL", "text": f"reply {i}"} for i in range(1, 1002)]
    root_ts = bot.slack.seed_thread("C0ANALYTICS", messages)
    root = next(m for m in bot.slack.messages("C0ANALYTICS") if m["ts"] == root_ts)
    permalink = f"https://sandbox.slack.com/archives/C0ANALYTICS/p{root_ts.replace('.', '')}"
    view = open_from_thread(bot, root)
    shown = json.dumps(view["blocks"])
    assert "1,000 of 1,002 messages included" in shown and f"<{permalink}>" in shown
    pages = bot.slack.calls("conversations.replies")
    assert len(pages) == 5 and all(int(c.args["limit"]) <= 200 for c in pages)

    submit(bot, view_submission(view, answer(**{"q:end_state": "e", "q:why": "w"})))
    [issue] = bot.github.issues()
    body = issue["body"]
    assert f"1,000 of 1,002 messages included; the rest is in the thread: {permalink}" in body
    assert "> **Carol Diaz:** reply 999\n" in body and "reply 1000" not in body
    assert len(body) <= 65_536


LONG_FORM = "name: Long request\ndescription: Many questions.\nbody:\n" + "".join(
    f"  - type: textarea\n    id: q{i}\n    attributes:\n      label: Question {i}\n"
    for i in range(1, 26)
)


def long_request_values() -> dict[str, str]:
    """25 answers of 3,000 characters (Slack's maximum), with text GitHub needs escaped."""
    values = {RequestBlock.TITLE: "Everything about seats"}
    for i in range(1, 26):
        values[f"q:q{i}"] = (f"Answer {i}: " + "a & b < c @team " * 200)[:3000]
    return values


def submit_long_request(bot) -> dict[str, str]:
    bot.github.seed_file(ISSUE_TEMPLATES + "long.yml", LONG_FORM)
    intake.refresh_forms(bot.deps)
    view = new_request_modal(bot)
    values = long_request_values()
    submit(bot, view_submission(view, answer(**values)))
    return values


def assert_filed_whole(bot, values: dict[str, str]) -> None:
    [row] = intake.list_requests(bot.deps)
    assert row.status is Status.FILED, row.last_error
    [issue] = bot.github.issues()
    comments = [c["body"] for c in bot.github.comments(issue["number"])]
    assert len(issue["body"]) <= 65_536 and all(len(c) <= 65_536 for c in comments)
    assert f"they continue in the {len(comments)} comments below" in issue["body"]
    everything = issue["body"] + "".join(comments)
    for block_id, text in values.items():
        if block_id.startswith("q:"):
            assert everything.count(github_markdown(text)) == 1, block_id
    assert bot.github.count("POST", r"/issues$") == 1
    assert f"#{issue['number']}" in bot.slack.messages("U0ALICE")[-1]["text"]


def test_25_answers_of_3000_characters_are_filed_whole_the_rest_in_comments(bot):
    values = submit_long_request(bot)
    assert_filed_whole(bot, values)
    assert bot.github.count("POST", r"/comments$") == len(bot.github.comments(1)) >= 2
    assert len(bot.slack.messages("U0ALICE")) == 1  # the link, nothing else


def test_a_lost_comment_response_is_not_posted_twice_on_the_retry(bot, clock):
    bot.github.lose_response_next("POST", r"/comments$")  # GitHub posts it, the bot hears 502
    values = submit_long_request(bot)
    [row] = intake.list_requests(bot.deps)
    assert row.status is Status.QUEUED and row.issue_number == 1
    clock.advance(minutes=1)
    drain_outbox(bot.deps)
    assert_filed_whole(bot, values)
    assert bot.github.count("POST", r"/comments$") == len(bot.github.comments(1))
