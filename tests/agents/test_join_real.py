"""The join on the REAL CLIs: hooks installed by `logira agent hooks install`, every effect named by
the tool call that caused it (logira/agents). Scenarios and harness: tests/agents (realagents)."""

from __future__ import annotations

import sqlite3

import pytest
from kernel_view import describe, files_at
from mock_anthropic import ClaudeScript, bash
from mock_common import ToolCall
from mock_openai import CodexScript, exec_command

from logira.agents import calls as agent_calls
from logira.agents import join

pytestmark = pytest.mark.bpf


def _joined(run):
    conn = sqlite3.connect(f"file:{run.dir / 'index.sqlite'}?mode=ro", uri=True)
    try:
        return {c.call_id: c for c in agent_calls.tool_calls(conn)}, agent_calls.attribution(conn)
    finally:
        conn.close()


def _install(agents, agent: str) -> None:
    res = agents.logira_as_user("agent", "hooks", "install", agent)
    assert res.returncode == 0, res.stderr
    assert b"logira hook installed in" in res.stdout


@pytest.mark.usefixtures("claude_cli")
def test_claude_tool_calls_joined_through_installed_hooks(agents):
    _install(agents, "claude")
    ws, home = agents.workspace, agents.home
    write_note = bash("echo hello > notes.txt", "Write a note")
    make_app = ToolCall("Write", {"file_path": str(ws / "app.py"), "content": "print('hi')\n"})
    rc = bash("echo 'alias ll=ls' >> ~/.bashrc", "Add an alias")
    r = agents.claude(ClaudeScript([[write_note], [make_app], [rc]]))
    assert r.result.returncode == 0, r.stderr
    calls, att = _joined(r.run)
    assert set(calls) == {write_note.id, make_app.id, rc.id}, (r.run.meta.get("agents"), describe(r.run))
    assert all(c.source == "hook" and c.status == "ok" and c.end_ts > c.start_ts for c in calls.values())
    (note,) = files_at(r.run, ws / "notes.txt", "create")
    assert att[note["seq"]] == (write_note.id, "hook_window")
    for w in files_at(r.run, ws / "app.py", "create", "modify", "rename"):
        assert att[w["seq"]][0] == make_app.id, describe(r.run)
    rc_dets = [d for d in r.run.of_type("detection") if d["data_json"]["related_event_seq"] in
               {f["seq"] for f in files_at(r.run, home.path / ".bashrc", "create", "modify")}]  # fmt: skip
    assert rc_dets and all(att.get(d["seq"], ("",))[0] == rc.id for d in rc_dets)
    assert calls[write_note.id].execs >= 1 and calls[rc.id].detections
    # with hooks active, Claude's own bookkeeping is runtime, not "undeclared": none of these findings
    undeclared = [
        d["summary"]
        for d in r.run.of_type("detection")
        if d["data_json"]["rule_id"] == "agent-undeclared-activity"
    ]
    assert not undeclared, undeclared
    view = agents.logira_as_user("view", r.run.id, "--no-color").stdout.decode()
    assert "Tool calls (3)" in view and "agent runtime:" in view


@pytest.mark.usefixtures("claude_cli")
def test_claude_without_hooks_is_joined_from_its_transcript(agents):
    call = bash("echo plain > plain.txt", "Write plain")
    r = agents.claude(ClaudeScript([[call]]))
    assert r.result.returncode == 0, r.stderr
    calls, att = _joined(r.run)
    assert set(calls) == {call.id}, r.run.meta.get("agents")
    assert calls[call.id].source == "transcript" and r.run.meta["agents"]["transcript_files"] >= 1
    (plain,) = files_at(r.run, agents.workspace / "plain.txt", "create")
    assert att[plain["seq"]] == (call.id, "transcript")


@pytest.mark.usefixtures("codex_cli")
def test_codex_tool_calls_joined_through_installed_hooks(agents):
    """`logira agent hooks install codex` alone makes Codex run the hooks (it records their trust):
    no `--dangerously-bypass-hook-trust`."""
    one = exec_command("echo one > one.txt")
    two = exec_command("echo two > two.txt")
    r = agents.codex(CodexScript([[one], [two]]), hooks=True)
    assert r.result.returncode == 0, r.stderr
    calls, att = _joined(r.run)
    assert set(calls) == {one.id, two.id}, (r.run.meta.get("agents"), describe(r.run))
    assert all(c.source == "hook" for c in calls.values()), [(c.call_id, c.source) for c in calls.values()]
    for c, name in ((one, "one.txt"), (two, "two.txt")):
        (w,) = files_at(r.run, agents.workspace / name, "create")
        assert att[w["seq"]][0] == c.id and att[w["seq"]][1] in ("hook_window", "marker")


@pytest.mark.usefixtures("claude_cli")
def test_claude_background_call_outlives_its_window_and_is_flagged(agents):
    from mock_anthropic import tool_results

    _install(agents, "claude")
    ws = agents.workspace
    go, late = ws / "go", ws / "late.txt"
    bg = bash(f"while [ ! -e {go} ]; do sleep 0.05; done; echo late > {late}", "Wait, then write",
              run_in_background=True)  # fmt: skip
    # a real pause longer than the product's grace (LEFT_RUNNING_GRACE_NS): on a fast machine the
    # whole script can otherwise finish inside the grace, and "left running" is then correctly not said
    pause = bash(f"sleep {join.LEFT_RUNNING_GRACE_NS / 1e9 + 0.5}", "Pause")
    after = bash("echo after > after.txt", "Next step")

    def release_when_call_ended(rec) -> None:
        body = rec.body if isinstance(rec.body, dict) else {}
        if after.id in tool_results(body.get("messages") or []):
            go.touch()

    r = agents.claude(ClaudeScript([[bg], [pause], [after]]), on_request=release_when_call_ended)
    assert r.result.returncode == 0, r.stderr
    calls, att = _joined(r.run)
    (late_write,) = files_at(r.run, late, "create")
    (after_write,) = files_at(r.run, ws / "after.txt", "create")
    # the kernel tree decides: the late write is the background call's, though it came after `after`
    assert att[late_write["seq"]][0] == bg.id and att[after_write["seq"]][0] == after.id, describe(r.run)
    assert calls[bg.id].left_running  # the pid still active after the call ended
    found = [d for d in r.run.of_type("detection") if d["data_json"]["rule_id"] == "agent-undeclared-activity"]
    assert any(d["data_json"]["tool_call_id"] == bg.id and "still active" in d["data_json"]["message"] for d in found)


@pytest.mark.usefixtures("claude_cli")
def test_claude_hook_config_edit_is_tampering_by_that_call(agents):
    _install(agents, "claude")
    call = bash("echo '{}' > ~/.claude/settings.json", "Reset settings")
    r = agents.claude(ClaudeScript([[call]]))
    assert r.result.returncode == 0, r.stderr
    found = [d["data_json"] for d in r.run.of_type("detection") if d["data_json"]["rule_id"] == "agent-hook-tampering"]
    assert found and all(d["tool_call_id"] == call.id for d in found), describe(r.run)
    explain = agents.logira_as_user("explain", r.run.id, "--no-color").stdout.decode()
    assert f"tool call: {call.id} Bash" in explain


@pytest.mark.usefixtures("claude_cli")
def test_claude_subagent_calls_are_the_subagents_and_nest_under_the_call_that_started_it(agents):
    """A real Agent-tool subagent (its own model conversation): its Bash call is attributed to itself,
    carries the subagent id, and names the Agent call as its parent; the main thread's call does not."""
    _install(agents, "claude")
    ws = agents.workspace
    sub = bash("echo sub > sub.txt", "Sub step")
    task = ToolCall("Agent", {"description": "Do a sub step", "prompt": "SUBKEY7 write the file",
                              "subagent_type": "general-purpose", "run_in_background": False})  # fmt: skip
    after = bash("echo main > main.txt", "Main step")
    # the main conversation mentions both keys (its Agent call carries the sub prompt): it is added first
    r = agents.claude(ClaudeScript([[task], [after]], key="MAINKEY7"), ClaudeScript([[sub]], key="SUBKEY7"),
                      prompt="MAINKEY7 do the steps")  # fmt: skip
    assert r.result.returncode == 0, r.stderr
    calls, att = _joined(r.run)
    assert set(calls) == {task.id, sub.id, after.id}, (r.run.meta.get("agents"), describe(r.run))
    subagent = calls[sub.id].subagent
    assert subagent and calls[sub.id].parent_call == task.id, calls[sub.id]
    assert not calls[after.id].subagent and not calls[after.id].parent_call and not calls[task.id].parent_call
    started = [a["data_json"] for a in r.run.of_type("agent") if a["data_json"].get("event") == "SubagentStart"]
    assert [s["agent_id"] for s in started] == [subagent]
    (sub_write,) = files_at(r.run, ws / "sub.txt", "create")
    (main_write,) = files_at(r.run, ws / "main.txt", "create")
    assert att[sub_write["seq"]][0] == sub.id and att[main_write["seq"]][0] == after.id, describe(r.run)
    out = agents.logira_as_user("calls", r.run.id, "--no-color", "--all").stdout.decode()
    assert f"subagents: {subagent} (from {task.id})" in out, out
    assert f"↳ {sub.id} [{subagent}]" in out, out
