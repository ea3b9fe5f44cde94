"""Demo scene: a request thread in #analytics becomes a complete GitHub issue, and a request
made while GitHub is down is queued, then filed once it is back."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

from bot.ids import Action, Command, RequestBlock, Shortcut
from bot.intake import outbox as intake
from bot.intake.filing import drain_outbox
from bot.intake.model import Status
from sandbox.slack_requests import message_shortcut, view_submission

if TYPE_CHECKING:
    from sandbox.demo import DemoHarness

INPUT = Action.REQUEST_INPUT.value
CHANNEL = "C0ANALYTICS"


def run(h: DemoHarness) -> None:
    h.section("Request intake: a Slack thread becomes a GitHub issue")
    h.slack.add_channel(CHANNEL, "analytics")
    h.slack.add_user("U0BOB", name="bob", real_name="Bob Ortiz")
    h.slack.add_user("U0CAROL", name="carol", real_name="Carol Diaz")
    h.slack.add_user("U0ALICE", name="alice", real_name="Alice Chen")
    root_ts = h.slack.seed_thread(
        CHANNEL,
        [
            {
                "user": "U0BOB",
                "text": "How many searches per week come from each deployment type? "
                "@data-team could you look? cc <@U0CAROL>",
            },
            {"user": "U0CAROL", "text": "+1, we need it for Q1 planning &amp; the board deck"},
        ],
    )
    root = next(m for m in h.slack.messages(CHANNEL) if m["ts"] == root_ts)
    h.say(
        "Bob asks in #analytics (thread of 2 messages). Alice picks the message shortcut "
        '"Turn into data request" on it.'
    )
    view = _interact_and_wait(
        h,
        message_shortcut(
            Shortcut.THREAD_TO_REQUEST,
            root,
            user_id="U0ALICE",
            trigger_id=h.slack.issue_trigger_id(),
        ),
        "views.update",  # a "Reading the thread…" modal at once, then the filled one
    )
    h.show_new()

    h.say("Alice adds the end state, the why, marks it urgent and weekly, and submits.")
    _submit(
        h,
        view_submission(
            view,
            {
                "q:end_state": {
                    INPUT: "A weekly bar chart per deployment type, to decide "
                    "where the search team invests."
                },
                "q:why": {INPUT: "Q1 planning; supports the 'search adoption' company goal."},
                RequestBlock.URGENT: {INPUT: ["urgent"]},
                RequestBlock.PEOPLE: {INPUT: ["U0BOB", "U0CAROL"]},
                RequestBlock.FREQUENCY: {INPUT: "weekly"},
            },
            user_id="U0ALICE",
        ),
    )
    h.show_new()
    h.say("The issue on GitHub (acme/analytics), as it reads there:")
    _print_issue(h, h.github.issues()[-1])

    h.say("Carol tries the same shortcut on the thread later: no second request.")
    _interact_and_wait(
        h,
        message_shortcut(
            Shortcut.THREAD_TO_REQUEST,
            root,
            user_id="U0CAROL",
            trigger_id=h.slack.issue_trigger_id(),
        ),
        "views.update",  # a "Reading the thread…" modal at once, then the filled one
    )
    h.show_new()

    h.section("Request intake: GitHub is down, nothing is lost")
    h.github.fail_next("POST", r"/issues$", status=503, times=1)
    h.say("GitHub answers 503. Carol types `/data-request Cody Pro churn by signup month`.")
    before = len(h.slack.calls("views.open"))
    h.slash(Command.DATA_REQUEST, "Cody Pro churn by signup month", user="U0CAROL")
    h.slack.wait_for("views.open", before + 1)
    view = h.slack.views()[-1]
    _submit(
        h,
        view_submission(
            view,
            {
                "q:problem": {INPUT: "Which signup months churn fastest?"},
                "q:end_state": {INPUT: "Retention curves by signup month."},
                "q:why": {INPUT: "Pricing review in December."},
            },
            user_id="U0CAROL",
        ),
    )
    h.show_new()
    h.say("`databot requests` now lists it:")
    print(
        intake.render_request_list(intake.list_requests(h.deps, [Status.QUEUED]), h.deps.now()),
        file=h.out,
    )
    h.say("GitHub is back. The outbox worker's next pass files it and tells Carol:")
    for row in intake.list_requests(h.deps, [Status.QUEUED]):
        intake.requeue(h.deps, row.id)  # due now instead of in 30 s, for the demo
    drain_outbox(h.deps)
    h.show_new()
    print(
        f"\nGitHub now has {len(h.github.issues())} issues; each request was filed once.",
        file=h.out,
    )


def _interact_and_wait(h: DemoHarness, payload: dict, method: str) -> dict:
    before = len(h.slack.calls(method))
    h.interact(payload)
    h.slack.wait_for(method, before + 1)
    return h.slack.views()[-1]


def _submit(h: DemoHarness, payload: dict) -> None:
    h.interact(payload)
    h.wait_idle()  # waits for the listener, then for the work it hands off


def _print_issue(h: DemoHarness, issue: dict) -> None:
    labels = ", ".join(label["name"] for label in issue["labels"])
    print(f"\n--- issue #{issue['number']}: {issue['title']} ---", file=h.out)
    print(f"labels: {labels}\n", file=h.out)
    print(readable_markdown(issue["body"]), file=h.out)


def readable_markdown(body: str) -> str:
    """GitHub Markdown roughly as GitHub displays it: hidden comments gone, entities and
    zero-width spaces shown as characters, <details> as a folded section."""
    text = re.sub(r"<!--.*?-->\n*", "", body, flags=re.DOTALL)
    text = re.sub(r"</?sub>", "", text)
    text = re.sub(r"</?code>", "`", text)
    text = re.sub(r"<details>\s*<summary>(.*?)</summary>", r"▸ \1 (click to expand)", text)
    text = text.replace("</details>", "")
    return html.unescape(text).replace("\u200b", "")
