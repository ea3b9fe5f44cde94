"""The sprint calendar: which sprint a date falls in, and the ones around it.

Sprints are two weeks (settings.sprint_length_days), Monday to the Friday of the following
week; the weekend after belongs to the sprint that just ended. They come from the analytics
repo's milestones when those follow the sprint naming (settings.sprint_milestone_pattern)
and have due dates; before the first and after the last such milestone, or with none, the
calendar repeats every sprint_length_days from settings.sprint_anchor (a sprint's first
Monday). All dates are calendar dates in the team's time zone.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)

MONDAY = 0


@dataclass(frozen=True)
class Sprint:
    start: dt.date  # a Monday
    length_days: int
    name: str
    milestone: str | None = None  # the milestone title, when the sprint is one

    @property
    def end(self) -> dt.date:
        """The sprint's last working day: the Friday of its last week."""
        return self.start + dt.timedelta(days=self.length_days - 3)

    @property
    def last_day(self) -> dt.date:
        """The Sunday before the next sprint (the weekend counts with this sprint)."""
        return self.start + dt.timedelta(days=self.length_days - 1)

    @property
    def key(self) -> str:
        """Stable period key for scheduled posts about this sprint."""
        return self.start.isoformat()

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.last_day

    def describe(self) -> str:
        if self.milestone is None:  # the name already is the date range
            return self.name
        return f"{self.name} ({format_range(self.start, self.end)})"


@dataclass(frozen=True)
class MilestoneInfo:
    """What the calendar needs from a GitHub milestone."""

    title: str
    due_on: dt.datetime | dt.date | None


def format_range(start: dt.date, end: dt.date) -> str:
    if start.year != end.year:
        return f"{start:%b} {start.day}, {start.year} – {end:%b} {end.day}, {end.year}"
    if start.month == end.month:
        return f"{start:%b} {start.day}–{end.day}, {end.year}"
    return f"{start:%b} {start.day} – {end:%b} {end.day}, {end.year}"


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


class SprintCalendar:
    def __init__(
        self,
        anchor: dt.date,
        length_days: int = 14,
        milestones: Iterable[MilestoneInfo] = (),
        pattern: str = r"(?i)\bsprint\b",
    ) -> None:
        if anchor.weekday() != MONDAY:
            raise ValueError(f"sprint anchor {anchor} is a {anchor:%A}, not a Monday")
        if length_days < 7 or length_days % 7:
            raise ValueError("sprint length must be a whole number of weeks")
        self.anchor = anchor
        self.length_days = length_days
        self.sprints = self._from_milestones(milestones, re.compile(pattern))

    @property
    def source(self) -> str:
        return "milestones" if self.sprints else "anchor"

    def _from_milestones(
        self, milestones: Iterable[MilestoneInfo], pattern: re.Pattern[str]
    ) -> list[Sprint]:
        weeks = self.length_days // 7
        found: list[Sprint] = []
        for m in milestones:
            if not m.due_on or not pattern.search(m.title):
                continue
            # GitHub stores a due *date* as a timestamp; its UTC date is the date people set.
            due = m.due_on
            if isinstance(due, dt.datetime):
                due = due.astimezone(dt.UTC).date()
            # The due date is the sprint's last working day (any day of its last week).
            start = monday_of(due) - dt.timedelta(weeks=weeks - 1)
            found.append(Sprint(start, self.length_days, m.title.strip(), m.title))
        found.sort(key=lambda s: s.start)
        sprints: list[Sprint] = []
        for sprint in found:
            if sprints and sprint.start <= sprints[-1].start:
                logger.warning(
                    "milestones %r and %r are the same sprint; using the first",
                    sprints[-1].milestone,
                    sprint.milestone,
                )
                continue
            if sprints:
                previous = sprints[-1]
                # A longer gap than one sprint, or an overlap, is not a calendar we can trust:
                # stretch the previous sprint to touch this one instead of inventing a hole.
                if previous.start + dt.timedelta(days=previous.length_days) != sprint.start:
                    sprints[-1] = Sprint(
                        previous.start,
                        (sprint.start - previous.start).days,
                        previous.name,
                        previous.milestone,
                    )
            sprints.append(sprint)
        return sprints

    def _anchored(self, day: dt.date, base: dt.date) -> Sprint:
        index = (day - base).days // self.length_days
        start = base + dt.timedelta(days=index * self.length_days)
        end = start + dt.timedelta(days=self.length_days - 3)
        return Sprint(start, self.length_days, f"Sprint {format_range(start, end)}")

    def sprint_at(self, day: dt.date) -> Sprint:
        if not self.sprints:
            return self._anchored(day, self.anchor)
        first, last = self.sprints[0], self.sprints[-1]
        if day < first.start:
            return self._anchored(day, first.start)
        if day > last.last_day:
            return self._anchored(day, last.start)
        for sprint in reversed(self.sprints):
            if sprint.start <= day:
                return sprint
        raise AssertionError("unreachable")  # pragma: no cover

    def previous(self, sprint: Sprint) -> Sprint:
        return self.sprint_at(sprint.start - dt.timedelta(days=1))

    def next(self, sprint: Sprint) -> Sprint:
        return self.sprint_at(sprint.start + dt.timedelta(days=sprint.length_days))

    def around(self, day: dt.date) -> tuple[Sprint, Sprint, Sprint]:
        """(previous, current, next) sprint for `day`."""
        current = self.sprint_at(day)
        return self.previous(current), current, self.next(current)


def calendar_from_settings(
    settings: Settings, milestones: Iterable[MilestoneInfo] = ()
) -> SprintCalendar:
    return SprintCalendar(
        settings.sprint_anchor,
        settings.sprint_length_days,
        milestones,
        settings.sprint_milestone_pattern,
    )


def render_sprints(calendar: SprintCalendar, today: dt.date) -> str:
    """`databot sprint`: the current, previous and next sprint, as a person reads them."""
    previous, current, upcoming = calendar.around(today)
    day = (today - current.start).days + 1
    lines = [
        f"Previous: {previous.describe()}",
        f"Current:  {current.describe()}  (day {day} of {current.length_days})",
        f"Next:     {upcoming.describe()}",
        "",
        f"Source: {_source_line(calendar)}",
    ]
    return "\n".join(lines)


def _source_line(calendar: SprintCalendar) -> str:
    if calendar.sprints:
        return (
            f"{len(calendar.sprints)} sprint milestones with due dates "
            f"({calendar.sprints[0].name} … {calendar.sprints[-1].name}); "
            f"outside them, every {calendar.length_days} days"
        )
    return (
        f"every {calendar.length_days} days from {calendar.anchor:%a %b %d, %Y} "
        "(SPRINT_ANCHOR; no sprint milestones with due dates)"
    )
