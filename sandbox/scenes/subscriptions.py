"""Demo scene: a metric subscription and an alert (issue 14), through the real runner.

Made by slash command yesterday; this morning the clock's tick delivers the subscription at
09:00 team time and checks the alert at 00:30, each exactly once (a second tick, or a second
clock, posts nothing again). A revenue metric is refused outside revenue channels. The
demo's clock is simulated; the numbers come from the demo warehouse.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from bot.features import tick_subscriptions

if TYPE_CHECKING:
    from sandbox.demo import DemoHarness


def run(h: DemoHarness) -> None:
    h.section("Subscriptions and alerts (issue 14): numbers that come to people, once")
    deps = h.deps
    saved = deps.now
    tz = deps.settings.tz
    try:
        today = saved().astimezone(tz).date()
        clock = {"now": _at(today - dt.timedelta(days=1), 8, tz)}
        deps.now = lambda: clock["now"]

        h.say("Yesterday, Alice types `/metric subscribe dau 7d daily at 9am` in #analytics")
        h.slash("/metric", "subscribe dau 7d daily at 9am")
        h.show_new()
        h.say("and `/metric alert wau below 1000000` (checked once per complete day)")
        h.slash("/metric", "alert wau below 1000000")
        h.show_new()
        h.say("`/metric subscribe mrr weekly` in #analytics: revenue, so refused here")
        h.slash("/metric", "subscribe mrr weekly")
        h.show_new()

        clock["now"] = _at(today, 0, tz, 30)
        h.say("Today 00:30: the clock's tick checks the alert for yesterday; it is true: one post")
        tick_subscriptions(deps)
        h.show_new()
        clock["now"] = _at(today, 9, tz)
        h.say("09:00: the tick delivers the subscription (the 7 complete days before today)")
        tick_subscriptions(deps)
        h.show_new()
        clock["now"] = _at(today, 9, tz, 1)
        again = tick_subscriptions(deps)
        h.say(
            "09:01: another tick (or a second clock) finds both periods done: "
            + ("nothing posted again." if not again else f"UNEXPECTED {len(again)} runs")
        )
        h.say("`/metric subscriptions`: what Alice and #analytics have, next run, last result")
        h.slash("/metric", "subscriptions")
        h.show_new()
    finally:
        deps.now = saved


def _at(day: dt.date, hour: int, tz, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz).astimezone(dt.UTC)
