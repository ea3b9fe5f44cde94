"""The PERIOD grammar of `/metric`: words people type -> an exact range of Pacific dates.

Every period is a closed range of Pacific calendar dates (REPORTING_TZ): DOMAIN.md defines
every reported day in America/Los_Angeles, and the catalog's SQL buckets by that zone, so
the TIMEZONE setting (schedules) must not move them. Warehouse timestamps are UTC, so
`utc_bounds` turns a date range into the half-open UTC interval [start of the first day,
start of the day after the last day): 23, 24 or 25 hours a day across DST changes.

"Yesterday" is the default because it is the last complete day; periods that reach today
are marked `partial` so the answer can say the numbers are still coming in.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.errors import InputError
from bot.slack_text import escape_mrkdwn

# Longer ranges scan a lot of data for one lookup; the team answers those by hand.
MAX_DAYS = 400
MAX_TEXT = 60

ACCEPTED_FORMS = (
    "`yesterday` (default: the last complete day)",
    "`today`",
    "`7d`, `30d`, `90d` (the last N complete days)",
    "`last week` (Monday to Sunday)",
    "`last month`",
    "`this month` (to yesterday)",
    "`2026-10` (a month)",
    "`2026-10-05` (a day)",
    "`2026-10-01..2026-10-31` (a range)",
)


@dataclass(frozen=True)
class Period:
    """Dates `start`..`end` inclusive, in the team's time zone."""

    start: dt.date
    end: dt.date
    partial: bool = False  # reaches today: data for the last day is still arriving

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The equal-length period just before this one (a 31-day month -> the 31 days
        before it), so a change compares like with like."""
        end = self.start - dt.timedelta(days=1)
        return Period(end - dt.timedelta(days=self.days - 1), end)

    def ending_window(self, days: int) -> Period:
        """The `days`-long period ending where this one ends (for metrics with a minimum
        window, e.g. MAU asked for one day -> the 30 days ending that day)."""
        return Period(self.end - dt.timedelta(days=days - 1), self.end, self.partial)

    def utc_bounds(self, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        return day_start_utc(self.start, tz), day_start_utc(self.end + dt.timedelta(days=1), tz)

    def label(self) -> str:
        """Human text of the exact range, e.g. `Sun Nov 22, 2026` or `Oct 1 – Oct 31, 2026`."""
        if self.start == self.end:
            text = f"{self.start:%a %b} {self.start.day}, {self.start.year}"
        elif self.start.year == self.end.year:
            text = (
                f"{self.start:%b} {self.start.day} – {self.end:%b} {self.end.day}, {self.end.year}"
            )
        else:
            text = (
                f"{self.start:%b} {self.start.day}, {self.start.year} – "
                f"{self.end:%b} {self.end.day}, {self.end.year}"
            )
        return text + (" (so far)" if self.partial else "")

    def key(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def day_start_utc(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """Midnight at the start of `day` in `tz`, as an aware UTC datetime."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)


_DAYS = re.compile(r"^(\d{1,3})\s*d(?:ays?)?$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})$")


def parse_period(text: str | None, today: dt.date) -> Period:
    """`text` (case-insensitive, surrounding space ignored) -> Period; InputError listing the
    accepted forms when it does not parse or asks for the future."""
    raw = " ".join((text or "").split()).lower()
    if not raw or raw == "yesterday":
        return _day(today - dt.timedelta(days=1))
    if raw == "today":
        return Period(today, today, partial=True)
    if raw in ("last week", "lastweek"):
        this_monday = today - dt.timedelta(days=today.weekday())
        return Period(this_monday - dt.timedelta(days=7), this_monday - dt.timedelta(days=1))
    if raw in ("last month", "lastmonth"):
        first = today.replace(day=1)
        last_end = first - dt.timedelta(days=1)
        return Period(last_end.replace(day=1), last_end)
    if raw in ("this month", "thismonth"):
        first = today.replace(day=1)
        if today == first:  # nothing complete yet: show today so far
            return Period(today, today, partial=True)
        return Period(first, today - dt.timedelta(days=1))
    if m := _DAYS.match(raw):
        days = int(m.group(1))
        if not 1 <= days <= MAX_DAYS:
            raise InputError(f"Pick between 1d and {MAX_DAYS}d.")
        end = today - dt.timedelta(days=1)
        return _checked(Period(end - dt.timedelta(days=days - 1), end), today)
    if m := _MONTH.match(raw):
        start = _date(int(m.group(1)), int(m.group(2)), 1, raw)
        end = _month_end(start)
        if start > today:
            raise InputError(f"{start:%B %Y} has not started yet.")
        if end >= today:  # the current month: complete days only, like `this month`
            return parse_period("this month", today)
        return _checked(Period(start, end), today)
    if m := _DAY.match(raw):
        day = _date(int(m.group(1)), int(m.group(2)), int(m.group(3)), raw)
        if day == today:
            return Period(today, today, partial=True)
        return _checked(_day(day), today)
    if m := _RANGE.match(raw):
        start, end = (_iso(g) for g in m.groups())
        if end < start:
            raise InputError("The range ends before it starts: write `START..END`.")
        if end > today:
            raise InputError("The range ends in the future: end it today at the latest.")
        return _checked(Period(start, end, partial=end == today), today)
    raise InputError(period_help(text))


def period_help(text: str | None) -> str:
    # The text goes back into Slack mrkdwn: escape it so `<!channel>` stays inert.
    shown = (text or "").strip()[:MAX_TEXT]
    shown = escape_mrkdwn(shown)
    head = f"I can't read the period “{shown}”." if shown else "I can't read that period."
    return head + " Try one of: " + ", ".join(ACCEPTED_FORMS) + "."


def _day(day: dt.date) -> Period:
    return Period(day, day)


def _checked(period: Period, today: dt.date) -> Period:
    if period.start > today:
        raise InputError("That period is in the future.")
    if period.days > MAX_DAYS:
        raise InputError(f"That is {period.days} days; ask for {MAX_DAYS} days or fewer.")
    return period


def _date(year: int, month: int, day: int, raw: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise InputError(f"There is no such date: `{raw}`.") from None


def _iso(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"There is no such date: `{text}`.") from None


def _month_end(first: dt.date) -> dt.date:
    nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return nxt - dt.timedelta(days=1)
