"""Per-program cost of the process-domain BPF programs (needs root; enables bpf_stats briefly).

Wall-clock fork+exec loops are too noisy on a shared 2-core machine; the kernel's own per-program
counters (kernel.bpf_stats_enabled=1: run_time_ns / run_cnt, see prog_stats.py) are not. Runs N fork+exec of
/bin/true (and of a #! script, with a 3 KiB environment) inside a tracked cgroup and prints ns per
call of each exec-object program, for the objects at $LOGIRA_EXEC_BPF_OBJ (default: the package's).
Usage: python bench/bench_exec_progs.py [N]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import prog_stats

from logira.probes.loader import ProbeConfig

EXEC_PROGS = {"on_exec", "on_fork", "on_exit", "on_enter_execve", "on_enter_execveat", "on_exit_execve",
              "on_sys_enter", "on_enter_ns1", "on_exit_nsmount", "env_scan", "fd_scan"}  # fmt: skip


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    tmp = Path(tempfile.mkdtemp())
    script = tmp / "s.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", **{f"PAD{i}": "x" * 60 for i in range(40)}, "CLAUDECODE": "1"}
    loop = f"i=0; while [ $i -lt {n} ]; do /bin/true; {script}; i=$((i+1)); done"
    spent = prog_stats.measure(ProbeConfig(file=False, net=False), EXEC_PROGS.__contains__, ["/bin/sh", "-c", loop], env)
    print(f"exec object {os.environ.get('LOGIRA_EXEC_BPF_OBJ', 'package')}: {2 * n} execs (/bin/true + a #! script)")
    prog_stats.print_per_run(spent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
