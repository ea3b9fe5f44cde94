"""`databot metric ...`: the /metric lookup from a terminal, printed as plain text."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from bot.metric.account import account_card
from bot.metric.blocks import (
    build_breakdown_chart,
    build_metric_help_text,
    build_metric_text,
    build_trend_chart,
)
from bot.metric.card import build_account_card_text, card_facts
from bot.metric.catalog import Catalog, Sensitivity, load_catalog
from bot.metric.lookup import MetricService
from bot.metric.model import (
    AccountCard,
    AccountRequest,
    Answer,
    HelpRequest,
    NoData,
    UnknownAccount,
    UnknownMetric,
)
from bot.render import render_block
from bot.settings import Settings, utc_now
from bot.warehouse import make_warehouse


def print_metric_lookup(
    settings: Settings,
    text: str,
    out: TextIO | None = None,
    *,
    warehouse: Any = None,
    now: Callable[[], dt.datetime] | None = None,
    as_json: bool = False,
) -> int:
    """The same lookup as /metric, printed. Exit status 0 on an answer, 1 when the catalog
    has no answer (unknown name or account, no data)."""
    out = out or sys.stdout
    service = MetricService(load_catalog(), warehouse, settings, now or utc_now)
    miss: UnknownMetric | None = None
    try:
        parsed = service.parse(text)
    except UnknownMetric as exc:
        if exc.suggestions:  # a typo of a metric name: no warehouse needed
            print(_plain(exc.user_message), file=out)
            return 1
        miss, parsed = exc, AccountRequest(exc.typed)  # perhaps an account's name
    if isinstance(parsed, HelpRequest):
        if parsed.metric is not None:
            about = build_metric_help_text(parsed.metric, service.catalog, settings)
            print(_plain(about), file=out)
        else:
            print(_plain(catalog_text(service.catalog)), file=out)
        return 0
    own = warehouse is None
    if own:  # only now: help and typos need no warehouse
        service.warehouse = make_warehouse(settings)
    try:
        if isinstance(parsed, AccountRequest):
            if miss is not None and service.match_account(parsed.name) is None:
                print(_plain(miss.user_message), file=out)
                return 1
            card = account_card(service, parsed.name)
            if as_json:
                print(json.dumps(card_json(card), default=str, indent=2), file=out)
            else:
                print(build_account_card_text(card, settings), file=out)
            return 0
        answer = service.answer(parsed)
    except (UnknownAccount, NoData) as exc:
        print(_plain(exc.user_message), file=out)
        return 1
    finally:
        if own:
            service.warehouse.close()
    if as_json:
        print(json.dumps(answer_json(answer), default=str, indent=2), file=out)
    else:
        print(build_metric_text(answer, settings), file=out)
        # The charts the Slack answer carries, drawn as text (bot/render.py).
        for chart in (build_trend_chart(answer), build_breakdown_chart(answer)):
            if chart is not None:
                print(render_block(chart.to_dict()), file=out)
    return 0


def answer_json(answer: Answer) -> dict[str, Any]:
    """`databot metric --json`: the numbers of an answer, for scripts (Pacific dates)."""
    return {
        "metric": answer.metric.name,
        "account": answer.account,
        "period": {"start": answer.period.start, "end": answer.period.end},
        "previous_period": {
            "start": answer.previous_period.start,
            "end": answer.previous_period.end,
        },
        "values": [
            {"label": f.label, "unit": f.unit, "value": value, "previous": previous}
            for f, value, previous in answer.values
        ],
        "breakdown": [
            {"label": r.label, "value": r.value, "previous": r.previous} for r in answer.breakdown
        ],
        "trend": answer.trend,
        "by": answer.by.value if answer.by else None,
        "default_period": answer.defaulted,
        "moved_back_from": (
            {"start": answer.shifted_from.start, "end": answer.shifted_from.end}
            if answer.shifted_from
            else None
        ),
        "data_through": answer.data_through,
        "complete": answer.complete,
    }


def card_json(card: AccountCard) -> dict[str, Any]:
    """`databot metric account NAME --json`: the card's facts and its instances."""
    return {
        "account": card.account,
        "is_customer": card.is_customer,
        "seats_purchased": card.seats_purchased,
        "period": {"start": card.period.start, "end": card.period.end},
        "facts": dict(card_facts(card)),
        "instances": [vars(i) for i in card.instances],
        "unavailable": [{"what": g.what, "why": g.why} for g in card.unavailable],
        "data_through": card.data_through,
        "complete": card.complete,
    }


def catalog_text(catalog: Catalog) -> str:
    lines = [
        "Usage: metric NAME [PERIOD] [by DIMENSION] [for ACCOUNT]",
        "       metric account ACCOUNT   (an account's overview)",
    ]
    for group, metrics in catalog.groups().items():
        lines.append(f"\n{group}")
        for m in metrics:
            lock = "  [revenue]" if m.sensitivity is Sensitivity.REVENUE else ""
            lines.append(f"  {m.name:<24} {m.description}{lock}")
    return "\n".join(lines)


def _plain(text: str) -> str:
    """Undo escape_mrkdwn for a terminal (the messages are written for Slack)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
