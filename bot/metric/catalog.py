"""The metric catalog: bot/metric/metrics.yml, validated by pydantic at start-up and by
`databot check`. Adding a metric is adding an entry there; no code.

Contract of a metric's SQL (BigQuery Standard SQL, named parameters). The lookup service
passes only the parameters the text mentions, from:
  @start_date, @end_date  DATE       first and last Pacific date to scan (inclusive)
  @start_ts, @end_ts      TIMESTAMP  UTC bounds of those dates, half-open; filter the
                                     partitioning timestamp column with them so BigQuery
                                     scans only the partitions the lookup needs
  @bucket_days            INT64      (shape `buckets`) length of one period in days
  @account                STRING     (account_filter) the account name, '' for everyone
  @price_usd              FLOAT64    Cody Pro price per seat per month (settings.cody_price_usd,
                                     the same price the daily Cody Pro post uses)
  @by                     STRING     (dimensions) the breakdown asked for (`by deployment`):
                                     one of `dimensions`, '' for none. The SQL returns it as
                                     a column `dimension`, a single '' value when @by is ''
  plus the entry's own `params` (constants of that one metric).

Two shapes:
  daily    one row per Pacific date in `day_column`; the service rolls the days of a period
           up with `rollup` (sum, mean or last), so one query gives this period, the
           previous one and a daily trend.
  buckets  for values that do not add up across days (distinct users over a period): one
           row per `bucket` = DIV(DATE_DIFF(@end_date, <date>, DAY), @bucket_days); bucket 0
           is the period asked for, 1 the one before, and so on.
A `dimension` column turns a metric into a breakdown (one row per value and day/bucket).
`dimensions` lists the breakdowns a metric offers on request (`/metric searches 30d by
deployment`); its SQL then groups by a `dimension` column chosen with @by.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
from enum import StrEnum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.errors import ConfigError
from bot.sql import load_sql

logger = logging.getLogger(__name__)

CATALOG_PATH = Path(__file__).resolve().parent / "metrics.yml"

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PARAM = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")
SERVICE_PARAMS = {
    "start_date",
    "end_date",
    "start_ts",
    "end_ts",
    "bucket_days",
    "account",
    "price_usd",
    "by",
}


class Dimension(StrEnum):
    """What `by DIMENSION` may name. Each is an attribute of an instance, taken from its
    most recent ping (update check) in the lookup's dates."""

    DEPLOYMENT = "deployment"
    HOSTING = "hosting"
    VERSION = "version"
    ACCOUNT = "account"

    @property
    def label(self) -> str:
        return DIMENSION_LABELS[self]


DIMENSION_LABELS = {
    Dimension.DEPLOYMENT: "deployment type",
    Dimension.HOSTING: "hosting type",
    Dimension.VERSION: "version",
    Dimension.ACCOUNT: "account",
}
# Words people type after `by` (normalised: lower case, `_` for `-`, single spaces).
DIMENSION_WORDS: dict[str, Dimension] = {
    "deployment": Dimension.DEPLOYMENT,
    "deployments": Dimension.DEPLOYMENT,
    "deployment type": Dimension.DEPLOYMENT,
    "deployment_type": Dimension.DEPLOYMENT,
    "hosting": Dimension.HOSTING,
    "hosting type": Dimension.HOSTING,
    "hosting_type": Dimension.HOSTING,
    "instance type": Dimension.HOSTING,
    "instance_type": Dimension.HOSTING,
    "version": Dimension.VERSION,
    "versions": Dimension.VERSION,
    "account": Dimension.ACCOUNT,
    "accounts": Dimension.ACCOUNT,
    "customer": Dimension.ACCOUNT,
    "customers": Dimension.ACCOUNT,
}


class Unit(StrEnum):
    COUNT = "count"
    RATIO = "ratio"
    PERCENT = "percent"
    USD = "USD"


class Sensitivity(StrEnum):
    PUBLIC = "public"  # anyone, anywhere
    REVENUE = "revenue"  # only settings.revenue_channels / settings.revenue_users


class ValueField(BaseModel):
    """One value column shown for a metric (the first one is the headline)."""

    model_config = ConfigDict(extra="forbid")
    column: str
    label: str
    unit: Unit = Unit.COUNT
    rollup: Literal["sum", "mean", "last"] | None = None  # default: the metric's rollup


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str
    # One row, one column `data_through` (TIMESTAMP): how far the data goes. It may use
    # @start_ts/@end_ts to stay within a few partitions.
    data_through_sql: str


class Metric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    group: str
    aliases: list[str] = []
    description: str = Field(max_length=250)  # which tables and rows it counts
    unit: Unit
    grain: Literal["day", "week", "month"]
    default_period: str = "yesterday"
    shape: Literal["daily", "buckets"]
    rollup: Literal["sum", "mean", "last"] = "sum"  # daily shape: how days add up
    min_days: int = Field(1, ge=1, le=366)  # shorter periods widen to this many days
    sql: str | None = None
    sql_file: str | None = None  # under bot/sql/, for definitions shared with other features
    day_column: str = "day"
    value: str = "value"
    label: str | None = None
    fields: list[ValueField] = []  # more value columns, shown as fields
    dimension: str | None = None  # breakdown column
    dimensions: list[Dimension] = []  # breakdowns on request (`by ...`), through @by
    params: dict[str, float | int | str] = {}
    account_filter: bool = False
    sensitivity: Sensitivity = Sensitivity.PUBLIC
    source: str
    dashboard: str
    owner: str
    cache_minutes: float | None = None  # default: settings.metric_cache_minutes
    note: str | None = None  # caveat shown with every answer
    # Raw tables it may read through the bot's per-day rollups (bot/metric/rollups.py).
    rollups: list[Literal["events_daily", "pings_daily"]] = []

    @model_validator(mode="after")
    def _consistent(self) -> Metric:
        if not _NAME.match(self.name):
            raise ValueError(f"name {self.name!r}: lower case letters, digits and _ only")
        if (self.sql is None) == (self.sql_file is None):
            raise ValueError(f"{self.name}: give exactly one of sql and sql_file")
        if self.sql_file is not None:
            try:
                load_sql(self.sql_file)
            except OSError:
                raise ValueError(
                    f"{self.name}: sql_file {self.sql_file} not found in bot/sql/"
                ) from None
        if not self.dashboard.startswith("https://"):
            raise ValueError(f"{self.name}: dashboard must be an https:// link")
        if self.shape == "buckets" and self.grain == "day" and self.min_days > 1:
            raise ValueError(f"{self.name}: a day-grain metric has min_days 1")
        shadowed = sorted(set(self.params) & SERVICE_PARAMS)
        if shadowed:
            # A metric's own copy (say a price) would drift from the one the service fills in.
            raise ValueError(f"{self.name}: params {shadowed} are filled in by the service")
        text = self.query_text()
        used = set(_PARAM.findall(text))
        unknown = used - SERVICE_PARAMS - set(self.params)
        if unknown:
            raise ValueError(f"{self.name}: SQL uses unknown parameters {sorted(unknown)}")
        if self.account_filter and "account" not in used:
            raise ValueError(f"{self.name}: account_filter is set but the SQL ignores @account")
        if not self.account_filter and "account" in used:
            raise ValueError(f"{self.name}: the SQL uses @account: set account_filter: true")
        if self.dimensions and "by" not in used:
            raise ValueError(f"{self.name}: dimensions are set but the SQL ignores @by")
        if not self.dimensions and "by" in used:
            raise ValueError(f"{self.name}: the SQL uses @by: list its dimensions")
        if self.dimensions and self.dimension:
            raise ValueError(f"{self.name}: a fixed breakdown (dimension) takes no `by`")
        if self.shape == "buckets" and "bucket_days" not in used:
            raise ValueError(f"{self.name}: a buckets metric must group by @bucket_days")
        return self

    def query_text(self) -> str:
        if self.sql is not None:
            return self.sql
        return load_sql(self.sql_file).strip().rstrip(";")

    @property
    def title(self) -> str:
        return self.label or self.name.upper()

    @property
    def all_fields(self) -> list[ValueField]:
        head = ValueField(column=self.value, label=self.title, unit=self.unit, rollup=self.rollup)
        return [head, *self.fields]


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: dict[str, Source]
    metrics: list[Metric]

    @model_validator(mode="after")
    def _unique_names(self) -> Catalog:
        seen: dict[str, str] = {}
        for metric in self.metrics:
            if metric.source not in self.sources:
                raise ValueError(f"{metric.name}: unknown source {metric.source!r}")
            for word in [metric.name, *metric.aliases]:
                key = _norm(word)
                if key in seen:
                    raise ValueError(f"{word!r} names both {seen[key]} and {metric.name}")
                seen[key] = metric.name
        return self

    def names(self) -> dict[str, Metric]:
        """Every name and alias (normalised) -> metric."""
        return self._names

    @functools.cached_property
    def _names(self) -> dict[str, Metric]:
        # Once per catalog (it is read once and not changed): every /metric parse asks,
        # and building it was a tenth of a millisecond on the ack path.
        out = {}
        for metric in self.metrics:
            for word in [metric.name, *metric.aliases]:
                out[_norm(word)] = metric
        return out

    def get(self, name: str) -> Metric | None:
        return self.names().get(_norm(name))

    def match_prefix(self, text: str) -> tuple[Metric, str] | None:
        """The metric whose name or alias is the longest word-prefix of `text`, and the rest
        of the text (aliases may be several words: `daily active users 7d`)."""
        words = text.split()
        names = self.names()
        for n in range(min(len(words), 4), 0, -1):
            metric = names.get(_norm(" ".join(words[:n])))
            if metric is not None:
                return metric, " ".join(words[n:])
        return None

    def suggest(self, name: str, limit: int = 3) -> list[str]:
        """Closest metric names to a mistyped one (names, not aliases, so the reply teaches
        the canonical word)."""
        names = self.names()
        hits = difflib.get_close_matches(_norm(name), list(names), n=limit * 3, cutoff=0.6)
        out: list[str] = []
        for hit in hits:
            if names[hit].name not in out:
                out.append(names[hit].name)
        return out[:limit]

    def groups(self) -> dict[str, list[Metric]]:
        out: dict[str, list[Metric]] = {}
        for metric in self.metrics:
            out.setdefault(metric.group, []).append(metric)
        return out


def _norm(word: str) -> str:
    return " ".join(word.casefold().replace("-", "_").split())


def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """Read and validate the catalog; ConfigError saying what is wrong and where."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read the metric catalog {path}: {exc}") from exc
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"The metric catalog {path.name} is invalid: {problems}") from exc


def check_catalog(settings, report) -> None:
    """`databot check`: the catalog parses, validates and names its SQL files."""
    try:
        catalog = load_catalog()
    except ConfigError as exc:
        report.add(False, "metric catalog (bot/metric/metrics.yml)", exc.user_message)
        return
    sensitive = [m.name for m in catalog.metrics if m.sensitivity is Sensitivity.REVENUE]
    report.add(True, f"metric catalog: {len(catalog.metrics)} metrics valid")
    if sensitive and not (settings.revenue_channels or settings.revenue_users):
        report.add(
            False,
            f"REVENUE_CHANNELS and REVENUE_USERS are empty: /metric refuses {', '.join(sensitive)}"
            " everywhere",
            "Set REVENUE_CHANNELS (channel ids) and/or REVENUE_USERS (user ids).",
            warning=True,
        )
