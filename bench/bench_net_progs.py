"""Per-program cost of the network-domain BPF programs (needs root; enables bpf_stats briefly).

Like bench_exec_progs.py: wall-clock loops are too noisy on a shared machine, the kernel's
per-program counters (kernel.bpf_stats_enabled=1: run_time_ns / run_cnt) are not. Runs
bench/wl/wl_net_procs.c in a tracked cgroup (N children with one UDP connect + DNS send + TCP
connect each, so the per-thread slot is created N times; then N rounds in one process) and
prints ns per call of each net program, for the object at $LOGIRA_NET_BPF_OBJ (default: the
package's). Compare two objects by running it twice. Usage: python bench/bench_net_progs.py [N [CHILDREN]]
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from logira import cgroup2
from logira.probes.loader import ProbeConfig, Probes
from logira.probes.ringbuf import RingReader

HERE = Path(__file__).resolve().parent


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


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    kids = int(sys.argv[2]) if len(sys.argv) > 2 else n
    tmp = Path(tempfile.mkdtemp())
    exe = tmp / "wl_net_procs"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(HERE / "wl" / "wl_net_procs.c")], check=True)
    known = {p["id"] for p in _progs()}
    probes = Probes(ProbeConfig(exec=False, file=False, net=True))
    probes.load()
    ours = {p["id"] for p in _progs() if p["id"] not in known and p["name"].startswith("net_")}
    parent = cgroup2.find_cgroup2_mount() / f"logira-bench-{secrets.token_hex(3)}"
    os.mkdir(parent)
    cg = cgroup2.create(parent, "run")
    old = Path("/proc/sys/kernel/bpf_stats_enabled").read_text().strip()
    reader = RingReader(probes, lambda evs: None)
    stop = threading.Event()

    def drain() -> None:  # a live reader: without one every record forces a wake-up
        while not stop.wait(0.005):
            reader.drain()

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    procs = os.fsencode(cg / "cgroup.procs")
    try:
        probes.track(cgroup2.cgroup_id(cg))
        Path("/proc/sys/kernel/bpf_stats_enabled").write_text("1")
        before = _stats(ours)

        def enter() -> None:
            fd = os.open(procs, os.O_WRONLY)
            os.write(fd, b"0\n")
            os.close(fd)

        subprocess.run([str(exe), str(n), str(kids)], preexec_fn=enter, check=True)
        after = _stats(ours)
    finally:
        Path("/proc/sys/kernel/bpf_stats_enabled").write_text(old)
        stop.set()
        drainer.join()
        reader.stop()
        probes.close()
        cgroup2.kill_all(cg)
        cgroup2.remove(cg)
        cgroup2.remove(parent)
    print(f"net object {os.environ.get('LOGIRA_NET_BPF_OBJ', 'package')}: {kids} processes + {n} rounds in one")
    for name in sorted(after):
        t = after[name][0] - before.get(name, (0, 0))[0]
        c = after[name][1] - before.get(name, (0, 0))[1]
        if c:
            print(f"  {name:22s} {c:>9d} runs {t / c:>9.0f} ns/run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
