"""Capture overhead benchmark (needs root and built BPF objects).

Conditions, interleaved per repetition, medians reported:
  untraced  objects loaded but nothing tracked (attach on demand: no program attached)
  other     another cgroup tracked: programs attached, the workload filtered out in-kernel
  own       the workload's cgroup tracked, a RingReader draining on an asyncio loop

Workloads: fork+exec of /bin/true, write-opens (needs the file object), a mixed compile
loop (gcc: many execs and opens), a network loop (needs the net object: loopback TCP
connect/accept/send/close, a DNS query on a connected UDP socket, a writev). Also: time to ready, reader RSS, tight-loop delivered
rate with the kernel drop count.

Scale with LOGIRA_BENCH_SCALE (default 1.0 = 20 000 fork+exec, 200 000 opens, 10 compiles)
and LOGIRA_BENCH_REPS (default 3).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from logira import cgroup2
from logira.probes.loader import DOMAINS, ProbeConfig, Probes, object_path
from logira.probes.ringbuf import RingReader

HERE = Path(__file__).resolve().parent
SCALE = float(os.environ.get("LOGIRA_BENCH_SCALE", "1"))
REPS = int(os.environ.get("LOGIRA_BENCH_REPS", "3"))


# workloads the capture tests also run (fork_exec) have one source, under tests/capture/wl
TEST_WL = HERE.parent / "tests" / "capture" / "wl"


def build(tmp: Path, name: str) -> Path:
    """Compile workload `name` from bench/wl, or from the capture tests' wl/ when shared."""
    src = HERE / "wl" / f"{name}.c"
    if not src.exists():
        src = TEST_WL / f"{name}.c"
    out = tmp / name
    subprocess.run(["gcc", "-O2", "-o", str(out), str(src)], check=True)
    return out


class Reader:
    """RingReader on its own asyncio loop thread, counting delivered events."""

    def __init__(self, probes: Probes):
        self.count = 0
        self.loop = asyncio.new_event_loop()
        self.reader = RingReader(probes, self._on_batch)
        self.thread = threading.Thread(target=self._run, daemon=True)
        started = threading.Event()
        self.loop.call_soon(self.reader.start)
        self.loop.call_soon(started.set)
        self.thread.start()
        started.wait()

    def _on_batch(self, events: list) -> None:
        self.count += len(events)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def drain(self) -> None:
        done = threading.Event()

        def _d() -> None:
            self.reader.drain()
            done.set()

        self.loop.call_soon_threadsafe(_d)
        done.wait()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.reader.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


def run_in(cg: Path, argv: list[str], cwd: Path | None = None) -> float:
    procs = os.fsencode(cg / "cgroup.procs")

    def enter() -> None:
        fd = os.open(procs, os.O_WRONLY)
        os.write(fd, b"0\n")
        os.close(fd)

    t0 = time.perf_counter()
    subprocess.run(argv, preexec_fn=enter, check=True, cwd=cwd, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def rss_kib(field: str = "VmHWM") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def drain_ceiling(
    probes: Probes,
    reader: Reader,
    cg: Path,
    cg_id: int,
    fork_exec: Path,
    wl_open: Path,
    tmp: Path,
    file: bool,
) -> str:
    """Fill the ring with the consumer stopped, then time one synchronous drain (decode included)."""
    reader.close()
    probes.track(cg_id)
    try:
        if file:
            run_in(cg, [str(wl_open), "40000", str(tmp / "target")])
        else:
            run_in(cg, [str(fork_exec), "5000"])
        got = [0]
        rr = RingReader(probes, lambda evs: got.__setitem__(0, got[0] + len(evs)))
        t0 = time.perf_counter()
        rr.drain()
        dt = time.perf_counter() - t0
        rr.stop()
    finally:
        probes.untrack(cg_id)
    return f"reader drain ceiling: {got[0]} records decoded in {dt * 1000:.0f} ms = {got[0] / dt:,.0f} ev/s"


def main() -> int:
    if os.geteuid() != 0:
        print("bench_capture needs root (it loads BPF)", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="logira-bench-"))
    parent = cgroup2.find_cgroup2_mount() / f"logira-test-bench-{secrets.token_hex(3)}"
    os.mkdir(parent)
    wl_cg, other_cg = cgroup2.create(parent, "wl"), cgroup2.create(parent, "other")
    only = os.environ.get("LOGIRA_BENCH_DOMAINS")
    have = {d: object_path(d).exists() and (not only or d in only.split(",")) for d in DOMAINS}
    t0 = time.perf_counter()
    probes = Probes(ProbeConfig(**have))
    probes.load()
    ready = time.perf_counter() - t0
    rss_before = rss_kib("VmRSS")
    reader = Reader(probes)
    try:
        fork_exec, wl_open, wl_net = build(tmp, "fork_exec"), build(tmp, "wl_open"), build(tmp, "wl_net")
        n_exec, n_open, n_cc, n_net = (
            max(1, int(20000 * SCALE)),
            max(1, int(200000 * SCALE)),
            max(1, int(10 * SCALE)),
            max(1, int(20000 * SCALE)),
        )
        for i in range(3):
            shutil.copy(HERE / "wl" / "mixed_unit.c", tmp / f"u{i}.c")
        compile_cmd = ["sh", "-c", f"for i in $(seq {n_cc}); do gcc -O1 -c u0.c u1.c u2.c; done"]
        workloads = {f"fork+exec x{n_exec}": [str(fork_exec), str(n_exec)]}
        if have["file"]:
            workloads[f"write-open x{n_open}"] = [str(wl_open), str(n_open), str(tmp / "target")]
        workloads[f"gcc -c 3 files x{n_cc}"] = compile_cmd
        if have["net"]:
            workloads[f"tcp+dns+writev x{n_net}"] = [str(wl_net), str(n_net)]
        times: dict[tuple[str, str], list[float]] = {}
        delivered: dict[str, list[tuple[int, int, float]]] = {}
        wl_id, other_id = cgroup2.cgroup_id(wl_cg), cgroup2.cgroup_id(other_cg)
        conds = ["untraced", "other", "own"]
        for rep in range(REPS):
            for cond in conds[rep % 3 :] + conds[: rep % 3]:  # rotate: no condition always first
                if cond == "other":
                    probes.track(other_id)
                elif cond == "own":
                    probes.track(wl_id)
                for name, argv in workloads.items():
                    reader.drain()
                    c0, d0 = reader.count, sum(probes.drop_counts().values())
                    dt = run_in(wl_cg, argv, cwd=tmp)
                    times.setdefault((name, cond), []).append(dt)
                    if cond == "own":
                        time.sleep(0.05)
                        reader.drain()
                        n = reader.count - c0
                        drops = sum(probes.drop_counts().values()) - d0
                        delivered.setdefault(name, []).append((n, drops, dt))
                if cond == "other":
                    probes.untrack(other_id)
                elif cond == "own":
                    probes.untrack(wl_id)
        print(f"logira capture benchmark: domains={','.join(probes.domains)} reps={REPS} scale={SCALE}")
        print(f"{'workload':28} {'untraced s':>11} {'other':>12} {'own':>12}")
        for name in workloads:
            base = statistics.median(times[(name, "untraced")])
            cells = [f"{base:11.3f}"]
            for cond in ("other", "own"):
                m = statistics.median(times[(name, cond)])
                cells.append(f"{m:7.3f} x{m / base:4.2f}")
            print(f"{name:28} {' '.join(cells)}")
        print()
        for name, rows in delivered.items():
            n, drops, dt = sorted(rows, key=lambda r: r[2])[len(rows) // 2]
            print(
                f"{name:28} own: {n} events delivered, {n / dt:,.0f} ev/s while running, kernel drops {drops}"
            )
        print()
        print(f"reader: received {reader.reader.received}, decode errors {reader.reader.decode_errors}")
        ceiling = drain_ceiling(probes, reader, wl_cg, wl_id, fork_exec, wl_open, tmp, have["file"])
        reader = Reader(probes)
        print(ceiling)
        print(f"time to ready (Probes() -> load()): {ready * 1000:.0f} ms, domains {probes.domains}")
        print(f"reader process RSS: {rss_before / 1024:.0f} MiB after load, peak {rss_kib() / 1024:.0f} MiB")
    finally:
        reader.close()
        probes.close()
        for cg in (wl_cg, other_cg):
            cgroup2.kill_all(cg)
        cgroup2.remove(parent)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
