"""The Home tab: `app_home_opened` draws it (views.publish, after the ack); its "New data
request" button opens intake's request modal (views.open within the trigger's 3 s, so in
the listener itself). The flows are in bot/home/tab.py and bot/intake/modal.py."""

from __future__ import annotations

from pydantic import BaseModel
from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.deps import Deps
from bot.home.tab import publish_home
from bot.ids import Action, Event
from bot.intake import modal
from bot.intake.modal import Trigger
from handlers.errors import run_after_ack


class HomeOpened(BaseModel):
    user: str
    tab: str = "home"


def register(app: App, deps: Deps) -> None:
    listeners = HomeListeners(deps)
    app.event(Event.APP_HOME_OPENED.value)(listeners.handle_home_opened)
    app.action(Action.HOME_NEW_REQUEST)(listeners.handle_home_new_request)


class HomeListeners:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def handle_home_opened(self, body: dict, event: dict, context: BoltContext) -> None:
        opened = HomeOpened.model_validate(event)
        if opened.tab != "home":
            return  # the messages tab: nothing to draw
        run_after_ack(self.deps, context, body, None, publish_home, self.deps, opened.user)

    def handle_home_new_request(self, ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        modal.open_from_shortcut(self.deps, client, Trigger.model_validate(body))
