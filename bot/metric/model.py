"""What `/metric` is about, without I/O: the command grammar, the values that travel through
Slack, the answer, the domain errors (each with its user-safe message) and the sensitivity
rules."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from pydantic import BaseModel

from bot.errors import InputError, NotAllowedError
from bot.metric.catalog import (
    DIMENSION_WORDS,
    Catalog,
    Dimension,
    Metric,
    Sensitivity,
    Unit,
    ValueField,
)
from bot.metric.periods import Period, parse_period
from bot.settings import REPORTING_TZ, Settings
from bot.slack_text import escape_mrkdwn

MAX_COMMAND = 300
MAX_ACCOUNT = 100
_FOR = re.compile(r"\s+for\s+", re.IGNORECASE)
_BY = re.compile(r"(?:^|\s+)by\s+(.*)$", re.IGNORECASE)
_ACCOUNT = re.compile(r"^(?:account|customer)(?:\s+(.*))?$", re.IGNORECASE)
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
    calendar: bool | None = None  # None: a button from before this was carried
    account: str | None = None
    by: Dimension | None = None
    defaulted: bool = False

    @property
    def period(self) -> Period:
        return Period.restored(self.start, self.end, self.partial, self.calendar)


@dataclass(frozen=True)
class MetricQuery:
    metric: Metric
    period: Period  # as asked
    account: str | None = None  # as typed, before resolving against the accounts table
    by: Dimension | None = None  # `by DIMENSION`: answered as a breakdown
    defaulted: bool = False  # no period was typed: the metric's default_period
    period_text: str = ""  # the period as typed ("" when defaulted), without name/for/by


@dataclass(frozen=True)
class AccountRequest:
    """`/metric account NAME` (or `/metric NAME` when NAME is an account): the overview."""

    name: str  # as typed, before resolving against the accounts table


@dataclass(frozen=True)
class HelpRequest:
    metric: Metric | None = None  # `help NAME`: explain this one metric


@dataclass
class Row:
    label: str
    value: float | None
    previous: float | None


@dataclass
class Breakdown:
    """A breakdown answer as data (rows of label and value, largest first), so a renderer
    (a table block, a bar chart, the terminal) needs nothing else."""

    title: str  # e.g. "Searches by deployment type"
    dimension: str  # e.g. "deployment type"
    unit: Unit
    period: Period
    previous_period: Period
    rows: list[Row]

    @property
    def total(self) -> float:
        return float(sum(r.value or 0 for r in self.rows))


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
    by: Dimension | None = None  # a breakdown asked for with `by`
    defaulted: bool = False  # the period is the metric's default
    # The default period moved back because its last day was not complete yet: the period
    # that would have been answered (the answer says so).
    shifted_from: Period | None = None

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
            calendar=self.asked.calendar,
            account=self.account,
            by=self.by,
            defaulted=self.defaulted,
        )

    def breakdown_model(self) -> Breakdown | None:
        if not self.breakdown:
            return None
        if self.by is not None:
            dimension = self.by.label
        else:
            dimension = (self.metric.dimension or "").replace("_", " ")
        title = self.metric.title
        if self.by is not None:
            title = f"{title} by {dimension}"
        return Breakdown(
            title=title,
            dimension=dimension,
            unit=self.headline[0].unit,
            period=self.period,
            previous_period=self.previous_period,
            rows=list(self.breakdown),
        )

    def default_note(self) -> str:
        """ "last week, the default for WAU" when the period was not typed, else ''."""
        if not self.defaulted:
            return ""
        return (
            f"{describe_default(self.metric.default_period)}, the default for {self.metric.title}"
        )


# --------------------------------------------------------------------------- grammar


def parse_command(
    text: str | None, catalog: Catalog, today: dt.date
) -> MetricQuery | HelpRequest | AccountRequest:
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
    if m := _ACCOUNT.match(raw):
        name = (m.group(1) or "").strip().strip("\"'“”‘’").strip()
        if not name:
            raise InputError("Say which account, e.g. `/metric account Acme`.")
        if len(name) > MAX_ACCOUNT:
            raise InputError(f"That account name is over {MAX_ACCOUNT} characters.")
        return AccountRequest(name)
    head, _, account = _split_for(raw)
    found = catalog.match_prefix(head)
    by_text = None
    # An alias may itself hold "by" (`instances by deployment`): split only what is left.
    if found is None or _BY.search(found[1]):
        head, by_text = _split_by(head)
        found = catalog.match_prefix(head)
    if account is not None and by_text is None:
        account, by_text = _split_trailing_by(account)
    if found is None:
        first = head.split()[0] if head.split() else head
        raise UnknownMetric(first[:40], catalog.suggest(first), typed=raw)
    metric, period_text = found
    by = parse_dimension(metric, catalog, by_text) if by_text is not None else None
    defaulted = not period_text
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
    return MetricQuery(
        metric, period, account, by=by, defaulted=defaulted, period_text=period_text.strip()
    )


def parse_dimension(metric: Metric, catalog: Catalog, text: str) -> Dimension:
    """The `by` part -> a dimension the metric supports; InputError naming the ones it does."""
    word = " ".join(text.casefold().replace("-", "_").split())
    dimension = DIMENSION_WORDS.get(word)
    if dimension is not None and dimension in metric.dimensions:
        return dimension
    shown = escape_mrkdwn(text.strip()[:40])
    if metric.dimensions:
        supported = ", ".join(f"`by {d.value}`" for d in metric.dimensions)
        raise InputError(f"`{metric.name}` can't be broken down by “{shown}”. It can: {supported}.")
    can = [m.name for m in catalog.metrics if m.dimensions]
    raise InputError(
        f"`{metric.name}` has no breakdowns. These metrics do (by "
        + ", ".join(d.value for d in Dimension)
        + "): "
        + ", ".join(f"`{n}`" for n in can)
        + "."
    )


def describe_default(period: str) -> str:
    """A default period as words: `30d` -> `the last 30 days`."""
    m = re.fullmatch(r"(\d+)d", period.strip())
    if m:
        return f"the last {m.group(1)} days"
    return period


def _split_by(head: str) -> tuple[str, str | None]:
    m = _BY.search(head)
    if m is None:
        return head, None
    return head[: m.start()], m.group(1)


def _split_trailing_by(account: str) -> tuple[str, str | None]:
    """`Acme by deployment` -> (`Acme`, `deployment`), only for a dimension word (an account
    may have " by " in its name)."""
    m = re.search(r"\s+by\s+(.+)$", account, re.IGNORECASE)
    if m and " ".join(m.group(1).casefold().split()) in DIMENSION_WORDS:
        return account[: m.start()], m.group(1)
    return account, None


def _split_for(raw: str) -> tuple[str, str, str | None]:
    parts = _FOR.split(raw, maxsplit=1)
    if len(parts) == 2:
        return parts[0], "for", parts[1]
    if raw.lower().endswith(" for"):
        return raw[:-4], "for", ""
    return raw, "", None


# --------------------------------------------------------------------------- errors


class UnknownMetric(InputError):
    def __init__(self, name: str, suggestions: list[str], typed: str = "") -> None:
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
        self.typed = typed  # the whole text: it may be an account's name


class UnknownAccount(InputError):
    def __init__(self, name: str, suggestions: list[str]) -> None:
        hint = (
            " Did you mean " + " or ".join(f"“{escape_mrkdwn(s)}”" for s in suggestions) + "?"
            if suggestions
            else ""
        )
        super().__init__(f"No account matches “{escape_mrkdwn(name)}”.{hint}")
        self.name = name
        self.suggestions = suggestions


class NoData(InputError):
    def __init__(self, message: str, *, data_end: dt.datetime | None = None) -> None:
        super().__init__(message)
        self.data_end = data_end  # how far the source really goes, when known


def no_data_message(
    metric: Metric,
    period: Period,
    account: str | None,
    data_end: dt.datetime | None,
    settings: Settings,
) -> str:
    """ "No X data for P", and when the data really ends (not the edge of the freshness
    query's window around P)."""
    where = f" for {escape_mrkdwn(account)}" if account else ""
    text = f"No {escape_mrkdwn(metric.title)} data{where} for {period.label()}."
    if data_end is None:
        text += " The source has no data from the last few days either."
    else:
        text += f" The data goes through {format_through(data_end, settings)}."
    if account and metric.note:
        text += f" {escape_mrkdwn(metric.note)}"
    return text


# --------------------------------------------------------------------------- rules


def may_see(metric: Metric, settings: Settings, *, user: str | None, channel: str | None) -> bool:
    """Revenue metrics: only in settings.revenue_channels or to settings.revenue_users.
    `user=None` means "everyone in `channel` will see it" (sharing)."""
    if metric.sensitivity is Sensitivity.PUBLIC:
        return True
    if channel is not None and channel in settings.revenue_channels:
        return True
    return user is not None and user in settings.revenue_users


def channel_ref(entry: str) -> str:
    """A REVENUE_CHANNELS entry as mrkdwn: an ID as a channel link, a `#name` as text."""
    if re.fullmatch(r"[CG][A-Z0-9]+", entry):
        return f"<#{entry}>"
    return escape_mrkdwn("#" + entry.removeprefix("#"))


def refusal(metric: Metric, settings: Settings, *, sharing: bool = False) -> str:
    where = ", ".join(channel_ref(c) for c in settings.revenue_channels)
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


# --------------------------------------------------------------------------- account card

TELEMETRY_EVENTS = "full pings + event data"
TELEMETRY_FULL = "full pings"
TELEMETRY_CRITICAL = "critical pings only"
TELEMETRY_NONE = "no telemetry"
# Best first: an account is as observable as its best instance.
TELEMETRY_ORDER = (TELEMETRY_EVENTS, TELEMETRY_FULL, TELEMETRY_CRITICAL, TELEMETRY_NONE)
# What each telemetry status means for which numbers exist (DOMAIN.md: metrics built from
# event data only cover instances that send it).
TELEMETRY_MEANING = {
    TELEMETRY_EVENTS: "pings and user-level event data: every number on this card exists",
    TELEMETRY_FULL: "pings with usage counts but no user-level events: no DAU/MAU, no Cody usage",
    TELEMETRY_CRITICAL: "version and deployment only: no user counts, repos or code hosts",
    TELEMETRY_NONE: "sends nothing (air-gapped or pings off): only Salesforce and the license "
    "registry know it",
}


@dataclass
class InstanceInfo:
    """One instance of an account: registry facts and its most recent ping in the period."""

    instance_id: str
    hosting_type: str | None
    deployment_type: str | None
    telemetry_status: str | None
    last_ping: dt.datetime | None
    version: str | None
    releases_behind: int | None
    latest_version: str | None
    code_hosts: list[str]
    repo_count: int | None


@dataclass
class Unavailable:
    what: str
    why: str


@dataclass
class AccountCard:
    """`/metric account NAME`: what a customer engineer asks first, in one answer. Each
    number is a catalog metric's answer for the account (the same definition `/metric NAME
    for ACCOUNT` uses), None when it does not exist, with the reason in `unavailable`."""

    account: str
    is_customer: bool
    seats_purchased: int | None
    period: Period
    instances: list[InstanceInfo]
    monthly_users: Answer | None
    dau_mau: Answer | None
    seat_consumption: Answer | None
    cody_users: Answer | None
    unavailable: list[Unavailable]
    data_through: dt.datetime | None
    complete: bool

    @property
    def telemetry(self) -> str:
        """The account's best telemetry status (what its best-observed instance sends)."""
        seen = {i.telemetry_status for i in self.instances}
        for status in TELEMETRY_ORDER:
            if status in seen:
                return status
        return TELEMETRY_NONE

    @property
    def pinged(self) -> list[InstanceInfo]:
        return [i for i in self.instances if i.last_ping is not None]

    @property
    def repos(self) -> int | None:
        counts = [i.repo_count for i in self.pinged if i.repo_count is not None]
        return sum(counts) if counts else None

    @property
    def code_hosts(self) -> list[str]:
        return sorted({h for i in self.pinged for h in i.code_hosts})

    def counts(self, attribute: str) -> list[tuple[str, int]]:
        """(value, instances) of one instance attribute, most common first; pinged
        instances only, except telemetry status, which the registry knows for all."""
        pool = self.instances if attribute == "telemetry_status" else self.pinged
        tally: dict[str, int] = {}
        for i in pool:
            value = getattr(i, attribute)
            if value is not None:
                tally[value] = tally.get(value, 0) + 1
        return sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))

    def versions(self) -> list[tuple[str, int | None, int]]:
        """(version, releases behind, instances), most out of date first."""
        tally: dict[tuple[str, int | None], int] = {}
        for i in self.pinged:
            if i.version is not None:
                key = (i.version, i.releases_behind)
                tally[key] = tally.get(key, 0) + 1
        return sorted(
            ((v, b, n) for (v, b), n in tally.items()),
            key=lambda t: (-(t[1] if t[1] is not None else 10**6), t[0]),
        )
