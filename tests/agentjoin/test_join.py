"""The join on synthesized records: kernel tree + hook windows + commands + markers."""

from __future__ import annotations

from joinkit import HOME, Run, claude_wrap

from logira.agents.join import RULE_MISMATCH, RULE_TAMPER, RULE_UNDECLARED, Declared, join

AGENT = 100


def _claude(r: Run) -> None:
    r.exec(AGENT, 1, ["/opt/claude/bin/claude", "-p", "do it"])
    r.file(AGENT, "create", f"{HOME}/.claude/sessions/{AGENT}.json")
    r.spawn(AGENT, 101, ["/bin/bash", "-c", "-l", "SNAPSHOT_FILE=/home/u/.claude/shell-snapshots/snapshot-bash-1-a.sh"])


def _tool(r: Run, cid: str, cmd: str, pid: int, hook_pid: int, *, body=None, session="s1"):
    r.send_hook(AGENT, hook_pid, "PreToolUse", tool_use_id=cid, tool_name="Bash", command=cmd, session_id=session)
    ex = r.spawn(AGENT, pid, claude_wrap(cmd))
    if body:
        body(pid)
    r.exit(pid)
    r.send_hook(AGENT, hook_pid + 1, "PostToolUse", tool_use_id=cid, tool_name="Bash", status="ok", session_id=session)
    return ex


def test_subtrees_files_and_detections_follow_their_tool_call():
    r = Run()
    _claude(r)
    seen = {}

    def body(pid):
        seen["child"] = r.spawn(pid, pid + 50, ["curl", "http://127.0.0.1:9/x"])
        seen["net"] = r.add("net", pid + 50, op="connect", dst_ip="127.0.0.1", dst_port=9)
        seen["rc"] = r.file(pid, "modify", f"{HOME}/.bashrc")
        seen["det"] = r.detection(seen["rc"])

    ex = _tool(r, "toolu_A", "echo 'it''s' > /tmp/x && curl http://127.0.0.1:9/x", 200, 300, body=body)
    res = join(r.evs, [], home=HOME, uid=1000)
    a = {c.call_id: c for c in res.calls}["toolu_A"]
    for key in ("child", "net", "rc", "det"):
        assert res.attribution[seen[key].seq] == ("toolu_A", "hook_window"), key
    assert res.attribution[ex.seq][0] == "toolu_A"
    assert a.execs == 2 and a.paths == {f"{HOME}/.bashrc"} and a.dests == {"127.0.0.1:9"} and a.detections == 1
    # the shell snapshot, the hooks and ~/.claude/sessions are the agent's runtime, not the call's
    rt = set(res.runtime_seqs)
    hook_execs = [e.seq for e in r.evs if e.type == "exec" and "hook" in e.data_json.argv]
    assert hook_execs and set(hook_execs) <= rt and r.evs[1].seq in rt and r.evs[3].seq in rt
    assert not [f for f in res.findings if f.rule_id in (RULE_UNDECLARED, RULE_MISMATCH)], res.findings


def test_parallel_calls_are_told_apart_by_command_and_a_forged_id_changes_nothing():
    r = Run()
    _claude(r)
    r.send_hook(AGENT, 300, "PreToolUse", tool_use_id="toolu_1", tool_name="Bash", command="sleep 1; echo one")
    r.send_hook(AGENT, 302, "PreToolUse", tool_use_id="toolu_2", tool_name="Bash", command="make test")
    # a replayed id: recorded as declared, but it does not take over toolu_1
    r.send_hook(AGENT, 304, "PreToolUse", tool_use_id="toolu_1", tool_name="Bash", command="rm -rf /")
    two = r.spawn(AGENT, 201, claude_wrap("make test"))
    one = r.spawn(AGENT, 200, claude_wrap("sleep 1; echo one"))
    r.exit(200)
    r.exit(201)
    r.send_hook(AGENT, 306, "PostToolUse", tool_use_id="toolu_1", tool_name="Bash", status="ok")
    r.send_hook(AGENT, 308, "PostToolUse", tool_use_id="toolu_2", tool_name="Bash", status="ok")
    r.send_hook(AGENT, 310, "PostToolUse", tool_use_id="toolu_ghost", tool_name="Bash", status="ok")
    res = join(r.evs, [], home=HOME, uid=1000)
    assert res.attribution[one.seq][0] == "toolu_1" and res.attribution[two.seq][0] == "toolu_2"
    calls = {c.call_id: c for c in res.calls}
    assert calls["toolu_1"].command == "sleep 1; echo one"  # the first declaration stands
    assert res.counts["duplicate_call_ids"] == 1 and res.counts["post_without_pre"] == 1
    assert not [f for f in res.findings if f.rule_id == RULE_MISMATCH]


def test_declared_vs_done_undeclared_exec_and_left_running():
    r = Run()
    _claude(r)
    # declares `ls`, runs something else
    r.send_hook(AGENT, 300, "PreToolUse", tool_use_id="toolu_M", tool_name="Bash", command="ls")
    r.spawn(AGENT, 200, ["/bin/bash", "-c", "cat ~/.ssh/id_rsa"])
    r.exit(200)
    r.send_hook(AGENT, 302, "PostToolUse", tool_use_id="toolu_M", tool_name="Bash", status="ok")
    # between calls, the agent starts a process nobody declared
    und = r.spawn(AGENT, 210, ["/usr/bin/nc", "-l", "4444"])
    # a background call whose process outlives it
    r.send_hook(AGENT, 304, "PreToolUse", tool_use_id="toolu_BG", tool_name="Bash", command="sleep 30 &")
    r.spawn(AGENT, 220, claude_wrap("sleep 30 &"))
    r.send_hook(AGENT, 306, "PostToolUse", tool_use_id="toolu_BG", tool_name="Bash", status="ok")
    late = r.file(220, "create", "/tmp/dropped", dt=5_000_000_000)
    res = join(r.evs, [], home=HOME, uid=1000)
    rules = [(f.rule_id, f.seq) for f in res.findings]
    assert (RULE_UNDECLARED, und.seq) in rules
    mism = [f for f in res.findings if f.rule_id == RULE_MISMATCH]
    assert len(mism) == 1 and mism[0].call.call_id == "toolu_M" and "cat ~/.ssh/id_rsa" in mism[0].message
    lr = [f for f in res.findings if f.seq == late.seq]
    assert lr and lr[0].call.call_id == "toolu_BG" and "still active" in lr[0].message
    assert res.attribution[late.seq][0] == "toolu_BG"  # still attributed: kernel tree, not time, decides
    assert {c.call_id: c for c in res.calls}["toolu_BG"].left_running == [220]


def test_agent_edits_by_path_and_config_tampering():
    r = Run()
    _claude(r)
    r.send_hook(AGENT, 300, "PreToolUse", tool_use_id="toolu_W", tool_name="Write", file_path="/w/app.py")
    w = r.file(AGENT, "create", "/w/app.py")
    r.send_hook(AGENT, 302, "PostToolUse", tool_use_id="toolu_W", tool_name="Write", status="ok")
    stray = r.file(AGENT, "modify", "/w/other.py")  # the agent itself, no call declares it
    hook_cfg = _tool(r, "toolu_H", "sed -i /logira/d ~/.claude/settings.json", 230, 304,
                     body=lambda pid: r.file(pid, "modify", f"{HOME}/.claude/settings.json"))  # fmt: skip
    res = join(r.evs, [], home=HOME, uid=1000)
    assert res.attribution[w.seq] == ("toolu_W", "hook_window")
    assert stray.seq not in res.attribution
    assert any(f.rule_id == RULE_UNDECLARED and f.seq == stray.seq and "agent process itself" in f.message
               for f in res.findings)  # fmt: skip
    tamper = [f for f in res.findings if f.rule_id == RULE_TAMPER]
    assert len(tamper) == 1 and tamper[0].call.call_id == "toolu_H" and hook_cfg.seq < tamper[0].seq


def test_transcript_fallback_and_markers():
    r = Run()
    _claude(r)
    ex = r.spawn(AGENT, 200, claude_wrap("npm test"), agent_markers={"CLAUDE_CODE_SESSION_ID": "s9"})
    r.exit(200)
    t0, t1 = ex.ts - 5_000_000, ex.ts + 50_000_000
    other = r.spawn(AGENT, 201, claude_wrap("git push"), dt=10_000_000_000)
    declared = [Declared("toolu_T", "claude", tool="Bash", command="npm test", start_ts=t0, end_ts=t1,
                         status="ok", session_id="s9")]  # fmt: skip
    res = join(r.evs, declared, home=HOME, uid=1000)
    assert res.attribution[ex.seq] == ("toolu_T", "transcript")
    assert other.seq not in res.attribution
    # no hooks were active: nothing is flagged as undeclared, the call is known from the transcript
    assert not res.findings and res.calls[0].source == "transcript" and res.counts["transcript_only_calls"] == 1


def test_session_marker_tells_two_sessions_apart():
    r = Run()
    _claude(r)
    r.send_hook(AGENT, 300, "PreToolUse", tool_use_id="toolu_a", tool_name="Bash", command="make", session_id="A")
    r.send_hook(AGENT, 302, "PreToolUse", tool_use_id="toolu_b", tool_name="Bash", command="make", session_id="B")
    ex = r.spawn(AGENT, 200, claude_wrap("make"), agent_markers={"CLAUDE_CODE_SESSION_ID": "A"})
    res = join(r.evs, [], home=HOME, uid=1000)
    assert res.attribution[ex.seq] == ("toolu_a", "marker")


def test_codex_tool_call_id_marker_wins():
    r = Run()
    r.exec(AGENT, 1, ["/opt/codex/codex", "exec", "go"])
    r.send_hook(AGENT, 300, "PreToolUse", tool_use_id="call_1", tool_name="Bash", command="echo a")
    r.send_hook(AGENT, 302, "PreToolUse", tool_use_id="call_2", tool_name="Bash", command="echo a")
    ex = r.spawn(AGENT, 200, ["/bin/bash", "-lc", "echo a"], agent_markers={"CODEX_TOOL_CALL_ID": "call_1"})
    res = join(r.evs, [], home=HOME, uid=1000)
    assert res.attribution[ex.seq] == ("call_1", "marker")


def test_permission_mode_change_inside_a_session_is_a_finding():
    r = Run()
    _claude(r)
    r.send_hook(AGENT, 300, "UserPromptSubmit", permission_mode="default", session_id="s1")
    r.send_hook(AGENT, 302, "PreToolUse", tool_use_id="toolu_P", tool_name="Bash", command="ls",
                permission_mode="bypassPermissions", session_id="s1")  # fmt: skip
    res = join(r.evs, [], home=HOME, uid=1000)
    found = [f for f in res.findings if f.rule_id == RULE_TAMPER]
    assert len(found) == 1 and "default -> bypassPermissions" in found[0].message


def test_subagent_calls_are_marked_and_attributed_like_any_other():
    r = Run()
    _claude(r)
    r.send_hook(AGENT, 300, "SubagentStart", agent_id="sub-1")
    ex = _tool(r, "toolu_S", "ls -la", 200, 302)
    pre = next(e for e in r.evs if e.type == "agent" and e.data_json.event == "PreToolUse")
    pre.data_json.agent_id = "sub-1"  # the PreToolUse of toolu_S came from inside the subagent
    res = join(r.evs, [], home=HOME, uid=1000)
    (call,) = res.calls
    assert call.subagent == "sub-1" and res.attribution[ex.seq] == ("toolu_S", "hook_window")


def test_subagents_nest_under_the_agent_call_that_started_them_in_order():
    r = Run()
    _claude(r)
    for cid, hook_pid in (("toolu_A1", 300), ("toolu_A2", 302)):  # two Agent calls in parallel
        r.send_hook(AGENT, hook_pid, "PreToolUse", tool_use_id=cid, tool_name="Agent", session_id="s1")
    r.send_hook(AGENT, 304, "SubagentStart", agent_id="sub-1", session_id="s1")
    r.send_hook(AGENT, 306, "SubagentStart", agent_id="sub-2", session_id="s1")
    r.send_hook(AGENT, 308, "SubagentStart", agent_id="sub-3", session_id="other")  # no Agent call there
    for cid, sub, hook_pid in (("toolu_S2", "sub-2", 310), ("toolu_S1", "sub-1", 312)):
        r.send_hook(AGENT, hook_pid, "PreToolUse", tool_use_id=cid, tool_name="Bash", command="ls",
                    agent_id=sub, session_id="s1")  # fmt: skip
    res = join(r.evs, [], home=HOME, uid=1000)
    parents = {c.call_id: c.parent_call for c in res.calls}
    assert parents == {"toolu_A1": "", "toolu_A2": "", "toolu_S1": "toolu_A1", "toolu_S2": "toolu_A2"}
    assert res.counts["subagents_without_call"] == 1


def test_a_transcript_only_subagent_call_nests_under_the_agent_call_open_at_its_start():
    r = Run()
    _claude(r)
    t = r.evs[-1].ts
    declared = [
        Declared("toolu_T", "claude", tool="Task", start_ts=t + 10, end_ts=t + 1000, session_id="s9"),
        Declared("toolu_B", "claude", tool="Bash", command="ls", start_ts=t + 20, end_ts=t + 30,
                 session_id="s9", subagent="sub-9"),
        Declared("toolu_C", "claude", tool="Bash", command="ls", start_ts=t + 2000, end_ts=t + 2010,
                 session_id="s9", subagent="sub-late"),  # after the Task call ended
    ]
    res = join(r.evs, declared, home=HOME, uid=1000)
    parents = {c.call_id: c.parent_call for c in res.calls}
    assert parents == {"toolu_T": "", "toolu_B": "toolu_T", "toolu_C": ""}


def test_id_less_hook_calls_take_their_transcript_ids_in_order():
    """Gemini's hooks carry no id: the same command twice takes the transcript's two ids, oldest first."""
    r = Run()
    r.exec(AGENT, 1, ["/usr/bin/node", "/x/node_modules/.bin/gemini", "-p", "go"])
    for hook_pid, event in ((300, "PreToolUse"), (302, "PostToolUse"), (304, "PreToolUse"), (306, "PostToolUse")):
        r.spawn(AGENT, hook_pid, ["/usr/bin/python3", "-m", "logira.cli.main", "hook", "--agent", "gemini"])
        r.hook(hook_pid, event, agent="gemini", tool_name="run_shell_command", session_id="g",
               **({"command": "make"} if event == "PreToolUse" else {"status": "ok"}))  # fmt: skip
        r.exit(hook_pid)
    starts = [e.ts for e in r.evs if e.type == "agent" and e.data_json.event == "PreToolUse"]
    declared = [Declared(f"run_shell_command__{i}", "gemini", tool="run_shell_command", command="make",
                         start_ts=ts - 1000, end_ts=ts + 1000, session_id="g") for i, ts in enumerate(starts)]  # fmt: skip
    res = join(r.evs, declared, home=HOME, uid=1000)
    assert [(c.call_id, c.source, c.start_ts) for c in res.calls] == [
        ("run_shell_command__0", "hook", starts[0]), ("run_shell_command__1", "hook", starts[1])]  # fmt: skip
    assert res.counts["ids_from_transcript"] == 2 and "transcript_only_calls" not in res.counts
