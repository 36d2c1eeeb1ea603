"""Codex's hook trust (pure): which hooks of hooks.json Codex runs, and the one table of the user's
`config.toml` that says so.

Codex (0.171) runs a user or project hook only when the user trusted it: the user layer's
`config.toml` has `[hooks.state."<key>"]` with `trusted_hash = "<hash>"` equal to the hook's hash
now (else the hook is "untrusted", or "modified" when the hash differs). Both are Codex's own:
- key: `<absolute path of hooks.json>:<event, snake_case>:<group index>:<handler index>` (positions
  in that event's list and in the group; `$HOME` as given, symlinks not resolved);
- hash: `sha256:` + SHA-256 of the compact, key-sorted JSON of the normalized hook,
  `{"event_name": "pre_tool_use", "matcher": "*", "hooks": [{"type": "command", "command": …,
  "timeout": 600, "async": false}]}` (timeout defaults to 600 s, at least 1; `matcher` only for the
  events that take one; `statusMessage` when set; absent fields are left out).
Checked against the real binary: `codex app-server`'s `hooks/list` reports the same `key` and
`currentHash`, and reports the hook `trusted` with such a table (tests/agentjoin/test_codex_trust.py
holds values taken from it; tests/agents run Codex on the result, without
`--dangerously-bypass-hook-trust`). Codex's TUI (`/hooks`) writes the same table form.

logira writes trust only for its own entries whose command is exactly the one it installs, and
moves the user's existing trust when removing logira's entry shifts the positions of the user's
hooks (the key is positional). The config is edited as text, one table at a time, and the result is
parsed again and must equal the old document with exactly those changes, else nothing is written.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
from typing import Any

import msgspec

from logira.agents.hookconfig import HookConfigError, is_ours

# Codex ignores a group's matcher for these events (it is not part of their identity either).
_NO_MATCHER = frozenset({"PreCompact", "PostCompact", "UserPromptSubmit", "Stop"})
# The fields of a command hook Codex normalizes; a hook with any other field is not hashed by us.
_KNOWN_FIELDS = frozenset({"type", "command", "timeout", "async", "statusMessage"})
DEFAULT_TIMEOUT = 600


class CodexHook(msgspec.Struct, frozen=True):
    event: str
    group: int
    handler: int
    key: str
    hash: str | None  # None: not a command hook we can hash (Codex may still run it)
    ours: bool
    command: str


def event_label(event: str) -> str:
    """Codex's snake_case name of an event (`PreToolUse` -> `pre_tool_use`)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", event).lower()


def hook_key(hooks_path: str, event: str, group: int, handler: int) -> str:
    return f"{hooks_path}:{event_label(event)}:{group}:{handler}"


def canonical_json(value: Any) -> bytes:
    """serde_json's compact output of a key-sorted value (UTF-8, no ASCII escaping)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def hook_hash(event: str, matcher: Any, handler: Any) -> str | None:
    """The hash Codex trusts for this command hook; None if it is not one we can normalize."""
    if not isinstance(handler, dict) or handler.get("type") != "command" or set(handler) - _KNOWN_FIELDS:
        return None
    command, timeout = handler.get("command"), handler.get("timeout", DEFAULT_TIMEOUT)
    is_async, status = handler.get("async", False), handler.get("statusMessage")
    if not isinstance(command, str) or not command.strip() or not isinstance(is_async, bool):
        return None
    if timeout is None:
        timeout = DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
        return None
    norm: dict[str, Any] = {"type": "command", "command": command, "timeout": max(timeout, 1), "async": is_async}
    if status is not None:
        if not isinstance(status, str):
            return None
        norm["statusMessage"] = status
    identity: dict[str, Any] = {"event_name": event_label(event), "hooks": [norm]}
    if event not in _NO_MATCHER and matcher is not None:
        if not isinstance(matcher, str):
            return None
        identity["matcher"] = matcher
    return "sha256:" + hashlib.sha256(canonical_json(identity)).hexdigest()


def hooks_of(doc: dict[str, Any], hooks_path: str) -> list[CodexHook]:
    """Every handler of a hooks.json document, with its Codex key and hash, in file order."""
    table = doc.get("hooks")
    out: list[CodexHook] = []
    if not isinstance(table, dict):
        return out
    for event, groups in table.items():
        if not isinstance(groups, list):
            continue
        for gi, group in enumerate(groups):
            if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
                continue
            for hi, handler in enumerate(group["hooks"]):
                command = handler.get("command") if isinstance(handler, dict) else None
                out.append(CodexHook(
                    event, gi, hi, hook_key(hooks_path, event, gi, hi),
                    hook_hash(event, group.get("matcher"), handler), is_ours(handler),
                    command if isinstance(command, str) else "",
                ))  # fmt: skip
    return out


def exact_entry(handler_command: str, timeout: int | None) -> dict[str, Any]:
    """The entry logira installs (hookconfig.install), the only one it ever trusts."""
    entry: dict[str, Any] = {"type": "command", "command": handler_command}
    if timeout is not None:
        entry["timeout"] = timeout
    return entry


def _exact(doc: dict[str, Any], hook: CodexHook, trust_command: str | None, timeout: int | None) -> bool:
    if trust_command is None:
        return False
    handler = doc["hooks"][hook.event][hook.group]["hooks"][hook.handler]
    return bool(handler == exact_entry(trust_command, timeout))


def reconcile(
    old: dict[str, Any],
    new: dict[str, Any],
    hooks_path: str,
    trusted: dict[str, str],
    trust_command: str | None,
    timeout: int | None = None,
) -> tuple[dict[str, str | None], list[CodexHook]]:
    """Trust changes for going from hooks document `old` to `new` (key -> hash to set, or None to
    remove), and logira entries left untrusted because their command is not `trust_command`.

    - logira's entries of `new` running exactly `trust_command` get their hash;
    - the user's hooks keep their order (install/uninstall add or remove only logira's entries): a
      hook that moved takes its trust along if that trust was for its content, and a key it moves
      onto never keeps a trust that was not for it;
    - keys that no longer name any hook lose their trust (only ours or moved ones: other stale
      entries of the user are left alone)."""
    before, after = hooks_of(old, hooks_path), hooks_of(new, hooks_path)
    desired: dict[str, str | None] = {}
    for event in {h.event for h in before} | {h.event for h in after}:
        theirs_old = [h for h in before if h.event == event and not h.ours]
        theirs_new = [h for h in after if h.event == event and not h.ours]
        for o, n in zip(theirs_old, theirs_new, strict=False):
            if o.key == n.key:
                continue
            if n.hash is not None and trusted.get(o.key) == o.hash == n.hash:
                desired[n.key] = n.hash
            elif n.hash is None or trusted.get(n.key) != n.hash:
                desired.setdefault(n.key, None)
    new_keys = {h.key for h in after}
    for h in before:
        if h.key not in new_keys:
            desired.setdefault(h.key, None)
    foreign: list[CodexHook] = []
    for h in after:
        if not h.ours:
            continue
        if h.hash is not None and _exact(new, h, trust_command, timeout):
            desired[h.key] = h.hash
        elif trusted.get(h.key) != h.hash:
            foreign.append(h)
    return {k: v for k, v in desired.items() if trusted.get(k) != v}, foreign


def status_of(hook: CodexHook, trusted: dict[str, str]) -> str:
    """`trusted`, `modified` (trusted once, changed since) or `untrusted`, as Codex would say."""
    have = trusted.get(hook.key)
    if have is None:
        return "untrusted"
    return "trusted" if have == hook.hash else "modified"


# -- config.toml


def parse_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HookConfigError(f"{where} is not valid TOML ({exc}); fix it by hand, logira will not overwrite it") from None


def trusted_hashes(config: dict[str, Any]) -> dict[str, str]:
    """key -> trusted_hash of `[hooks.state]` (what Codex reads from the user layer)."""
    hooks = config.get("hooks")
    state = hooks.get("state") if isinstance(hooks, dict) else None
    if not isinstance(state, dict):
        return {}
    return {
        k.strip(): v["trusted_hash"]
        for k, v in state.items()
        if isinstance(v, dict) and isinstance(v.get("trusted_hash"), str)
    }


def hooks_disabled(config: dict[str, Any]) -> bool:
    """`[features] hooks = false` (or its old name `codex_hooks`): Codex runs no hook at all."""
    features = config.get("features")
    return isinstance(features, dict) and any(features.get(k) is False for k in ("hooks", "codex_hooks"))


def toml_string(value: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, plus DEL, which TOML wants escaped."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


_HEADER = re.compile(r"^[ \t]*\[(?!\[)(?P<body>[^\n]*)\][ \t]*(?:#[^\n]*)?$")
_ANY_HEADER = re.compile(r"^[ \t]*\[")
_STATE_HEADER = re.compile(
    r"""^[ \t]*hooks[ \t]*\.[ \t]*state[ \t]*\.[ \t]*(?P<key>"(?:[^"\\]|\\.)*"|'[^']*')[ \t]*$"""
)
_TRUSTED_LINE = re.compile(r"^[ \t]*trusted_hash[ \t]*=")
_KEY_LINE = re.compile(r"^[ \t]*[^#\s]")


def _state_table_key(line: str) -> str | None:
    m = _HEADER.match(line.rstrip("\r\n"))
    s = _STATE_HEADER.match(m["body"]) if m else None
    if not s:
        return None
    try:
        return str(tomllib.loads(f"k = {s['key']}")["k"])
    except tomllib.TOMLDecodeError:
        return None


def _section(lines: list[str], key: str) -> tuple[int, int] | None:
    """[header line, end) of the `[hooks.state."<key>"]` table written in that (Codex's) form."""
    for i, line in enumerate(lines):
        if _state_table_key(line) == key:
            end = next((j for j in range(i + 1, len(lines)) if _ANY_HEADER.match(lines[j])), len(lines))
            return i, end
    return None


def _expected(config: dict[str, Any], changes: dict[str, str | None]) -> dict[str, Any]:
    out = copy.deepcopy(config)
    hooks = out.setdefault("hooks", {})
    state = hooks.setdefault("state", {})
    for key, value in changes.items():
        if value is None:
            if key in state:
                state[key].pop("trusted_hash", None)
                if not state[key]:
                    del state[key]
        else:
            state.setdefault(key, {})["trusted_hash"] = value
    return _pruned(out)


def _pruned(config: dict[str, Any]) -> dict[str, Any]:
    hooks = config.get("hooks")
    if isinstance(hooks, dict):
        if hooks.get("state") == {}:
            del hooks["state"]
        if not hooks:
            del config["hooks"]
    return config


def edit_trust(text: str, changes: dict[str, str | None], where: str) -> str:
    """`text` (a config.toml) with each key's `trusted_hash` set (or removed, for None), every other
    byte kept. HookConfigError (one line) when that cannot be done by editing only those tables."""
    config = parse_toml(text, where)
    hooks = config.get("hooks", {})
    state = hooks.get("state", {}) if isinstance(hooks, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, dict) for v in state.values()):
        raise HookConfigError(f"{where}: hooks.state is not a table of tables; fix it by hand, logira will not overwrite it")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    appended: list[str] = []
    for key, value in changes.items():
        found = _section(lines, key)
        if found is None:
            if key in state and (value is not None or "trusted_hash" in state[key]):
                raise HookConfigError(
                    f"{where}: hooks.state.{toml_string(key)} is not written as its own table; "
                    + (f"set trusted_hash = \"{value}\" in it by hand" if value else "remove its trusted_hash by hand")
                )
            if value is not None:
                appended += ["\n", f"[hooks.state.{toml_string(key)}]\n", f"trusted_hash = {toml_string(value)}\n"]
            continue
        start, end = found
        body = lines[start + 1 : end]
        at = next((i for i, ln in enumerate(body) if _TRUSTED_LINE.match(ln)), None)
        if value is not None:
            line = f"trusted_hash = {toml_string(value)}\n"
            if at is None:
                body.insert(0, line)
            else:
                body[at] = line
            lines[start + 1 : end] = body
        elif at is not None:
            del body[at]
            if any(_KEY_LINE.match(ln) for ln in body):
                lines[start + 1 : end] = body
            else:  # the table held only the trust: remove it, and the blank line before it
                first = start - 1 if start > 0 and not lines[start - 1].strip() else start
                lines[first:end] = [ln for ln in body if ln.strip()]
    out = "".join(lines + appended)
    if not text and out.startswith("\n"):
        out = out[1:]
    try:
        got = _pruned(tomllib.loads(out))
    except tomllib.TOMLDecodeError:
        got = None
    if got != _expected(config, changes):
        raise HookConfigError(
            f"{where}: cannot record the trust of logira's hook without rewriting your own [hooks] "
            "tables; add the keys and hashes `logira agent hooks status codex` lists by hand"
        )
    return out
