"""Metric subscriptions and alerts, without I/O: the grammar of `/metric subscribe` and
`/metric alert`, the schedule (in the team's time zone), the alert rule, and the values that
travel through Slack buttons.

The metric part of each command (NAME [PERIOD] [for ACCOUNT]) is read by /metric's own
parser (bot.metric.model.parse_command): one grammar, one catalog, one set of messages.

Alert rule (the whole point is no repeats and no flapping): an alert is checked once per
complete period; it fires when its condition is true for a period and was not true for the
last period it was checked with data (false, or never checked). So it fires once on a
crossing, stays quiet while the condition holds, and is armed again only after a whole
period with the condition false. A period without data changes nothing (it is said once).
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Literal
from zoneinfo import available_timezones

from pydantic import BaseModel

from bot.errors import InputError
from bot.metric.catalog import Catalog, Dimension
from bot.metric.model import (
    AccountRequest,
    HelpRequest,
    MetricQuery,
    ShareValue,
    UnknownMetric,
    parse_command,
)
from bot.metric.periods import Period, parse_period
from bot.settings import REPORTING_TZ
from bot.slack_text import escape_mrkdwn

SUBSCRIBE_USAGE = (
    "`/metric subscribe NAME [PERIOD] [for ACCOUNT] daily|weekly [on DAY] [at TIME] "
    "[in #channel]`, e.g. `/metric subscribe dau 7d weekly on monday at 9am`"
)
ALERT_USAGE = (
    "`/metric alert NAME [for ACCOUNT] above|below NUMBER` or "
    "`/metric alert NAME changes by N% [vs previous day|week]`, "
    "e.g. `/metric alert dau below 1,000`"
)
WORDS = ("subscribe", "alert", "subscriptions")
MAX_TEXT = 300

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_TIME = dt.time(9, 0)
DEFAULT_WEEKDAY = 0  # Monday
# Alerts are checked each day from this time (team time); the runner retries until the
# period's data is complete.
ALERT_CHECK_TIME = dt.time(0, 30)

_CHANNEL_REF = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$|^#([a-z0-9_\-]{1,80})$")
_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")
_NUMBER = re.compile(r"^([-+]?)\$?(\d[\d,]*(?:\.\d+)?|\.\d+)\s*([km%]?)$", re.IGNORECASE)
_TZ_WORDS = {
    "pt", "pst", "pdt", "et", "est", "edt", "ct", "cst", "cdt", "mt", "mst", "mdt",
    "utc", "gmt", "bst", "cet", "cest", "ist", "jst", "aest", "z", "local", "pacific",
    "eastern", "central", "mountain",
}  # fmt: skip


class Kind(StrEnum):
    SUBSCRIPTION = "subscription"
    ALERT = "alert"


class Status(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # by a person: resumed by a person
    STOPPED = "stopped"  # by databot (the channel lost the right to see it, metric gone)


class Every(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class Schedule(BaseModel):
    """When a subscription is delivered, in the team's time zone (settings.timezone)."""

    every: Every = Every.WEEKLY
    weekday: int = DEFAULT_WEEKDAY  # 0 = Monday; only for weekly
    time: dt.time = DEFAULT_TIME

    def cron(self) -> str:
        day = "*" if self.every is Every.DAILY else str((self.weekday + 1) % 7)
        return f"{self.time.minute} {self.time.hour} * * {day}"

    def describe(self) -> str:
        at = f"{self.time:%H:%M}"
        if self.every is Every.DAILY:
            return f"daily at {at}"
        return f"weekly on {WEEKDAYS[self.weekday].capitalize()} at {at}"


class Condition(StrEnum):
    ABOVE = "above"
    BELOW = "below"
    CHANGES = "changes"


class Rule(BaseModel):
    """An alert's condition. `threshold` is the number for above/below, the percent for
    changes; `compare` is the period checked: a day vs the day before, or a week (Mon-Sun)
    vs the week before."""

    condition: Condition
    threshold: float
    compare: Literal["day", "week"] = "day"

    def holds(self, value: float, previous: float | None) -> bool | None:
        """None when it cannot be told (a change with nothing to compare with)."""
        if self.condition is Condition.ABOVE:
            return value > self.threshold
        if self.condition is Condition.BELOW:
            return value < self.threshold
        if previous is None:
            return None
        if previous == 0:
            return value != 0
        return abs(100 * (value - previous) / abs(previous)) >= self.threshold

    def describe(self) -> str:
        if self.condition is Condition.CHANGES:
            return f"changes by {_num(self.threshold)}% or more vs the previous {self.compare}"
        return f"{self.condition} {_num(self.threshold)}"

    def period_text(self) -> str:
        return "last week" if self.compare == "week" else "yesterday"


def _num(x: float) -> str:
    return f"{x:,.0f}" if x == int(x) else f"{x:,g}"


class ChannelRef(BaseModel):
    """`in #channel`: an id from Slack's escaping (<#C123|name>) or a #name to resolve."""

    id: str | None = None
    name: str | None = None


class SubscriptionSpec(BaseModel):
    """A parsed, not yet checked, `/metric subscribe` or `/metric alert`."""

    kind: Kind
    metric: str
    period_text: str | None = None  # as typed; relative, re-read at each delivery
    account: str | None = None
    by: Dimension | None = None  # `by DIMENSION`: delivered as a breakdown
    schedule: Schedule | None = None  # subscriptions
    rule: Rule | None = None  # alerts
    channel: ChannelRef | None = None  # None = the channel the command was typed in


def split_word(text: str) -> tuple[str, str] | None:
    """(`subscribe`|`alert`|`subscriptions`, the rest) when `/metric` text starts with one
    of this feature's words, else None (an ordinary lookup)."""
    parts = " ".join((text or "").split()).split(" ", 1)
    word = parts[0].lower()
    if word not in WORDS:
        return None
    return word, parts[1] if len(parts) > 1 else ""


def _check_metric(query_text: str, catalog: Catalog, today: dt.date, usage: str) -> MetricQuery:
    if not query_text.strip():
        raise InputError(f"Say which metric, e.g. {usage}.")
    parsed = parse_command(query_text, catalog, today)
    if isinstance(parsed, HelpRequest):
        raise InputError(f"Say which metric, e.g. {usage}.")
    if isinstance(parsed, AccountRequest):
        raise InputError(
            f"An account card cannot be subscribed to; subscribe to one of its numbers with "
            f"`for {escape_mrkdwn(parsed.name)}`, e.g. {usage}."
        )
    return parsed


def _channel(tokens: list[str], i: int) -> ChannelRef:
    if i >= len(tokens):
        raise InputError("Say which channel after `in`, e.g. `in #analytics`.")
    m = _CHANNEL_REF.match(tokens[i])
    if not m:
        raise InputError(
            f"“{_shown(tokens[i])}” is not a channel: write `in #channel-name` "
            "(schedules are always in team time; no time zone is needed)."
            if tokens[i].lower() in _TZ_WORDS
            else f"“{_shown(tokens[i])}” is not a channel: write `in #channel-name`."
        )
    return ChannelRef(id=m.group(1)) if m.group(1) else ChannelRef(name=m.group(2))


def _shown(text: str) -> str:
    # The text goes back into Slack: keep it inert.
    return escape_mrkdwn(text[:40])


def parse_time(text: str, tz_name: str) -> dt.time:
    raw = text.lower().strip()
    if raw in ("noon", "midday"):
        return dt.time(12)
    if raw == "midnight":
        return dt.time(0)
    m = _TIME.match(raw)
    if not m:
        raise InputError(
            f"I can't read the time “{_shown(text)}”: write e.g. `at 9am`, `at 14:30` "
            f"(team time, {tz_name})."
        )
    hour, minute, half = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if half:
        if not 1 <= hour <= 12:
            raise InputError(f"“{_shown(text)}” is not a time: with am/pm the hour is 1-12.")
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        raise InputError(f"“{_shown(text)}” is not a time of day: write e.g. `at 09:00`.")
    return dt.time(hour, minute)


def parse_weekday(text: str) -> int:
    raw = text.lower().rstrip("s") if text.lower() not in ("tues", "thurs") else text.lower()
    for n, name in enumerate(WEEKDAYS):
        if len(raw) >= 3 and name.startswith(raw):
            return n
    raise InputError(f"“{_shown(text)}” is not a day of the week: write e.g. `on monday`.")


def _tz_refusal(word: str, tz_name: str) -> InputError:
    return InputError(
        f"Leave out “{_shown(word)}”: schedules are always in team time ({tz_name}), and "
        f"move with daylight saving time. Write e.g. `at 9am`."
    )


def _is_tz_word(word: str) -> bool:
    low = word.lower().strip("()")
    return low in _TZ_WORDS or word in available_timezones() or "/" in word


def parse_subscribe(text: str, catalog: Catalog, today: dt.date, tz_name: str) -> SubscriptionSpec:
    """`/metric subscribe ...` (without the word) -> spec; InputError saying how to fix it."""
    raw = " ".join((text or "").split())
    if len(raw) > MAX_TEXT:
        raise InputError(f"That is {len(raw)} characters; {SUBSCRIBE_USAGE}.")
    tokens = raw.split(" ") if raw else []
    # The metric part ends at a schedule word (never the metric's name itself). Account
    # names may hold those words ("for Acme on Prem weekly"): the first place where the
    # rest reads as a schedule is the one; if none does, the first place's error is told
    # (with a schedule word present, the whole text is never read as the metric part).
    cuts = [i for i, t in enumerate(tokens) if i > 0 and t.lower() in SCHEDULE_WORDS]
    first_error: InputError | None = None
    for cut in cuts or [len(tokens)]:
        try:
            query = _check_metric(" ".join(tokens[:cut]), catalog, today, SUBSCRIBE_USAGE)
            every, schedule, channel = _schedule(tokens, cut, tz_name)
            break
        except UnknownMetric:
            raise
        except InputError as exc:
            first_error = first_error or exc
            # Only an account name (after `for`) may swallow a schedule word.
            if "for" not in (t.lower() for t in tokens[1:cut]):
                raise first_error from None
    else:
        assert first_error is not None
        raise first_error
    # The parser's own reading (an alias, `for ACCOUNT` and `by DIMENSION` taken off).
    period_text = query.period_text
    if every is Every.DAILY and any(t.lower() == "on" for t in tokens[cut:]):
        raise InputError("A daily subscription has no day: drop `on DAY`, or say `weekly`.")
    schedule.every = every or Every.WEEKLY
    # The lookup's period is re-read at each delivery: a partial one (today) never is sent.
    if subscription_period(period_text or None, query.metric.default_period, today).partial:
        raise InputError(PARTIAL_REFUSAL)
    return SubscriptionSpec(
        kind=Kind.SUBSCRIPTION,
        metric=query.metric.name,
        period_text=period_text or None,
        account=query.account,
        by=query.by,
        schedule=schedule,
        channel=channel,
    )


SCHEDULE_WORDS = frozenset({"daily", "weekly", "on", "at", "in", "every"})


def _schedule(
    tokens: list[str], cut: int, tz_name: str
) -> tuple[Every | None, Schedule, ChannelRef | None]:
    """The schedule words from `tokens[cut:]` on; InputError where they do not read."""
    schedule = Schedule()
    every: Every | None = None
    channel: ChannelRef | None = None
    i = cut
    while i < len(tokens):
        word = tokens[i].lower()
        if word in ("daily", "weekly"):
            every = Every(word)
            i += 1
        elif word == "every" and i + 1 < len(tokens):
            nxt = tokens[i + 1].lower()
            if nxt == "day":
                every = Every.DAILY
            elif nxt == "week":
                every = Every.WEEKLY
            else:
                every = Every.WEEKLY
                schedule.weekday = parse_weekday(tokens[i + 1])
            i += 2
        elif word == "on" and i + 1 < len(tokens):
            schedule.weekday = parse_weekday(tokens[i + 1])
            every = every or Every.WEEKLY
            i += 2
        elif word == "at" and i + 1 < len(tokens):
            value = tokens[i + 1]
            # "at 9 am": join a separate am/pm
            if i + 2 < len(tokens) and tokens[i + 2].lower() in ("am", "pm"):
                value += tokens[i + 2]
                i += 1
            schedule.time = parse_time(value, tz_name)
            i += 2
        elif word == "in":
            channel = _channel(tokens, i + 1)
            i += 2
        elif _is_tz_word(tokens[i]):
            raise _tz_refusal(tokens[i], tz_name)
        else:
            raise InputError(
                f"I can't read the schedule at “{_shown(' '.join(tokens[i:]))}”. "
                f"Write {SUBSCRIBE_USAGE}."
            )
    return every, schedule, channel


_NUMBER_NEXT = re.compile(r"\s+[-+]?\$?[0-9.]")
_CONDITION = re.compile(r"\b(above|over|below|under|changes?\s+by|moves?\s+by)\b", re.IGNORECASE)


def _channel_word(words: list[str]) -> int | None:
    """Where `in CHANNEL` starts in an alert's words after the condition, if anywhere. An
    `in` inside the account name (`for Made in Oslo`) is not one: after `for`, only an `in`
    followed by a channel (`#name`, `<#C…>`) is."""
    lowered = [w.lower() for w in words]
    after_for = lowered.index("for") if "for" in lowered else len(words)
    for i in range(len(words) - 2, -1, -1):
        if lowered[i] == "in" and (i < after_for or words[i + 1].startswith(("#", "<#"))):
            return i
    return None


def parse_alert(text: str, catalog: Catalog, today: dt.date, tz_name: str) -> SubscriptionSpec:
    """`/metric alert ...` (without the word) -> spec; InputError saying how to fix it."""
    raw = " ".join((text or "").split())
    if len(raw) > MAX_TEXT:
        raise InputError(f"That is {len(raw)} characters; {ALERT_USAGE}.")
    # The condition word is the one a number follows: an account may hold such a word
    # (`for Over the Top below 5`).
    found = list(_CONDITION.finditer(raw))
    m = next((c for c in found if _NUMBER_NEXT.match(raw, c.end())), found[0] if found else None)
    if not m:
        try:  # an unknown metric says so first
            _check_metric(raw, catalog, today, ALERT_USAGE)
        except UnknownMetric:
            raise
        except InputError:
            pass
        raise InputError(f"Say when to alert: {ALERT_USAGE}.")
    head, word, rest = raw[: m.start()].strip(), m.group(1).lower(), raw[m.end() :].split()
    channel: ChannelRef | None = None
    at = _channel_word(rest)
    if at is not None:
        channel = _channel(rest, at + 1)
        rest = rest[:at] + rest[at + 2 :]
    account_words: list[str] = []
    if "for" in [t.lower() for t in rest]:
        at = [t.lower() for t in rest].index("for")
        account_words = rest[at + 1 :]
        rest = rest[:at]
    query_text = head + (" for " + " ".join(account_words) if account_words else "")
    query = _check_metric(query_text, catalog, today, ALERT_USAGE)
    if query.period != parse_period(query.metric.default_period, today) and head.lower() != (
        query.metric.name
    ):
        # A period after the name ("dau 7d above 5"): alerts check each complete day/week.
        leftover = head[len(query.metric.name) :].strip()
        if leftover:
            raise InputError(
                f"An alert checks every complete day (or week with `vs previous week`), so "
                f"it takes no period: drop “{_shown(leftover)}”. {ALERT_USAGE}."
            )
    if not rest:
        raise InputError(f"Say the number after `{word}`: {ALERT_USAGE}.")
    number_text = rest[0]
    compare: Literal["day", "week"] = "day"
    tail = [t.lower() for t in rest[1:]]
    if word.startswith(("change", "move")):
        condition = Condition.CHANGES
        if tail[:1] == ["%"]:
            tail = tail[1:]
        if tail:
            joined = " ".join(tail)
            if joined in ("vs previous day", "vs the previous day", "vs yesterday", "daily"):
                compare = "day"
            elif joined in ("vs previous week", "vs the previous week", "vs last week", "weekly"):
                compare = "week"
            else:
                raise InputError(
                    f"I can't read “{_shown(joined)}”: end with `vs previous day` (default) "
                    "or `vs previous week`."
                )
    else:
        condition = Condition.ABOVE if word in ("above", "over") else Condition.BELOW
        if tail:
            bad = rest[1]
            if _is_tz_word(bad):
                raise _tz_refusal(bad, tz_name)
            raise InputError(f"I can't read “{_shown(' '.join(rest[1:]))}”. {ALERT_USAGE}.")
    threshold = parse_number(number_text, percent=condition is Condition.CHANGES)
    span = 7 if compare == "week" else 1
    if condition is Condition.CHANGES and query.metric.min_days > span:
        # Its one-day (or one-week) check is widened to its window, and the change would
        # be measured against the window before it, not the previous day (or week).
        raise InputError(
            f"`{query.metric.name}` is counted over {query.metric.min_days} days, so a change "
            f"vs the previous {compare} cannot be told apart from the window's own: use "
            f"`/metric alert {query.metric.name} above|below NUMBER` instead."
        )
    return SubscriptionSpec(
        kind=Kind.ALERT,
        metric=query.metric.name,
        account=query.account,
        rule=Rule(condition=condition, threshold=threshold, compare=compare),
        channel=channel,
    )


def parse_number(text: str, *, percent: bool = False) -> float:
    m = _NUMBER.match(text.strip())
    if not m:
        example = "`changes by 20%`" if percent else "`above 1,500` or `below 2.5k`"
        raise InputError(f"“{_shown(text)}” is not a number: write e.g. {example}.")
    sign, digits, suffix = m.group(1), m.group(2).replace(",", ""), m.group(3).lower()
    value = float(digits) * {"k": 1e3, "m": 1e6}.get(suffix, 1.0)
    if percent and (value <= 0 or sign == "-"):
        # A change is measured either way: -5% would hold for every value.
        raise InputError(
            "Give the change as a positive percent (either direction counts), "
            "e.g. `changes by 20%`."
        )
    return -value if sign == "-" else value


# --------------------------------------------------------------------------- periods

PARTIAL_REFUSAL = (
    "A subscription is sent only for complete periods: use e.g. `yesterday`, `7d`, "
    "`last week` or `last month` instead of a period that includes today."
)
# A to-date period on its first day (`this week` on Monday, `mtd` on the 1st) is today so
# far: a subscription delivers the previous complete one instead.
_TO_DATE = {
    **dict.fromkeys(("this week", "thisweek", "wtd", "week to date"), "last week"),
    **dict.fromkeys(("this month", "thismonth", "mtd", "month to date"), "last month"),
    **dict.fromkeys(("this quarter", "thisquarter", "qtd", "quarter to date"), "last quarter"),
    **dict.fromkeys(("ytd", "this year", "year to date"), "last year"),
}


def subscription_period(period_text: str | None, default: str, day: dt.date) -> Period:
    """The period a subscription delivers on `day` (Pacific): its text read that day, or,
    for a to-date period still partial that day, the previous complete week, month,
    quarter or year."""
    text = period_text or default
    period = parse_period(text, day)
    if not period.partial:
        return period
    previous = _TO_DATE.get(" ".join(text.split()).lower())
    if previous == "last year":
        return Period(dt.date(day.year - 1, 1, 1), dt.date(day.year - 1, 12, 31))
    if previous is not None:
        return parse_period(previous, day)
    return period


def delivery_period(fire: dt.datetime) -> str:
    """Key of the delivery due at `fire`: its Pacific day (2026-11-30), the "today" its
    period is read from. TIMEZONE moves the schedule only: 09:00 in Tokyo on a Tuesday is
    Monday afternoon in Pacific time, whose last complete day is Sunday."""
    return fire.astimezone(REPORTING_TZ).date().isoformat()


def alert_period(rule: Rule, day: dt.date) -> Period:
    """The complete period an alert checked on `day` (Pacific) looks at."""
    return parse_period(rule.period_text(), day)


def alert_period_key(rule: Rule, day: dt.date) -> str:
    """A day's check is keyed by the day, a week's by its range (checked daily, claimed
    once: the runner keys runs by it)."""
    period = alert_period(rule, day)
    return period.key() if rule.compare == "week" else period.start.isoformat()


def relative_period_text(period: Period, today: dt.date) -> str:
    """The relative words for an answer's dates as seen today, so a "Subscribe" button on
    an answer subscribes to "the same kind of period", re-read at each delivery."""
    yesterday = today - dt.timedelta(days=1)
    if period.end == yesterday and period.days == 1:
        return "yesterday"
    if period == parse_period("last week", today):
        return "last week"
    if period.calendar and period == parse_period("last month", today):
        return "last month"
    return f"{min(period.days, 400)}d"


# --------------------------------------------------------------------------- buttons


# Value of Action.METRIC_SUBSCRIBE (on every /metric answer): the answer's lookup, the same
# value its Share button carries (bot/metric/blocks.py).
SubscribeValue = ShareValue


class ItemValue(BaseModel):
    """Value of the pause / resume / delete / snooze buttons."""

    id: int
    days: int | None = None  # snooze: 1 or 7


class CheckState(StrEnum):
    TRUE = "true"
    FALSE = "false"
    NO_DATA = "no-data"


# --------------------------------------------------------------------------- stored


JOB_PREFIX = {Kind.SUBSCRIPTION: "sub-", Kind.ALERT: "alert-"}


class Item(BaseModel):
    id: int
    kind: Kind
    metric: str
    period_text: str | None
    account: str | None
    by: Dimension | None = None
    channel: str
    creator: str
    schedule: Schedule | None
    rule: Rule | None
    status: Status
    status_reason: str | None
    snoozed_until: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def job_name(self) -> str:
        """Its name as a scheduled job (`databot post sub-3`, `databot posts --job`)."""
        return f"{JOB_PREFIX[self.kind]}{self.id}"


def parse_job_name(name: str) -> tuple[Kind, int] | None:
    for kind, prefix in JOB_PREFIX.items():
        rest = name.removeprefix(prefix)
        if rest != name and rest.isdigit():
            return kind, int(rest)
    return None
