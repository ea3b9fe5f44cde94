"""Domain errors: each carries a message that is safe to show a user in Slack or the CLI.

Listeners never catch these themselves: the one error handler (handlers/errors.py) maps
them to the surface the user is on (ephemeral reply, modal errors, CLI message).
"""

from __future__ import annotations


class DatabotError(Exception):
    """An expected failure with a user-safe explanation."""

    def __init__(self, user_message: str, *, detail: str | None = None) -> None:
        super().__init__(detail or user_message)
        self.user_message = user_message


class ConfigError(DatabotError):
    """Settings are missing or invalid; the message names the variable to set."""


class WarehouseError(DatabotError):
    """The warehouse refused or failed a query."""


class WarehouseTimeout(WarehouseError):
    """A query ran past its time limit (and was cancelled where the backend allows)."""


class WarehouseTooCostly(WarehouseError):
    """A dry run priced the query over the byte cap, so it was not sent (nothing billed)."""

    def __init__(self, user_message: str, *, estimated: int, cap: int) -> None:
        super().__init__(user_message, detail=f"estimated {estimated} bytes > cap {cap}")
        self.estimated = estimated
        self.cap = cap


class InputError(DatabotError):
    """The user typed something we cannot use; the message says what would work."""


class NotAllowedError(DatabotError):
    """The user or channel may not see this (e.g. revenue outside allowed channels)."""


class GitHubUnavailable(DatabotError):
    """GitHub failed or rate-limited us; the work is queued, not lost."""
