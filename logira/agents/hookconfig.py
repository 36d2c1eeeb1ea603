"""Putting `logira hook` into an agent's hook configuration, and taking it out again (pure).

Claude Code (`settings.json`), Codex (`hooks.json`) and Gemini CLI (`settings.json`) share one
shape: `{"hooks": {<event>: [{"matcher": …, "hooks": [{"type": "command", "command": …}]}]}}`.
Merging only ever adds our own group to an event or removes our own entries: every other key,
event, group and hook of the user stays as it was. Ours is recognised by its command line
(`… logira hook …` or `… logira/client/hook.py …`), so a re-install is a no-op (or moves an older form
of our command to the new one in place) and an uninstall never touches anyone else's hook.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import msgspec


class HookConfigError(Exception):
    """The configuration cannot be merged without clobbering it (one line, says what to do)."""


class AgentHooks(msgspec.Struct, frozen=True):
    agent: str
    user_path: str  # relative to the home directory
    project_path: str  # relative to the project directory
    events: tuple[str, ...]
    tool_events: tuple[str, ...]  # events whose groups take a tool matcher
    matcher: str
    timeout: int | None  # seconds, for agents that take one in this unit


AGENTS: dict[str, AgentHooks] = {
    "claude": AgentHooks(
        "claude", ".claude/settings.json", ".claude/settings.json",
        ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure",
         "SubagentStart", "SubagentStop", "Stop", "SessionEnd"),
        ("PreToolUse", "PostToolUse", "PostToolUseFailure"), "*", 10,
    ),
    "codex": AgentHooks(
        "codex", ".codex/hooks.json", ".codex/hooks.json",
        ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"),
        ("PreToolUse", "PostToolUse"), "*", None,
    ),
    "gemini": AgentHooks(
        "gemini", ".gemini/settings.json", ".gemini/settings.json",
        ("SessionStart", "SessionEnd", "BeforeAgent", "AfterAgent", "BeforeTool", "AfterTool"),
        ("BeforeTool", "AfterTool"), ".*", None,
    ),
}  # fmt: skip

# `logira hook`, `python -m logira.cli.main hook`, or the installed form `python -I -S …/logira/client/hook.py`:
# in a hook configuration's command string, and in the argv of the process it runs (agents/runtime.py)
HOOK_COMMAND = re.compile(
    r"(?:^|[/\s])logira(?:\.cli\.main)?['\"]?\s+hook(?:\s|$)"
    r"|(?:^|[/\s'\"])logira/client/hook\.py['\"]?(?:\s|$)"
)


def is_ours(hook: Any) -> bool:
    """A hook entry whose command runs `logira hook`."""
    return isinstance(hook, dict) and isinstance(hook.get("command"), str) and bool(HOOK_COMMAND.search(hook["command"]))


def _hooks_table(doc: dict[str, Any], where: str) -> dict[str, Any]:
    table = doc.get("hooks", {})
    if not isinstance(table, dict):
        raise HookConfigError(f"{where}: \"hooks\" is not an object; fix it by hand, logira will not overwrite it")
    return table


def parse_config(text: str, where: str) -> dict[str, Any]:
    """The configuration document ({} for an empty file); HookConfigError if it is not a JSON object."""
    if not text.strip():
        return {}
    try:
        doc = msgspec.json.decode(text.encode())
    except msgspec.DecodeError as exc:
        raise HookConfigError(f"{where} is not valid JSON ({exc}); fix it by hand, logira will not overwrite it") from None
    if not isinstance(doc, dict):
        raise HookConfigError(f"{where} is not a JSON object; fix it by hand, logira will not overwrite it")
    return doc


def install(doc: dict[str, Any], spec: AgentHooks, command: str, where: str = "config") -> dict[str, Any]:
    """A copy of `doc` with our hook on every event of `spec` (events already hooked are left as they are)."""
    out = copy.deepcopy(doc)
    table = _hooks_table(out, where)
    out["hooks"] = table
    for event in spec.events:
        groups = table.setdefault(event, [])
        if not isinstance(groups, list):
            raise HookConfigError(f"{where}: hooks.{event} is not a list; fix it by hand, logira will not overwrite it")
        ours = [h for g in groups if isinstance(g, dict) for h in g.get("hooks") or [] if is_ours(h)]
        if ours:
            for h in ours:  # an older form of our command (an upgrade): the same entry, the new command
                h["command"] = command
            continue
        entry: dict[str, Any] = {"type": "command", "command": command}
        if spec.timeout is not None:
            entry["timeout"] = spec.timeout
        group: dict[str, Any] = {"hooks": [entry]}
        if event in spec.tool_events:
            group = {"matcher": spec.matcher, **group}
        groups.append(group)
    return out


def uninstall(doc: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """A copy of `doc` without any `logira hook` entry; groups/events left empty by that are removed."""
    out = copy.deepcopy(doc)
    if "hooks" not in out:
        return out
    table = _hooks_table(out, where)
    for event in list(table):
        groups = table[event]
        if not isinstance(groups, list):
            continue
        kept = []
        for g in groups:
            if isinstance(g, dict) and isinstance(g.get("hooks"), list) and any(is_ours(h) for h in g["hooks"]):
                rest = [h for h in g["hooks"] if not is_ours(h)]
                if not rest:
                    continue
                g = {**g, "hooks": rest}
            kept.append(g)
        if kept:
            table[event] = kept
        else:
            del table[event]
    if not table:
        del out["hooks"]
    return out


def hooked_events(doc: dict[str, Any]) -> list[str]:
    """Events that run `logira hook` in this document."""
    table = doc.get("hooks")
    if not isinstance(table, dict):
        return []
    out = []
    for event, groups in table.items():
        if isinstance(groups, list) and any(
            isinstance(g, dict) and isinstance(g.get("hooks"), list) and any(is_ours(h) for h in g["hooks"])
            for g in groups
        ):
            out.append(event)
    return out


def render(doc: dict[str, Any]) -> str:
    """The document as written back: 2-space indented JSON, newline-terminated."""
    return msgspec.json.format(msgspec.json.encode(doc), indent=2).decode() + "\n"
