"""`logira rules`: list the detection rules, check a rule file, retro-hunt stored runs with it.

`rules test` re-evaluates stored runs (read-only, never modified) with the built-in rules
plus FILE, rebuilding each run's process tree from its records, so a new rule can be tried
on past agent sessions before it is deployed.
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys
from pathlib import Path

import msgspec

from logira.cli.errors import CliError

EXAMPLES_LIST = """\
  logira rules list
  logira rules list --json | jq -r '.[] | select(.severity == "critical") | .id'
"""
EXAMPLES_CHECK = """\
  logira rules check my-rules.yaml
"""
EXAMPLES_TEST = """\
  logira rules test my-rules.yaml --run last
  logira rules test my-rules.yaml --all-runs --only-file --json
"""


class RuleRow(msgspec.Struct):
    id: str
    severity: str
    category: str
    title: str
    source: str
    tags: list[str] = []


class HuntHit(msgspec.Struct):
    run_id: str
    related_seq: int
    rule_id: str
    severity: str
    message: str
    title: str = ""
    category: str = ""
    steps: list[int] = []


def register(subparsers) -> None:
    from logira.cli import readside

    p = readside.add_parser(subparsers, "rules", "List, check and test detection rules.",
                            "Detection rules: built-in ones, /etc/logira/rules.d/*.yaml and your own files "
                            "(see docs/rules.md).", EXAMPLES_LIST + EXAMPLES_CHECK + EXAMPLES_TEST)  # fmt: skip
    sub = p.add_subparsers(dest="rules_cmd", metavar="<list|check|test>")
    p.set_defaults(func=lambda args: _usage(p))

    pl = readside.add_parser(sub, "list", "List the active rules.",
                             "Active rules (built-in + site directory [+ FILE]): id, severity, category, "
                             "title and the file each comes from.", EXAMPLES_LIST)  # fmt: skip
    pl.add_argument("--file", metavar="FILE", help="also load this rule file (as `logira run --rules` would)")
    pl.add_argument("--json", action="store_true", help="a JSON array, one object per rule")
    pl.set_defaults(func=cmd_list)

    pc = readside.add_parser(sub, "check", "Validate a rule file.",
                             "Validate FILE merged with the built-in rules; prints `ok: N rules` or one "
                             "line `file:line: rule <id>: problem` and exits 1.", EXAMPLES_CHECK)  # fmt: skip
    pc.add_argument("file", metavar="FILE")
    pc.set_defaults(func=cmd_check)

    pt = readside.add_parser(sub, "test", "Retro-hunt stored runs with a rule file.",
                             "Evaluate the built-in rules plus FILE against stored runs and print the "
                             "detections they would produce. Runs are only read.", EXAMPLES_TEST)  # fmt: skip
    pt.add_argument("file", metavar="FILE")
    which = pt.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", metavar="RUN", help="a run id or `last`")
    which.add_argument("--all-runs", action="store_true", help="every stored run")
    pt.add_argument("--only-file", action="store_true", help="show only detections of rules defined in FILE")
    pt.add_argument("--json", action="store_true", help="a JSON array, one object per detection")
    pt.set_defaults(func=cmd_test)


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def _read_file(path: str) -> tuple[str, str]:
    try:
        with open(path, encoding="utf-8") as f:
            return path, f.read(1 << 20)
    except OSError as exc:
        raise CliError(f"cannot read rule file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"rule file {path} is not UTF-8 text") from None


def _load(extra: list[tuple[str, str]]):
    from logira.detect.loader import RuleError, load_rules

    try:
        return load_rules(extra=extra)
    except RuleError as exc:
        raise CliError(str(exc)) from None


def cmd_list(args: argparse.Namespace) -> int:
    rs = _load([_read_file(args.file)] if args.file else [])
    rows = [RuleRow(lr.rule.id, lr.rule.severity, lr.rule.category, lr.rule.title, lr.source, list(lr.rule.tags))
            for lr in rs.rules]  # fmt: skip
    if args.json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(rows), indent=2).decode() + "\n")
        return 0
    from logira.render.color import Palette
    from logira.render.escape import esc
    from logira.render.table import Column, render_table

    cols = [Column("ID"), Column("SEVERITY"), Column("CATEGORY"), Column("SOURCE"), Column("TITLE")]
    body = [[esc(r.id), r.severity, esc(r.category), esc(r.source), esc(r.title)] for r in rows]
    for line in render_table(cols, body, Palette(False)):
        print(line)
    print(
        f"{len(rows)} rules active"
        + (f", {len(rs.disabled)} disabled: {', '.join(rs.disabled)}" if rs.disabled else "")
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    name, text = _read_file(args.file)
    rs = _load([(name, text)])
    own = sum(1 for lr in rs.rules if lr.source == name)
    print(f"ok: {len(rs.rules)} rules ({own} from {name})")
    return 0


def _home_of(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_dir
    except (KeyError, OverflowError):
        return os.path.expanduser("~")


def hunt_run(rs, run_dir: Path) -> tuple[list[HuntHit], int]:
    """Detections the ruleset produces on one stored run, and the number of records read."""
    from logira.detect.engine import Detector
    from logira.model.proctree import ProcessTree
    from logira.read import reader

    meta = reader.read_meta(run_dir)
    tree = ProcessTree()
    det = Detector(rs, home=_home_of(meta.uid), workspace=meta.cwd or "/", tree=tree)
    hits: list[HuntHit] = []
    n = 0
    from logira.model.record import Record

    for stored in reader.iter_records(run_dir):
        if stored.type == "detection":
            continue
        try:
            data = stored.data()
        except (msgspec.DecodeError, KeyError):
            continue  # an undecodable payload cannot be judged; `logira verify` reports it
        rec = Record(run_id=stored.run_id, seq=stored.seq, ts=stored.ts, type=stored.type, pid=stored.pid,
                     ppid=stored.ppid, uid=stored.uid, summary=stored.summary, data_json=data)  # fmt: skip
        n += 1
        tree.observe(rec)
        for d in det.process(rec):
            hits.append(HuntHit(meta.run_id, d.related_event_seq, d.rule_id, d.severity, d.message, d.title,
                                d.category, d.steps))  # fmt: skip
    return hits, n


def cmd_test(args: argparse.Namespace) -> int:
    from logira.read import reader

    name, text = _read_file(args.file)
    rs = _load([(name, text)])
    own = {lr.rule.id for lr in rs.rules if lr.source == name}
    home = reader.resolve_home()
    if args.all_runs:
        dirs = [r.dir for r in reader.list_runs(home)]
        if not dirs:
            raise CliError(f"no runs yet under {home / 'runs'}")
    else:
        dirs = [reader.resolve_run(home, args.run)]
    hits: list[HuntHit] = []
    events = 0
    for d in dirs:
        h, n = hunt_run(rs, d)
        hits += [x for x in h if not args.only_file or x.rule_id in own]
        events += n
    if args.json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(hits), indent=2).decode() + "\n")
        return 0
    from logira.render.escape import esc

    for x in hits:
        steps = f" steps={','.join(map(str, x.steps))}" if x.steps else ""
        print(f"{x.run_id} seq={x.related_seq} [{x.severity}] {x.rule_id}: {esc(x.message)}{steps}")
    print(f"{len(hits)} detections in {len(dirs)} run(s), {events} events evaluated")
    return 0
