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
import difflib
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot.errors import InputError
from bot.slack_text import escape_mrkdwn

# Longer ranges scan a lot of data for one lookup; the team answers those by hand.
MAX_DAYS = 400
# Years a typed date may name (the data starts long after 2000; next year is the future,
# refused as such). Outside them `date` arithmetic would overflow (`dec 9999`).
MIN_YEAR = 2000
MAX_TEXT = 60

ACCEPTED_FORMS = (
    "`yesterday` (default: the last complete day)",
    "`today`",
    "`7d`, `30d`, `90d`, `last 7 days`, `past 30 days` (the last N complete days)",
    "`this week`, `last week` (Monday to Sunday)",
    "`this month`, `mtd`, `last month`",
    "`this quarter`, `last quarter`, `Q3`, `2026-Q3`",
    "`ytd` (this year to yesterday)",
    "`2026-10`, `Oct 2026`, `October` (the latest October)",
    "`2026-10-05` (a day)",
    "`2026-10-01..2026-10-31` (a range)",
)
# What a near miss is compared with (difflib), each with the form the reply suggests.
_SUGGESTIONS = {
    "yesterday": "yesterday",
    "today": "today",
    "last week": "last week",
    "this week": "this week",
    "last month": "last month",
    "this month": "this month",
    "this quarter": "this quarter",
    "last quarter": "last quarter",
    "ytd": "ytd",
    "mtd": "mtd",
    "qtd": "qtd",
    "year to date": "ytd",
    "month to date": "mtd",
}
_MONTHS = {
    name: number
    for number in range(1, 13)
    for name in (
        dt.date(2000, number, 1).strftime("%B").lower(),
        dt.date(2000, number, 1).strftime("%b").lower(),
    )
}
_MONTHS["sept"] = 9


@dataclass(frozen=True)
class Period:
    """Dates `start`..`end` inclusive, in the team's time zone."""

    start: dt.date
    end: dt.date
    partial: bool = False  # reaches today: data for the last day is still arriving
    # Asked for as a calendar month or quarter (`last month`, `October`, `Q3`): a change is
    # measured against the month or quarter before. `30d` on Dec 1 covers November too, but
    # is compared with the 30 days before. Not part of equality: the dates are the period.
    calendar: bool = field(default=False, compare=False)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The equal-length period just before this one (a 31-day month -> the 31 days
        before it), so a change compares like with like."""
        end = self.start - dt.timedelta(days=1)
        return Period(end - dt.timedelta(days=self.days - 1), end)

    def compared_with(self) -> Period:
        """The period a change is measured against: the calendar month (or quarter) before
        for one asked for as such (October vs September, not vs the 31 days before), else
        the equal-length period just before."""
        if self.calendar and not self.partial and self.start.day == 1:
            end = self.start - dt.timedelta(days=1)
            if self.end == _month_end(self.start):
                return Period(end.replace(day=1), end)
            if self.start.month % 3 == 1 and self.end == _quarter_end(self.start):
                return Period(_quarter_start(end), end)
        return self.previous()

    @classmethod
    def restored(cls, start: dt.date, end: dt.date, partial: bool, calendar: bool | None) -> Period:
        """A period carried in a button value. Buttons posted before values carried
        `calendar` (None) read a whole calendar month as one, as the bot then did."""
        if calendar is None:
            calendar = start.day == 1 and end == _month_end(start)
        return cls(start, end, partial, calendar)

    def week_before(self) -> Period | None:
        """For one day: the same weekday a week earlier (a Monday vs the Monday before)."""
        if self.days != 1:
            return None
        day = self.start - dt.timedelta(days=7)
        return Period(day, day)

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


_DAYS = re.compile(r"^(?:(?:last|past)\s+)?(\d{1,3})\s*d(?:ays?)?$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})$")
_QUARTER = re.compile(r"^(?:(\d{4})\s*-?\s*)?q([1-4])(?:\s+(\d{4}))?$")
_MONTH_NAME = re.compile(r"^([a-z]+)\.?(?:\s+(\d{4}))?$")
_NUMBER = re.compile(r"\d{1,3}")


def parse_period(text: str | None, today: dt.date) -> Period:
    """`text` (case-insensitive, surrounding space ignored) -> Period; InputError with a
    suggestion (a near miss) or the accepted forms when it does not parse or asks for the
    future. `today` is the Pacific date."""
    raw = " ".join((text or "").split()).lower()
    yesterday = today - dt.timedelta(days=1)
    if not raw or raw == "yesterday":
        return _day(yesterday)
    if raw == "today":
        return Period(today, today, partial=True)
    if raw in ("last week", "lastweek"):
        this_monday = today - dt.timedelta(days=today.weekday())
        return Period(this_monday - dt.timedelta(days=7), this_monday - dt.timedelta(days=1))
    if raw in ("this week", "thisweek", "wtd", "week to date"):
        return _so_far(today - dt.timedelta(days=today.weekday()), today)
    if raw in ("last month", "lastmonth"):
        first = today.replace(day=1)
        last_end = first - dt.timedelta(days=1)
        return Period(last_end.replace(day=1), last_end, calendar=True)
    if raw in ("this month", "thismonth", "mtd", "month to date"):
        return _so_far(today.replace(day=1), today)
    if raw in ("this quarter", "thisquarter", "qtd", "quarter to date"):
        return _so_far(_quarter_start(today), today)
    if raw in ("last quarter", "lastquarter"):
        end = _quarter_start(today) - dt.timedelta(days=1)
        return Period(_quarter_start(end), end, calendar=True)
    if raw in ("ytd", "this year", "year to date"):
        return _checked(_so_far(today.replace(month=1, day=1), today), today)
    if m := _DAYS.match(raw):
        days = int(m.group(1))
        if not 1 <= days <= MAX_DAYS:
            raise InputError(f"Pick between 1d and {MAX_DAYS}d.")
        return _checked(Period(yesterday - dt.timedelta(days=days - 1), yesterday), today)
    if m := _MONTH.match(raw):
        return _month(_date(int(m.group(1)), int(m.group(2)), 1, raw, today), today)
    if m := _QUARTER.match(raw):
        if m.group(1) and m.group(3):
            raise InputError(period_help(text))
        quarter = int(m.group(2))
        year = int(m.group(1) or m.group(3) or today.year)
        start = _date(year, 3 * quarter - 2, 1, raw, today)
        if start > today and not (m.group(1) or m.group(3)):
            start = start.replace(year=year - 1)  # `Q4` in May: the latest Q4, last year's
        return _span(start, _quarter_end(start), today, f"Q{quarter} {start.year}")
    if (m := _MONTH_NAME.match(raw)) and m.group(1) in _MONTHS:
        month = _MONTHS[m.group(1)]
        if m.group(2):
            return _month(_date(int(m.group(2)), month, 1, raw, today), today)
        start = dt.date(today.year, month, 1)
        if start > today:  # `October` in May: the latest October, last year's
            start = start.replace(year=today.year - 1)
        return _month(start, today)
    if m := _DAY.match(raw):
        day = _date(int(m.group(1)), int(m.group(2)), int(m.group(3)), raw, today)
        if day == today:
            return Period(today, today, partial=True)
        return _checked(_day(day), today)
    if m := _RANGE.match(raw):
        start, end = (_iso(g, today) for g in m.groups())
        if end < start:
            raise InputError("The range ends before it starts: write `START..END`.")
        if end > today:
            raise InputError("The range ends in the future: end it today at the latest.")
        return _checked(Period(start, end, partial=end == today), today)
    raise InputError(period_help(text))


def suggest_period(text: str | None) -> str | None:
    """The accepted form a mistyped period most likely meant (`7 dyas` -> `7d`,
    `yesterdy` -> `yesterday`), or None when nothing is close."""
    raw = " ".join((text or "").split()).lower()[:MAX_TEXT]
    if not raw:
        return None
    candidates = dict(_SUGGESTIONS)
    for name, number in _MONTHS.items():
        candidates[name] = dt.date(2000, number, 1).strftime("%B")
    if m := _NUMBER.search(raw):
        n = m.group(0)
        for form in (f"{n}d", f"{n} days", f"last {n} days", f"past {n} days", f"{n}days"):
            candidates[form] = f"{n}d"
    close = difflib.get_close_matches(raw, list(candidates), n=1, cutoff=0.7)
    return candidates[close[0]] if close else None


def period_help(text: str | None) -> str:
    # The text goes back into Slack mrkdwn: escape it so `<!channel>` stays inert.
    shown = (text or "").strip()[:MAX_TEXT]
    shown = escape_mrkdwn(shown)
    head = f"I can't read the period “{shown}”." if shown else "I can't read that period."
    suggestion = suggest_period(text)
    if suggestion is not None:
        return f"{head} Did you mean `{suggestion}`? `/metric help` lists every period."
    return head + " Try one of: " + ", ".join(ACCEPTED_FORMS) + "."


def _so_far(start: dt.date, today: dt.date) -> Period:
    """`start` to yesterday: complete days only; on `start` itself, today so far."""
    if today == start:  # nothing complete yet: show today so far
        return Period(today, today, partial=True)
    return Period(start, today - dt.timedelta(days=1))


def _month(start: dt.date, today: dt.date) -> Period:
    return _span(start, _month_end(start), today, f"{start:%B %Y}")


def _span(start: dt.date, end: dt.date, today: dt.date, name: str) -> Period:
    """A calendar span (month, quarter): complete if over, so far if current."""
    if start > today:
        raise InputError(f"{name} has not started yet.")
    if end >= today:  # the current one: complete days only, like `this month`
        return _checked(_so_far(start, today), today)
    return _checked(Period(start, end, calendar=True), today)


def _quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _quarter_end(start: dt.date) -> dt.date:
    return _month_end(dt.date(start.year, start.month + 2, 1))


def _day(day: dt.date) -> Period:
    return Period(day, day)


def _checked(period: Period, today: dt.date) -> Period:
    if period.start > today:
        raise InputError("That period is in the future.")
    if period.days > MAX_DAYS:
        raise InputError(f"That is {period.days} days; ask for {MAX_DAYS} days or fewer.")
    return period


def _date(year: int, month: int, day: int, raw: str, today: dt.date) -> dt.date:
    """The one constructor of a typed date: a real date in MIN_YEAR..next year, else a
    plain InputError (never a ValueError or OverflowError, HTTP 500)."""
    shown = escape_mrkdwn(raw[:MAX_TEXT])
    if not MIN_YEAR <= year <= today.year + 1:
        raise InputError(f"`{shown}`: I can look up dates from {MIN_YEAR} to {today.year} only.")
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise InputError(f"There is no such date: `{shown}`.") from None


def _iso(text: str, today: dt.date) -> dt.date:
    m = _DAY.match(text)
    if not m:  # pragma: no cover - _RANGE matched two ISO-shaped dates
        raise InputError(f"There is no such date: `{escape_mrkdwn(text)}`.")
    return _date(int(m.group(1)), int(m.group(2)), int(m.group(3)), text, today)


def _month_end(first: dt.date) -> dt.date:
    nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return nxt - dt.timedelta(days=1)
