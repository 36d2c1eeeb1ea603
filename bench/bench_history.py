"""A home with a real history: `logira diff` against 1 000 runs, and a retro-hunt over 1 000 runs / 10 M records.

Data from bench/gen_runs.py (real JsonlSink + SqliteSink; one workspace, /home/u/proj). Commands
run as real `logira` subprocesses, startup included, min / median of --repeat.
- diff: the first call builds $LOGIRA_HOME/summaries.sqlite (once per home), later calls reuse it.
- hunt: `rules test IOC --all-runs` with one IOC rule each: a destination that no run contacted
  (every run ruled out by its index), a DNS name most runs queried, a path glob few runs touched.
  The baseline is the same IOC evaluated in full (every record of every run), measured on the
  first --baseline-runs runs and scaled to the whole home.

    .venv/bin/python bench/bench_history.py [--home DIR] [--runs 1000] [--events-per-run 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import gen_runs  # noqa: E402
from timing import load_note, timed  # noqa: E402

LOGIRA = [sys.executable, "-m", "logira.cli.main"]
IOCS = {
    "dest (nobody)": "net: {dst: ['203.0.113.7'], direction: outbound}",
    "dns (most runs)": "net: {dns: ['host7.example.com']}",
    "path glob (few)": "file: {op: [modify, create], path: ['$HOME/.ssh/**']}",
}
RULE = """rules:
  - id: ioc
    title: IOC
    severity: high
    category: ioc
    description: bench IOC
    message: "ioc"
    when:
      {cond}
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--events-per-run", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-runs", type=int, default=50)
    ap.add_argument("--distinct", type=int, default=20,
                    help="runs generated through the real sinks; the others hard-link their files (own meta.json)")
    a = ap.parse_args()
    home = a.home or Path(tempfile.mkdtemp(prefix="logira-bench-history-"))
    t0 = time.time_ns() - (a.runs + 10) * 60 * gen_runs.S
    ids = [f"20250101-{i // 60:04d}{i % 60:02d}-hist" for i in range(a.runs)]
    t = time.perf_counter()
    made = 0
    from logira.format.meta import decode_meta, encode_meta

    for i, rid in enumerate(ids):
        run_dir = home / "runs" / rid
        if (run_dir / "meta.json").exists():
            continue
        if i < a.distinct:
            gen_runs.write_run(home, rid, a.events_per_run, t0 + i * 60 * gen_runs.S, seed=i)
        else:  # same records as a generated run (hard links), its own id and start time
            src = home / "runs" / ids[i % a.distinct]
            run_dir.mkdir(parents=True)
            for f in ("events.jsonl", "index.sqlite"):
                os.link(src / f, run_dir / f)
            meta = decode_meta((src / "meta.json").read_bytes())
            meta.run_id, meta.start_ts = rid, t0 + i * 60 * gen_runs.S
            meta.end_ts = meta.start_ts + 60 * gen_runs.S
            (run_dir / "meta.json").write_bytes(encode_meta(meta))
        made += 1
    if made:
        print(f"generated {made} runs x {a.events_per_run} records in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    total = a.runs * a.events_per_run
    env = {**os.environ, "LOGIRA_HOME": str(home)}
    (home / "summaries.sqlite").unlink(missing_ok=True)
    first = timed([*LOGIRA, "diff", "--json"], env, 1)[0]
    again = timed([*LOGIRA, "diff", "--json"], env, a.repeat)
    print(f"diff last vs {a.runs - 1} earlier runs: {min(again):.3f} / {statistics.median(again):.3f} s "
          f"(target < 0.5 s); first call, building the summary index of {a.runs} runs: {first:.1f} s")
    rules_dir = Path(tempfile.mkdtemp(prefix="logira-bench-ioc-"))
    for name, cond in IOCS.items():
        f = rules_dir / f"{name.split()[0]}.yaml"
        f.write_text(RULE.format(cond=cond))
        times = timed([*LOGIRA, "rules", "test", str(f), "--all-runs"], env, a.repeat)
        out = subprocess.run([*LOGIRA, "rules", "test", str(f), "--all-runs"], env=env, capture_output=True,
                             text=True, check=True).stdout.splitlines()[-1]  # fmt: skip
        print(f"rules test IOC {name:<16} {a.runs} runs / {total / 1e6:.0f} M records: {min(times):.2f} / "
              f"{statistics.median(times):.2f} s (target < 10 s)  [{out}]")
    # baseline: the same IOC over every record (no index), on a sample of runs, scaled
    from logira.cli.rules import HuntStats, _subset, hunt_run
    from logira.detect.loader import load_rules

    sample = ids[: a.baseline_runs]
    import shutil

    tmp = Path(tempfile.mkdtemp(prefix="logira-bench-full-"))
    for rid in sample:
        shutil.copytree(home / "runs" / rid, tmp / "runs" / rid, ignore=shutil.ignore_patterns("index.sqlite"))
    rs = load_rules(extra=[("ioc.yaml", RULE.format(cond=IOCS["dns (most runs)"]))], site_dir=None)
    rs = _subset(rs, [lr for lr in rs.rules if lr.source == "ioc.yaml"])
    st = HuntStats()
    t = time.perf_counter()
    for rid in sample:
        hunt_run(rs, tmp / "runs" / rid, st)
    full = (time.perf_counter() - t) * a.runs / len(sample)
    print(f"baseline (full evaluation of every record, no index) scaled to {a.runs} runs: {full:.1f} s")
    shutil.rmtree(tmp, ignore_errors=True)
    print(load_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
