from __future__ import annotations

import io
import json
import logging

from bot.logs import configure_logging
from bot.settings import Settings


def test_secrets_and_token_shapes_never_reach_log_output(tmp_path):
    settings = Settings(
        _env_file=None,
        slack_bot_token="xoxb-111-222-secretvalue",
        slack_signing_secret="signing-secret-abcdef",
        github_token="plain-github-secret-123456",
        data_dir=tmp_path,
    )
    out = io.StringIO()
    configure_logging(settings, stream=out)
    log = logging.getLogger("databot.test")
    log.info("token %s and secret %s", "xoxb-111-222-secretvalue", "signing-secret-abcdef")
    log.warning("an unrelated token xapp-1-A0-999-zzz and ghp_%s", "a" * 36)
    try:
        raise RuntimeError("request failed for plain-github-secret-123456")
    except RuntimeError:
        log.exception("GitHub call failed")
    text = out.getvalue()
    for secret in (
        "xoxb-111-222-secretvalue",
        "signing-secret-abcdef",
        "plain-github-secret-123456",
        "xapp-1-A0-999-zzz",
        "ghp_" + "a" * 36,
    ):
        assert secret not in text
    assert text.count("[redacted]") >= 5
    assert "GitHub call failed" in text and "RuntimeError" in text


def test_json_logs_are_one_object_per_line_with_secrets_redacted(tmp_path):
    settings = Settings(
        _env_file=None,
        slack_bot_token="xoxb-111-222-secretvalue",
        log_format="json",
        data_dir=tmp_path,
    )
    out = io.StringIO()
    configure_logging(settings, stream=out)
    log = logging.getLogger("databot.test")
    log.info("posted with %s", "xoxb-111-222-secretvalue")
    try:
        raise RuntimeError("boom xoxb-111-222-secretvalue")
    except RuntimeError:
        log.exception("failed", extra={"ref": "ab12cd34"})
    lines = out.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 2
    assert records[0]["message"] == "posted with [redacted]"
    assert records[0]["level"] == "INFO" and records[0]["logger"] == "databot.test"
    assert records[1]["ref"] == "ab12cd34" and "RuntimeError" in records[1]["exc_info"]
    assert "secretvalue" not in out.getvalue()
