"""Hooks that are broken, hostile or out of place: a clear record or a clean no-op, nothing lost."""

from __future__ import annotations

import subprocess

import pytest
from agent_support import HOOK_CMD, calls_of, run_agent
from e2e_support import PY

pytestmark = pytest.mark.bpf


def test_malformed_oversized_and_forged_hooks_are_recorded_as_such(logira):
    ws = logira.workspace
    steps = [
        {"do": "raw", "text": "{this is not json"},
        {"do": "raw", "size": 300 << 10},  # over the 256 KiB cap
        {"do": "raw", "text": ""},
        # a PostToolUse naming a call that never started, and a replayed id with another command
        {"do": "hook", "payload": {"hook_event_name": "PostToolUse", "tool_use_id": "toolu_forged", "tool_name": "Bash"}},
        {"do": "bash", "id": "toolu_1", "command": f"echo a > {ws}/a.txt"},
        {"do": "hook", "payload": {"hook_event_name": "PreToolUse", "tool_use_id": "toolu_1", "tool_name": "Bash",
                                   "tool_input": {"command": "true"}}},
        {"do": "spawn", "command": f"echo b > {ws}/b.txt"},
    ]
    run = run_agent(logira, steps)
    hooks = [r["data_json"] for r in run.of_type("agent") if r["data_json"]["op"] == "hook"]
    errors = [h["error"] for h in hooks if h["error"]]
    assert len(errors) == 3 and "not JSON" in errors[0] and "oversized" in errors[1] and "empty" in errors[2]
    assert hooks[1]["payload_bytes"] == 300 << 10
    agents = run.meta["agents"]
    assert agents["hooks"] == len(hooks) == 7 and agents["hook_errors"] == 3
    assert agents["duplicate_call_ids"] == 1 and agents["post_without_pre"] == 1
    calls = calls_of(run)
    assert set(calls) == {"toolu_1"} and calls["toolu_1"].command == f"echo a > {ws}/a.txt"
    # the replayed id did not pull b.txt (written outside every call window) into toolu_1
    from agent_support import attribution_of

    att = attribution_of(run)
    b = [r for r in run.files() if r["data_json"]["path"] == f"{ws}/b.txt"]
    assert b and all(r["seq"] not in att for r in b)
    assert any("b.txt" in d["data_json"]["message"] for d in run.of_type("detection")
               if d["data_json"]["rule_id"] == "agent-undeclared-activity")  # fmt: skip


def _hooks_line(logira) -> dict[str, int]:
    import re

    out = logira("status").stdout.decode()
    m = re.search(r"Agent hooks:\s+(\d+) recorded\s+(\d+) refused by their run\s+(\d+) from outside any run", out)
    assert m, out
    return {"recorded": int(m[1]), "refused": int(m[2]), "outside": int(m[3])}


def test_hook_outside_any_run_or_without_daemon_exits_0_silently(logira):
    payload = b'{"hook_event_name":"PreToolUse","tool_use_id":"toolu_x","tool_name":"Bash"}'
    argv = logira.user.cmd(*HOOK_CMD.split())
    before = _hooks_line(logira)
    r = subprocess.run(argv, input=payload, capture_output=True, env=logira.env(LOGIRA_HOOK_DEBUG="1"), timeout=30)
    assert r.returncode == 0 and r.stdout == b""
    assert b"not recorded: the sender is not in an active run" in r.stderr
    # not lost silently: `logira status` counts the message that had no run to go to
    after = _hooks_line(logira)
    assert after["outside"] == before["outside"] + 1 and after["recorded"] == before["recorded"], (before, after)
    r = subprocess.run(argv, input=payload, capture_output=True, timeout=30,
                       env={**logira.env(LOGIRA_HOOK_DEBUG="1"), "LOGIRA_SOCK": "/nonexistent/logira.sock"})  # fmt: skip
    assert r.returncode == 0 and r.stdout == b"" and b"no daemon" in r.stderr
    # stdin that never closes: the hook still returns (bounded wait), exit 0
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=logira.env())  # fmt: skip
    p.stdin.write(payload)
    p.stdin.flush()
    assert p.wait(timeout=30) == 0
    p.stdin.close()
    assert p.stdout.read() == b""
    assert PY  # the hook ran with the test venv's python
