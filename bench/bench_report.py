"""`logira report` on a 1 M-record run: wall time and peak memory, vs a 100 k-record run of the same mix.

Data from bench/gen_runs.py (real JsonlSink + SqliteSink). Each format is rendered by a real
`logira report` subprocess (startup included) to /dev/null; peak RSS is the child's ru_maxrss.
Bounded memory shows as a peak that barely grows from 100 k to 1 M records (the model is built
by GROUP BY queries with capped results, never by loading the run).

    .venv/bin/python bench/bench_report.py [--home DIR] [--events 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import gen_runs  # noqa: E402
from timing import load_note  # noqa: E402

LOGIRA = [sys.executable, "-m", "logira.cli.main"]
TARGET_S = 3.0


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(seconds, peak RSS in MiB) of one child."""
    t = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
    _, status, ru = os.wait4(pid, 0)
    dt = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")
    return dt, ru.ru_maxrss // 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    home = a.home or Path(tempfile.mkdtemp(prefix="logira-bench-report-"))
    t0 = time.time_ns() - 3600 * gen_runs.S
    sizes = {"small": a.events // 10, "big": a.events}
    ids = {k: f"20260101-00000{i}-{k}agent" for i, k in enumerate(sizes)}
    for k, n in sizes.items():
        if not (home / "runs" / ids[k]).exists():
            t = time.perf_counter()
            gen_runs.write_run(home, ids[k], n, t0)
            print(f"generated {ids[k]}: {n} records in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    env = {**os.environ, "LOGIRA_HOME": str(home)}
    print(f"logira report (1 process each, startup included), min / median of {a.repeat}, peak RSS")
    rows = {}
    for fmt in ("json", "html", "md", "sarif"):
        for k in sizes:
            extra = ["--repo", str(REPO), "--anchor", "README.md"] if fmt == "sarif" else []
            argv = [*LOGIRA, "report", ids[k], "--format", fmt, "-o", "/dev/null", *extra]
            res = [run_once(argv, env) for _ in range(a.repeat)]
            times = [r[0] for r in res]
            rows[(fmt, k)] = (min(times), statistics.median(times), max(r[1] for r in res))
        (s_min, _, s_rss), (b_min, b_med, b_rss) = rows[(fmt, "small")], rows[(fmt, "big")]
        ok = "ok" if b_min < TARGET_S else "SLOW"
        print(f"  --format {fmt:<5}  {sizes['big']:>8} records: {b_min:.2f} / {b_med:.2f} s, {b_rss} MiB   "
              f"{sizes['small']:>7} records: {s_min:.2f} s, {s_rss} MiB   time x{b_min / s_min:.1f} for x10 records, "
              f"memory x{b_rss / max(s_rss, 1):.2f}   target < {TARGET_S:.0f} s: {ok}")
    print(load_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
