"""Demo scene: the daily Cody Pro post (issue #7), through the real runner.

A morning where the SSC export is late: the 09:00 run finds yesterday incomplete and waits,
retries every 30 minutes, posts a "data not ready" notice at noon, and posts the numbers
(with the 30-day chart) once the export catches up, exactly once. The demo's clock and the
export's lateness are simulated; the numbers come from the demo warehouse.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from bot.cody.job import CodyDailyJob
from bot.cody.report import latest_complete_date
from bot.scheduling import runner
from bot.settings import REPORTING_TZ

if TYPE_CHECKING:
    from sandbox.demo import DemoHarness


class LateExport:
    """The real warehouse, except that ssc.sync_status reports at most `synced_through`:
    what the bot sees while the SSC export is behind."""

    def __init__(self, inner: Any, synced_through: dt.datetime) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "duckdb")
        self.synced_through = synced_through

    def query(self, sql, params=None, *, labels=None):
        rows = self.inner.query(sql, params, labels=labels)
        if "sync_status" in sql:
            rows = [
                {**row, "synced_through": min(row["synced_through"], self.synced_through)}
                for row in rows
            ]
        return rows

    def close(self) -> None:
        pass


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=REPORTING_TZ).astimezone(dt.UTC)


def run(h: DemoHarness) -> None:
    h.section("Cody Pro daily numbers (issue #7): a late export, a notice, then the numbers")
    deps = h.deps
    saved = deps.now, deps.warehouse, deps.settings
    try:
        today = saved[0]().astimezone(REPORTING_TZ).date()
        day = latest_complete_date(saved[1], today)
        if day is None:
            h.say("The demo warehouse has no SSC sync status; skipping the Cody Pro scene.")
            return
        # The scene's morning is the day after the reference date, in Pacific time.
        morning = day + dt.timedelta(days=1)
        # The post shows revenue only in REVENUE_CHANNELS (channel IDs): the demo workspace
        # allows it in #cody-pro-metrics, which the bot finds by name (conversations.list).
        revenue_channel = h.slack.add_channel(name="cody-pro-metrics")
        deps.settings = deps.settings.model_copy(
            update={
                "cody_channel": "#cody-pro-metrics",
                "cody_stripe_reconciliation": True,
                "revenue_channels": [*deps.settings.revenue_channels, revenue_channel],
            }
        )
        clock = {"now": _at(morning, 9)}
        deps.now = lambda: clock["now"]
        late = LateExport(saved[1], _at(day, 22))
        deps.warehouse = late
        job = CodyDailyJob(deps.settings)
        period = job.period_for(clock["now"], REPORTING_TZ)

        h.say(
            f"{morning:%a %b} {morning.day}, 09:00 PT: the clock runs cody-daily for {period}. "
            "The SSC export stopped at 22:00 PT that day, so the day is incomplete."
        )
        record = runner.run_period(deps, job, period)
        h.say(f"runner: {record.status} ({record.detail}); nothing posted")
        h.show_new()

        for hour, minute in [(9, 30), (10, 0), (10, 30), (11, 0), (11, 30), (12, 0)]:
            clock["now"] = _at(morning, hour, minute)
            record = runner.run_period(deps, job, period)
        h.say(
            "Retries every 30 minutes until 12:00 PT; then one notice, naming the table and "
            "the last complete day:"
        )
        h.show_new()

        late.synced_through = _at(morning, 0, 15)
        clock["now"] = _at(morning, 12, 30)
        h.say("12:20 PT: the export catches up. The 12:30 retry posts the numbers and the chart:")
        record = runner.run_period(deps, job, period)
        h.show_new()
        h.say(f"runner: {record.status}, permalink {record.permalink}")

        clock["now"] = _at(morning, 13, 0)
        again = runner.run_period(deps, job, period)
        h.say(
            "A later retry or a second clock process finds the period done: "
            + ("nothing posted again." if again is None else f"UNEXPECTED {again.status}")
        )
        chart = next((f for f in h.slack.files() if f.filename.startswith("cody-pro-")), None)
        if chart is not None and chart.content:
            path = deps.settings.data_dir / chart.filename
            path.write_bytes(chart.content)
            h.say(f"The chart uploaded with the post is saved at {path.resolve()}")
    finally:
        deps.now, deps.warehouse, deps.settings = saved
