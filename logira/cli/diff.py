"""`logira diff`: what is new in a run compared with earlier runs of the same workspace."""

from __future__ import annotations

import argparse

from logira.cli import readside
from logira.cli.errors import CliError

EXAMPLES = """\
  logira diff                          # last run vs every earlier run of its workspace
  logira diff last --last 10           # vs the 10 previous runs of the workspace
  logira diff 20260102-150405-claude --against 20260101-090000-claude
  logira diff --json | jq .destinations
"""

LABELS = (("programs", "programs executed"), ("destinations", "destinations (ip:port)"), ("dns", "DNS names"),
          ("writes_outside", "paths written outside the workspace"),
          ("credentials", "credential / config paths read or written"), ("detections", "detections (rules)"))  # fmt: skip


def register(subparsers) -> None:
    p = readside.add_parser(
        subparsers, "diff", "Show what is new in a run compared with earlier runs.",
        "Programs executed, destinations (ip:port and DNS names), paths written outside the workspace, "
        "credential/config paths read or written, and detections that no earlier run of the same "
        "workspace (its git root, else its cwd) had. Uses the per-home summary index "
        "($LOGIRA_HOME/summaries.sqlite), refreshed from the runs.", EXAMPLES,
    )  # fmt: skip
    readside.add_selector(p)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--against", metavar="RUN", help="compare with this one run only")
    which.add_argument(
        "--last", type=int, metavar="N", help="compare with the N previous runs of the workspace"
    )
    p.add_argument("--json", action="store_true", help="the new items as one JSON document")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from logira.read import reader
    from logira.render.escape import esc
    from logira.report.diff import compare

    if args.last is not None and args.last < 1:
        raise CliError(f"invalid --last {args.last} (expected 1 or more)", exit_code=2)
    home = reader.resolve_home()
    run_dir = readside.resolve(args)
    meta = reader.read_meta(run_dir)
    against = None
    if args.against:
        against = reader.resolve_run(home, args.against).name
        if against == meta.run_id:
            raise CliError(f"--against {args.against} is the run itself (name an earlier run)", exit_code=2)
    new, subject = compare(home, meta, against=against, last=args.last)
    if args.json:
        import msgspec

        doc = {"run_id": meta.run_id, "workspace": subject.workspace, **msgspec.to_builtins(new)}
        readside.print_json(doc)
        return 0
    out = readside.Out(args)
    out.line(f"Run {esc(meta.run_id)}  workspace {esc(subject.workspace)}")
    if not new.baseline_runs:
        out.line("  no earlier runs to compare with" + (f" ({esc(new.baseline)})" if against else ""))
        out.flush()
        return 0
    out.line(f"  compared with {esc(new.baseline)} ({new.baseline_runs} runs)")
    empty = True
    for field, label in LABELS:
        items = getattr(new, field)
        if not items:
            continue
        empty = False
        out.line("")
        out.line(f"New {label} ({len(items)}):")
        for it in items:
            out.line(f"  {esc(it)}")
    if empty:
        out.line("  nothing new")
    if new.truncated:
        out.line("")
        out.line("note: some lists were capped (a run with more than 5000 items of a kind)")
    out.flush()
    return 0
