"""Scheduled jobs, the types only: what a job is and what it hands the runner.

A job only decides *which period is due* (`period_for`) and *what to post* (`build`); it never
posts. The runner (bot/scheduling/runner.py) claims (job, period) in the state store first, so
a post goes out once per period however many clock processes, restarts or manual runs there
are. The clock (bot/scheduling/clock.py) decides *when* to ask, from the cron string in
settings.

Registering a job (another feature):
1. add a member to `bot.ids.Job` (its value is the `databot post JOB` name);
2. add its cron string to the defaults in `Settings.job_schedules` (bot/settings.py);
3. write a class with `id`, `period_for` and `build` (optional attributes: `title`,
   `enabled`, `grace`, `retry_every`, `give_up_after`, see `JobOptions`);
4. append it in `build_jobs` of bot/features.py, the composition root.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from bot.ids import Job

if TYPE_CHECKING:
    from bot.deps import Deps


class PostFile(BaseModel):
    """A file posted in the thread of the job's message (e.g. a chart)."""

    filename: str
    content: bytes
    title: str
    alt_text: str | None = None  # what an image shows, for screen readers (Slack's alt_txt)


class Post(BaseModel):
    """What a job wants to post. `blocks` are Block Kit dicts (builders' `to_dict()`);
    `text` is the notification/fallback text and must stand on its own."""

    channel: str
    text: str
    blocks: list[dict] = Field(default_factory=list)
    files: list[PostFile] = Field(default_factory=list)


class NotReady(BaseModel):
    """The source data is not complete yet. The runner retries, then posts `reason` as a
    notice once (in `channel`, default: the job's usual channel, else the owner channel)."""

    reason: str  # user-facing, e.g. "ssc.subscriptions has data through Nov 21"
    channel: str | None = None


class Skip(BaseModel):
    """Nothing to post for this period (e.g. no urgent issue is neglected today). The runner
    records the period as skipped with `reason`, so it is not tried again."""

    reason: str


@runtime_checkable
class ScheduledJob(Protocol):
    id: Job

    def period_for(self, run_at: dt.datetime, tz: ZoneInfo) -> str | None:
        """Key of the period due at `run_at` (e.g. "2026-11-22"); None = nothing due then."""
        ...

    def build(self, deps: Deps, period: str) -> Post | NotReady | Skip:
        """The message for `period`. No posting here; may raise DatabotError."""
        ...


@dataclass(frozen=True)
class JobOptions:
    """Per-job timing, read from optional attributes of the job (defaults from settings).

    - enabled: False = the clock never runs it (`databot post` still can);
    - grace: a run missed by more than this (clock down) is skipped, not caught up;
    - retry_every: after NotReady or a failed build, try again this much later;
    - give_up_after: from the first attempt, when the NotReady notice is posted instead
      (the runner then keeps trying until the end of that local day), and when a build
      that keeps raising is recorded as failed and reported to the owner;
    - reads_warehouse: True = its numbers come from the warehouse, so on the embedded demo
      warehouse the runner marks every post "demo data" (posts from GitHub need no mark).
    """

    title: str
    enabled: bool
    grace: dt.timedelta
    retry_every: dt.timedelta
    give_up_after: dt.timedelta
    reads_warehouse: bool = False

    @classmethod
    def of(cls, job: ScheduledJob, settings) -> JobOptions:
        def minutes(attr: str, default: int) -> dt.timedelta:
            value = getattr(job, attr, None)
            if isinstance(value, dt.timedelta):
                return value
            return dt.timedelta(minutes=default if value is None else value)

        return cls(
            title=getattr(job, "title", None) or str(job.id),
            enabled=bool(getattr(job, "enabled", True)),
            grace=minutes("grace", settings.schedule_grace_minutes),
            retry_every=minutes("retry_every", settings.not_ready_retry_minutes),
            give_up_after=minutes("give_up_after", settings.not_ready_give_up_minutes),
            reads_warehouse=bool(getattr(job, "reads_warehouse", False)),
        )
