"""What the sprint posts say, as data: the Monday digest, the planning reminder and the
mid-sprint check-in, each built from a few GitHub issue searches (bot/sprints/search.py) and
drawn by bot/sprints/blocks.py. Pure: no I/O.

Sections of the digest:

- wins: issues closed during the last sprint as completed (not "not planned");
- plan: open issues of this sprint (its milestone, else settings.sprint_label, else every
  open issue), unassigned ones called out;
- slipped: still-open issues of the last sprint (its milestone; with a sprint label, the
  labelled ones older than this sprint);
- urgent: open issues with the urgent label.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.sprints.calendar import Sprint


@dataclass(frozen=True)
class IssueItem:
    number: int
    title: str
    url: str
    assignees: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    state_reason: str | None = None


@dataclass
class IssueSet:
    """The first page of one search, its total, and the same search on github.com."""

    items: list[IssueItem]
    total: int
    search_url: str

    @property
    def unassigned(self) -> list[IssueItem]:
        return [i for i in self.items if not i.assignees]

    def without_not_planned(self) -> IssueSet:
        """The set less issues closed as "not planned" (they are not wins), total too."""
        kept = [i for i in self.items if i.state_reason != "not_planned"]
        return IssueSet(kept, self.total - (len(self.items) - len(kept)), self.search_url)


@dataclass
class SprintDigest:
    repo: str
    sprint: Sprint
    previous: Sprint
    upcoming: Sprint
    wins: IssueSet
    plan: IssueSet
    plan_source: str  # "milestone", "label", "no milestone" or "open issues"
    slipped: IssueSet | None
    urgent: IssueSet
    plan_url: str | None
    type_labels: list[str] = field(default_factory=list)
    urgent_label: str = "urgent"


@dataclass
class PlanningReminder:
    repo: str
    sprint: Sprint  # the sprint being planned
    unassigned: IssueSet
    untriaged: IssueSet
    untriaged_means: str
    plan_url: str | None


@dataclass
class CheckIn:
    repo: str
    sprint: Sprint
    since: dt.date
    stale: IssueSet
    open_total: int


def group_by_type(
    items: Iterable[IssueItem], type_labels: list[str], skip: set[str]
) -> list[tuple[str, list[IssueItem]]]:
    """[(group name, items)] in a stable order: configured types first, "Other" last.

    An issue's group is its first label among `type_labels` (any case); with no types
    configured, its first label not in `skip` (lower case).
    """
    wanted = {label.lower(): label for label in type_labels}
    groups: dict[str, list[IssueItem]] = {}
    for item in items:
        name = None
        for label in item.labels:
            if wanted and label.lower() in wanted:
                name = wanted[label.lower()]
                break
            if not wanted and label.lower() not in skip:
                name = label
                break
        groups.setdefault(name or "Other", []).append(item)
    order = {label: i for i, label in enumerate(type_labels)}

    def key(entry: tuple[str, list[IssueItem]]) -> tuple[bool, int, int, str]:
        name, members = entry
        return (name == "Other", order.get(name, len(order)), -len(members), name.lower())

    return sorted(groups.items(), key=key)
