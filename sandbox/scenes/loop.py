"""Demo scene: requests come back. A request for Finance goes to Finance's analyst (and the
requester hears who has it), a reply in the request's thread becomes one comment on the
issue (Slack's retry of the event changes nothing), and the Home tab shows the requester
their requests, the urgent issues, the sprint and who is on support."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

from bot.ids import Action, RequestBlock, Shortcut
from bot.render import render_view
from bot.settings import Analyst
from sandbox.slack_requests import (
    app_home_opened_event,
    message_event,
    message_shortcut,
    view_submission,
)

if TYPE_CHECKING:
    from sandbox.demo import DemoHarness

INPUT = Action.REQUEST_INPUT.value
CHANNEL = "C0ANALYTICS"


def run(h: DemoHarness) -> None:
    h.section("Requests come back: the right analyst, the thread talks back, the Home tab")
    # What a deployment sets in its environment: SUPPORT_ANALYSTS, BUSINESS_UNIT_ANALYSTS,
    # THREAD_MIRROR_CHANNELS (here changed in place, for this scene only).
    h.deps.settings = h.deps.settings.model_copy(
        update={
            "support_analysts": [
                Analyst(github="ana-lopez", slack="U0ANA", name="Ana Lopez"),
                Analyst(github="ben-k", slack="U0BEN", name="Ben Kim"),
            ],
            "support_rotation_start": dt.date(2026, 1, 5),
            "business_unit_analysts": {
                "Finance": Analyst(github="dana-f", slack="U0DANA", name="Dana Fox")
            },
            "thread_mirror_channels": [CHANNEL],
        }
    )
    h.slack.add_channel(CHANNEL, "analytics")
    for uid, name in (("U0BOB", "Bob Ortiz"), ("U0ALICE", "Alice Chen"), ("U0DANA", "Dana Fox")):
        h.slack.add_user(uid, real_name=name)
    root_ts = h.slack.seed_thread(
        CHANNEL, [{"user": "U0BOB", "text": "What is our net revenue retention by quarter?"}]
    )
    root = next(m for m in h.slack.messages(CHANNEL) if m["ts"] == root_ts)
    h.say("Bob asks in #analytics; he turns his own thread into a request, for Finance.")
    before = len(h.slack.calls("views.update"))
    h.interact(
        message_shortcut(
            Shortcut.THREAD_TO_REQUEST, root, user_id="U0BOB", trigger_id=h.slack.issue_trigger_id()
        )
    )
    h.slack.wait_for("views.update", before + 1)
    view = h.slack.views()[-1]
    h.interact(
        view_submission(
            view,
            {
                "q:end_state": {INPUT: "A quarterly NRR table for the board deck."},
                "q:why": {INPUT: "Board meeting in January."},
                RequestBlock.BUSINESS_UNIT: {INPUT: "Finance"},
            },
            user_id="U0BOB",
        )
    )
    h.wait_idle()
    h.show_new()
    issue = h.github.issues()[-1]
    print(
        f"\nOn GitHub: #{issue['number']} assigned to "
        f"{', '.join(a['login'] for a in issue['assignees'])}, labels "
        f"{', '.join(label['name'] for label in issue['labels'])}.",
        file=h.out,
    )

    h.say("Bob adds a detail in the thread; Slack delivers the event, then retries it.")
    reply = h.slack.user_posts(
        CHANNEL,
        "U0BOB",
        "Gross *and* net please, @finance-team knows the definitions",
        thread_ts=root_ts,
    )
    for retry in (None, 1):
        response = h.event(message_event(reply), event_id="Ev0DEMOREPLY", retry_num=retry)
        h.say(f"event delivered{' (retry 1)' if retry else ''} -> HTTP {response.status}")
    h.wait_idle()
    comments = [c["body"] for c in h.github.comments(issue["number"])]
    print(f"\nThe issue now has {len(comments)} comment:\n", file=h.out)
    for body in comments:
        print("\n".join("    " + line for line in body.splitlines()), file=h.out)

    h.say("Bob opens databot's Home tab.")
    h.event(app_home_opened_event("U0BOB"))
    h.wait_idle()
    published = h.slack.calls("views.publish")[-1].args["view"]
    view = json.loads(published) if isinstance(published, str) else published
    print(render_view(view), file=h.out)
    h.show_new(wait=False)
