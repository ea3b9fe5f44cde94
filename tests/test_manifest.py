from __future__ import annotations

from bot.ids import Command, Shortcut
from bot.manifest import (
    IMPLIED_SCOPES,
    METHOD_SCOPES,
    ROOT,
    load_manifest,
    manifest_problems,
    methods_used,
    required_scopes,
)

MANIFEST = ROOT / "manifest.yml"


def test_manifest_and_code_agree():
    assert manifest_problems(MANIFEST) == []


def test_manifest_lists_every_command_and_shortcut_with_the_events_url():
    manifest = load_manifest(MANIFEST)
    commands = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    assert set(commands) == {c.value for c in Command}
    for command in commands.values():
        assert command["url"].endswith("/slack/events")
    assert {s["callback_id"] for s in manifest["features"]["shortcuts"]} == {
        s.value for s in Shortcut
    }
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/events")


def test_every_web_api_method_the_code_calls_has_a_known_scope():
    # A new client call must be added to METHOD_SCOPES (and its scope to the manifest).
    assert methods_used() <= set(METHOD_SCOPES)
    assert required_scopes() >= {"commands"}


def test_drift_is_reported_in_plain_words(tmp_path):
    manifest = load_manifest(MANIFEST)
    manifest["features"]["slash_commands"] = manifest["features"]["slash_commands"][:1]
    manifest["oauth_config"]["scopes"]["bot"].append("admin")
    import yaml

    drifted = tmp_path / "manifest.yml"
    drifted.write_text(yaml.safe_dump(manifest))
    problems = " ".join(manifest_problems(drifted))
    assert "commands handled in code but not in the manifest" in problems
    assert "'admin'" in problems
    assert set(IMPLIED_SCOPES) <= set(load_manifest(MANIFEST)["oauth_config"]["scopes"]["bot"])


def test_the_packaged_manifest_is_the_top_level_manifest():
    # Users paste the top-level manifest.yml into Slack; the installed bot reads the copy in
    # the package (bot/manifest.yml). Edit one, copy it over the other.
    from bot.manifest import packaged_manifest

    assert packaged_manifest().read_bytes() == MANIFEST.read_bytes(), (
        "manifest.yml and bot/manifest.yml differ: cp manifest.yml bot/manifest.yml"
    )
