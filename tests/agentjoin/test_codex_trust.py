"""Codex hook trust (logira/agents/codex_trust.py): Codex's key and hash, and the config.toml edit.

The expected hashes were reported by the real Codex 0.171 (`codex app-server`, `hooks/list`,
`currentHash`) for exactly these hooks; Codex then called each one `trusted` with the table
`edit_trust` writes. tests/agents run Codex itself on the result."""

from __future__ import annotations

import tomllib

import pytest

from logira.agents import codex_trust as ct
from logira.agents import hookconfig as hc

CMD = "/work/wt/agents/.venv/bin/python -m logira.cli.main hook --agent codex"
PATH = "/tmp/cxh/.codex/hooks.json"
CODEX_SAYS = {  # key -> currentHash, from codex 0.171 `hooks/list` on `logira agent hooks install codex`
    f"{PATH}:pre_tool_use:0:0": "sha256:63d0dc2adc39105fc48dfdcf8314dcc6afedf86a0cf42f59d7132519e7f98721",
    f"{PATH}:post_tool_use:0:0": "sha256:428e76d4e495997a09c0a001760333f826376f519a6731c72699523cc31f8ad7",
    f"{PATH}:session_start:0:0": "sha256:c1d86067ebc15005a18310d7b7aacb3b335ca75d56940c3695f3add8699a4f25",
    f"{PATH}:user_prompt_submit:0:0": "sha256:f09f12e0e0a063ef3b74179eb6581b609c1d4bda23b718d12224730a5009de3b",
    f"{PATH}:stop:0:0": "sha256:57c3e7a20dd93abd383c3da8b29bf81aaab788897b54c46e159f357736fa9f62",
}
GUARD = {"matcher": "Bash", "hooks": [{"type": "command", "command": "my-guard"}]}
GUARD_HASH = "sha256:87e415b5bb4e21e434f2ff47995c4d2caca9886bee34c2a0894f97d7802ec513"  # codex said so too
SPEC = hc.AGENTS["codex"]


def installed(doc: dict | None = None, command: str = CMD) -> dict:
    return hc.install(doc or {}, SPEC, command)


def test_key_and_hash_are_codexs():
    hooks = ct.hooks_of(installed(), PATH)
    assert {h.key: h.hash for h in hooks} == CODEX_SAYS
    assert all(h.ours and h.command == CMD for h in hooks)
    assert ct.hook_hash("PreToolUse", "Bash", GUARD["hooks"][0]) == GUARD_HASH
    # the normalization: timeout 600 by default, at least 1; no matcher for events that take none
    h = {"type": "command", "command": "x"}
    assert ct.hook_hash("PreToolUse", "*", h) == ct.hook_hash("PreToolUse", "*", {**h, "timeout": 600})
    assert ct.hook_hash("PreToolUse", "*", {**h, "timeout": 0}) == ct.hook_hash("PreToolUse", "*", {**h, "timeout": 1})
    assert ct.hook_hash("Stop", "anything", h) == ct.hook_hash("Stop", None, h)
    assert ct.hook_hash("PreToolUse", "Bash", h) != ct.hook_hash("PreToolUse", None, h)
    assert ct.hook_hash("PreToolUse", None, {**h, "statusMessage": "s"}) != ct.hook_hash("PreToolUse", None, h)
    # what we cannot normalize is not hashed (and so never trusted by us)
    assert ct.hook_hash("Stop", None, {"type": "prompt"}) is None
    assert ct.hook_hash("Stop", None, {**h, "commandWindows": "y"}) is None
    assert ct.hook_hash("Stop", None, {**h, "timeout": "5"}) is None
    assert ct.event_label("UserPromptSubmit") == "user_prompt_submit"


def test_install_trusts_only_our_exact_command():
    new = installed()
    changes, foreign = ct.reconcile({}, new, PATH, {}, CMD)
    assert changes == CODEX_SAYS and not foreign
    # already trusted: nothing to change; trust missing for an already installed hook: written
    assert ct.reconcile(new, new, PATH, dict(CODEX_SAYS), CMD) == ({}, [])
    assert ct.reconcile(new, new, PATH, {}, CMD)[0] == CODEX_SAYS
    # a logira entry running something else (hand-edited, or another logira) is not trusted
    edited = installed(command=CMD + "; curl evil")
    changes, foreign = ct.reconcile(edited, edited, PATH, {}, CMD)
    assert changes == {} and {h.event for h in foreign} == set(SPEC.events)
    # uninstall (no command to trust) removes our trust
    changes, _ = ct.reconcile(new, hc.uninstall(new), PATH, dict(CODEX_SAYS), None)
    assert changes == dict.fromkeys(CODEX_SAYS)


def test_uninstall_moves_the_users_trust_with_their_hook():
    """Codex's key is positional: a user hook after ours moves down when ours goes."""
    doc = installed()
    doc["hooks"]["PreToolUse"].append(GUARD)  # the user added their guard after logira's group
    trusted = {**CODEX_SAYS, f"{PATH}:pre_tool_use:1:0": GUARD_HASH}
    changes, _ = ct.reconcile(doc, hc.uninstall(doc), PATH, trusted, None)
    assert changes[f"{PATH}:pre_tool_use:0:0"] == GUARD_HASH  # the guard's trust, at its new place
    assert changes[f"{PATH}:pre_tool_use:1:0"] is None
    # a guard the user never trusted does not inherit logira's trust at its new place
    changes, _ = ct.reconcile(doc, hc.uninstall(doc), PATH, dict(CODEX_SAYS), None)
    assert changes[f"{PATH}:pre_tool_use:0:0"] is None
    # installing after the user's hooks never moves theirs
    changes, _ = ct.reconcile({"hooks": {"PreToolUse": [GUARD]}}, installed({"hooks": {"PreToolUse": [GUARD]}}),
                              PATH, {f"{PATH}:pre_tool_use:0:0": GUARD_HASH}, CMD)  # fmt: skip
    assert f"{PATH}:pre_tool_use:0:0" not in changes and changes[f"{PATH}:pre_tool_use:1:0"]


def test_status_trusted_modified_untrusted():
    (pre,) = [h for h in ct.hooks_of(installed(), PATH) if h.event == "PreToolUse"]
    assert ct.status_of(pre, dict(CODEX_SAYS)) == "trusted"
    assert ct.status_of(pre, {pre.key: "sha256:other"}) == "modified"
    assert ct.status_of(pre, {}) == "untrusted"


USER_CONFIG = """\
# my settings
model = "o3"  # a comment that stays

[features]
plugins = false

[hooks.state."/somewhere/else.json:stop:0:0"]
enabled = false

[projects."/home/u/src"]
trust_level = "trusted"
"""


def test_edit_trust_on_a_fresh_config():
    out = ct.edit_trust("", CODEX_SAYS, "config.toml")
    assert ct.trusted_hashes(tomllib.loads(out)) == CODEX_SAYS
    assert out.startswith('[hooks.state."/tmp/cxh/.codex/hooks.json:') and out.endswith('"\n')
    assert ct.edit_trust(out, dict.fromkeys(CODEX_SAYS), "config.toml") == ""


def test_edit_trust_keeps_every_byte_of_the_users_config():
    out = ct.edit_trust(USER_CONFIG, CODEX_SAYS, "config.toml")
    assert out.startswith(USER_CONFIG)  # appended, nothing of the user's rewritten
    doc = tomllib.loads(out)
    assert doc["hooks"]["state"]["/somewhere/else.json:stop:0:0"] == {"enabled": False}
    assert doc["projects"] == {"/home/u/src": {"trust_level": "trusted"}}
    # a new hash replaces the old one in place; removing restores the user's file exactly
    key = f"{PATH}:stop:0:0"
    again = ct.edit_trust(out, {key: "sha256:new"}, "config.toml")
    assert again.count("sha256:new") == 1 and ct.trusted_hashes(tomllib.loads(again))[key] == "sha256:new"
    assert ct.edit_trust(out, dict.fromkeys(CODEX_SAYS), "config.toml") == USER_CONFIG
    # no trailing newline in the user's file: still a valid document
    assert tomllib.loads(ct.edit_trust('model = "o3"', CODEX_SAYS, "c"))["model"] == "o3"


def test_edit_trust_inside_a_table_the_user_has():
    """The user disabled our hook in /hooks (enabled = false): we add the hash, and later remove
    only the hash, never their choice."""
    key = f"{PATH}:stop:0:0"
    text = f'[hooks.state."{key}"]\nenabled = false\n'
    out = ct.edit_trust(text, {key: "sha256:x"}, "c")
    assert tomllib.loads(out)["hooks"]["state"][key] == {"enabled": False, "trusted_hash": "sha256:x"}
    assert ct.edit_trust(out, {key: None}, "c") == text


@pytest.mark.parametrize(
    "text",
    [
        'hooks = { state = {} }\n',  # an inline table cannot be extended
        f'[hooks.state]\n"{PATH}:stop:0:0" = {{ trusted_hash = "sha256:old" }}\n',  # not its own table
        f'hooks.state."{PATH}:stop:0:0".trusted_hash = "sha256:old"\n',  # dotted keys
        'hooks = 3\n',
    ],
)
def test_edit_trust_refuses_what_it_cannot_edit_in_place(text):
    with pytest.raises(hc.HookConfigError) as exc:
        ct.edit_trust(text, {f"{PATH}:stop:0:0": "sha256:new"}, "config.toml")
    assert "\n" not in str(exc.value) and "by hand" in str(exc.value)


def test_invalid_toml_is_refused_and_keys_are_escaped():
    with pytest.raises(hc.HookConfigError) as exc:
        ct.parse_toml("model = ", "config.toml")
    assert "not valid TOML" in str(exc.value) and "\n" not in str(exc.value)
    odd = '/home/a "b"\\c\x7f/.codex/hooks.json:stop:0:0'
    out = ct.edit_trust("", {odd: "sha256:x"}, "c")
    assert ct.trusted_hashes(tomllib.loads(out)) == {odd: "sha256:x"}
    assert ct.edit_trust(out, {odd: None}, "c") == ""


def test_hooks_disabled_feature():
    assert ct.hooks_disabled({"features": {"hooks": False}})
    assert ct.hooks_disabled({"features": {"codex_hooks": False}})
    assert not ct.hooks_disabled({"features": {"plugins": False}}) and not ct.hooks_disabled({})
