from __future__ import annotations

import io
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
