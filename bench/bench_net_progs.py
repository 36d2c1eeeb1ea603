"""Per-program cost of the network-domain BPF programs (needs root; enables bpf_stats briefly).

Like bench_exec_progs.py: wall-clock loops are too noisy on a shared machine, the kernel's
per-program counters (kernel.bpf_stats_enabled=1: run_time_ns / run_cnt) are not. Runs
bench/wl/wl_net_procs.c in a tracked cgroup (N children with one UDP connect + DNS send + TCP
connect each, so the per-thread slot is created N times; then N rounds in one process) and
prints ns per call of each net program, for the object at $LOGIRA_NET_BPF_OBJ (default: the
package's). Compare two objects by running it twice. Usage: python bench/bench_net_progs.py [N [CHILDREN]]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import prog_stats

from logira.probes.loader import ProbeConfig

HERE = Path(__file__).resolve().parent


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    kids = int(sys.argv[2]) if len(sys.argv) > 2 else n
    tmp = Path(tempfile.mkdtemp())
    exe = tmp / "wl_net_procs"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(HERE / "wl" / "wl_net_procs.c")], check=True)
    config = ProbeConfig(exec=False, file=False, net=True)
    spent = prog_stats.measure(config, lambda name: name.startswith("net_"), [str(exe), str(n), str(kids)])
    print(f"net object {os.environ.get('LOGIRA_NET_BPF_OBJ', 'package')}: {kids} processes + {n} rounds in one")
    prog_stats.print_per_run(spent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
