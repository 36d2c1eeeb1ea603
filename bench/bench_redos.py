"""Worst-case cost of one event against a hostile per-run rules file at its budget.

The tests (tests/detect/test_redos.py) assert bounded WORK: RE2 for every pattern, text caps,
fan-out. This benchmark reports the TIME that work takes here, as a ratio against a baseline
measured in the same run: the same detector judging an ordinary 40-byte command line.
The patterns are the costliest shape measured (`(a|b)*a[ab]{k}` explodes RE2's DFA state set,
so RE2 falls back to its NFA on every byte of a 16 KiB command line).

Usage: python bench/bench_redos.py [--events N]
"""

from __future__ import annotations

import argparse
import random
import time

from logira.detect.compile import MAX_MATCH_TEXT
from logira.detect.engine import Detector
from logira.detect.loader import RuleError, load_rules, load_sources
from logira.model.proctree import ProcessTree
from logira.model.record import ExecData, Record

HOME, WS = "/home/u", "/home/u/w"


def _rules(whens: list[str]) -> str:
    body = "".join(f"      - {w}\n" for w in whens)
    return ("rules:\n  - id: user-rule\n    title: t\n    severity: high\n    category: c\n"
            f"    description: d\n    message: hit\n    when:\n{body}")  # fmt: skip


def _at_budget() -> str:
    whens: list[str] = []
    while True:
        w = f"exec: {{cmdline: '(a|b)*a[ab]{{{20 + len(whens)}}}'}}"
        try:
            load_sources([("probe.yaml", _rules([*whens, w]))], untrusted_from=0)
        except RuleError:
            return _rules(whens)
        whens.append(w)


def _time(det: Detector, argvs: list[list[str]]) -> float:
    """Seconds per event (median over the events)."""
    costs = []
    for i, argv in enumerate(argvs):
        rec = Record(run_id="r", seq=i + 1, ts=i + 1, type="exec", pid=50, ppid=1, uid=1000, summary="",
                     data_json=ExecData(filename="/usr/bin/x", argv=argv, cwd=WS))  # fmt: skip
        det.tree.observe(rec)
        t0 = time.perf_counter()
        det.process(rec)
        costs.append(time.perf_counter() - t0)
    costs.sort()
    return costs[len(costs) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=30)
    args = ap.parse_args()
    rnd = random.Random(7)
    det = Detector(load_rules(site_dir=None, extra=[("mine.yaml", _at_budget())]), home=HOME, workspace=WS,
                   tree=ProcessTree())  # fmt: skip
    benign = [["x", f"ordinary command line number {i}"] for i in range(args.events)]
    hostile = [["x", "".join(rnd.choice("ab") for _ in range(MAX_MATCH_TEXT - 2))] for _ in range(args.events)]
    base = _time(det, benign)
    worst = _time(det, hostile)
    print(f"benign event: {base * 1e6:.0f} us; hostile 16 KiB event at the budget: {worst * 1e3:.1f} ms "
          f"(x{worst / base:.0f} the benign one, same detector, same run)")  # fmt: skip


if __name__ == "__main__":
    main()
