"""The sprint calendar: anchor arithmetic across year ends, milestones, DST-proof dates."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from bot.settings import Settings
from bot.sprints.calendar import MilestoneInfo, SprintCalendar, render_sprints

ANCHOR = dt.date(2026, 1, 5)  # a Monday


def walk_to(day: dt.date, anchor: dt.date = ANCHOR, length: int = 14) -> dt.date:
    """Independent oracle: step sprint by sprint from the anchor until `day` is inside."""
    start = anchor
    while start > day:
        start -= dt.timedelta(days=length)
    while start + dt.timedelta(days=length) <= day:
        start += dt.timedelta(days=length)
    return start


@pytest.mark.parametrize(
    "day",
    [
        dt.date(2026, 1, 5),
        dt.date(2026, 1, 18),  # the Sunday closing the first sprint
        dt.date(2026, 1, 19),
        dt.date(2026, 12, 31),  # year end
        dt.date(2027, 1, 1),
        dt.date(2027, 1, 4),
        dt.date(2025, 12, 31),  # before the anchor
        dt.date(2024, 2, 29),  # leap day, far back
        dt.date(2030, 6, 15),
    ],
)
def test_anchor_sprints_match_a_walk_from_the_anchor(day):
    sprint = SprintCalendar(ANCHOR).sprint_at(day)
    assert sprint.start == walk_to(day)
    assert sprint.start.weekday() == 0
    assert sprint.end == sprint.start + dt.timedelta(days=11)
    assert sprint.end.weekday() == 4  # Friday of the second week
    assert sprint.contains(day)


def test_sprints_over_a_year_end_are_consecutive():
    calendar = SprintCalendar(ANCHOR)
    sprint = calendar.sprint_at(dt.date(2026, 12, 1))
    seen = []
    for _ in range(4):
        seen.append(sprint)
        sprint = calendar.next(sprint)
    assert [s.start for s in seen] == [
        dt.date(2026, 11, 23),
        dt.date(2026, 12, 7),
        dt.date(2026, 12, 21),
        dt.date(2027, 1, 4),
    ]
    assert seen[2].end == dt.date(2027, 1, 1)
    assert "Dec 21, 2026 – Jan 1, 2027" in seen[2].name
    assert calendar.previous(seen[3]) == seen[2]


def test_dst_changes_do_not_move_sprint_boundaries():
    # US DST ends Nov 1 2026 and starts Mar 14 2027: sprints are dates, not 336-hour spans.
    calendar = SprintCalendar(ANCHOR)
    autumn = calendar.sprint_at(dt.date(2026, 11, 1))
    spring = calendar.sprint_at(dt.date(2027, 3, 14))
    assert autumn.start == dt.date(2026, 10, 26) and autumn.last_day == dt.date(2026, 11, 8)
    assert spring.start == walk_to(dt.date(2027, 3, 14))
    assert calendar.next(autumn).start == dt.date(2026, 11, 9)


def milestone(title, due: str | None):
    return MilestoneInfo(title, dt.datetime.fromisoformat(due) if due else None)


def test_sprint_milestones_with_due_dates_define_the_sprints():
    calendar = SprintCalendar(
        ANCHOR,
        milestones=[
            milestone("Sprint 24", "2026-12-04T08:00:00+00:00"),  # Friday
            milestone("Sprint 23", "2026-11-20T08:00:00+00:00"),
            milestone("Q4 launch", "2026-12-10T08:00:00+00:00"),  # not a sprint
            milestone("Sprint 25 (draft)", None),  # no due date
        ],
    )
    assert calendar.source == "milestones"
    current = calendar.sprint_at(dt.date(2026, 11, 25))
    assert (current.name, current.milestone, current.start) == (
        "Sprint 24",
        "Sprint 24",
        dt.date(2026, 11, 23),
    )
    assert calendar.previous(current).milestone == "Sprint 23"
    # After the last milestone the calendar carries on every 14 days.
    upcoming = calendar.next(current)
    assert upcoming.milestone is None and upcoming.start == dt.date(2026, 12, 7)


def test_a_milestone_due_over_new_year_spans_the_year_end():
    calendar = SprintCalendar(
        ANCHOR, milestones=[milestone("Sprint 26", "2027-01-01T00:00:00+00:00")]
    )
    sprint = calendar.sprint_at(dt.date(2026, 12, 31))
    assert sprint.milestone == "Sprint 26"
    assert (sprint.start, sprint.end) == (dt.date(2026, 12, 21), dt.date(2027, 1, 1))
    assert calendar.sprint_at(dt.date(2027, 1, 4)).start == dt.date(2027, 1, 4)


def test_milestones_off_the_anchor_grid_win_over_the_anchor():
    # The team's milestones run a week off the configured anchor: milestones decide.
    calendar = SprintCalendar(ANCHOR, milestones=[milestone("Sprint 7", "2026-04-10")])
    assert calendar.sprint_at(dt.date(2026, 3, 30)).milestone == "Sprint 7"
    assert calendar.sprint_at(dt.date(2026, 3, 29)).start == dt.date(2026, 3, 16)


def test_the_cli_view_names_previous_current_and_next():
    text = render_sprints(SprintCalendar(ANCHOR), dt.date(2026, 11, 25))
    lines = text.splitlines()
    assert lines[0].startswith("Previous: Sprint Nov 9–20, 2026")
    assert lines[1].startswith("Current:  Sprint Nov 23 – Dec 4, 2026")
    assert "day 3 of 14" in lines[1]
    assert lines[2].startswith("Next:     Sprint Dec 7–18, 2026")
    assert "SPRINT_ANCHOR" in text


def test_bad_calendar_settings_are_explained():
    with pytest.raises(ValueError, match="not a Monday"):
        SprintCalendar(dt.date(2026, 1, 6))
    with pytest.raises(ValidationError, match="whole number of weeks"):
        Settings(_env_file=None, sprint_length_days=10)
    with pytest.raises(ValidationError, match="Tuesday"):
        Settings(_env_file=None, sprint_anchor="2026-01-06")
