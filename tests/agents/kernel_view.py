"""Reading a stored run's kernel record in the terms of an agent's tool calls (test-side, from the facts).

These find, from exec/fork records alone, the process a real CLI started for one tool call, so a test
can check independently of logira's own join that an effect came from that call's process subtree.
- Claude Code runs a Bash call as `$SHELL -c '<snapshot wrapper> … && eval '<command>' && pwd -P >| …'`,
  a child of the claude process (fixtures/README.md);
- Codex forks, execs `/proc/self/exe --codex-run-as-process-setup …`, then `/bin/bash -lc <cmd>` (or its
  snapshot wrapper, then `/bin/bash -c <cmd>`) in the same pid, a child of the native codex process.
"""

from __future__ import annotations

from pathlib import Path

from e2e_support import StoredRun


def describe(run: StoredRun) -> str:
    """The run's records as lines, for assertion messages."""
    return "\n".join(f"{r['seq']:5} {r['pid']:>7} {r['ppid']:>7} {r['summary'][:160]}" for r in run.records)


def children(run: StoredRun) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for r in run.of_type("proc"):
        if r["data_json"]["op"] == "fork":
            out.setdefault(r["pid"], []).append(r["data_json"]["child_pid"])
    return out


def subtree(run: StoredRun, root_pid: int) -> set[int]:
    """root_pid and every process forked below it."""
    kids = children(run)
    out: set[int] = set()
    todo = [root_pid]
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo.extend(kids.get(pid, []))
    return out


def agent_pids(run: StoredRun, binary_name: str) -> list[int]:
    """Pids that exec'd a binary named `binary_name` (the agent's own processes), in exec order."""
    pids: list[int] = []
    for r in run.execs():
        names = {Path(r["data_json"]["filename"]).name}
        if r["data_json"]["argv"]:
            names.add(Path(r["data_json"]["argv"][0]).name)
        if binary_name in names and r["pid"] not in pids:
            pids.append(r["pid"])
    return pids


def claude_quote(command: str) -> str:
    """How Claude Code quotes a command inside its `eval '…'`."""
    return "'" + command.replace("'", "'\"'\"'") + "'"


def claude_call_shell(run: StoredRun, claude_pid: int, command: str) -> int:
    """The pid of the shell Claude Code started for the Bash call whose command is `command`."""
    needle = f"eval {claude_quote(command)}"
    found = [
        r["pid"]
        for r in run.execs()
        if r["ppid"] == claude_pid
        and r["data_json"]["argv"][1:2] == ["-c"]
        and needle in r["data_json"]["argv"][-1]
    ]
    assert len(found) == 1, (
        f"expected one shell of claude {claude_pid} for {command!r}, found {found}\n{describe(run)}"
    )
    return found[0]


def codex_call_process(run: StoredRun, codex_pid: int, command: str) -> int:
    """The pid Codex started for the exec_command whose cmd is `command`: a child of the native codex
    that ends up exec'ing `/bin/bash -lc <cmd>`, or, once Codex's shell snapshot is ready, its
    snapshot wrapper and then `/bin/bash -c <cmd>` (which of the two depends on when the snapshot was
    done, so both are accepted)."""
    found = [
        r["pid"]
        for r in run.execs()
        if r["ppid"] == codex_pid
        and r["data_json"]["argv"] in (["/bin/bash", "-lc", command], ["/bin/bash", "-c", command])
    ]
    assert len(found) == 1, (
        f"expected one process of codex {codex_pid} for {command!r}, found {found}\n{describe(run)}"
    )
    return found[0]


def execs_in(run: StoredRun, pids: set[int]) -> list[dict]:
    return [r for r in run.execs() if r["pid"] in pids]


def files_at(run: StoredRun, path: Path | str, *ops: str) -> list[dict]:
    return [
        r
        for r in run.files()
        if r["data_json"]["path"] == str(path) and (not ops or r["data_json"]["op"] in ops)
    ]


def writes_to(run: StoredRun, path: Path | str) -> list[dict]:
    """Records that put content at `path`: create/modify/truncate of it, or a rename/link onto it
    (an atomic write: Claude's Write tool creates `<path>.tmp.<pid>.<hex>` and renames it)."""
    p = str(path)
    return [
        r
        for r in run.files()
        if (r["data_json"]["op"] in ("create", "modify", "truncate") and r["data_json"]["path"] == p)
        or (r["data_json"]["op"] in ("rename", "link") and r["data_json"]["path2"] == p)
    ]


def connects_to(run: StoredRun, port: int, ip: str = "127.0.0.1") -> list[dict]:
    return [
        r
        for r in run.of_type("net")
        if r["data_json"]["op"] == "connect"
        and r["data_json"]["dst_ip"] == ip
        and r["data_json"]["dst_port"] == port
    ]


def detections(run: StoredRun, rule_id: str) -> list[dict]:
    return [r for r in run.of_type("detection") if r["data_json"]["rule_id"] == rule_id]


def by_seq(run: StoredRun) -> dict[int, dict]:
    return {r["seq"]: r for r in run.records}


def related(run: StoredRun, detection: dict) -> dict:
    return by_seq(run)[detection["data_json"]["related_event_seq"]]
