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
    assert hc.is_ours({"command": "/opt/l/bin/python3 -I -S '/opt/l/lib/python3.11/site-packages/logira/client/hook.py' --agent codex"})
    assert not hc.is_ours({"command": "mylogira hook"}) and not hc.is_ours({"command": "logira hooked"})
    assert not hc.is_ours({"command": "python3 /x/mylogira/client/hook.py"})
    assert not hc.is_ours({"command": "python3 /x/logira/client/hook.pyc"})


def test_a_reinstall_moves_an_older_form_of_our_command_in_place():
    old = hc.install({}, hc.AGENTS["claude"], "/usr/local/bin/logira hook --agent claude")
    new = hc.install(old, hc.AGENTS["claude"], CMD)
    cmds = [h["command"] for groups in new["hooks"].values() for g in groups for h in g["hooks"]]
    assert cmds and set(cmds) == {CMD} and len(cmds) == len(hc.AGENTS["claude"].events)
    assert hc.install(new, hc.AGENTS["claude"], CMD) == new
