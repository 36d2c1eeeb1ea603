"""Hook messages sent by real processes inside real runs, joined to what the kernel saw."""

from __future__ import annotations

import pytest
from agent_support import attribution_of, calls_of, run_agent

pytestmark = pytest.mark.bpf


def test_tool_calls_are_joined_to_processes_files_and_detections(logira):
    ws = logira.workspace
    steps = [
        {"do": "hook", "payload": {"hook_event_name": "SessionStart", "source": "startup"}},
        {"do": "bash", "id": "toolu_A", "command": f"echo hi > {ws}/out.txt && cat /etc/hostname"},
        {"do": "write", "id": "toolu_B", "path": f"{ws}/notes.md"},
        {"do": "spawn", "command": f"touch {ws}/undeclared.txt"},
        {"do": "bash", "id": "toolu_C", "command": f"echo x >> {logira.user.home}/.bashrc"},
        {"do": "hook", "payload": {"hook_event_name": "SessionEnd", "reason": "exit"}},
    ]
    run = run_agent(logira, steps)
    hooks = [r for r in run.of_type("agent") if r["data_json"]["op"] == "hook"]
    assert len(hooks) == 8
    assert all(h["data_json"]["declared"] is True and h["data_json"]["source"] == "hook" for h in hooks)
    # the daemon names the sender from SO_PEERCRED: a real process of this run that exec'd logira hook
    exec_pids = {r["pid"] for r in run.execs() if "hook" in r["data_json"]["argv"]}
    assert {h["data_json"]["sender_pid"] for h in hooks} <= exec_pids
    agents = run.meta.get("agents", {})
    assert agents.get("hooks") == 8 and agents.get("hook_errors", 0) == 0, run.meta
    assert agents["join_source"] == "records"  # the collector sink kept them: no re-read of the JSONL

    calls = calls_of(run)
    assert set(calls) == {"toolu_A", "toolu_B", "toolu_C"}, (agents.get("notes"), [r["summary"] for r in run.of_type("agent")])
    assert set(calls) == {"toolu_A", "toolu_B", "toolu_C"}
    a, b, c = calls["toolu_A"], calls["toolu_B"], calls["toolu_C"]
    assert a.status == "ok" and a.source == "hook" and a.execs >= 2 and a.files >= 1
    assert a.end_ts > a.start_ts and a.duration_ms is not None
    att = attribution_of(run)
    by_path = {r["data_json"]["path"]: r["seq"] for r in run.files() if r["data_json"]["op"] != "read"}
    assert att[by_path[f"{ws}/out.txt"]] == ("toolu_A", "hook_window")
    # the agent process wrote notes.md itself: attributed to the Write call by path and time
    assert att[by_path[f"{ws}/notes.md"]] == ("toolu_B", "hook_window") and b.files == 1
    # every exec of toolu_A's subtree carries it (bash and cat)
    cat = [r for r in run.execs() if r["data_json"]["argv"][:1] == ["cat"]]
    assert cat and att[cat[0]["seq"]][0] == "toolu_A"
    # the spawn outside any tool call is a finding naming the process
    undeclared = [d for d in run.of_type("detection") if d["data_json"]["rule_id"] == "agent-undeclared-activity"]
    assert any("undeclared.txt" in d["data_json"]["message"] for d in undeclared), undeclared
    assert by_path[f"{ws}/undeclared.txt"] not in att
    # the persistence detection on .bashrc is attributed to toolu_C, and counted on its row
    rc = [d for d in run.of_type("detection") if d["related_seq" if False else "data_json"]["related_event_seq"]
          == by_path.get(f"{logira.user.home}/.bashrc")]
    assert rc, [d["summary"] for d in run.of_type("detection")]
    assert all(att[d["seq"]][0] == "toolu_C" for d in rc)
    assert c.detections and c.detections[0] == rc[0]["data_json"]["rule_id"]
    # the results are in the hash chain: seqs contiguous, the join's records are not declared
    assert [r["seq"] for r in run.records] == list(range(1, len(run.records) + 1))
    joined = [r for r in run.of_type("agent") if r["data_json"]["op"] == "tool_call"]
    assert len(joined) == 3 and all(r["data_json"]["declared"] is False for r in joined)


def test_what_users_see_names_the_tool_calls(logira):
    import json

    ws = logira.workspace
    steps = [
        {"do": "bash", "id": "toolu_R", "command": f"echo x >> {logira.user.home}/.bashrc"},
        {"do": "bash", "id": "toolu_T", "command": f"echo ok > {ws}/t.txt"},
    ]
    run = run_agent(logira, steps)
    r = logira("calls", run.id, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [c["call_id"] for c in doc["calls"]] == ["toolu_R", "toolu_T"]
    assert doc["sessions"][0]["session_id"] == "sess-1" and doc["sessions"][0]["calls"] == 2
    assert doc["calls"][0]["detections"] and doc["calls"][1]["files"] == 1
    view = logira("view", run.id, "--no-color").stdout.decode()
    assert "Tool calls (2)" in view and "toolu_T" in view and "agent runtime:" in view
    assert "  agents:    2 tool calls, 4 hook messages" in view
    explain = logira("explain", run.id, "--no-color").stdout.decode()
    assert f"tool call: toolu_R Bash `echo x >> {logira.user.home}/.bashrc` → " in explain, explain
    q = logira("query", run.id, "--tool-call", "toolu_T", "--json", "--all")
    recs = [json.loads(ln) for ln in q.stdout.splitlines()]
    assert recs and all(x["tool_call"]["call_id"] == "toolu_T" for x in recs)
    assert any(x["type"] == "file" and x["data_json"]["path"] == f"{ws}/t.txt" for x in recs)
    rt = [json.loads(ln) for ln in logira("query", run.id, "--agent-runtime", "--json", "--all").stdout.splitlines()]
    assert rt and any("hook" in " ".join(x["data_json"].get("argv", [])) for x in rt if x["type"] == "exec")
    no_rt = [json.loads(ln)["seq"] for ln in
             logira("query", run.id, "--no-agent-runtime", "--json", "--all").stdout.splitlines()]  # fmt: skip
    assert not set(no_rt) & {x["seq"] for x in rt} and len(no_rt) + len(rt) == len(run.records)
    bad = logira("query", run.id, "--tool-call", "toolu_nope")
    assert bad.returncode == 1 and bad.stderr.decode().count("\n") == 1 and b"logira calls" in bad.stderr
