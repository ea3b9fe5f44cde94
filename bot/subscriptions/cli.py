"""`databot subscriptions [--json]`: every subscription and alert, with its next run and its
last result (the runner's record of its job); `--pause/--resume/--delete JOB` for the
operator: in Slack only who set an item up may change it, and they may have left."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.errors import InputError
from bot.subscriptions import records
from bot.subscriptions.command import delete_item, last_results, pause_item, resume_item
from bot.subscriptions.delivery import item_cron, next_run
from bot.subscriptions.model import parse_job_name

if TYPE_CHECKING:
    from bot.deps import Deps


def subscription_rows(deps: Deps) -> list[dict[str, Any]]:
    items = records.list_items(deps.store)
    results = last_results(deps, items, operator=True)
    return [
        {
            "job": item.job_name,
            "kind": str(item.kind),
            "metric": item.metric,
            "period": item.period_text,
            "account": item.account,
            "channel": item.channel,
            "creator": item.creator,
            "schedule": item.schedule.describe() if item.schedule else None,
            "rule": item.rule.describe() if item.rule else None,
            "cron": item_cron(item),
            "status": str(item.status),
            "status_reason": item.status_reason,
            "snoozed_until": item.snoozed_until,
            "next_run": next_run(item, deps) if item.status == "active" else None,
            "last_result": results.get(item.id),
            "created_at": item.created_at,
        }
        for item in items
    ]


def render_subscriptions(rows: list[dict[str, Any]], tz) -> str:
    if not rows:
        return "No subscriptions or alerts yet (`/metric subscribe ...`, `/metric alert ...`)."
    header = ("JOB", "METRIC", "WHAT", "CHANNEL", "STATUS", "NEXT", "LAST")
    table = [
        (
            r["job"],
            r["metric"]
            + (f" {r['period']}" if r["period"] else "")
            + (f" for {r['account']}" if r["account"] else ""),
            r["schedule"] or r["rule"] or "-",
            r["channel"],
            r["status"],
            f"{r['next_run'].astimezone(tz):%Y-%m-%d %H:%M %Z}" if r["next_run"] else "-",
            r["last_result"] or "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(6)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row[:6], widths, strict=True)) + "  " + row[6]
        for row in [header, *table]
    )


def change_by_operator(deps: Deps, action: str, job: str) -> str:
    """`--pause`, `--resume` or `--delete` JOB (`sub-3`, `alert-7`): what was done, in one
    line; InputError naming the problem for a job that is not an item."""
    found = parse_job_name(job)
    item = records.get(deps.store, found[1]) if found else None
    if item is None or found is None or item.kind is not found[0]:
        raise InputError(
            f"No subscription or alert called {job!r}: `databot subscriptions` lists them."
        )
    if action == "pause":
        return pause_item(deps, item, by="an operator (databot subscriptions --pause)")
    if action == "resume":
        return resume_item(deps, item)
    return delete_item(deps, item)
