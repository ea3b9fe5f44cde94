"""Who handles a request (DOMAIN.md, "Who handles a request"): the weekly support rotation
and each business unit's aligned analyst. Pure rules, no I/O.

Weeks run Monday to Sunday in the team's time zone (settings.timezone): the analyst at index
`n % len(analysts)` of SUPPORT_ANALYSTS is on support in the n-th week since
SUPPORT_ROTATION_START (a Monday).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel

from bot.settings import Analyst, Settings


class Reason(StrEnum):
    SUPPORT = "support"  # on support this week
    UNIT = "unit"  # the business unit's aligned analyst


class Route(BaseModel):
    """Where a new request goes: `analyst` handles it (None: nobody is configured);
    `support` is this week's support analyst (pinged at once on an urgent request)."""

    analyst: Analyst | None = None
    reason: Reason | None = None
    unit: str | None = None
    support: Analyst | None = None

    def describe(self) -> str:
        """Why this analyst, in words (plain text: the caller escapes for its target)."""
        if self.reason is Reason.UNIT:
            return f"aligned with {self.unit}"
        return "on support this week"

    @property
    def to_ping(self) -> list[Analyst]:
        """Who hears at once about an urgent request: the analyst it goes to and whoever is
        on support (once each)."""
        found = [a for a in (self.analyst, self.support) if a is not None]
        return list({a.slack: a for a in found}.values())


class SupportWeek(BaseModel):
    start: dt.date  # Monday
    end: dt.date  # Sunday
    analyst: Analyst | None


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def support_week(settings: Settings, day: dt.date) -> SupportWeek:
    """The rotation's week containing `day` (a date in the team's time zone)."""
    start = monday_of(day)
    analysts = settings.support_analysts
    analyst = None
    if analysts:
        weeks = (start - monday_of(settings.support_rotation_start)).days // 7
        analyst = analysts[weeks % len(analysts)]
    return SupportWeek(start=start, end=start + dt.timedelta(days=6), analyst=analyst)


def team_day(settings: Settings, when: dt.datetime) -> dt.date:
    return when.astimezone(settings.tz).date()


def route(settings: Settings, unit: str | None, when: dt.datetime) -> Route:
    """Where a request submitted at `when` (aware) for business unit `unit` goes: the unit's
    aligned analyst when one is configured, else the analyst on support that week."""
    support = support_week(settings, team_day(settings, when)).analyst
    aligned = settings.business_unit_analysts.get(unit) if unit else None
    if aligned is not None:
        return Route(analyst=aligned, reason=Reason.UNIT, unit=unit, support=support)
    if support is not None:
        return Route(analyst=support, reason=Reason.SUPPORT, unit=unit, support=support)
    return Route(unit=unit)


def unit_label(settings: Settings, unit: str) -> str:
    """The issue label naming a business unit (GitHub caps label names at 50 characters)."""
    return (settings.business_unit_label_prefix + unit)[:50]


def render_support(this: SupportWeek, upcoming: SupportWeek) -> str:
    """`databot support`: this week's and next week's support analyst."""

    def line(label: str, week: SupportWeek) -> str:
        who = (
            f"{week.analyst.display} (GitHub @{week.analyst.github}, Slack {week.analyst.slack})"
            if week.analyst
            else "nobody (SUPPORT_ANALYSTS is empty)"
        )
        return f"{label} {week.start:%a %b %-d} – {week.end:%a %b %-d}: {who}"

    return "\n".join([line("This week", this), line("Next week", upcoming)])
