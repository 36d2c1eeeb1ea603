"""Where a user waits on the CLI: `logira --version`, `logira run -- true`, finalize of a 12k-event run.

Needs root and built BPF objects (a private logirad is started, as the tests do). Every figure
is a median over --repeat runs, next to its baseline measured in the same run (ratios, because
the machine is shared and noisy):

  version        `logira --version` (the venv's entry point) vs `python -c pass` (the interpreter
                 floor); also without site (what an install without the editable finder costs)
  run overhead   `logira run -- true` minus `/bin/true`, with the daemon warm
  finalize       agent exit → `logira run` returns, for an agent making ~12 000 file records;
                 the daemon's own split (ms_wait / ms_drain / ms_files) from its run_finished log

    sudo .venv/bin/python bench/bench_cli.py [--repeat 15] [--events 12000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from daemon_helpers import DaemonHandle, make_home  # noqa: E402
from timing import timed  # noqa: E402

PY = sys.executable
LOGIRA = [str(Path(PY).parent / "logira")]

AGENT = """
import os, sys, time
d = sys.argv[1]; n = int(sys.argv[2])
os.makedirs(d, exist_ok=True)
for i in range(n):
    os.close(os.open(f"{d}/f{i}", os.O_WRONLY | os.O_CREAT, 0o600))
with open(sys.argv[3], "w") as f:
    f.write(repr(time.monotonic()))
"""


def p50(argv: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    return statistics.median(timed(argv, env, repeat))


def version(repeat: int) -> None:
    floor = p50([PY, "-c", "pass"], repeat)
    floor_s = p50([PY, "-S", "-c", "pass"], repeat)
    ver = p50([*LOGIRA, "--version"], repeat)
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); from logira.cli.main import main; main(['--version'])"
    ver_s = p50([PY, "-S", "-c", code], repeat)
    print(f"{'logira --version (venv entry point)':<44} {ver:7.3f} s   python -c pass {floor:.3f} s   "
          f"added {ver - floor:+.3f} s")
    print(f"{'logira --version without site (-S)':<44} {ver_s:7.3f} s   python -S -c pass {floor_s:.3f} s   "
          f"added {ver_s - floor_s:+.3f} s")


def _last_finished(d: DaemonHandle) -> dict[str, object]:
    for line in reversed(d.log_text().splitlines()):
        if '"run_finished"' in line:
            return json.loads(line)
    return {}


def runs(repeat: int, events: int) -> None:
    d = DaemonHandle(probes=("exec", "file")).start()
    home = make_home()
    env = {**os.environ, "LOGIRA_HOME": str(home), "LOGIRA_SOCK": d.sock}
    work = Path(str(home.parent)) / "work"
    try:
        subprocess.run([*LOGIRA, "run", "--no-net", "--", "true"], env=env, check=True, capture_output=True)  # warm
        base = p50(["/bin/true"], repeat)
        run = p50([*LOGIRA, "run", "--no-net", "--tool", "bench", "--", "/bin/true"], repeat, env)
        ver = p50([*LOGIRA, "--version"], repeat)
        print(f"{'logira run -- true':<44} {run:7.3f} s   /bin/true {base:.3f} s   added {run - base:+.3f} s "
              f"(of which interpreter+CLI start ~{ver:.3f} s)")
        splits, fin = [], []
        for i in range(max(3, repeat // 3)):
            marker = work / f"end-{i}"
            t0 = time.perf_counter()
            subprocess.run([*LOGIRA, "run", "--no-net", "--tool", "fin", "--", PY, "-I", "-S", "-c", AGENT, str(work / f"d{i}"),
                            str(events), str(marker)], env=env, check=True, capture_output=True)  # fmt: skip
            t_ret = time.monotonic()
            del t0
            fin.append(t_ret - float(marker.read_text()))
            splits.append(_last_finished(d))
        n_events = splits[-1].get("events", "?")
        print(f"{'finalize, agent exit -> logira run returns':<44} {statistics.median(fin):7.3f} s   "
              f"({n_events} records/run)")
        for k in ("ms_wait", "ms_drain", "ms_files"):
            vals = [int(s.get(k, 0)) for s in splits if s]  # type: ignore[call-overload]
            if vals:
                print(f"  daemon {k:<10} median {statistics.median(vals):5.0f} ms")
    finally:
        d.cleanup()
        shutil.rmtree(home.parent, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--events", type=int, default=12_000)
    a = ap.parse_args()
    version(a.repeat)
    if os.geteuid() != 0:
        print("run and finalize figures need root (a private logirad is started)")
        return 0
    runs(a.repeat, a.events)
    return 0


if __name__ == "__main__":
    sys.exit(main())
