"""Hook payload parsing: bounded, never raising, errors recorded."""

from __future__ import annotations

import json

from logira.agents.hookmsg import MAX_COMMAND, MAX_PAYLOAD, hook_summary, parse_hook


def test_claude_pre_and_post_tool_use():
    pre = {"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "toolu_1",
           "tool_input": {"command": "npm test", "description": "Run tests"}, "transcript_path": "/t.jsonl",
           "permission_mode": "bypassPermissions", "agent_id": "a1"}  # fmt: skip
    d = parse_hook(json.dumps(pre).encode(), "claude", 42, 0)
    assert (d.event, d.tool_use_id, d.command, d.description, d.agent_id, d.sender_pid) == (
        "PreToolUse", "toolu_1", "npm test", "Run tests", "a1", 42)
    assert d.declared and not d.error and d.agent == "claude"
    post = {**pre, "hook_event_name": "PostToolUse", "tool_response": {"exit_code": 2}, "duration_ms": 15}
    d = parse_hook(json.dumps(post).encode(), "claude", 42, 0)
    assert d.status == "error" and d.exit_code == 2 and d.duration_ms == 15
    assert hook_summary(d).startswith("agent hook PostToolUse Bash toolu_1: npm test")


def test_gemini_names_and_codex_list_commands():
    d = parse_hook(b'{"hook_event_name":"BeforeTool","tool_name":"run_shell_command","tool_input":{"command":"ls"}}',
                   "gemini", 1, 0)  # fmt: skip
    assert d.event == "PreToolUse" and d.command == "ls"
    d = parse_hook(b'{"hook_event_name":"PreToolUse","tool_input":{"command":["bash","-lc","echo hi"]}}', "codex", 1, 0)
    assert d.command == "echo hi"


def test_bad_payloads_are_recorded_with_a_reason():
    assert "not JSON" in parse_hook(b"{oops", "claude", 1, 0).error
    assert "not an object" in parse_hook(b"[1]", "claude", 1, 0).error
    assert "empty" in parse_hook(b"", "claude", 1, 0).error
    big = parse_hook(b"", "claude", 1, MAX_PAYLOAD + 1)
    assert "oversized" in big.error and big.payload_bytes == MAX_PAYLOAD + 1
    odd = parse_hook(json.dumps({"hook_event_name": 5, "tool_input": {"command": "x" * (MAX_COMMAND * 2)},
                                 "session_id": {"a": [1]}, "duration_ms": "soon"}).encode(), "evil", 1, 0)  # fmt: skip
    assert odd.event == "5" and len(odd.command) == MAX_COMMAND and odd.agent == "" and odd.duration_ms == -1
    assert odd.session_id == '{"a":[1]}'


def test_hand_written_hook_frame_is_the_protocol_message():
    """`logira hook` writes its frame without msgspec (startup time): it must decode as AgentHook."""
    from logira.client.hook import frame
    from logira.daemon import protocol as p

    for payload in ["", 'a"b\\c\n\t\x00\x1f\x7f é 😀 {"x": [1]}', "x" * 100_000]:
        body = frame("claude", payload, 7)[4:]
        assert p.decode_client(body) == p.AgentHook(agent="claude", payload=payload, payload_bytes=7)
        assert int.from_bytes(frame("claude", payload, 7)[:4], "big") == len(body)


def test_hook_imports_neither_msgspec_nor_argparse():
    import subprocess
    import sys

    code = ("import sys; from logira.cli.main import main; main(['hook']); "
            "print(sorted(m for m in ('msgspec', 'argparse', 'asyncio') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         env={"LOGIRA_SOCK": "/nonexistent"})  # fmt: skip
    assert out.stdout.strip() == "[]", out
