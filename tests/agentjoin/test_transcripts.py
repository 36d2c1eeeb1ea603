"""Transcript parsers on the REAL lines the CLIs wrote (tests/agents/fixtures), and the safe reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from logira.agents import transcript as tr
from logira.agents.hookmsg import parse_hook

FIX = Path(__file__).resolve().parent.parent / "agents" / "fixtures"


def test_claude_transcript_tool_uses_and_results():
    stats = tr.TranscriptStats()
    calls = {c.call_id: c for c in tr.parse_claude((FIX / "claude_transcript.jsonl").read_bytes(), stats)}
    hooks = [json.loads(p.read_text()) for p in sorted((FIX / "claude_hooks").glob("*PreToolUse*.json"))]
    assert {h["tool_use_id"] for h in hooks} == set(calls)  # the transcript and the hooks agree on the ids
    for h in hooks:
        c = calls[h["tool_use_id"]]
        assert c.tool == h["tool_name"] and c.agent == "claude" and c.session_id == h["session_id"]
        assert c.command == h["tool_input"].get("command", "") and c.file_path == h["tool_input"].get("file_path", "")
        assert c.start_ts and c.end_ts >= c.start_ts
    statuses = [calls[h["tool_use_id"]].status for h in hooks]
    assert statuses.count("error") == 1 and statuses.count("ok") == len(hooks) - 1  # the `exit 3` call
    assert stats.parse_errors == 0 and stats.tool_calls == len(calls)


def test_codex_rollout_function_calls_and_completions():
    stats = tr.TranscriptStats()
    calls = tr.parse_codex((FIX / "codex_rollout.jsonl").read_bytes(), stats)
    hooks = [json.loads(p.read_text()) for p in sorted((FIX / "codex_hooks").glob("*PreToolUse*.json"))]
    assert [c.call_id for c in calls] == [h["tool_use_id"] for h in hooks]
    for c, h in zip(calls, hooks, strict=True):
        assert c.command == h["tool_input"]["command"] and c.session_id == h["session_id"]
        assert c.end_ts >= c.start_ts > 0
    assert [c.status for c in calls] == ["ok", "ok", "error"]


def test_gemini_chat_tool_calls_last_copy_wins():
    stats = tr.TranscriptStats()
    calls = tr.parse_gemini((FIX / "gemini_transcript.jsonl").read_bytes(), stats)
    hooks = [json.loads(p.read_text()) for p in sorted((FIX / "gemini_hooks").glob("*BeforeTool*.json"))]
    assert [c.command for c in calls] == [h["tool_input"]["command"] for h in hooks]
    assert len({c.call_id for c in calls}) == len(calls) == stats.tool_calls  # rewritten lines: one call each
    for c, h in zip(calls, hooks, strict=True):
        assert c.call_id.startswith("run_shell_command__") and c.session_id == h["session_id"]
        assert c.agent == "gemini" and c.tool == h["tool_name"] and c.end_ts >= c.start_ts > 0
    assert all(c.status == "ok" for c in calls)  # `exit 3` is a success of the tool itself in Gemini's terms


@pytest.mark.parametrize("agent", ["claude", "codex"])
def test_real_hook_payloads_parse_without_error(agent):
    for path in sorted((FIX / f"{agent}_hooks").glob("*.json")):
        d = parse_hook(path.read_bytes(), agent, 1, 0)
        assert not d.error, (path.name, d.error)
        assert d.event == path.stem.split("-")[1]
        if "ToolUse" in d.event:
            assert d.tool_use_id and d.tool_name
    fail = parse_hook((FIX / "claude_hooks" / "12-PostToolUseFailure-Bash.json").read_bytes(), "claude", 1, 0)
    assert fail.status == "error"


def test_broken_lines_are_counted_not_fatal():
    stats = tr.TranscriptStats()
    data = b'{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}}]}}\n'
    data += b"{not json\n[1,2]\n" + b'{"type":"user","message":{"content":"text"}}\n'
    calls = tr.parse_claude(data + b'{"type":"assistant","message":{"content":[{"type":"tool_use"', stats)
    assert [c.call_id for c in calls] == ["t1"] and stats.parse_errors == 3 and stats.lines == 5


def test_only_allowed_locations_are_read():
    home = "/home/u"
    assert tr.kind_of("/home/u/.claude/projects/-x/abc.jsonl", home) == "claude"
    assert tr.kind_of("/home/u/.claude/projects/-x/abc/subagents/agent-1.jsonl", home) == "claude"
    assert tr.kind_of("/home/u/.codex/sessions/2026/12/03/rollout-1-x.jsonl", home) == "codex"
    assert tr.kind_of("/home/u/.gemini/tmp/ws-1/chats/session-2026-12-03T14-15-909f1ffb.jsonl", home) == "gemini"
    assert tr.kind_of("/home/u/.gemini/tmp/ws-1/chats/../../../../etc/shadow.jsonl", home) == ""
    for bad in ("/etc/shadow", "/home/u/.claude/projects/-x/../../../etc/shadow", "/home/other/.claude/projects/x/a.jsonl",
                "/home/u/.claude/settings.json", "/home/uu/.claude/projects/-x/a.jsonl"):  # fmt: skip
        assert tr.kind_of(bad, home) == "", bad


def _user_tree(tmp_path: Path, uid: int) -> Path:
    d = tmp_path / "home" / ".claude" / "projects" / "-p"
    d.mkdir(parents=True, mode=0o700)
    for p in (tmp_path / "home", tmp_path / "home" / ".claude", tmp_path / "home" / ".claude" / "projects", d):
        os.chown(p, uid, uid)
        os.chmod(p, 0o700)
    return d


@pytest.mark.skipif(os.geteuid() != 0, reason="reads as root like the daemon")
def test_symlink_to_shadow_other_owner_and_huge_files_are_refused_or_capped(tmp_path):
    uid = 4242
    os.chmod(tmp_path, 0o755)
    d = _user_tree(tmp_path, uid)
    home = str(tmp_path / "home")
    (d / "evil.jsonl").symlink_to("/etc/shadow")
    root_owned = d / "root.jsonl"
    root_owned.write_text("{}\n")
    huge = d / "huge.jsonl"
    line = b'{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{}}]}}\n'
    with open(huge, "wb") as f:
        f.write(line)
        f.truncate(2 << 30)  # 2 GiB, sparse: the reader must stop at its cap
    os.chown(huge, uid, uid)
    stats = tr.TranscriptStats()
    calls = tr.read_transcripts([str(d / "evil.jsonl"), str(root_owned), str(huge), "/etc/shadow"], home, uid,
                                stats, max_bytes=1 << 20)  # fmt: skip
    assert [c.call_id for c in calls] == ["t1"]
    assert stats.refused == 3 and stats.truncated == 1 and stats.files == 1
    assert any("symlink" in r for r in stats.reasons) and any("not owned" in r for r in stats.reasons)
    assert not any("root:" in r for r in stats.reasons)  # nothing of /etc/shadow leaked into the notes
