"""`logira check`: a CI gate; exits non-zero when a run has detections at or above a level, or is INCOMPLETE."""

from __future__ import annotations

import argparse
import sys

from logira.cli import readside
from logira.cli.errors import CliError

EXAMPLES = """\
  logira check --fail-on high          # exit 1 on any high/critical detection or an incomplete record
  logira check last --fail-on medium --allow-incomplete
"""


def register(subparsers) -> None:
    p = readside.add_parser(
        subparsers, "check", "Exit non-zero when a run fails a threshold (for CI).",
        "Exit 0 when the run has no detection at or above --fail-on and its record is COMPLETE; "
        "otherwise print one line per reason and exit 1. Same as `logira explain --fail-on LEVEL`.",
        EXAMPLES,
    )  # fmt: skip
    readside.add_selector(p)
    add_fail_on(p, default="high")
    p.set_defaults(func=run)


def add_fail_on(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--fail-on", default=default, metavar="LEVEL",
                   help="info|low|medium|high|critical: fail on detections at or above LEVEL"
                        + (f" (default {default})" if default else ""))  # fmt: skip
    p.add_argument(
        "--allow-incomplete", action="store_true", help="do not fail because the record is incomplete"
    )


def check_level(level: str) -> str:
    """The validated --fail-on level (exit 2 with one line otherwise)."""
    from logira.model.record import SEVERITIES

    lvl = level.strip().lower()
    if lvl not in SEVERITIES:
        raise CliError(f"invalid --fail-on {level!r} (expected {' | '.join(SEVERITIES)})", exit_code=2)
    return lvl


def failures(meta, by_severity: dict[str, int], level: str, allow_incomplete: bool) -> list[str]:
    """Why the run fails the gate (empty: it passes)."""
    from logira.model.record import SEVERITIES
    from logira.report.build import incomplete_reasons, status_word

    lvl = check_level(level)
    out: list[str] = []
    at = SEVERITIES[SEVERITIES.index(lvl) :]
    hits = {s: by_severity[s] for s in reversed(at) if by_severity.get(s)}
    if hits:
        out.append(f"{sum(hits.values())} detections at or above {lvl} ("
                   + ", ".join(f"{s} {n}" for s, n in hits.items()) + ")")  # fmt: skip
    word = status_word(meta)
    if word != "COMPLETE" and not allow_incomplete:
        reasons = incomplete_reasons(meta) if word == "INCOMPLETE" else ["the run is still running"]
        out.append(f"record {word}: " + "; ".join(reasons))
    return out


def gate(meta, by_severity: dict[str, int], level: str, allow_incomplete: bool) -> int:
    """Print the failures on stderr; the exit status of the gate."""
    from logira.render.escape import esc

    fails = failures(meta, by_severity, level, allow_incomplete)
    for f in fails:
        print(f"logira check: {esc(meta.run_id)}: {esc(f)}", file=sys.stderr)
    return 1 if fails else 0


def run(args: argparse.Namespace) -> int:
    from logira.read import reader
    from logira.read.query import RunSource
    from logira.report.aggregates import rule_groups

    check_level(args.fail_on)  # an invalid level fails before any run is read
    run_dir = readside.resolve(args)
    meta = reader.read_meta(run_dir)
    with RunSource(run_dir, running=meta.status == "running") as src:
        by_sev: dict[str, int] = {}
        for g in rule_groups(src.db):
            by_sev[g.severity] = by_sev.get(g.severity, 0) + g.count
    code = gate(meta, by_sev, args.fail_on, args.allow_incomplete)
    if code == 0:
        print(
            f"logira check: {meta.run_id}: ok (no detection at or above {args.fail_on.strip().lower()}, record complete)"
        )
    return code
