"""Demo scene: the sprint calendar, the Monday digest as a dry run, and the clock posting
it once, on the sprint's first Monday, although two clock processes are running."""

from __future__ import annotations

import dataclasses
import datetime as dt

from bot.cli import render_post, render_runs
from bot.scheduling import runner, runs
from bot.scheduling.clock import Clock
from bot.sprints.calendar import SprintCalendar, render_sprints
from bot.sprints.jobs import SprintDigestJob, SprintPlanningJob, load_calendar

TYPES = ["dashboard", "analysis", "metric", "bug"]


class SteppedClock:
    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def __call__(self) -> dt.datetime:
        return self.current


def _at(day: dt.date, hour: int, minute: int, tz) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz).astimezone(dt.UTC)


def seed_sprint(github, settings, today: dt.date) -> tuple[str, str]:
    """A realistic two sprints around `today` in the fake GitHub; returns their names."""
    tz = settings.tz
    calendar = SprintCalendar(settings.sprint_anchor, settings.sprint_length_days)
    current = calendar.sprint_at(today)
    previous = calendar.previous(current)
    number = (current.start - settings.sprint_anchor).days // settings.sprint_length_days + 1
    last_name, this_name = f"Sprint {number - 1}", f"Sprint {number}"
    github.create_milestone(last_name, due_on=f"{previous.end.isoformat()}T08:00:00Z")
    github.create_milestone(this_name, due_on=f"{current.end.isoformat()}T08:00:00Z")

    def closed(days_in: int, hour: int = 15) -> dt.datetime:
        return _at(previous.start + dt.timedelta(days=days_in), hour, 0, tz)

    created = _at(previous.start - dt.timedelta(days=10), 10, 0, tz)
    wins = [
        ("Weekly active users dashboard for Cody", "dashboard", "alice", 2),
        ("Seat utilisation by account (customers only)", "dashboard", "dave", 3),
        ("Churn analysis for Q3 enterprise accounts", "analysis", "bob", 8),
        ("Why did searches drop on Oct 30? (ad-hoc)", "analysis", "carol", 4),
        ("Define the 'active instance' business metric", "metric", "alice", 9),
        ("Fix duplicate events in the dotcom pipeline", "bug", "carol", 10),
    ]
    for title, kind, who, day in wins:
        github.create_issue(title, labels=[kind], assignees=[who], milestone=last_name,
                            state="closed", closed_at=closed(day), created_at=created)  # fmt: skip
    github.create_issue("Redash query for a one-off marketing email", labels=["analysis"],
                        milestone=last_name, state="closed", state_reason="not_planned",
                        closed_at=closed(5), created_at=created)  # fmt: skip
    github.create_issue("Instance version adoption report", labels=["analysis"],
                        assignees=["carol"], milestone=last_name, created_at=created)  # fmt: skip
    plan = [
        ("Cody Pro retention cohort chart", "dashboard", "alice"),
        ("Search usage by deployment type", "analysis", None),
        ("Seat consumption metric for customers", "metric", "bob"),
        ("Broken pings for air-gapped instances", "bug", None),
    ]
    for title, kind, who in plan:
        github.create_issue(title, labels=[kind], assignees=[who] if who else [],
                            milestone=this_name, created_at=created)  # fmt: skip
    github.create_issue("Revenue dashboard shows zero for yesterday", labels=["bug", "urgent"],
                        assignees=["dave"], milestone=this_name, created_at=created)  # fmt: skip
    github.create_issue("NPS analysis, when there is time", labels=["analysis"],
                        created_at=created)  # fmt: skip
    return last_name, this_name


def run(h) -> None:
    h.section("Sprint digest: the calendar, a dry run, and the scheduled Monday post")
    settings = h.settings.model_copy(
        update={"sprint_plan_url": "https://github.com/orgs/acme/projects/7/views/3"}
    )
    deps = dataclasses.replace(h.deps, settings=settings, services={})
    today = deps.today()
    seed_sprint(h.github, settings, today)

    h.say("$ databot sprint   (sprints come from the repo's 'Sprint N' milestones)")
    calendar = load_calendar(deps)
    print(render_sprints(calendar, today), file=h.out)

    current = calendar.sprint_at(today)
    digest = SprintDigestJob(deps)
    h.say("$ databot post sprint-digest --dry-run   (prints it; posts nothing)")
    print(render_post(runner.preview(deps, digest, current.key), "sprint-digest"), file=h.out)

    h.say(
        "Two clock processes run (say, during a deploy). The clock is stepped from the "
        f"Friday before {current.name} through its first two Mondays; 09:00 PT is digest time."
    )
    clock = SteppedClock(_at(current.start - dt.timedelta(days=3), 9, 0, settings.tz))
    stepped = dataclasses.replace(deps, now=clock, services={})
    jobs = [SprintDigestJob(stepped), SprintPlanningJob(stepped)]
    clocks = [Clock(stepped, jobs), Clock(stepped, jobs)]
    h.show_new()
    steps = [(-3, 9, 0), (0, 8, 59), (0, 9, 0), (0, 9, 1), (7, 9, 0)]
    # Then both clocks are down over the next sprint's first Monday, back on Wednesday:
    # a Monday digest on Wednesday is noise, so it is skipped (and recorded as such).
    steps.append((current.length_days + 2, 10, 0))
    for day, hour, minute in steps:
        clock.current = _at(current.start + dt.timedelta(days=day), hour, minute, settings.tz)
        for c in clocks:
            c.tick()
        posted = [r for r in runs.list_runs(deps.store) if r.status == "posted"]
        local = clock.current.astimezone(settings.tz)
        h.say(f"{local:%a %b %d %H:%M %Z}: both clocks ticked; posts so far: {len(posted)}")
        h.show_new()

    h.say("$ databot posts   (did it go out?)")
    print(render_runs(runs.list_runs(deps.store), settings.tz), file=h.out)
