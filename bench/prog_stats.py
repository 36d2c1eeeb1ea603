"""The kernel's own per-program BPF cost counters, for the bench_*_progs.py benches (needs root).

Wall-clock loops are too noisy on a shared 2-core machine; kernel.bpf_stats_enabled=1 makes the
kernel keep run_time_ns / run_cnt per program, which are not. measure() loads one probe domain,
runs a workload inside a tracked cgroup with a live ring reader, and returns what each of the
newly loaded programs cost during it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from logira import cgroup2
from logira.probes.loader import ProbeConfig, Probes
from logira.probes.ringbuf import RingReader

STATS_SWITCH = Path("/proc/sys/kernel/bpf_stats_enabled")


def _progs() -> list[dict]:
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _stats(ours: set[int]) -> dict[str, tuple[int, int]]:
    got: dict[str, tuple[int, int]] = {}
    for p in _progs():
        if p["id"] in ours:
            t, c = got.get(p["name"], (0, 0))
            got[p["name"]] = (t + p.get("run_time_ns", 0), c + p.get("run_cnt", 0))
    return got


def measure(config: ProbeConfig, is_ours: Callable[[str], bool], argv: list[str],
            env: dict[str, str] | None = None) -> dict[str, tuple[int, int]]:  # fmt: skip
    """Run argv in a tracked cgroup; return {program name: (ns, runs)} spent during it.

    Only programs this call loads count (ids not present before, names accepted by is_ours), so
    a logirad running on the same machine does not pollute the numbers.
    """
    known = {p["id"] for p in _progs()}
    probes = Probes(config)
    probes.load()
    ours = {p["id"] for p in _progs() if p["id"] not in known and is_ours(p["name"])}
    parent = cgroup2.find_cgroup2_mount() / f"logira-bench-{secrets.token_hex(3)}"
    os.mkdir(parent)
    cg = cgroup2.create(parent, "run")
    old = STATS_SWITCH.read_text().strip()
    reader = RingReader(probes, lambda evs: None)
    stop = threading.Event()

    def drain() -> None:  # a live reader: without one every record forces a wake-up (~7 us)
        while not stop.wait(0.005):
            reader.drain()

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    procs = os.fsencode(cg / "cgroup.procs")
    try:
        probes.track(cgroup2.cgroup_id(cg))
        STATS_SWITCH.write_text("1")
        before = _stats(ours)

        def enter() -> None:
            fd = os.open(procs, os.O_WRONLY)
            os.write(fd, b"0\n")
            os.close(fd)

        subprocess.run(argv, preexec_fn=enter, env=env, check=True)
        after = _stats(ours)
    finally:
        STATS_SWITCH.write_text(old)
        stop.set()
        drainer.join()
        reader.stop()
        probes.close()
        cgroup2.kill_all(cg)
        cgroup2.remove(cg)
        cgroup2.remove(parent)
    spent: dict[str, tuple[int, int]] = {}
    for name in after:
        t = after[name][0] - before.get(name, (0, 0))[0]
        c = after[name][1] - before.get(name, (0, 0))[1]
        spent[name] = (t, c)
    return spent


def print_per_run(spent: dict[str, tuple[int, int]]) -> None:
    for name in sorted(spent):
        t, c = spent[name]
        if c:
            print(f"  {name:22s} {c:>9d} runs {t / c:>9.0f} ns/run")
