"""The Slack stand-ins behave like Slack for the real slack_sdk client and for Bolt's
signature check: if these fail, every test built on them would be testing a fiction."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse

import pytest
from flask import Flask, Response, request
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import ButtonElement, DividerBlock, SectionBlock
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from bot.render import mrkdwn, render_message, render_view
from sandbox import LoopbackServer
from sandbox import slack_requests as sr
from sandbox.slack_api import FakeSlack


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack):
    return WebClient(token=slack.token, base_url=slack.api_url, timeout=5)


def section(text: str, block_id: str | None = None) -> dict:
    block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id:
        block["block_id"] = block_id
    return block


def modal(title: str = "Request", blocks: list | None = None, **extra) -> dict:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title},
        "blocks": blocks or [section("hello")],
        **extra,
    }


# --- messages -------------------------------------------------------------------------


def test_posted_message_shows_updates_and_disappears_when_deleted(slack, client):
    posted = client.chat_postMessage(channel="#analytics", text="v1", blocks=[section("one")])
    assert posted["ok"] and posted["message"]["text"] == "v1"
    channel, ts = posted["channel"], posted["ts"]
    assert channel.startswith("C") and channel == slack.messages("#analytics")[0]["channel"]

    client.chat_update(channel=channel, ts=ts, text="v2", blocks=[section("two")])
    [shown] = slack.messages(channel)
    assert shown["text"] == "v2" and shown["blocks"] == [section("two")] and "edited" in shown

    client.chat_delete(channel=channel, ts=ts)
    assert slack.messages(channel) == []
    with pytest.raises(SlackApiError) as error:
        client.chat_update(channel=channel, ts=ts, text="v3")
    assert error.value.response["error"] == "message_not_found"


def test_message_timestamps_are_unique_and_increasing(slack, client):
    stamps = [client.chat_postMessage(channel="C1", text=str(i))["ts"] for i in range(20)]
    assert stamps == sorted(stamps, key=float) and len(set(stamps)) == 20


def test_form_encoded_and_json_bodies_are_both_understood(slack, client):
    # api_call(params=...) sends a form body with blocks as a JSON string; the typed
    # chat_postMessage sends JSON.
    client.api_call(
        "chat.postMessage",
        params={"channel": "C1", "text": "form", "blocks": json.dumps([section("f")])},
    )
    client.chat_postMessage(channel="C1", text="json", blocks=[section("j")])
    texts = [(m["text"], m["blocks"][0]["text"]["text"]) for m in slack.messages("C1")]
    assert texts == [("form", "f"), ("json", "j")]


def test_missing_token_is_not_authed_and_unknown_token_is_invalid_auth():
    with FakeSlack(token="xoxb-the-right-one") as fake:
        with pytest.raises(SlackApiError) as missing:
            WebClient(base_url=fake.api_url).auth_test()
        with pytest.raises(SlackApiError) as wrong:
            WebClient(token="xoxb-wrong", base_url=fake.api_url).auth_test()
        ok = WebClient(token="xoxb-the-right-one", base_url=fake.api_url).auth_test()
    assert missing.value.response["error"] == "not_authed"
    assert wrong.value.response["error"] == "invalid_auth"
    assert ok["user_id"] == fake.bot_user_id


def test_message_without_text_or_blocks_is_refused(client):
    with pytest.raises(SlackApiError) as error:
        client.chat_postMessage(channel="C1")
    assert error.value.response["error"] == "no_text"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"blocks": [section("x" * 3001)]}, "invalid_blocks"),  # section text limit (model)
        ({"blocks": [section(str(i)) for i in range(51)]}, "invalid_blocks"),  # 50 per message
        ({"blocks": [{"type": "no_such_block"}]}, "invalid_blocks"),
        ({"blocks": [section("a", "same"), section("b", "same")]}, "invalid_blocks"),
        ({"text": "x" * 40_001}, "msg_too_long"),
    ],
    ids=["section-over-3000", "51-blocks", "unknown-type", "duplicate-block-id", "text-over-40k"],
)
def test_payloads_slack_rejects_are_refused_and_recorded_as_violations(
    slack, client, payload, error
):
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(
            channel="C1",
            text=payload.get("text", "fallback"),
            **{k: v for k, v in payload.items() if k != "text"},
        )
    assert raised.value.response["error"] == error
    assert [v.error for v in slack.violations] == [error]
    assert slack.messages("C1") == []


def test_limits_are_inclusive_so_exactly_50_blocks_and_40k_chars_pass(slack, client):
    client.chat_postMessage(
        channel="C1", text="x" * 40_000, blocks=[section(str(i)) for i in range(50)]
    )
    assert slack.violations == [] and len(slack.messages("C1")[0]["blocks"]) == 50


def test_blocks_built_with_sdk_models_pass_validation(slack, client):
    blocks = [
        SectionBlock(text="*hi*", accessory=ButtonElement(text="Go", action_id="go", value="1")),
        DividerBlock(),
    ]
    client.chat_postMessage(channel="C1", text="hi", blocks=blocks)
    assert slack.violations == []
    assert slack.messages("C1")[0]["blocks"][0]["accessory"]["action_id"] == "go"


def test_ephemeral_messages_are_kept_apart_from_channel_messages(slack, client):
    result = client.chat_postEphemeral(channel="C1", user="U0ALICE", text="only you")
    assert result["message_ts"]
    assert slack.messages("C1") == []
    assert [m["text"] for m in slack.ephemeral_messages("C1")] == ["only you"]
    assert slack.ephemeral_messages("C1")[0]["user_to"] == "U0ALICE"


def test_permalink_points_at_the_message(client):
    posted = client.chat_postMessage(channel="C1", text="x")
    link = client.chat_getPermalink(channel="C1", message_ts=posted["ts"])["permalink"]
    assert link.endswith("/archives/C1/p" + posted["ts"].replace(".", ""))


# --- threads, history, users ----------------------------------------------------------


def test_seeded_thread_and_bot_replies_are_served_by_conversations_replies(slack, client):
    root = slack.seed_thread("C1", ["Can someone pull DAU?", {"user": "U0BOB", "text": "+1"}])
    client.chat_postMessage(channel="C1", thread_ts=root, text="On it")
    replies = client.conversations_replies(channel="C1", ts=root)["messages"]
    assert [m["text"] for m in replies] == ["Can someone pull DAU?", "+1", "On it"]
    assert replies[0]["reply_count"] == 2
    assert all(m["thread_ts"] == root for m in replies)
    with pytest.raises(SlackApiError) as error:
        client.conversations_replies(channel="C1", ts="1.000001")
    assert error.value.response["error"] == "thread_not_found"


def test_long_thread_replies_come_at_most_200_a_page_and_page_with_next_cursor(slack, client):
    root = slack.seed_thread("C1", [f"m{i}" for i in range(450)])
    first = client.conversations_replies(channel="C1", ts=root, limit=1000)
    assert len(first["messages"]) == 200 and first["has_more"] is True
    assert first["messages"][0]["reply_count"] == 449
    seen, cursor = [], None
    while True:
        page = client.conversations_replies(channel="C1", ts=root, limit=200, cursor=cursor)
        seen += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen == [f"m{i}" for i in range(450)]


def test_history_is_newest_first_and_pages_with_cursors(slack, client):
    for i in range(5):
        client.chat_postMessage(channel="C1", text=f"m{i}")
    seen, cursor = [], None
    while True:
        page = client.conversations_history(channel="C1", limit=2, cursor=cursor)
        seen += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen == ["m4", "m3", "m2", "m1", "m0"]


def test_users_info_has_a_profile_but_no_email_and_dm_channels_are_stable(client):
    user = client.users_info(user="U0ALICE")["user"]
    assert user["id"] == "U0ALICE" and user["tz"] and user["profile"]["display_name"]
    assert "email" not in user["profile"]
    first = client.conversations_open(users="U0ALICE")["channel"]["id"]
    again = client.conversations_open(users=["U0ALICE"])
    assert first.startswith("D") and again["channel"]["id"] == first and again["already_open"]
    with pytest.raises(SlackApiError) as error:
        client.users_info(user="not-a-user")
    assert error.value.response["error"] == "user_not_found"


def test_conversations_info_knows_named_channels(slack, client):
    channel_id = slack.add_channel(name="data-team", is_private=True)
    info = client.conversations_info(channel=channel_id)["channel"]
    assert info["name"] == "data-team" and info["is_private"]
    with pytest.raises(SlackApiError):
        client.conversations_info(channel="#nope")


def test_reading_a_channel_takes_its_id_not_its_name_like_slack(slack, client):
    channel_id = slack.add_channel(name="cody-numbers")
    root = client.chat_postMessage(channel="#cody-numbers", text="posting by name is fine")["ts"]
    assert client.conversations_history(channel=channel_id)["messages"][0]["ts"] == root
    for method, extra in (
        (client.conversations_history, {}),
        (client.conversations_replies, {"ts": root}),
        (client.conversations_info, {}),
    ):
        for ref in ("#cody-numbers", "cody-numbers"):
            with pytest.raises(SlackApiError) as error:
                method(channel=ref, **extra)
            assert error.value.response["error"] == "channel_not_found"


def test_databot_posts_to_a_public_channel_it_is_not_in_but_cannot_read_it(slack, client):
    public = slack.add_channel(name="analytics", is_member=False)
    private = slack.add_channel(name="secret", is_private=True, is_member=False)
    posted = client.chat_postMessage(channel=public, text="chat:write.public")
    assert posted["channel"] == public
    with pytest.raises(SlackApiError) as error:
        client.conversations_history(channel=public)
    assert error.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError) as error:
        client.conversations_replies(channel=public, ts=posted["ts"])
    assert error.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError) as error:
        client.chat_postMessage(channel=private, text="not invited")
    assert error.value.response["error"] == "channel_not_found"


def test_conversations_list_pages_through_channels_databot_may_see(slack, client):
    names = [f"team-{i}" for i in range(5)]
    ids = {name: slack.add_channel(name=name) for name in names}
    ids["data-team"] = slack.add_channel(name="data-team", is_private=True)
    slack.add_channel(name="not-invited", is_private=True, is_member=False)
    client.conversations_open(users="U0ALICE")  # a DM is not a channel

    def listed(types: str) -> dict[str, str]:
        seen, cursor = {}, None
        while True:
            page = client.conversations_list(types=types, limit=2, cursor=cursor)
            seen.update({c["name"]: c["id"] for c in page["channels"]})
            cursor = page["response_metadata"]["next_cursor"]
            if not cursor:
                return seen

    assert listed("public_channel") == {n: ids[n] for n in names}
    assert listed("public_channel,private_channel") == ids


def test_reactions_are_added_once(slack, client):
    posted = client.chat_postMessage(channel="C1", text="x")
    client.reactions_add(channel="C1", timestamp=posted["ts"], name="white_check_mark")
    with pytest.raises(SlackApiError) as error:
        client.reactions_add(channel="C1", timestamp=posted["ts"], name="white_check_mark")
    assert error.value.response["error"] == "already_reacted"
    assert slack.messages("C1")[0]["reactions"][0]["count"] == 1


# --- modals -----------------------------------------------------------------------------


def test_views_open_needs_a_fresh_unused_trigger_id(slack, client):
    with pytest.raises(SlackApiError) as unknown:
        client.views_open(trigger_id="123.456.abc", view=modal())
    expired = slack.issue_trigger_id(valid_for=0.05)
    time.sleep(0.1)
    with pytest.raises(SlackApiError) as late:
        client.views_open(trigger_id=expired, view=modal())
    trigger = slack.issue_trigger_id()
    opened = client.views_open(trigger_id=trigger, view=modal(callback_id="req"))["view"]
    with pytest.raises(SlackApiError) as reused:
        client.views_open(trigger_id=trigger, view=modal())
    assert unknown.value.response["error"] == "invalid_trigger_id"
    assert late.value.response["error"] == "expired_trigger_id"
    assert reused.value.response["error"] == "exchanged_trigger_id"
    assert opened["id"].startswith("V") and opened["callback_id"] == "req"
    assert [v["id"] for v in slack.views()] == [opened["id"]]


def test_views_update_replaces_the_view_and_checks_the_hash(slack, client):
    opened = client.views_open(trigger_id=slack.issue_trigger_id(), view=modal("Loading"))["view"]
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Done"))
    assert slack.view(opened["id"])["title"]["text"] == "Done"
    with pytest.raises(SlackApiError) as stale:
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Again"))
    assert stale.value.response["error"] == "hash_conflict"
    assert updated["view"]["hash"] != opened["hash"]
    pushed = client.views_push(trigger_id=slack.issue_trigger_id(), view=modal("Step 2"))
    assert pushed["view"]["previous_view_id"] == opened["id"]


@pytest.mark.parametrize(
    "view",
    [
        modal("A title that is too long!!"),  # 26 characters
        modal(blocks=[section(str(i)) for i in range(101)]),
        modal(
            blocks=[
                {
                    "type": "input",
                    "block_id": "b",
                    "label": {"type": "plain_text", "text": "Q"},
                    "element": {"type": "plain_text_input", "action_id": "a"},
                }
            ]
        ),  # inputs without a submit button
    ],
    ids=["title-over-24", "101-blocks", "input-without-submit"],
)
def test_invalid_modals_are_refused_and_recorded(slack, client, view):
    with pytest.raises(SlackApiError) as error:
        client.views_open(trigger_id=slack.issue_trigger_id(), view=view)
    assert error.value.response["error"] == "invalid_arguments"
    assert len(slack.violations) == 1 and slack.views() == []


# --- files ------------------------------------------------------------------------------


def test_files_upload_v2_stores_the_bytes_and_shares_them_in_the_channel(slack, client):
    content = b"date,subscribers\n2026-11-22,1234\n"
    result = client.files_upload_v2(
        channel="C1",
        content=content,
        filename="cody.csv",
        title="Cody Pro",
        initial_comment="Daily",
    )
    [uploaded] = slack.files()
    assert result["file"]["id"] == uploaded.id
    assert uploaded.content == content and uploaded.title == "Cody Pro"
    assert uploaded.channels == ["C1"] and uploaded.completed
    [share] = slack.messages("C1")
    assert share["text"] == "Daily" and share["files"][0]["id"] == uploaded.id


# --- failures -----------------------------------------------------------------------------


def test_rate_limit_is_answered_429_with_retry_after_and_the_sdk_waits_then_retries(slack):
    client = WebClient(token=slack.token, base_url=slack.api_url)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    slack.fail_next("chat.postMessage", retry_after=1)
    started = time.monotonic()
    client.chat_postMessage(channel="C1", text="after the wait")
    waited = time.monotonic() - started
    calls = slack.calls("chat.postMessage")
    assert [c.error for c in calls] == ["ratelimited", None]
    assert waited >= 1.0
    assert [m["text"] for m in slack.messages("C1")] == ["after the wait"]


def test_rate_limit_without_a_retry_handler_surfaces_to_the_caller(slack, client):
    slack.fail_next("chat.postMessage", retry_after=30)
    with pytest.raises(SlackApiError) as error:
        client.chat_postMessage(channel="C1", text="x")
    assert error.value.response.status_code == 429
    assert error.value.response.headers["Retry-After"] == "30"


def test_server_errors_and_api_errors_can_be_injected(slack, client):
    slack.fail_next("chat.postMessage", error="internal_error", status=500)
    slack.fail_next("chat.update", error="channel_not_found")
    with pytest.raises(SlackApiError) as server:
        client.chat_postMessage(channel="C1", text="x")
    posted = client.chat_postMessage(channel="C1", text="x")  # one failure only
    with pytest.raises(SlackApiError) as api:
        client.chat_update(channel="C1", ts=posted["ts"], text="y")
    assert server.value.response.status_code == 500
    assert api.value.response.status_code == 200
    assert api.value.response["error"] == "channel_not_found"


def test_wait_for_returns_once_calls_arrive_from_another_thread(slack, client):
    threading.Timer(0.2, lambda: client.chat_postMessage(channel="C1", text="late")).start()
    [call] = slack.wait_for("chat.postMessage", timeout=5)
    assert call.args["text"] == "late"
    with pytest.raises(AssertionError):
        slack.wait_for("chat.delete", timeout=0.1)


# --- response_url -----------------------------------------------------------------------


def test_response_url_posts_are_recorded_and_applied_like_slack(slack, client):
    posted = client.chat_postMessage(channel="C1", text="Pick one", blocks=[section("old")])
    url = slack.response_url("C1", message_ts=posted["ts"], user="U0ALICE")

    assert WebhookClient(url).send(text="just you").status_code == 200
    assert WebhookClient(url).send(text="all", response_type="in_channel").status_code == 200
    WebhookClient(url).send(text="new", blocks=[section("new")], replace_original=True)

    assert [r.payload["text"] for r in slack.responses(url)] == ["just you", "all", "new"]
    assert [m["text"] for m in slack.ephemeral_messages("C1")] == ["just you"]
    texts = {m["ts"]: m["text"] for m in slack.messages("C1")}
    assert texts[posted["ts"]] == "new" and "all" in texts.values()

    WebhookClient(url).send(text="", delete_original=True)
    assert posted["ts"] not in {m["ts"] for m in slack.messages("C1")}


def test_response_url_refuses_invalid_blocks_and_expires_after_five_uses(slack):
    url = slack.response_url("C1")
    bad = WebhookClient(url).send(text="x", blocks=[section("x" * 3001)])
    assert bad.status_code == 400 and bad.body == "invalid_blocks"
    assert [v.method for v in slack.violations] == ["response_url"]
    statuses = [WebhookClient(url).send(text=str(i)).status_code for i in range(5)]
    assert statuses == [200, 200, 200, 200, 404]  # the rejected post was the first use
    assert WebhookClient(slack.url + "/actions/T/1/unknown").send(text="x").status_code == 404


# --- signing and payload builders -----------------------------------------------------


def test_signature_matches_slacks_documented_example():
    # From Slack's "Verifying requests from Slack" guide.
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
        "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook"
        "-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977"
        "00885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d"
        "10d2c447fce8b6703c"
    )
    headers = sr.sign("8f742231b10e8888abcd99yyyzzz85a5", body, timestamp=1531420618)
    assert headers["X-Slack-Signature"] == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


class _Receiver(LoopbackServer):
    """A stand-in app endpoint that checks signatures with slack_sdk's verifier."""

    def __init__(self, secret: str) -> None:
        self.verifier = SignatureVerifier(secret)
        self.bodies: list[str] = []
        super().__init__()

    def _make_app(self) -> Flask:
        app = Flask("receiver")

        @app.post("/slack/events")
        def events() -> Response:
            body = request.get_data(as_text=True)
            if not self.verifier.is_valid_request(body, dict(request.headers)):
                return Response("invalid signature", status=401)
            self.bodies.append(body)
            return Response(json.dumps({"ok": True}), content_type="application/json")

        return app


def test_signed_requests_pass_slack_sdks_verifier_and_tampering_fails():
    with _Receiver("s3cret") as app:
        url = app.url + "/slack/events"
        body = sr.slash_command("/metric", "dau 7d")
        good = sr.send(url, body, sr.FORM, "s3cret")
        wrong_secret = sr.send(url, body, sr.FORM, "other")
        stale = sr.send(url, body, sr.FORM, "s3cret", timestamp=int(time.time()) - 600)
        tampered = sr.send(url, body + "x", headers=sr.sign("s3cret", body))
        unsigned = sr.send(url, body)
    assert good.status == 200 and good.json() == {"ok": True}
    assert [wrong_secret.status, stale.status, tampered.status, unsigned.status] == [401] * 4
    assert app.bodies == [body]
    fields = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
    assert fields["command"] == "/metric" and fields["text"] == "dau 7d"
    assert {"user_id", "channel_id", "team_id", "trigger_id", "response_url"} <= set(fields)


def test_view_submission_fills_state_for_every_input_shaped_by_its_element():
    view = modal(
        "Data request",
        submit={"type": "plain_text", "text": "Send"},
        callback_id="request",
        private_metadata='{"channel":"C1"}',
        blocks=[
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "Title"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            },
            {
                "type": "input",
                "block_id": "priority",
                "label": {"type": "plain_text", "text": "Priority"},
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": [
                        {"text": {"type": "plain_text", "text": "Urgent"}, "value": "urgent"},
                        {"text": {"type": "plain_text", "text": "Normal"}, "value": "normal"},
                    ],
                },
            },
            {
                "type": "input",
                "block_id": "due",
                "optional": True,
                "label": {"type": "plain_text", "text": "Due"},
                "element": {"type": "datepicker", "action_id": "value"},
            },
        ],
    )
    payload = sr.view_submission(view, {"title": {"value": "DAU"}, "priority": {"value": "urgent"}})
    values = payload["view"]["state"]["values"]
    assert values["title"]["value"] == {"type": "plain_text_input", "value": "DAU"}
    assert values["priority"]["value"]["selected_option"]["text"]["text"] == "Urgent"
    assert values["due"]["value"] == {"type": "datepicker", "selected_date": None}
    assert payload["type"] == "view_submission"
    assert payload["view"]["callback_id"] == "request"
    assert payload["view"]["private_metadata"] == '{"channel":"C1"}'


def test_block_actions_takes_block_id_and_value_from_the_message_clicked(slack, client):
    button = {
        "type": "button",
        "action_id": "ack",
        "value": "issue-7",
        "text": {"type": "plain_text", "text": "Acknowledge"},
    }
    client.chat_postMessage(
        channel="C1",
        text="x",
        blocks=[{"type": "actions", "block_id": "alert", "elements": [button]}],
    )
    [message] = slack.messages("C1")
    payload = sr.block_actions("ack", message=message, response_url=slack.response_url("C1"))
    [action] = payload["actions"]
    assert (action["block_id"], action["value"], action["type"]) == ("alert", "issue-7", "button")
    assert payload["container"] == {
        "type": "message",
        "message_ts": message["ts"],
        "channel_id": "C1",
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == message["ts"] and "channel" not in payload["message"]
    with pytest.raises(ValueError):
        sr.block_actions("no-such-action", message=message)


def test_shortcut_payloads_carry_what_bolt_routes_on():
    message = {"ts": "1.000100", "text": "numbers look off", "user": "U0BOB", "channel": "C9"}
    shortcut = sr.message_shortcut("file_request", message)
    assert shortcut["type"] == "message_action" and shortcut["callback_id"] == "file_request"
    assert shortcut["channel"]["id"] == "C9" and shortcut["message"]["text"] == "numbers look off"
    glob = sr.global_shortcut("new_request", trigger_id="t1")
    assert (glob["type"], glob["callback_id"], glob["trigger_id"]) == (
        "shortcut",
        "new_request",
        "t1",
    )
    body = sr.interactive_body(glob)
    assert json.loads(urllib.parse.parse_qs(body)["payload"][0]) == glob


# --- render ---------------------------------------------------------------------------------


def test_render_reads_links_mentions_and_buttons_as_a_person_would():
    assert mrkdwn("see <https://x.io/d|the dashboard>, cc <@U1> in <#C1|analytics>") == (
        "see the dashboard (https://x.io/d), cc @U1 in #analytics"
    )
    assert mrkdwn("a &lt; b &amp;&amp; <!here>") == "a < b && @here"
    text = render_message(
        {
            "text": "fallback only",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Daily numbers"}},
                section("*DAU* 1,234"),
                {"type": "divider"},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "as of Nov 22"}]},
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "text": {"type": "plain_text", "text": "Open"}},
                        {"type": "button", "text": {"type": "plain_text", "text": "Mute"}},
                    ],
                },
            ],
        }
    )
    assert "fallback only" not in text
    lines = text.splitlines()
    assert lines[0] == "Daily numbers" and "*DAU* 1,234" in lines and "as of Nov 22" in text
    assert "[ Open ]  [ Mute ]" in lines
    assert render_message({"text": "plain <@U2>"}) == "plain @U2"


def test_render_view_shows_title_inputs_and_submit():
    text = render_view(
        modal(
            "Data request",
            submit={"type": "plain_text", "text": "Send"},
            blocks=[
                {
                    "type": "input",
                    "label": {"type": "plain_text", "text": "What do you need?"},
                    "element": {"type": "plain_text_input", "action_id": "a"},
                    "optional": True,
                }
            ],
        )
    )
    assert "Data request" in text and "What do you need? (optional)" in text
    assert "[ Cancel ]  [ Send ]" in text


def test_bolt_verifies_and_routes_every_payload_the_builders_make(slack):
    from slack_bolt import App, BoltRequest

    app = App(
        signing_secret="s3cret",
        client=WebClient(token=slack.token, base_url=slack.api_url),
    )  # Bolt checks the token with auth.test at start-up: that call hits the fake too
    seen: dict[str, object] = {}
    # Bolt returns from dispatch once ack() is called and may still be running the
    # listener, so each listener records what it saw before acking.

    @app.command("/metric")
    def on_command(ack, command):
        seen["command"] = command["text"]
        ack()

    @app.shortcut("new_request")
    def on_shortcut(ack, shortcut):
        seen["shortcut"] = shortcut["trigger_id"]
        ack()

    @app.view("request")
    def on_submit(ack, view):
        seen["title"] = view["state"]["values"]["title"]["value"]["value"]
        ack()

    @app.action("ack")
    def on_click(ack, action):
        seen["button"] = action["value"]
        ack()

    view = modal(
        submit={"type": "plain_text", "text": "Send"},
        callback_id="request",
        blocks=[
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "Title"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            }
        ],
    )
    message = {
        "ts": "1.000100",
        "channel": "C1",
        "blocks": [
            {
                "type": "actions",
                "block_id": "b",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "ack",
                        "value": "7",
                        "text": {"type": "plain_text", "text": "Ack"},
                    }
                ],
            }
        ],
    }
    bodies = [
        sr.slash_command("/metric", "dau"),
        sr.interactive_body(sr.global_shortcut("new_request", trigger_id="t-1")),
        sr.interactive_body(sr.view_submission(view, {"title": {"value": "DAU"}})),
        sr.interactive_body(sr.block_actions("ack", message=message)),
    ]
    for body in bodies:
        headers = {k.lower(): v for k, v in sr.sign("s3cret", body).items()}
        headers["content-type"] = sr.FORM
        assert app.dispatch(BoltRequest(body=body, headers=headers)).status == 200
    forged = {k.lower(): v for k, v in sr.sign("wrong", bodies[0]).items()}
    assert app.dispatch(BoltRequest(body=bodies[0], headers=forged)).status == 401
    assert seen == {"command": "dau", "shortcut": "t-1", "title": "DAU", "button": "7"}
    assert [c.method for c in slack.calls()] == ["auth.test"]


@pytest.mark.parametrize(
    ("how", "raised"),
    [("reset", ConnectionError), ("500", SlackApiError), ("hang", TimeoutError)],
)
def test_an_answer_lost_after_posting_leaves_the_message_posted(slack, how, raised):
    client = WebClient(token=slack.token, base_url=slack.api_url, timeout=0.5, retry_handlers=[])
    slack.lose_answer_next("chat.postMessage", how, seconds=1.0)
    with pytest.raises(raised):
        client.chat_postMessage(channel="C0GENERAL", text="once")
    assert [m["text"] for m in slack.messages("C0GENERAL")] == ["once"]  # Slack acted
    assert client.chat_postMessage(channel="C0GENERAL", text="twice")["ok"]  # next is answered


def test_history_and_replies_return_metadata_only_when_asked_like_slack(slack, client):
    meta = {"event_type": "databot_message", "event_payload": {"key": "k"}}
    root = client.chat_postMessage(channel="C0GENERAL", text="root", metadata=meta)["ts"]
    client.chat_postMessage(channel="C0GENERAL", text="reply", thread_ts=root, metadata=meta)
    assert "metadata" not in client.conversations_history(channel="C0GENERAL")["messages"][0]
    [top] = client.conversations_history(channel="C0GENERAL", include_all_metadata=True)["messages"]
    assert top["metadata"] == meta
    replies = client.conversations_replies(channel="C0GENERAL", ts=root, include_all_metadata=True)
    assert [m["metadata"] for m in replies["messages"]] == [meta, meta]
    plain = client.conversations_replies(channel="C0GENERAL", ts=root)["messages"]
    assert all("metadata" not in m for m in plain)


# --- charts and tables (limits from Slack's block reference) ------------------------------


def chart(title="DAU, last 14 days", *, kind="line", categories=None, series=None):
    categories = categories if categories is not None else ["Nov 21", "Nov 22"]
    series = (
        series
        if series is not None
        else [
            {
                "name": "DAU",
                "data": [{"label": c, "value": 10 + i} for i, c in enumerate(categories)],
            }
        ]
    )
    return {
        "type": "data_visualization",
        "title": title,
        "chart": {"type": kind, "series": series, "axis_config": {"categories": categories}},
    }


def table(rows=2, cells=3):
    return {
        "type": "table",
        "rows": [
            [{"type": "raw_text", "text": f"r{r}c{c}"} for c in range(cells)] for r in range(rows)
        ],
    }


def test_charts_and_tables_within_slacks_limits_are_accepted(slack, client):
    twenty = [f"day {i}" for i in range(20)]
    six = [{"name": f"s{n}", "data": [{"label": twenty[0], "value": n}]} for n in range(6)]
    blocks = [
        chart("x" * 50, categories=twenty),
        chart(kind="bar", categories=twenty, series=six),
        table(rows=100, cells=20),
    ]
    assert client.chat_postMessage(channel="#analytics", text="ok", blocks=blocks)["ok"]
    assert slack.violations == []


@pytest.mark.parametrize(
    ("blocks", "why"),
    [
        ([chart("x" * 51)], "title"),
        ([chart(categories=[f"d{i}" for i in range(21)])], "categories"),
        ([chart(categories=["x" * 21])], "categories[0]"),
        (
            [
                chart(
                    series=[
                        {"name": f"s{n}", "data": [{"label": "Nov 21", "value": 1}]}
                        for n in range(7)
                    ]
                )
            ],
            "series",
        ),
        (
            [chart(series=[{"name": "DAU", "data": [{"label": "Nov 1", "value": 1}]}])],
            "not an axis category",
        ),
        (
            [chart(series=[{"name": "DAU", "data": [{"label": "Nov 21", "value": "7"}]}])],
            "finite number",
        ),
        ([chart(series=[{"name": "n" * 21, "data": [{"label": "Nov 21", "value": 1}]}])], "name"),
        ([chart(kind="scatter")], "chart.type"),
        ([chart(), chart(), chart()], "no more than 2 data_visualization"),
        ([table(), table()], "no more than 1 table"),
        ([table(rows=101)], "rows"),
        ([table(cells=21)], "rows[0]"),
    ],
)
def test_a_chart_or_table_slack_would_refuse_is_invalid_blocks(slack, client, blocks, why):
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="#analytics", text="no", blocks=blocks)
    assert err.value.response["error"] == "invalid_blocks"
    (violation,) = slack.violations
    assert why in " ".join(violation.problems)
    assert slack.messages("#analytics") == []


def test_uploaded_files_keep_their_alt_text(slack, client):
    client.files_upload_v2(
        channel="#analytics",
        content=b"\x89PNG...",
        filename="c.png",
        title="C",
        alt_txt="a line chart",
    )
    (uploaded,) = slack.files()
    assert uploaded.alt_txt == "a line chart"
