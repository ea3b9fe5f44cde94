"""What `/metric` is about, without I/O: the command grammar, the values that travel through
Slack, the answer, the domain errors (each with its user-safe message) and the sensitivity
rules."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from pydantic import BaseModel

from bot.errors import InputError, NotAllowedError
from bot.metric.catalog import Catalog, Metric, Sensitivity, ValueField
from bot.metric.periods import Period, parse_period
from bot.settings import REPORTING_TZ, Settings
from bot.slack_text import escape_mrkdwn

MAX_COMMAND = 300
MAX_ACCOUNT = 100
_FOR = re.compile(r"\s+for\s+", re.IGNORECASE)
_MENTION = re.compile(r"<[!@#][^>]*>")


# --------------------------------------------------------------------------- values


class DataRequestPrefill(BaseModel):
    """Value of the Action.METRIC_OPEN_REQUEST button: the intake modal opens prefilled
    with it (JSON keys `title` and `problem`)."""

    title: str
    problem: str


class ShareValue(BaseModel):
    """Value of the Action.METRIC_SHARE button: enough to redo the same lookup (a cache hit)
    for the same dates, whatever day the button is clicked."""

    metric: str
    start: dt.date
    end: dt.date
    partial: bool = False
    account: str | None = None

    @property
    def period(self) -> Period:
        return Period(self.start, self.end, self.partial)


@dataclass(frozen=True)
class MetricQuery:
    metric: Metric
    period: Period  # as asked
    account: str | None = None  # as typed, before resolving against the accounts table


@dataclass(frozen=True)
class HelpRequest:
    metric: Metric | None = None  # `help NAME`: explain this one metric


@dataclass
class Row:
    label: str
    value: float | None
    previous: float | None


@dataclass
class Answer:
    metric: Metric
    asked: Period
    period: Period  # covered (asked, widened to the metric's minimum window)
    previous_period: Period
    account: str | None
    values: list[tuple[ValueField, float | None, float | None]]  # field, value, previous
    trend: list[float | None]
    trend_label: str
    breakdown: list[Row]
    data_through: dt.datetime | None
    complete: bool
    recent: bool = True  # data_through is the source's newest data, not a lower bound
    from_cache: bool = False
    trend_periods: list[Period] = field(default_factory=list)  # the dates of each trend point
    week_ago: float | None = None  # one day asked: the headline on the same weekday before

    @property
    def week_ago_period(self) -> Period | None:
        return self.period.week_before()

    @property
    def headline(self) -> tuple[ValueField, float | None, float | None]:
        return self.values[0]

    def share_value(self) -> ShareValue:
        return ShareValue(
            metric=self.metric.name,
            start=self.asked.start,
            end=self.asked.end,
            partial=self.asked.partial,
            account=self.account,
        )


# --------------------------------------------------------------------------- grammar


def parse_command(text: str | None, catalog: Catalog, today: dt.date) -> MetricQuery | HelpRequest:
    """`/metric` text -> what to look up. InputError for what we cannot read; a Miss-worthy
    unknown name raises UnknownMetric (carrying suggestions)."""
    raw = " ".join((text or "").split())
    if raw.lower() in ("", "help", "?", "list", "catalog"):
        return HelpRequest()
    if raw.lower().startswith(("help ", "? ")):
        name = raw.split(maxsplit=1)[1]
        found = catalog.get(name) or catalog.match_prefix(name)
        if found is None:
            raise UnknownMetric(name.split()[0][:40], catalog.suggest(name.split()[0]))
        return HelpRequest(found if isinstance(found, Metric) else found[0])
    if len(raw) > MAX_COMMAND:
        raise InputError(
            f"That is {len(raw)} characters; a lookup is `/metric NAME [PERIOD] [for ACCOUNT]`."
        )
    head, _, account = _split_for(raw)
    found = catalog.match_prefix(head)
    if found is None:
        first = head.split()[0] if head.split() else head
        raise UnknownMetric(first[:40], catalog.suggest(first))
    metric, period_text = found
    period = parse_period(period_text or metric.default_period, today)
    if account is not None:
        account = account.strip().strip("\"'“”‘’").strip()
        if not account:
            raise InputError("Say which account after `for`, e.g. `/metric mau for Acme`.")
        if len(account) > MAX_ACCOUNT:
            raise InputError(f"That account name is over {MAX_ACCOUNT} characters.")
        if not metric.account_filter:
            can = [m.name for m in catalog.metrics if m.account_filter]
            raise InputError(
                f"`{metric.name}` is not broken down by account. These are: "
                + ", ".join(f"`{n}`" for n in can)
                + "."
            )
    return MetricQuery(metric, period, account)


def _split_for(raw: str) -> tuple[str, str, str | None]:
    parts = _FOR.split(raw, maxsplit=1)
    if len(parts) == 2:
        return parts[0], "for", parts[1]
    if raw.lower().endswith(" for"):
        return raw[:-4], "for", ""
    return raw, "", None


# --------------------------------------------------------------------------- errors


class UnknownMetric(InputError):
    def __init__(self, name: str, suggestions: list[str]) -> None:
        shown = escape_mrkdwn(name)
        hint = (
            " Did you mean " + " or ".join(f"`{s}`" for s in suggestions) + "?"
            if suggestions
            else ""
        )
        super().__init__(
            f"I don't know a metric called “{shown}”.{hint} `/metric help` lists them all."
        )
        self.name = name
        self.suggestions = suggestions


class UnknownAccount(InputError):
    def __init__(self, name: str, suggestions: list[str]) -> None:
        hint = (
            " Close names: " + ", ".join(f"“{escape_mrkdwn(s)}”" for s in suggestions) + "."
            if suggestions
            else ""
        )
        super().__init__(f"No account matches “{escape_mrkdwn(name)}”.{hint}")
        self.name = name
        self.suggestions = suggestions


class NoData(InputError):
    pass


# --------------------------------------------------------------------------- rules


def may_see(metric: Metric, settings: Settings, *, user: str | None, channel: str | None) -> bool:
    """Revenue metrics: only in settings.revenue_channels or to settings.revenue_users.
    `user=None` means "everyone in `channel` will see it" (sharing)."""
    if metric.sensitivity is Sensitivity.PUBLIC:
        return True
    if channel is not None and channel in settings.revenue_channels:
        return True
    return user is not None and user in settings.revenue_users


def refusal(metric: Metric, settings: Settings, *, sharing: bool = False) -> str:
    where = ", ".join(f"<#{c}>" for c in settings.revenue_channels)
    what = f"*{escape_mrkdwn(metric.title)}* is revenue data"
    if sharing:
        head = f"{what}, so I won't post it in this channel."
    else:
        head = f"{what}, so I only answer it in certain channels and to certain people."
    if where:
        return f"{head} Ask in {where}."
    return f"{head} No channel is set up for it yet: ask {escape_mrkdwn(metric.owner)}."


def check_allowed(
    metric: Metric, settings: Settings, *, user: str | None, channel: str | None
) -> None:
    if not may_see(metric, settings, user=user, channel=channel):
        raise NotAllowedError(refusal(metric, settings))


def prefill_for(text: str, reason: str) -> DataRequestPrefill:
    # The prefill becomes an issue title and a modal's initial text: drop Slack mention
    # syntax (<!channel>, <@U123>) rather than carry it into either.
    asked = " ".join(_MENTION.sub("", text).split())[:200]
    return DataRequestPrefill(
        title=f"Metric request: {asked}"[:150],
        problem=f"I asked databot `/metric {asked}` and {reason}. What I need to know:",
    )


def format_through(ts: dt.datetime | None, settings: Settings) -> str:
    if ts is None:
        return "an unknown time"
    local = ts.astimezone(REPORTING_TZ)
    return f"{local:%b} {local.day}, {local:%H:%M} PT"


_TABLE = re.compile(r"\b(?:FROM|JOIN)\s+`?([A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)`?", re.I)


def tables_read(metric: Metric, catalog: Catalog) -> list[str]:
    """The warehouse tables a metric's SQL (and its source's freshness query) reads, in
    order of first mention: what `/metric help NAME` names as its tables."""
    sql = metric.query_text() + "\n" + catalog.sources[metric.source].data_through_sql
    return list(dict.fromkeys(_TABLE.findall(sql)))
