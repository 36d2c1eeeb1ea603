"""A hook message as an agent wrote it -> the `agent` record's payload (AgentData).

Everything in a hook payload is a claim of the agent: it is parsed defensively (any JSON, any
size up to the cap, any types), every string is bounded, and nothing here raises. What cannot
be parsed is still recorded, with `error` saying why, so a broken or hostile hook is visible.
"""

from __future__ import annotations

import shlex
from typing import Any

import msgspec

from logira.model.record import AgentData

MAX_PAYLOAD = 256 << 10  # bytes of hook JSON accepted (Claude's PreToolUse for a big Write can be large)
MAX_FIELD = 4096  # ids, paths, descriptions
MAX_COMMAND = 16384  # tool_input.command (matched against the exec'd argv, so keep a lot)

# Gemini CLI names its events differently; the join speaks Claude's names.
EVENT_ALIASES = {
    "BeforeTool": "PreToolUse",
    "AfterTool": "PostToolUse",
    "BeforeAgent": "UserPromptSubmit",
    "AfterAgent": "Stop",
}
KNOWN_AGENTS = ("claude", "codex", "gemini")

_decoder = msgspec.json.Decoder()


def _s(v: Any, cap: int = MAX_FIELD) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        if isinstance(v, (int, float, bool)):
            v = str(v)
        else:
            try:
                v = msgspec.json.encode(v).decode()
            except (TypeError, UnicodeDecodeError, OverflowError):
                return ""
    return v[:cap]


def command_of(tool_input: Any) -> str:
    """The shell command a tool input declares: `command` (Claude, Codex hooks) or `cmd` (Codex exec)."""
    if not isinstance(tool_input, dict):
        return ""
    cmd = tool_input.get("command", tool_input.get("cmd"))
    if isinstance(cmd, list) and all(isinstance(c, str) for c in cmd):
        # Codex's shell tool: ["bash", "-lc", "<script>"] — the script is what the model asked for
        if len(cmd) == 3 and cmd[1] in ("-lc", "-c"):
            return cmd[2][:MAX_COMMAND]
        return shlex.join(cmd)[:MAX_COMMAND]
    return _s(cmd, MAX_COMMAND)


def file_path_of(tool_input: Any) -> str:
    if not isinstance(tool_input, dict):
        return ""
    return _s(tool_input.get("file_path", tool_input.get("notebook_path", tool_input.get("path"))))


def _exit_code(resp: Any) -> int | None:
    if isinstance(resp, dict):
        for k in ("exit_code", "exitCode", "returnCode"):
            v = resp.get(k)
            if isinstance(v, int) and not isinstance(v, bool):
                return v
    return None


def _status(event: str, msg: dict[str, Any]) -> str:
    if event == "PostToolUseFailure":
        return "interrupted" if msg.get("is_interrupt") is True else "error"
    if event != "PostToolUse":
        return ""
    resp = msg.get("tool_response")
    if isinstance(resp, dict):
        if resp.get("interrupted") is True:
            return "interrupted"
        if resp.get("is_error") is True or resp.get("success") is False:
            return "error"
        code = _exit_code(resp)
        if code not in (None, 0):
            return "error"
    return "ok"


def parse_hook(payload: bytes, agent_hint: str, sender_pid: int, payload_bytes: int) -> AgentData:
    """The AgentData of one hook message; never raises (bad input -> `error` set)."""
    agent = agent_hint if agent_hint in KNOWN_AGENTS else ""
    base = AgentData(op="hook", source="hook", agent=agent, sender_pid=sender_pid,
                     payload_bytes=max(payload_bytes, len(payload)))  # fmt: skip
    if payload_bytes > MAX_PAYLOAD or len(payload) > MAX_PAYLOAD:
        base.error = f"oversized hook payload ({max(payload_bytes, len(payload))} > {MAX_PAYLOAD} bytes), not parsed"
        return base
    if not payload.strip():
        base.error = "empty hook payload"
        return base
    try:
        msg = _decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        base.error = f"hook payload is not JSON: {str(exc)[:200]}"
        return base
    if not isinstance(msg, dict):
        base.error = f"hook payload is a JSON {type(msg).__name__}, not an object"
        return base
    event = _s(msg.get("hook_event_name"), 64)
    event = EVENT_ALIASES.get(event, event)
    tool_input = msg.get("tool_input")
    base.event = event
    base.session_id = _s(msg.get("session_id"))
    base.tool_use_id = _s(msg.get("tool_use_id", msg.get("call_id")))
    base.tool_name = _s(msg.get("tool_name"), 256)
    base.command = command_of(tool_input)
    base.description = _s(tool_input.get("description") if isinstance(tool_input, dict) else "")
    base.file_path = file_path_of(tool_input)
    base.prompt_id = _s(msg.get("prompt_id"))
    base.agent_id = _s(msg.get("agent_id"))
    base.agent_type = _s(msg.get("agent_type"), 256)
    base.transcript_path = _s(msg.get("transcript_path"))
    base.cwd = _s(msg.get("cwd"))
    base.permission_mode = _s(msg.get("permission_mode"), 64)
    base.status = _status(event, msg)
    dur = msg.get("duration_ms")
    if isinstance(dur, (int, float)) and not isinstance(dur, bool) and 0 <= dur < 1 << 40:
        base.duration_ms = int(dur)
    base.exit_code = _exit_code(msg.get("tool_response"))
    if not event:
        base.error = "hook payload has no hook_event_name"
    return base


def hook_summary(d: AgentData) -> str:
    """`agent hook <event> <tool> <id>: <command or path>` (200 chars), or the parse error."""
    if d.error:
        return f"agent hook ({d.error})"[:200]
    parts = ["agent hook", d.event or "?"]
    if d.tool_name:
        parts.append(d.tool_name)
    if d.tool_use_id:
        parts.append(d.tool_use_id)
    text = " ".join(parts)
    what = d.command or d.file_path
    if what:
        text += ": " + what.replace("\n", " ")
    return text[:200]
