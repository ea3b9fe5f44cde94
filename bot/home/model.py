"""What the Home tab shows a person, as plain data (text from GitHub still unescaped: the
builder escapes it for Slack)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from bot.settings import Analyst

# The Home tab lists this many of the person's latest requests and urgent issues.
REQUESTS_SHOWN = 10
URGENT_SHOWN = 10
# kv key set when a person first opens the tab: only their tab is redrawn on a change.
OPENED_KEY = "home:opened:{user}"


class HomeRequest(BaseModel):
    title: str
    status: str  # in words: "Queued", "Open", "Closed: completed", ...
    number: int | None = None
    url: str | None = None
    assignees: list[str] = Field(default_factory=list)  # GitHub logins
    updated_at: dt.datetime | None = None


class UrgentIssue(BaseModel):
    number: int
    title: str
    url: str
    assignees: list[str] = Field(default_factory=list)
    created_at: dt.datetime


class HomeSprint(BaseModel):
    name: str
    milestone: str | None = None  # set when the sprint is a milestone (its name is then shown)
    start: dt.date
    end: dt.date  # the sprint's last day


class HomeData(BaseModel):
    user_id: str
    requests: list[HomeRequest] = Field(default_factory=list)
    github_down: bool = False  # GitHub did not answer: statuses are what the bot last knew
    urgent: list[UrgentIssue] | None = None  # None: could not be read
    urgent_total: int = 0
    sprint: HomeSprint | None = None
    support: Analyst | None = None
    support_next: Analyst | None = None
    today: dt.date
