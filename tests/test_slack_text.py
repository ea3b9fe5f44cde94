from __future__ import annotations

import pytest

from bot.slack_text import escape_mrkdwn, mrkdwn_link, truncate


@pytest.mark.parametrize(
    ("outside", "expected"),
    [
        ("<!channel> fix now", "&lt;!channel&gt; fix now"),
        ("<!here>", "&lt;!here&gt;"),
        ("ping <@U123> and <#C999>", "ping &lt;@U123&gt; and &lt;#C999&gt;"),
        ("<!subteam^S012|@analysts>", "&lt;!subteam^S012|@analysts&gt;"),
        ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;"),
        ("P&L > plan", "P&amp;L &gt; plan"),
        # Already-escaped text is escaped again: it shows as typed, not as the entity.
        ("&lt;b&gt;", "&amp;lt;b&amp;gt;"),
        ("plain words", "plain words"),
    ],
)
def test_escape_mrkdwn_leaves_no_slack_markup(outside, expected):
    escaped = escape_mrkdwn(outside)
    assert escaped == expected
    assert "<" not in escaped and ">" not in escaped


def test_link_label_cannot_inject_a_second_link_or_ping():
    link = mrkdwn_link("https://github.com/acme/analytics/issues/1", "<!channel> <https://evil|x>")
    # Exactly one mrkdwn construct: the link itself.
    assert link.count("<") == 1 and link.count(">") == 1
    assert link.startswith("<https://github.com/acme/analytics/issues/1|")
    assert "&lt;!channel&gt;" in link


def test_link_url_with_pipe_or_brackets_cannot_end_early():
    link = mrkdwn_link("https://example.com/a|b<c>?x=1&y=2", "label")
    url = link[1 : link.index("|")]
    assert url == "https://example.com/a%7Cb%3Cc%3E?x=1&amp;y=2"
    assert link.endswith("|label>")


def test_truncate_marks_the_cut_and_respects_the_limit():
    assert truncate("short", 10) == "short"
    cut = truncate("x" * 300, 150)
    assert len(cut) == 150 and cut.endswith("…")


def test_one_line_truncation_collapses_whitespace_and_cuts_between_words():
    title = "Weekly   active users\ndashboard for the Cody enterprise accounts"
    assert truncate(title, 100, one_line=True) == (
        "Weekly active users dashboard for the Cody enterprise accounts"
    )
    cut = truncate(title, 30, one_line=True)
    assert cut == "Weekly active users…" and len(cut) <= 30
    # No space in the second half: a plain cut rather than losing most of the text.
    assert truncate("x" * 40, 10, one_line=True) == "x" * 9 + "…"
