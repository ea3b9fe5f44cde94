"""Every string Slack echoes back to us, in one place.

tests/test_manifest.py compares these with manifest.yml, so code and manifest cannot drift.
"""

from __future__ import annotations

from enum import StrEnum


class Command(StrEnum):
    METRIC = "/metric"
    DATA_REQUEST = "/data-request"


class Shortcut(StrEnum):
    """callback_id of global and message shortcuts."""

    NEW_REQUEST = "new_data_request"
    THREAD_TO_REQUEST = "thread_to_data_request"


class View(StrEnum):
    """callback_id of modals."""

    REQUEST = "data_request_modal"


class Action(StrEnum):
    """action_id of interactive elements."""

    METRIC_SHARE = "metric_share"
    METRIC_OPEN_REQUEST = "metric_open_request"
    REQUEST_TYPE_SELECT = "request_type_select"  # switches the modal to another form
    REQUEST_INPUT = "request_input"  # every other input in the request modal
    HOME_NEW_REQUEST = "home_new_request"  # the Home tab's "New data request" button
    METRIC_SUBSCRIBE = "metric_subscribe"  # on every /metric answer
    SUBSCRIPTION_PAUSE = "subscription_pause"
    SUBSCRIPTION_RESUME = "subscription_resume"
    SUBSCRIPTION_DELETE = "subscription_delete"
    ALERT_SNOOZE = "alert_snooze"  # a day
    ALERT_SNOOZE_WEEK = "alert_snooze_week"


class Event(StrEnum):
    """Events API subscriptions (manifest.yml settings.event_subscriptions.bot_events)."""

    APP_HOME_OPENED = "app_home_opened"
    MESSAGE_CHANNELS = "message.channels"  # replies in request threads, public channels
    MESSAGE_GROUPS = "message.groups"  # the same in private channels
    APP_MENTION = "app_mention"  # `@databot dau 7d` in a channel or thread


class Job(StrEnum):
    """Scheduled job ids (also the JOB argument of `databot post`)."""

    SPRINT_DIGEST = "sprint-digest"
    SPRINT_PLANNING = "sprint-planning"
    SPRINT_CHECKIN = "sprint-checkin"
    CODY_DAILY = "cody-daily"
    URGENT_POLL = "urgent-poll"
    URGENT_REMINDER = "urgent-reminder"
    FOLLOWUP_POLL = "followup-poll"
    ROLLUPS = "rollups"


class RequestBlock(StrEnum):
    """block_id of the request modal's fixed inputs; form questions use "q:<field id>"."""

    TYPE = "request_type"
    TITLE = "request_title"
    REQUESTER = "request_requester"
    URGENT = "request_urgent"
    DUE_DATE = "request_due_date"
    PEOPLE = "request_people"
    FREQUENCY = "request_frequency"
    BUSINESS_UNIT = "request_business_unit"
