"""Stand-in for the scheduler helper's bot/jobs.py (interface from the brief, verbatim).

Only here so the Cody job can be built and tested before feat/sched lands; on merge the
scheduler's version replaces this file.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

from bot.ids import Job

if TYPE_CHECKING:
    from bot.deps import Deps


class PostFile(BaseModel):
    filename: str
    content: bytes
    title: str


class Post(BaseModel):
    channel: str
    text: str
    blocks: list[dict]
    files: list[PostFile] = []


class NotReady(BaseModel):
    reason: str
    channel: str | None = None


class ScheduledJob(Protocol):
    id: Job

    def period_for(self, run_at: dt.datetime, tz) -> str | None: ...

    def build(self, deps: Deps, period: str) -> Post | NotReady: ...
