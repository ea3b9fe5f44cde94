"""The change rules, table-driven: what a requester hears for a pair of views of an issue."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.followup.blocks import build_followup_message, excerpt
from bot.followup.model import Change, CommentMode, Snapshot, Update, changes, comment_is_told
from bot.github import GitHubComment, IssueRef
from bot.settings import FOLLOWUP_CHANGE_KINDS, Settings

T0 = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(hours=1)


def test_the_settings_know_every_change_kind():
    assert list(FOLLOWUP_CHANGE_KINDS) == [str(c) for c in Change]
    assert Settings(_env_file=None).followup_changes == [str(c) for c in Change]


OPEN = Snapshot()
CASES = [
    ("nothing", OPEN, OPEN, []),
    ("assigned", OPEN, Snapshot(assignees=["ana"]), [("assigned", "assigned:ana:1")]),
    ("unassigned", Snapshot(assignees=["ana"]), OPEN, []),
    ("scheduled", OPEN, Snapshot(milestone="Sprint 48"), [("scheduled", "scheduled:sprint 48")]),
    ("milestone removed", Snapshot(milestone="Sprint 48"), OPEN, []),
    ("urgent", OPEN, Snapshot(urgent=True), [("urgent", "urgent:1")]),
    ("filed urgent", Snapshot(urgent=True), Snapshot(urgent=True), []),
    (
        "delivered",
        OPEN,
        Snapshot(state="closed", state_reason="completed", closed_at=T0),
        [("delivered", "closed:2026-11-23T18:00:00Z")],
    ),
    (
        "not planned",
        OPEN,
        Snapshot(state="closed", state_reason="not_planned", closed_at=T0),
        [("not-planned", "closed:2026-11-23T18:00:00Z")],
    ),
    (
        "reopened",
        Snapshot(state="closed", closed_at=T0),
        Snapshot(state="open", state_reason="reopened"),
        [("reopened", "reopened:2026-11-23T18:00:00Z")],
    ),
    (
        "closed again later",
        Snapshot(state="closed", closed_at=T0),
        Snapshot(state="closed", closed_at=T1),
        [("delivered", "closed:2026-11-23T19:00:00Z")],
    ),
    (
        "picked up and scheduled at once",
        OPEN,
        Snapshot(assignees=["ana", "bo"], milestone="S1"),
        [
            ("assigned", "assigned:ana:1"),
            ("assigned", "assigned:bo:1"),
            ("scheduled", "scheduled:s1"),
        ],
    ),
]


@pytest.mark.parametrize(("name", "before", "now", "told"), CASES, ids=[c[0] for c in CASES])
def test_changes_between_two_views(name, before, now, told):
    found, _after = changes(before, now)
    assert [(str(u.kind), u.key) for u in found] == told


def test_a_second_assignment_of_the_same_person_has_its_own_key():
    first, after = changes(OPEN, Snapshot(assignees=["ana"]))
    _, after = changes(after, Snapshot(assigned_count=after.assigned_count))
    second, _ = changes(after, Snapshot(assignees=["ana"], assigned_count=after.assigned_count))
    assert [u.key for u in first + second] == ["assigned:ana:1", "assigned:ana:2"]


def _comment(body: str, user_type: str = "User") -> GitHubComment:
    return GitHubComment(
        id=1,
        html_url="https://github.com/acme/analytics/issues/1#issuecomment-1",
        issue_url="https://api.github.com/repos/acme/analytics/issues/1",
        body=body,
        user={"login": "ana"},
        user_type=user_type,
        created_at=T0,
        updated_at=T0,
    )


@pytest.mark.parametrize(
    ("body", "labels", "user_type", "questions", "all_"),
    [
        ("Looking into it.", [], "User", False, True),
        ("@requester which quarter?", [], "User", True, True),
        ("email@requester.com", [], "User", False, True),
        ("Marking needs-info until we hear back", [], "User", True, True),
        ("Which quarter?", ["needs-info"], "User", True, True),
        ("@requester ping", [], "Bot", False, False),
        ("<!-- databot-request-part: x 2/3 -->\n@requester", [], "User", False, False),
    ],
)
def test_which_comments_are_told(body, labels, user_type, questions, all_):
    comment = _comment(body, user_type)
    kwargs = {"need_info_label": "needs-info", "labels": labels}
    assert comment_is_told(comment, mode=CommentMode.QUESTIONS, **kwargs) is questions
    assert comment_is_told(comment, mode=CommentMode.ALL, **kwargs) is all_


def test_an_excerpt_of_ampersands_still_fits_a_section():
    quoted, cut = excerpt("&" * 5000, 2000)
    assert cut and len(quoted) <= 3000


@pytest.mark.parametrize("body", ["ok\n\n" * 600, "a\n" * 1500, "& x\n" * 700])
def test_an_excerpt_of_many_short_lines_fits_a_section_with_its_quote_marks(body):
    quoted, cut = excerpt(body, 2000)
    assert cut and len(quoted) <= 3000
    assert all(line.startswith(">") for line in quoted.splitlines())


def test_every_message_fits_slacks_limits():
    issue = IssueRef(7, "https://github.com/acme/analytics/issues/7", "<!here> " + "t" * 300)
    for kind in Change:
        update = Update(
            kind=kind, key="k", login="a" * 100, milestone="m" * 300, excerpt="&" * 9000
        )
        message = build_followup_message(update, issue, requester="U0BOB", excerpt_chars=2000)
        assert "<!here>" not in message.text + str(message.blocks)
        assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in message.blocks)
