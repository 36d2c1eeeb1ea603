"""Merging `logira hook` into agent configs: never clobber, idempotent, uninstall removes only ours."""

from __future__ import annotations

import pytest

from logira.agents import hookconfig as hc

CMD = "/usr/bin/logira hook --agent claude"


def test_install_keeps_everything_of_the_user_and_is_idempotent():
    doc = {
        "permissions": {"allow": ["Bash(npm test)"]},
        "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "my-guard"}]}]},
    }
    new = hc.install(doc, hc.AGENTS["claude"], CMD)
    assert new["permissions"] == doc["permissions"]
    pre = new["hooks"]["PreToolUse"]
    assert pre[0] == doc["hooks"]["PreToolUse"][0]  # the user's group untouched, ours appended
    assert pre[1] == {"matcher": "*", "hooks": [{"type": "command", "command": CMD, "timeout": 10}]}
    assert "matcher" not in new["hooks"]["SessionStart"][0]
    assert set(hc.hooked_events(new)) == set(hc.AGENTS["claude"].events)
    assert hc.install(new, hc.AGENTS["claude"], CMD) == new
    assert doc["hooks"]["PreToolUse"] == [pre[0]]  # the input was not mutated


def test_uninstall_removes_only_ours():
    doc = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done"},
                                         {"type": "command", "command": "'/opt/x/logira' hook --agent codex"}]}]},
           "model": "x"}  # fmt: skip
    out = hc.uninstall(hc.install(doc, hc.AGENTS["codex"], "logira hook --agent codex"))
    assert out == {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}]}, "model": "x"}
    assert hc.uninstall({"hooks": {"Stop": [{"hooks": [{"command": "logira hook"}]}]}}) == {}
    assert hc.uninstall({"a": 1}) == {"a": 1}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"hooks": []}', '{"hooks": {"Stop": {}}}'])
def test_unmergeable_config_is_refused_not_overwritten(text):
    with pytest.raises(hc.HookConfigError) as exc:
        hc.install(hc.parse_config(text, "settings.json"), hc.AGENTS["claude"], CMD, "settings.json")
    assert "\n" not in str(exc.value) and "by hand" in str(exc.value)


def test_is_ours_does_not_take_lookalikes():
    assert hc.is_ours({"command": "python -m logira.cli.main hook --agent claude"})
    assert not hc.is_ours({"command": "mylogira hook"}) and not hc.is_ours({"command": "logira hooked"})
