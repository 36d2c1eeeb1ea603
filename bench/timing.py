"""Wall-clock timing shared by the benches: whole commands (bench_cli, bench_read, bench_history), and
the load note a result ends with (bench_history, bench_otlp, bench_report).

Each sample is one fresh process, output discarded, so the numbers include interpreter start-up:
what a user waits for. Callers compare ratios against a baseline timed the same way in the same run.
"""

from __future__ import annotations

import os
import subprocess
import time


def timed(argv: list[str], env: dict[str, str] | None, repeat: int) -> list[float]:
    """Seconds for each of `repeat` runs of argv (a failing command raises: a bench must not time errors)."""
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - t)
    return out


def load_note() -> str:
    """The line every wall-clock bench ends with: on a shared machine absolutes move with the load."""
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"(load average while measured: {load} on {os.cpu_count()} cores; figures scale with it: compare ratios, not absolutes)"
