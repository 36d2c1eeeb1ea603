"""Wall-clock timing of whole commands, shared by the CLI benches (bench_cli, bench_read, bench_history).

Each sample is one fresh process, output discarded, so the numbers include interpreter start-up:
what a user waits for. Callers compare ratios against a baseline timed the same way in the same run.
"""

from __future__ import annotations

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
