"""Logging, configured once by the CLI. A filter redacts secrets from every record, so a
token that reaches a log line (an exception message, a URL) never reaches the log output."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

from pydantic import SecretStr
from pythonjsonlogger.json import JsonFormatter

from bot.settings import Settings

# Token shapes of Slack (xoxb-, xoxp-, xapp-, ...) and GitHub (ghp_, github_pat_, ...).
TOKEN_PATTERN = re.compile(
    r"\b(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,})"
)
REDACTED = "[redacted]"
# Slack's legacy verification token travels in every slash-command body (`token=...`) and
# in interaction payloads (`"token": "..."`); Bolt's debug logs print bodies.
BODY_TOKEN = re.compile(r"(\btoken=)[^&\s\"']+|(\"token\"\s*:\s*\")[^\"]*")


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = TOKEN_PATTERN.sub(REDACTED, text)
        return BODY_TOKEN.sub(lambda m: (m.group(1) or m.group(2)) + REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def secret_values(settings: Settings) -> list[str]:
    return [
        value.get_secret_value()
        for value in settings.__dict__.values()
        if isinstance(value, SecretStr) and value.get_secret_value()
    ]


class RedactedJsonFormatter(JsonFormatter):
    """JSON lines whose traceback is the one the filter redacted (`exc_text`): the base
    class would format `exc_info` afresh, secrets and all."""

    def format(self, record: logging.LogRecord) -> str:
        if not record.exc_text:
            return super().format(record)
        exc_info, record.exc_info = record.exc_info, None
        try:
            return super().format(record)
        finally:
            record.exc_info = exc_info


def formatter(log_format: str) -> logging.Formatter:
    """`text` for a terminal; `json`: one object per line (time, level, logger, message, and
    extras such as the correlation id `ref` of an unexpected error)."""
    if log_format == "json":
        return RedactedJsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure_logging(settings: Settings, *, level: int | str = logging.INFO, stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(settings.log_format))
    # On the handler, so records from every library logger pass through it.
    handler.addFilter(RedactSecrets(secret_values(settings)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in (
        "alembic",
        "urllib3",
        "waitress.queue",
        "apscheduler.executors.default",
        "github",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
