"""The flows behind the feature's Slack surfaces: `/metric subscribe|alert|subscriptions`,
the "Subscribe" button on /metric answers, and the pause / resume / delete / snooze
buttons. Each returns the one Message to answer with (ephemeral); handlers only ack and send.

Everything is checked before anything is stored (metric, period, schedule, account, the
channel: a channel the bot is in, public, not a DM; revenue only into revenue channels), so
bad input leaves nothing half-made.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.errors import DatabotError, InputError, NotAllowedError
from bot.metric.catalog import Metric
from bot.metric.lookup import may_see_in, metric_service
from bot.metric.model import refusal
from bot.settings import REPORTING_TZ
from bot.slack_channels import channel_id
from bot.slack_text import Message
from bot.subscriptions import records
from bot.subscriptions.blocks import (
    build_created,
    build_done,
    build_list,
    build_not_yours,
    build_snoozed,
    build_usage,
)
from bot.subscriptions.delivery import allowed_in, next_run
from bot.subscriptions.model import (
    PARTIAL_REFUSAL,
    ChannelRef,
    Item,
    ItemValue,
    Kind,
    Schedule,
    Status,
    SubscribeValue,
    SubscriptionSpec,
    parse_alert,
    parse_subscribe,
    relative_period_text,
    split_word,
    subscription_period,
)

if TYPE_CHECKING:
    from bot.deps import Deps

logger = logging.getLogger(__name__)

DM_REFUSAL = (
    "Subscriptions and alerts post into a channel, not a direct message: add "
    "`in #channel` (a public channel I am in), or type the command there."
)
PRIVATE_REFUSAL = (
    "<#{id}> is a private channel: subscriptions and alerts post only into public channels "
    "(everyone can see what is sent and manage it). Add `in #channel` with a public one."
)
NOT_IN = (
    "I am not in <#{id}>, so I could not post there reliably: invite me with "
    "`/invite @databot` in that channel, then try again."
)
NOT_FOUND = (
    "I can't find the channel {name}: check the name, or use a public channel I am in "
    "(invite me with `/invite @databot`)."
)


def is_feature_text(text: str | None) -> bool:
    """Whether `/metric text` is this feature's (subscribe, alert, subscriptions)."""
    return split_word(text or "") is not None


def subscriptions_command(
    deps: Deps, text: str, *, user: str | None, channel: str | None
) -> Message:
    """`/metric subscribe|alert|subscriptions ...` typed by `user` in `channel`."""
    found = split_word(text)
    assert found is not None
    word, rest = found
    if word == "subscriptions":
        return list_for(deps, user=user, channel=channel)
    if not rest.strip() or rest.strip().lower() in ("help", "?"):
        return build_usage(word)
    service = metric_service(deps)
    tz_name = deps.settings.timezone
    try:
        if word == "subscribe":
            spec = parse_subscribe(rest, service.catalog, service.today(), tz_name)
        else:
            spec = parse_alert(rest, service.catalog, service.today(), tz_name)
        item = create_item(deps, spec, user=user, channel=channel)
    except DatabotError as exc:
        return Message(text=exc.user_message)
    metric = service.catalog.get(item.metric)
    return build_created(
        item, metric.title if metric else item.metric, next_run(item, deps), deps.settings.tz
    )


def create_item(
    deps: Deps, spec: SubscriptionSpec, *, user: str | None, channel: str | None
) -> Item:
    """Check everything, then store the item in one INSERT. Raises InputError /
    NotAllowedError (nothing stored)."""
    if not user:
        raise InputError("I could not tell who asked; try the command again.")
    service = metric_service(deps)
    metric = service.catalog.get(spec.metric)
    if metric is None:  # pragma: no cover - the parser checked it
        raise InputError(f"`{spec.metric}` is not in the catalog; `/metric help` lists them.")
    target = resolve_channel(deps, spec.channel, channel)
    if not allowed_in(deps, metric, target):
        raise NotAllowedError(refusal(metric, deps.settings, sharing=True))
    try:
        account = service.resolve_account(spec.account) if spec.account else None
    except InputError as exc:
        if spec.account and " in " in f" {spec.account.lower()} ":
            # `for Acme in general`: an account name may hold "in", so a channel without
            # its # was read into the name.
            raise InputError(
                f"{exc.user_message} To post in a channel, write `in #channel-name`."
            ) from exc
        raise
    if spec.kind is Kind.SUBSCRIPTION:
        _reread(spec, metric, service.today())
    return records.create(
        deps.store,
        deps.now(),
        kind=spec.kind,
        metric=metric.name,
        period_text=spec.period_text,
        account=account,
        channel=target,
        creator=user,
        schedule=spec.schedule,
        rule=spec.rule,
        by=spec.by,
    )


def _reread(spec: SubscriptionSpec, metric: Metric, today: dt.date) -> None:
    """Read the period exactly as a delivery will (from what is stored), so what could
    never be delivered is refused now, not failed every week."""
    if subscription_period(spec.period_text, metric.default_period, today).partial:
        raise InputError(PARTIAL_REFUSAL)


def resolve_channel(deps: Deps, ref: ChannelRef | None, current: str | None) -> str:
    """The conversation ID to post into: a public channel the bot is a member of."""
    if ref is None:
        if not current:
            raise InputError(DM_REFUSAL)
        wanted = current
    elif ref.id:
        wanted = ref.id
    else:
        assert ref.name is not None
        try:
            found = channel_id(deps, "#" + ref.name)
        except SlackApiError as exc:
            raise InputError(NOT_FOUND.format(name="#" + ref.name)) from exc
        if found is None:
            raise InputError(NOT_FOUND.format(name="#" + ref.name))
        wanted = found
    if wanted.startswith("D"):
        raise InputError(DM_REFUSAL)
    try:
        info = deps.slack.conversations_info(channel=wanted)["channel"]
    except SlackApiError as exc:
        error = exc.response.get("error", "error")
        if error == "channel_not_found":
            # Slack hides private channels the bot is not in, and DMs with others.
            raise InputError(NOT_IN.format(id=wanted)) from exc
        raise
    if info.get("is_im") or info.get("is_mpim"):
        raise InputError(DM_REFUSAL)
    if info.get("is_private"):
        raise InputError(PRIVATE_REFUSAL.format(id=wanted))
    if not info.get("is_member", False):
        raise InputError(NOT_IN.format(id=wanted))
    return str(info.get("id") or wanted)


def subscribe_button(
    deps: Deps, value: SubscribeValue, *, user: str | None, channel: str | None
) -> Message:
    """The "Subscribe" button on an answer: the same lookup, weekly on Monday at 09:00 team
    time, into the channel the answer is in. Its period is kept relative ("7d", "last
    week"), so each delivery shows the latest complete one."""
    service = metric_service(deps)
    metric = service.catalog.get(value.metric)
    if metric is None:
        return Message(text=f"`{value.metric}` is no longer in the catalog; ask again.")
    today = deps.now().astimezone(REPORTING_TZ).date()
    period_text = relative_period_text(value.period, today)
    spec = SubscriptionSpec(
        kind=Kind.SUBSCRIPTION,
        metric=metric.name,
        period_text=None if period_text == metric.default_period else period_text,
        account=value.account,
        by=value.by,
        schedule=Schedule(),
    )
    try:
        item = create_item(deps, spec, user=user, channel=channel)
    except DatabotError as exc:
        return Message(text=exc.user_message)
    return build_created(item, metric.title, next_run(item, deps), deps.settings.tz)


def list_for(deps: Deps, *, user: str | None, channel: str | None) -> Message:
    """`/metric subscriptions`: what `user` made and what posts into `channel`."""
    items = records.list_items(deps.store, creator=user or "-", channel=channel or "-")
    catalog = metric_service(deps).catalog
    titles = {m.name: m.title for m in catalog.metrics}
    return build_list(
        items,
        titles,
        {i.id: next_run(i, deps) for i in items},
        last_results(deps, items, user=user, channel=channel),
        deps.settings.tz,
        viewer=user,
    )


HIDDEN_RESULT = "not shown here (revenue data)"


def last_results(
    deps: Deps,
    items: list[Item],
    *,
    user: str | None = None,
    channel: str | None = None,
    operator: bool = False,
) -> dict[int, str]:
    """Each item's last run, as `user` may see it in `channel`: a revenue item's result
    (which may carry its number) only where its metric may be seen (`operator`: the CLI,
    which sees everything)."""
    runs = records.last_runs(deps.store, [i.job_name for i in items])
    catalog = metric_service(deps).catalog
    out = {}
    for item in items:
        metric = catalog.get(item.metric)
        if (
            not operator
            and metric is not None
            and not may_see_in(deps, metric, user=user, channel=channel)
        ):
            out[item.id] = HIDDEN_RESULT
            continue
        found = runs.get(item.job_name)
        if found:
            period, status, detail = found
            out[item.id] = f"{period}: {status}" + (f" ({detail})" if detail else "")
    return out


def _item_or_gone(deps: Deps, value: ItemValue, user: str | None) -> Item | Message:
    """The item a button names, if `user` may change it: only who set it up may pause,
    resume, delete or snooze it. The buttons are in messages others see too (an alert in
    a channel, the channel's list), so a click is not consent."""
    item = records.get(deps.store, value.id)
    if item is None:
        return build_done("That subscription or alert no longer exists.")
    if user is None or user != item.creator:
        return build_not_yours(item)
    return item


def pause_item(deps: Deps, item: Item, *, by: str) -> str:
    records.set_status(deps.store, item.id, deps.now(), Status.PAUSED, f"paused by {by}")
    return f"Paused `{item.job_name}`. Resume it from `/metric subscriptions`."


def resume_item(deps: Deps, item: Item) -> str:
    metric = metric_service(deps).catalog.get(item.metric)
    if metric is None or not allowed_in(deps, metric, item.channel):
        why = (
            "its metric is gone."
            if metric is None
            else refusal(metric, deps.settings, sharing=True)
        )
        return f"`{item.job_name}` cannot be resumed: {why}"
    records.set_status(deps.store, item.id, deps.now(), Status.ACTIVE, None)
    return f"Resumed `{item.job_name}`."


def delete_item(deps: Deps, item: Item) -> str:
    records.delete(deps.store, item.id)
    return f"Deleted `{item.job_name}`; nothing more will be posted for it."


def pause_button(deps: Deps, value: ItemValue, *, user: str | None) -> Message:
    item = _item_or_gone(deps, value, user)
    if isinstance(item, Message):
        return item
    return build_done(pause_item(deps, item, by=f"<@{user}>"))


def resume_button(deps: Deps, value: ItemValue, *, user: str | None) -> Message:
    item = _item_or_gone(deps, value, user)
    return item if isinstance(item, Message) else build_done(resume_item(deps, item))


def delete_button(deps: Deps, value: ItemValue, *, user: str | None) -> Message:
    item = _item_or_gone(deps, value, user)
    return item if isinstance(item, Message) else build_done(delete_item(deps, item))


def snooze_button(deps: Deps, value: ItemValue, *, user: str | None) -> Message:
    item = _item_or_gone(deps, value, user)
    if isinstance(item, Message):
        return item
    days = 7 if value.days == 7 else 1
    until = deps.now() + dt.timedelta(days=days)
    records.snooze(deps.store, item.id, deps.now(), until)
    return build_snoozed(item, until, deps.settings.tz)
