"""Cron strings as standard cron means them, and the one trigger every schedule is built with.

The format is the 5-field crontab one: `minute hour day-of-month month day-of-week`.
- Day of week: 0-7, where 0 and 7 are Sunday and 1 is Monday (APScheduler 3 numbers Monday
  0, so its `CronTrigger.from_crontab` moved "0 9 * * 1" to Tuesday: never used here), or
  names `sun`..`sat`; month: 1-12 or `jan`..`dec`. `*`, `a-b`, lists `a,b` and steps `*/n`,
  `a-b/n`, `a/n` work on every field.
- When both day-of-month and day-of-week are restricted (neither starts with `*`), a day
  matches either one, as in Vixie cron ("0 9 1 * mon": the 1st and every Monday).
- Times are wall-clock times in the schedule's zone. Across a daylight-saving change: a time
  in the skipped hour fires when the gap ends (02:30 on the spring-forward day fires at
  03:00, the first instant after the gap); a time in the repeated hour fires once, at its
  first occurrence (01:30 on the fall-back day is 01:30 PDT, not again at 01:30 PST; an
  hourly cron therefore fires 24 times that day, not 25).

`CronSchedule` is an APScheduler trigger. The wall-clock arithmetic is APScheduler's
`CronTrigger`, built field by field from the parsed sets and run in UTC, where no hour is
skipped or repeated; mapping wall-clock times to instants in the zone is done here.
APScheduler's own cron arithmetic in a zone with DST can return the same or an earlier
time in the repeated hour (`get_next_fire_time` after 01:30 PST answered 01:30 PST forever),
which hung every loop over fire times, including APScheduler's scheduler thread.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

OFF = "off"
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # index = standard number
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # leap years included
# Wall-clock candidates one call may look at before it must have advanced: only the
# current minute, a repeated hour and a skipped hour can hold candidates that are not later
# than the start (at most 60 each for a per-minute cron). More means a bug, not a schedule.
_MAX_CANDIDATES = 200


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int  # inclusive; day of week accepts 7 (Sunday) and folds it to 0
    names: tuple[str, ...] = ()
    names_start: int = 0  # the number of names[0]


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, MONTHS, 1),
    _Field("day of week", 0, 7, WEEKDAYS, 0),
)
_ITEM = re.compile(r"^(?P<range>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>\d+))?$")


def _value(text: str, field: _Field) -> int:
    if text.isdigit():
        number = int(text)
    elif text in field.names:
        number = field.names.index(text) + field.names_start
    else:
        kind = f"a number {field.low}-{field.high}" + (
            f" or a name ({field.names[0]}, {field.names[1]}, ...)" if field.names else ""
        )
        raise ValueError(f"{field.name} {text!r} is not {kind}")
    if not field.low <= number <= field.high:
        extra = " (0 and 7 are Sunday)" if field.names == WEEKDAYS else ""
        raise ValueError(f"{field.name} {number} is out of range {field.low}-{field.high}{extra}")
    return number


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"{field.name} {item!r} is not a cron field (e.g. 5, 1-5, */2)")
        span, step_text = match["range"], match["step"]
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"{field.name} {item!r}: the step must be at least 1")
        if span == "*":
            first, last = field.low, field.high
        elif "-" in span:
            first, last = (_value(part, field) for part in span.split("-"))
            if first > last:
                raise ValueError(f"{field.name} range {span!r} runs backwards")
        else:
            first = _value(span, field)
            # "a/n" runs from a to the field's end (as cronie reads it).
            last = field.high if step_text else first
        values.update(range(first, last + 1, step))
    if field.names == WEEKDAYS and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A parsed cron string: the set of matching values per field (day of week 0 = Sunday)."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_restricted: bool  # the day-of-month field does not start with "*"
    weekday_restricted: bool

    @property
    def either_day(self) -> bool:
        """Both day fields restricted: a day matches if either does (standard cron)."""
        return self.day_restricted and self.weekday_restricted

    def time_of_day(self) -> dt.time | None:
        """The one time of day this cron fires at ("0 9 * * 1-5" -> 09:00), else None."""
        if len(self.minutes) == 1 and len(self.hours) == 1:
            return dt.time(min(self.hours), min(self.minutes))
        return None

    def describe(self) -> str:
        """In words, e.g. "at 09:00 on Monday", "every hour at :30 every day"."""
        return f"{_describe_times(self)} {_describe_days(self)}"


def parse_cron(text: str) -> Cron:
    """Parse a 5-field cron string; raises ValueError saying what is wrong, in one line."""
    fields = text.strip().lower().split()
    if len(fields) != 5:
        raise ValueError(
            f"{text.strip()!r} has {len(fields)} field(s); a cron string has 5: "
            "minute hour day-of-month month day-of-week (or 'off')"
        )
    minutes, hours, days, months, weekdays = (
        _parse_field(value, field) for value, field in zip(fields, _FIELDS, strict=True)
    )
    cron = Cron(
        text=" ".join(text.split()),
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=weekdays,
        day_restricted=not fields[2].startswith("*"),
        weekday_restricted=not fields[4].startswith("*"),
    )
    if not cron.either_day and not any(
        day <= _DAYS_IN_MONTH[month - 1] for month in months for day in days
    ):
        raise ValueError(f"{cron.text!r} never fires: no month has that day")
    return cron


def is_off(text: str) -> bool:
    return text.strip().lower() == OFF


def check_cron(text: str) -> str:
    """`text` if it is "off" or a valid cron string, else ValueError (for validators)."""
    if not is_off(text):
        parse_cron(text)
    return text


# --- the trigger ---------------------------------------------------------------------------


def _numbers(values: frozenset[int], field: _Field) -> str:
    full = field.high - field.low + 1 - (1 if field.names == WEEKDAYS else 0)
    return "*" if len(values) == full else ",".join(str(v) for v in sorted(values))


def _wall_triggers(cron: Cron) -> list[CronTrigger]:
    """APScheduler triggers that list the cron's wall-clock times, run in UTC (no DST).

    Every field is handed over explicitly: day of week by name, because APScheduler's
    numbers start at Monday = 0. Two triggers when a day may match either day field."""
    weekdays = (
        "*" if len(cron.weekdays) == 7 else ",".join(WEEKDAYS[d] for d in sorted(cron.weekdays))
    )
    common = {
        "minute": _numbers(cron.minutes, _FIELDS[0]),
        "hour": _numbers(cron.hours, _FIELDS[1]),
        "month": _numbers(cron.months, _FIELDS[3]),
        "timezone": dt.UTC,
    }
    days = _numbers(cron.days, _FIELDS[2])
    if cron.either_day:
        return [
            CronTrigger(day=days, day_of_week="*", **common),
            CronTrigger(day="*", day_of_week=weekdays, **common),
        ]
    return [CronTrigger(day=days, day_of_week=weekdays, **common)]


def _instant(wall: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The instant (UTC) a naive wall-clock time fires at in `tz`: its first occurrence
    when it occurs twice; the end of the gap when it does not occur at all."""
    local = wall.replace(tzinfo=tz, fold=0)
    instant = local.astimezone(dt.UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant
    # In a gap: fold=0 read it with the offset before the change (an instant after the
    # gap), fold=1 with the one after (an instant before it). The change lies between.
    low = int(wall.replace(tzinfo=tz, fold=1).astimezone(dt.UTC).timestamp())
    high = int(instant.timestamp())
    offset_after = instant.astimezone(tz).utcoffset()
    while high - low > 1:  # whole seconds: the change is at a whole second
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, dt.UTC).astimezone(tz).utcoffset() == offset_after:
            high = middle
        else:
            low = middle
    return dt.datetime.fromtimestamp(high, dt.UTC)


class CronSchedule(BaseTrigger):
    """A cron string in a time zone, as an APScheduler trigger. Every answer is strictly
    later than the time asked about, so no loop over fire times can stand still."""

    def __init__(self, cron: Cron, timezone: ZoneInfo) -> None:
        self.cron = cron
        self.timezone = timezone
        self._walls = _wall_triggers(cron)

    def __str__(self) -> str:
        return f"cron[{self.cron.text!r} in {self.timezone.key}]"

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first fire time strictly after `moment` (aware), in the schedule's zone."""
        moment = moment.astimezone(dt.UTC)
        # Wall-clock times as UTC datetimes: APScheduler steps through them without DST.
        wall = moment.astimezone(self.timezone).replace(tzinfo=dt.UTC, second=0, microsecond=0)
        for _ in range(_MAX_CANDIDATES):
            found = [t.get_next_fire_time(None, wall) for t in self._walls]
            candidates = [f for f in found if f is not None]
            if not candidates:
                return None
            candidate = min(candidates)
            fire = _instant(candidate.replace(tzinfo=None), self.timezone)
            if fire > moment:
                return fire.astimezone(self.timezone)
            wall = candidate + dt.timedelta(minutes=1)
        raise RuntimeError(f"{self}: no fire time after {moment} within {_MAX_CANDIDATES} steps")

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        # APScheduler's contract: after the previous fire, or the first at/after `now`.
        if previous_fire_time is not None:
            return self.next_after(previous_fire_time)
        return self.next_after(now - dt.timedelta(microseconds=1))

    def fire_times(self, start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
        """Fire times in [start, end], oldest first, each strictly later than the last."""
        # Compared in UTC: datetimes sharing a zone compare by wall clock, which the
        # repeated hour makes ambiguous.
        end = end.astimezone(dt.UTC)
        fire = self.next_after(start - dt.timedelta(microseconds=1))
        while fire is not None and fire.astimezone(dt.UTC) <= end:
            yield fire
            fire = self.next_after(fire)

    def next_fires(self, now: dt.datetime, count: int) -> list[dt.datetime]:
        out: list[dt.datetime] = []
        fire: dt.datetime | None = now - dt.timedelta(microseconds=1)
        while len(out) < count and fire is not None:
            fire = self.next_after(fire)
            if fire is not None:
                out.append(fire)
        return out


def build_schedule(text: str, timezone: ZoneInfo) -> CronSchedule:
    """The one way a cron string becomes a trigger (the clock, `databot post`, `check`)."""
    return CronSchedule(parse_cron(text), timezone)


def format_fire(when: dt.datetime, tz: ZoneInfo) -> str:
    """E.g. "Mon Dec 7 09:00 PST"."""
    local = when.astimezone(tz)
    return f"{local:%a %b} {local.day} {local:%H:%M %Z}"


def schedule_line(name: str, text: str, tz: ZoneInfo, now: dt.datetime, count: int = 3) -> str:
    """One job's schedule for `databot check` and the clock's start-up log, e.g.
    "sprint-digest: at 09:00 on Monday (America/Los_Angeles); next: Mon Dec 7 09:00 PST,
    Mon Dec 14 09:00 PST, Mon Dec 21 09:00 PST"."""
    schedule = build_schedule(text, tz)
    fires = schedule.next_fires(now, count)
    upcoming = ", ".join(format_fire(f, tz) for f in fires) or "never"
    return f"{name}: {schedule.cron.describe()} ({tz.key}); next: {upcoming}"


# --- in words ------------------------------------------------------------------------------


def _runs(values: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted values: [1, 2, 3, 5] -> [(1, 3), (5, 5)]."""
    out: list[tuple[int, int]] = []
    for v in values:
        if out and v == out[-1][1] + 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def _join(parts: list[str], word: str = "and") -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" {word} " + parts[-1]


def _spans(values: Sequence[int], label, dash: str = " to ") -> str:
    parts = []
    for first, last in _runs(values):
        if last - first >= 2:
            parts.append(f"{label(first)}{dash}{label(last)}")
        else:
            parts += [label(v) for v in range(first, last + 1)]
    return _join(parts)


def _step(values: frozenset[int], size: int) -> int | None:
    """n when `values` is every n-th value from 0 (*/n), n > 1."""
    ordered = sorted(values)
    if len(ordered) < 2 or ordered[0] != 0:
        return None
    n = ordered[1]
    return n if ordered == list(range(0, size, n)) else None


def _describe_times(cron: Cron) -> str:
    minutes, hours = sorted(cron.minutes), sorted(cron.hours)
    every_hour = len(hours) == 24
    if len(minutes) == 1:
        if every_hour:
            return f"every hour at :{minutes[0]:02d}"
        if len(hours) <= 6:
            return "at " + _join([f"{h:02d}:{minutes[0]:02d}" for h in hours])
    hour_words = "" if every_hour else " during " + _hours(hours)
    if len(minutes) == 60:
        return "every minute" + hour_words
    step = _step(cron.minutes, 60)
    if step:
        return f"every {step} minutes" + hour_words
    past = "every hour" if every_hour else _hours(hours)
    return f"at minute {_spans(minutes, str, '-')} past {past}"


def _hours(hours: list[int]) -> str:
    return ("hour " if len(hours) == 1 else "hours ") + _spans(hours, str, "-")


def _weekday_words(weekdays: frozenset[int]) -> str:
    # Monday first, so 1-5 reads "Monday to Friday" and 0,6 "Saturday and Sunday".
    order = sorted((d - 1) % 7 for d in weekdays)
    return _spans(order, lambda i: _DAY_NAMES[(i + 1) % 7])


def _describe_days(cron: Cron) -> str:
    all_days, all_weekdays = len(cron.days) == 31, len(cron.weekdays) == 7
    days = "day " if len(cron.days) == 1 else "days "
    day_words = days + _spans(sorted(cron.days), str, "-") + " of the month"
    if cron.either_day:
        words = f"on {day_words} or on {_weekday_words(cron.weekdays)}"
    elif all_days and all_weekdays:
        words = "every day"
    elif all_days:
        words = "on " + _weekday_words(cron.weekdays)
    elif all_weekdays:
        words = "on " + day_words
    else:  # "*/2" in the day field with a weekday: both must match
        words = f"on {day_words} that fall on {_weekday_words(cron.weekdays)}"
    if len(cron.months) < 12:
        words += " in " + _spans(sorted(cron.months), lambda m: _MONTH_NAMES[m - 1])
    return words
