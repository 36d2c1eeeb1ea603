"""`make bench`: run every benchmark in turn and print their figures.

Benchmarks print numbers; they never pass or fail. Run them on an otherwise idle machine
(ratios are measured against a baseline inside the same run, because VMs are noisy).
Pass names to run a subset: `python bench/run_all.py capture detect`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = {
    "capture": [sys.executable, str(HERE / "bench_capture.py")],
    "cli": [sys.executable, str(HERE / "bench_cli.py")],
    "detect": [sys.executable, str(HERE / "bench_detect.py")],
    "pipeline": [sys.executable, str(HERE / "bench_pipeline.py")],
    "read": [sys.executable, str(HERE / "bench_read.py")],
    "redos": [sys.executable, str(HERE / "bench_redos.py")],
    "report": [sys.executable, str(HERE / "bench_report.py")],
    "history": [sys.executable, str(HERE / "bench_history.py")],
    "otlp": [sys.executable, str(HERE / "bench_otlp.py")],
    "agents": [sys.executable, str(HERE / "bench_agents.py")],
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"error: unknown benchmark {unknown[0]!r} (choose from {', '.join(BENCHES)})", file=sys.stderr)
        return 2
    rc = 0
    for name in names:
        if not Path(BENCHES[name][1]).exists():
            continue
        print(f"\n=== bench: {name} ===", flush=True)
        rc |= subprocess.run(BENCHES[name], check=False).returncode
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
