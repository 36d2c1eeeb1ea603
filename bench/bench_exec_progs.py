"""Per-program cost of the process-domain BPF programs (needs root; enables bpf_stats briefly).

Wall-clock fork+exec loops are too noisy on a shared 2-core machine; the kernel's own per-program
counters (kernel.bpf_stats_enabled=1: run_time_ns / run_cnt) are not. Runs N fork+exec of
/bin/true (and of a #! script, with a 3 KiB environment) inside a tracked cgroup and prints ns per
call of each exec-object program, for the objects at $LOGIRA_EXEC_BPF_OBJ (default: the package's).
Usage: python bench/bench_exec_progs.py [N]
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
    known = {p["id"] for p in _progs()}
    probes = Probes(ProbeConfig(file=False, net=False))
    probes.load()
    names = {"on_exec", "on_fork", "on_exit", "on_enter_execve", "on_enter_execveat", "on_exit_execve",
             "on_sys_enter", "on_enter_ns1", "on_exit_nsmount", "env_scan", "fd_scan"}  # fmt: skip
    ours = {p["id"] for p in _progs() if p["id"] not in known and p["name"] in names}
    parent = cgroup2.find_cgroup2_mount() / f"logira-bench-{secrets.token_hex(3)}"
    os.mkdir(parent)
    cg = cgroup2.create(parent, "run")
    old = Path("/proc/sys/kernel/bpf_stats_enabled").read_text().strip()
    reader = RingReader(probes, lambda evs: None)
    stop = threading.Event()

    def drain() -> None:  # a live reader: without one every record forces a wake-up (~7 us)
        while not stop.wait(0.005):
            reader.drain()

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    tmp = Path(tempfile.mkdtemp())
    script = tmp / "s.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", **{f"PAD{i}": "x" * 60 for i in range(40)}, "CLAUDECODE": "1"}
    procs = os.fsencode(cg / "cgroup.procs")
    try:
        probes.track(cgroup2.cgroup_id(cg))
        Path("/proc/sys/kernel/bpf_stats_enabled").write_text("1")
        before = _stats(ours)
        loop = f"i=0; while [ $i -lt {n} ]; do /bin/true; {script}; i=$((i+1)); done"

        def enter() -> None:
            fd = os.open(procs, os.O_WRONLY)
            os.write(fd, b"0\n")
            os.close(fd)

        subprocess.run(["/bin/sh", "-c", loop], preexec_fn=enter, env=env, check=True)
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
    print(f"exec object {os.environ.get('LOGIRA_EXEC_BPF_OBJ', 'package')}: {2 * n} execs (/bin/true + a #! script)")
    for name in sorted(after):
        t = after[name][0] - before.get(name, (0, 0))[0]
        c = after[name][1] - before.get(name, (0, 0))[1]
        if c:
            print(f"  {name:22s} {c:>9d} runs {t / c:>9.0f} ns/run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
