"""The REAL Gemini CLI under `logira run`, driven offline by the scripted Gemini API (mock_gemini.py).

Gemini CLI 0.61 runs a `run_shell_command` call as `/usr/bin/bash -c 'shopt -u …; _bgpids_file=…
( trap … ; <command> ) …'`, a child of its node process (which first re-execs itself with
--max-old-space-size). Its hooks carry no tool call id (fixtures/README.md): logira names those calls
`hook-<seq>` until its chat transcript (~/.gemini/tmp/<project>/chats/session-*.jsonl, read at finalize)
gives the real id; the join must give each call its own processes, files and detections, with hooks
or from the transcript alone.
"""

from __future__ import annotations

import pytest
from attribution import Joined, kernel_records
from kernel_view import connects_to, describe, detections, files_at, related, subtree
from mock_gemini import GeminiScript, shell

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("gemini_cli")]


def node_pid(run) -> int:
    """The Gemini CLI's main node process: the one that runs the tools (the relaunched one)."""
    pids = [
        e["pid"]
        for e in run.execs()
        if e["data_json"]["filename"] == "/usr/bin/node"
        and any(a.endswith("/.bin/gemini") for a in e["data_json"]["argv"])
    ]
    assert pids, describe(run)
    return pids[-1]


def call_shell(run, agent: int, command: str) -> int:
    found = [
        e["pid"]
        for e in run.execs()
        if e["ppid"] == agent
        and e["data_json"]["argv"][:2] == ["/usr/bin/bash", "-c"]
        and f"\n{command}\n)" in e["data_json"]["argv"][-1]
    ]
    assert len(found) == 1, f"{command!r}: {found}\n{describe(run)}"
    return found[0]


def test_shell_calls_joined_through_installed_hooks(agents):
    """Two calls: a benign write and a shell rc write; hooks installed by `logira agent hooks install gemini`."""
    ws, home = agents.workspace, agents.home
    note = shell("echo hello > notes.txt", "Write a note")
    rc = shell("echo 'alias ls=rm' >> ~/.bashrc", "Add an alias")
    r = agents.gemini(GeminiScript([[note], [rc]]), hooks=True)
    assert r.result.returncode == 0, r.stderr
    assert (r.run.meta["status"], r.run.meta["drops"]["total"]) == ("complete", 0)
    # the CLI really ran both calls: the mock got a functionResponse for each, under the ids it gave
    assert [x["id"].rsplit("__", 1)[-1] for x in r.mock.responses()] == [note.id, rc.id]
    assert (ws / "notes.txt").read_text() == "hello\n"
    # and it talked to nothing but the mock (no update check, no telemetry)
    conns = [
        n
        for n in r.run.of_type("net")
        if n["data_json"]["op"] == "connect" and n["data_json"]["family"] != "unix"
    ]
    assert conns and conns == connects_to(r.run, r.mock.port), describe(r.run)

    agent = node_pid(r.run)
    note_tree = subtree(r.run, call_shell(r.run, agent, note.input["command"]))
    rc_tree = subtree(r.run, call_shell(r.run, agent, rc.input["command"]))
    (created,) = files_at(r.run, ws / "notes.txt", "create")
    assert created["pid"] in note_tree
    found = detections(r.run, "persist-shell-startup")
    assert found and {related(r.run, d)["pid"] for d in found} <= rc_tree
    assert related(r.run, found[0])["data_json"]["path"] == str(home.path / ".bashrc")

    # The join: two hook-declared calls, named by the ids of Gemini's own transcript, each with its tree.
    j = Joined(r.run)
    by_command = {c.command: c for c in j.calls.values()}
    assert set(by_command) == {note.input["command"], rc.input["command"]}
    assert {c.command: c.call_id.rsplit("__", 1)[-1] for c in j.calls.values()} == {
        note.input["command"]: note.id, rc.input["command"]: rc.id}, r.run.meta["agents"]  # fmt: skip
    assert r.run.meta["agents"]["ids_from_transcript"] == 2
    # Gemini's own per-call bookkeeping (/tmp/gemini-shell-*/bgpids.tmp) is runtime, not undeclared
    undeclared = [d for d in r.run.of_type("detection") if d["data_json"]["rule_id"] == "agent-undeclared-activity"]
    assert not undeclared, [d["data_json"]["message"] for d in undeclared]
    for call, tree in ((note, note_tree), (rc, rc_tree)):
        joined = by_command[call.input["command"]]
        assert (joined.agent, joined.tool, joined.source, joined.status) == (
            "gemini",
            "run_shell_command",
            "hook",
            "ok",
        )
        assert joined.agent_pid == agent
        j.assert_all_of(kernel_records(r.run, tree), joined.call_id)
    assert [j.call_of(d) for d in found] == [by_command[rc.input["command"]].call_id]


def test_without_hooks_the_calls_come_from_its_chat_transcript(agents):
    ws = agents.workspace
    note = shell("echo plain > plain.txt", "Write plain")
    r = agents.gemini(GeminiScript([[note]]))
    assert r.result.returncode == 0, r.stderr
    j = Joined(r.run)
    (call,) = j.calls.values()
    assert (call.source, call.status, call.command) == ("transcript", "ok", note.input["command"])
    assert call.call_id.rsplit("__", 1)[-1] == note.id and r.run.meta["agents"]["transcript_files"] == 1
    tree = subtree(r.run, call_shell(r.run, node_pid(r.run), note.input["command"]))
    (created,) = files_at(r.run, ws / "plain.txt", "create")
    assert created["pid"] in tree
    j.assert_all_of(kernel_records(r.run, tree), call.call_id)
