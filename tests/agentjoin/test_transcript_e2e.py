"""The transcript fallback in real runs: an agent without hooks, and transcripts that are traps."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_support import agent_binary, attribution_of, calls_of, run_agent

pytestmark = pytest.mark.bpf


def test_run_without_hooks_is_joined_from_the_transcript(logira):
    ws, home = logira.workspace, logira.user.home
    log = f"{home}/.claude/projects/-ws/sess-t.jsonl"
    steps = [
        {"do": "sleep", "s": 0.3},
        {"do": "transcript_tool", "id": "toolu_T1", "command": f"echo one > {ws}/one.txt", "path": log,
         "session": "sess-t"},
        {"do": "sleep", "s": 2.5},
        {"do": "transcript_tool", "id": "toolu_T2", "command": f"echo two > {ws}/two.txt", "path": log,
         "session": "sess-t"},
    ]  # fmt: skip
    run = run_agent(logira, steps, binary=agent_binary(logira))
    agents = run.meta["agents"]
    assert agents.get("hooks", 0) == 0 and agents["transcript_files"] == 1 and agents["transcript_calls"] == 2
    calls = calls_of(run)
    assert set(calls) == {"toolu_T1", "toolu_T2"}
    assert all(c.source == "transcript" and c.status == "ok" for c in calls.values())
    att = attribution_of(run)
    paths = {r["data_json"]["path"]: r["seq"] for r in run.files() if r["data_json"]["op"] != "read"}
    assert att[paths[f"{ws}/one.txt"]] == ("toolu_T1", "transcript")
    assert att[paths[f"{ws}/two.txt"]] == ("toolu_T2", "transcript")
    # the transcript itself is the agent's runtime; no hooks, so nothing is "undeclared"
    assert not [d for d in run.of_type("detection") if d["data_json"]["rule_id"].startswith("agent-")]


def test_transcript_claims_pointing_at_secrets_are_refused(logira):
    home = logira.user.home
    evil = f"{home}/.claude/projects/-ws/evil.jsonl"
    steps = [
        {"do": "symlink", "path": evil, "target": "/etc/shadow"},
        {"do": "hook", "payload": {"hook_event_name": "SessionStart"}, "transcript_path": evil},
        {"do": "hook", "payload": {"hook_event_name": "Stop"}, "transcript_path": "/etc/shadow"},
        {"do": "hook", "payload": {"hook_event_name": "Stop"}, "transcript_path": f"{home}/../../etc/shadow"},
    ]
    run = run_agent(logira, steps)
    agents = run.meta["agents"]
    assert agents["transcripts_refused"] == 3 and agents.get("transcript_files", 0) == 0
    notes = " ".join(agents["notes"])
    assert "symlinks are refused" in notes and "not an agent transcript location" in notes
    secret = Path("/etc/shadow").read_bytes().split(b"\n", 1)[0]  # root's line: what a leak would carry
    for f in run.dir.iterdir():
        assert secret not in f.read_bytes()
