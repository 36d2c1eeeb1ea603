"""Agent-aware runs: `logira hook` round trip, and the finalize join's cost as runs grow.

1. Hook round trip (needs root and built BPF objects): a private logirad is started; inside a real
   `logira run`, a driver spawns `logira hook --agent claude` N times with a real PreToolUse payload
   on stdin (as an agent does: fork, exec, stdin, wait) and times each from spawn to exit.
   Baseline in the same run: spawning `python -c pass` (interpreter startup, the floor).
   Also: the same hook outside any run (the daemon answers "not in a run") and with no daemon.
   Target: p50 < 30 ms.
2. Join (pure, in-process): synthetic runs of C tool calls with E records (Claude-shaped: hooks,
   wrapped Bash children, files, nets, runtime bookkeeping), written as events.jsonl, then
   `finalize.run_join` (read + decode + join) and `join` alone. Target: 200 calls / 100 k records
   < 1 s; linear: the per-record cost stays flat from 5 k to 200 k records.

Usage: python bench/bench_agents.py [--hooks N] [--no-hook] [--no-join]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from logira.agents.finalize import run_join
from logira.agents.join import Ev, EvData, join
from logira.cli.agent import default_command
from logira.model.record import AgentData, ExecData, FileData, NetData, ProcData, Record

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = sys.executable
LOGIRA = str(Path(PY).with_name("logira"))
# exactly the command `logira agent hooks install claude` writes
INSTALLED = shlex.split(default_command("claude"))
PAYLOAD = json.dumps({
    "session_id": "786934c9-66f4-4185-bb7d-a9b5e7cca84e", "hook_event_name": "PreToolUse", "tool_name": "Bash",
    "tool_use_id": "toolu_01bench", "tool_input": {"command": "npm test", "description": "Run the tests"},
    "transcript_path": "/home/agent/.claude/projects/-p/x.jsonl", "cwd": "/home/agent/p",
    "permission_mode": "bypassPermissions",
})  # fmt: skip

DRIVER = r"""
import json, subprocess, sys, time
n, payload, argv = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3:]
out = []
for _ in range(n):
    t = time.perf_counter()
    subprocess.run(argv, input=payload, stdout=subprocess.DEVNULL, check=False)
    out.append(time.perf_counter() - t)
print(json.dumps(out))
"""


def _pct(xs: list[float]) -> str:
    xs = sorted(xs)
    p = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1000  # noqa: E731
    return f"p50 {p(0.5):6.1f} ms  p90 {p(0.9):6.1f} ms  (n={len(xs)})"


def _timed(argv: list[str], n: int, env: dict[str, str], payload: str) -> list[float]:
    res = subprocess.run([PY, "-c", DRIVER, str(n), payload, *argv], env=env, capture_output=True, check=True)
    return json.loads(res.stdout)


def bench_hooks(n: int) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from daemon_helpers import private_home, running_daemon

    print(f"hook round trip, {n} calls each (spawn -> exit, as the agent waits for it):")
    with running_daemon(probes=("exec", "file", "net")) as d, private_home() as home:
        env = {**os.environ, "LOGIRA_SOCK": d.sock, "LOGIRA_HOME": str(home), "LOGIRA_STATE_DIR": str(d.state_dir)}
        base = _timed([PY, "-c", "pass"], n, env, PAYLOAD)
        print(f"  python -c pass (floor)        {_pct(base)}")
        bare = _timed([PY, "-I", "-S", "-c", "pass"], n, env, PAYLOAD)
        print(f"  python -I -S -c pass (floor)  {_pct(bare)}")
        outside = _timed([LOGIRA, "hook", "--agent", "claude"], n, env, PAYLOAD)
        print(f"  logira hook, outside a run    {_pct(outside)}")
        outside_fast = _timed(INSTALLED, n, env, PAYLOAD)
        print(f"  installed hook, outside a run {_pct(outside_fast)}")
        nodaemon = _timed(INSTALLED, n, {**env, "LOGIRA_SOCK": "/nonexistent"}, PAYLOAD)
        print(f"  installed hook, no daemon     {_pct(nodaemon)}")
        def in_run(argv: list[str]) -> list[float]:
            res = subprocess.run([LOGIRA, "run", "--tool", "hookbench", "--", PY, "-c", DRIVER, str(n), PAYLOAD,
                                  *argv], env=env, capture_output=True, check=True)  # fmt: skip
            return json.loads(res.stdout)

        floor_in = in_run([PY, "-c", "pass"])
        print(f"  python -c pass, inside a run  {_pct(floor_in)}   (every file python opens is recorded too)")
        inside = in_run([LOGIRA, "hook", "--agent", "claude"])
        print(f"  logira hook, inside a run     {_pct(inside)}   (each one recorded as an agent record)")
        inside_fast = in_run(INSTALLED)
        print(f"  installed hook, inside a run  {_pct(inside_fast)}   (what `agent hooks install` writes)")
        print(f"  installed hook / logira hook, p50 inside a run: "
              f"x{statistics.median(inside_fast) / statistics.median(inside):.2f}; outside: "
              f"x{statistics.median(outside_fast) / statistics.median(outside):.2f}")
        print(f"  hook's own cost inside a run (p50 hook - p50 python floor): "
              f"{(statistics.median(inside) - statistics.median(floor_in)) * 1000:.1f} ms; "
              f"outside a run: {(statistics.median(outside) - statistics.median(base)) * 1000:.1f} ms")


# ---- join -------------------------------------------------------------------------------

MS = 1_000_000
HOME = "/home/agent"


def synth(calls: int, records: int) -> list[Ev]:
    """A Claude-shaped run: hooks around each call, a wrapped Bash child, its files/nets, runtime noise."""
    evs: list[Ev] = []
    t = 1_790_000_000 * 10**9
    agent = 1000

    def add(type_: str, pid: int, ppid: int = 0, **data) -> None:
        nonlocal t
        t += MS // 4
        evs.append(Ev(len(evs) + 1, t, type_, pid, ppid, EvData(**data)))

    add("exec", agent, 1, filename="/opt/claude/bin/claude.exe", argv=["claude", "-p", "x"])
    per_call = max(8, (records - 1) // calls)
    pid = 5000
    for i in range(calls):
        cid, cmd = f"toolu_{i:05d}", f"make target-{i} && grep -rn x src/{i}"
        for ev_name in ("PreToolUse",):
            pid += 1
            add("proc", agent, op="fork", child_pid=pid)
            add("exec", pid, agent, filename="/usr/bin/python3", argv=["python3", "-m", "logira.cli.main", "hook"])
            add("agent", pid, op="hook", source="hook", event=ev_name, tool_use_id=cid, tool_name="Bash",
                command=cmd, sender_pid=pid, session_id="s", agent="claude")  # fmt: skip
            add("proc", pid, op="exit")
        pid += 1
        shell = pid
        add("proc", agent, op="fork", child_pid=shell)
        add("exec", shell, agent, filename="/bin/bash",
            argv=["/bin/bash", "-c", f"source ~/.claude/shell-snapshots/s.sh && eval '{cmd}' && pwd -P"])  # fmt: skip
        body = per_call - 10
        for j in range(body):
            k = j % 10
            if k == 0:
                pid += 1
                add("proc", shell, op="fork", child_pid=pid)
                add("exec", pid, shell, filename="/usr/bin/grep", argv=["grep", "-rn", "x", f"src/{i}"])
            elif k < 6:
                add("file", shell, op="read", path=f"/p/src/{i}/f{j}.c")
            elif k < 8:
                add("file", shell, op="create", path=f"/p/build/{i}/o{j}.o")
            elif k == 8:
                add("net", shell, op="connect", dst_ip="10.0.0.1", dst_port=443)
            else:
                add("file", agent, op="modify", path=f"{HOME}/.claude/projects/-p/s.jsonl")
        add("proc", shell, op="exit")
        pid += 1
        add("proc", agent, op="fork", child_pid=pid)
        add("exec", pid, agent, filename="/usr/bin/python3", argv=["python3", "-m", "logira.cli.main", "hook"])
        add("agent", pid, op="hook", source="hook", event="PostToolUse", tool_use_id=cid, tool_name="Bash",
            sender_pid=pid, status="ok", session_id="s", agent="claude")  # fmt: skip
        add("proc", pid, op="exit")
    return evs


class _Line(msgspec.Struct):
    run_id: str
    seq: int
    ts: int
    type: str
    pid: int
    ppid: int
    uid: int
    summary: str
    data_json: EvData
    hash: str


def calibrate() -> float:
    """Seconds for a fixed pure-Python loop (1 M dict/list ops): how loaded this machine is now."""
    t0 = time.perf_counter()
    d: dict[int, int] = {}
    out = []
    for i in range(1_000_000):
        d[i & 1023] = i
        out.append(i)
    return time.perf_counter() - t0


def to_record(e: Ev) -> Record:
    """The stored record the pipeline would have built (what the collector sink keeps)."""
    d = e.data_json
    data = {
        "exec": lambda: ExecData(filename=d.filename, argv=d.argv),
        "proc": lambda: ProcData(op=d.op, child_pid=d.child_pid),
        "file": lambda: FileData(op=d.op, path=d.path, path2=d.path2),
        "net": lambda: NetData(op=d.op, proto="tcp", dst_ip=d.dst_ip, dst_port=d.dst_port),
        "agent": lambda: AgentData(op=d.op, source=d.source, event=d.event, tool_use_id=d.tool_use_id,
                                   tool_name=d.tool_name, command=d.command, sender_pid=d.sender_pid,
                                   status=d.status, session_id=d.session_id, agent=d.agent),
    }[e.type]()
    return Record(run_id="r", seq=e.seq, ts=e.ts, type=e.type, pid=e.pid, ppid=e.ppid, uid=1000, summary="s",
                  data_json=data)  # fmt: skip


def bench_join() -> None:
    cal = calibrate()
    print(f"join at finalize (read events.jsonl + decode + join, then join alone); calibration loop (1 M dict/list "
          f"ops) {cal * 1000:.0f} ms before:")  # fmt: skip
    enc = msgspec.json.Encoder()
    rows = []
    for calls, records in ((10, 5_000), (50, 25_000), (200, 100_000), (400, 200_000)):
        evs = synth(calls, records)
        with tempfile.TemporaryFile() as f:
            for e in evs:
                f.write(enc.encode(_Line("r", e.seq, e.ts, e.type, e.pid, e.ppid, 1000, "s", e.data_json, "0" * 64)) + b"\n")
            f.flush()
            t0 = time.perf_counter()
            res, _stats, _bad = run_join(f.fileno(), HOME, 1000, evs[-1].ts)
            full = time.perf_counter() - t0
            kept = [to_record(e) for e in evs]
            t0 = time.perf_counter()
            res2, _stats, _bad = run_join(f.fileno(), HOME, 1000, evs[-1].ts, kept)
            from_records = time.perf_counter() - t0
            assert res2.attribution == res.attribution
        gc.disable()  # as finalize.run_join does
        t0 = time.perf_counter()
        join(evs, [], home=HOME, uid=1000)
        pure = time.perf_counter() - t0
        gc.enable()
        assert res.counts["calls"] == calls and not res.findings, (res.counts, res.findings[:2])
        rows.append((calls, len(evs), full, pure, res.counts["attributed"], from_records))
    for calls, n, full, pure, att, recs in rows:
        print(f"  {calls:4d} calls {n:7d} records  finalize from kept records {recs * 1000:7.1f} ms  "
              f"(from events.jsonl {full * 1000:7.1f} ms)  join alone {pure * 1000:7.1f} ms  "
              f"{pure / n * 1e6:5.2f} us/record  ({att} attributed)")  # fmt: skip
    cal2 = calibrate()
    print(f"  calibration loop after: {cal2 * 1000:.0f} ms; 200-call finalize / calibration = "
          f"{rows[2][5] / ((cal + cal2) / 2):.1f}x (machine-independent-ish ratio)")  # fmt: skip
    first, last = rows[0], rows[-1]
    print(f"  linearity: us/record at {last[1]} vs {first[1]} records = {(last[3] / last[1]) / (first[3] / first[1]):.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hooks", type=int, default=100)
    ap.add_argument("--no-hook", action="store_true")
    ap.add_argument("--no-join", action="store_true")
    a = ap.parse_args()
    if not a.no_join:
        bench_join()
    if not a.no_hook:
        if os.geteuid() != 0:
            print("hook round trip: skipped (needs root to start logirad)")
        else:
            bench_hooks(a.hooks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
