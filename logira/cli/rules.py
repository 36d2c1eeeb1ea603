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
  logira rules test my-rules.yaml --all-runs --json
  logira rules test my-rules.yaml --run last --with-builtin
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
                             "Evaluate the rules FILE defines (with --with-builtin: every active rule) against "
                             "stored runs and print the detections they would produce. Runs are only read; each "
                             "run's index rules out runs (and rows) no rule can match.", EXAMPLES_TEST)  # fmt: skip
    pt.add_argument("file", metavar="FILE")
    which = pt.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", metavar="RUN", help="a run id or `last`")
    which.add_argument("--all-runs", action="store_true", help="every stored run")
    pt.add_argument("--with-builtin", action="store_true",
                    help="also evaluate the built-in and site rules (default: only the rules FILE defines)")
    pt.add_argument("--only-file", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for scripts
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


_FEED = "SELECT seq, ts, type, pid, ppid, uid, summary, data_json FROM events WHERE {where} ORDER BY seq"
_JUDGED = "type NOT IN ('detection', 'agent')"  # detections and agent claims are never fed to the rules


class HuntStats(msgspec.Struct):
    runs: int = 0
    skipped: int = 0  # runs the index showed no rule could match (not read)
    narrowed: int = 0  # runs read through the index, only the rows a rule could match (+ exec/proc)
    full: int = 0  # runs read in full (sequence rules, or no usable index)
    events: int = 0  # records evaluated


def _subset(rs, rules):
    from logira.detect.loader import RuleSet

    return RuleSet(rules=rules, disabled=rs.disabled, sources=rs.sources, sha256=rs.sha256)


def _records_from_db(db, where: str, params: list, run_id: str):
    from logira.model.record import DATA_TYPES, Record

    for seq, ts, typ, pid, ppid, uid, summary, data in db.execute(_FEED.format(where=where), params):
        try:
            payload = msgspec.json.decode(data or "{}", type=DATA_TYPES[typ])
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError):
            continue  # an undecodable payload cannot be judged; `logira verify` reports it
        yield Record(run_id=run_id, seq=seq, ts=ts, type=typ, pid=pid or 0, ppid=ppid or 0, uid=uid or 0,
                     summary=summary or "", data_json=payload)  # fmt: skip


def _records_from_jsonl(run_dir: Path):
    from logira.model.record import Record
    from logira.read import reader

    for stored in reader.iter_records(run_dir):
        if stored.type in ("detection", "agent"):
            continue
        try:
            data = stored.data()
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError):
            continue
        yield Record(run_id=stored.run_id, seq=stored.seq, ts=stored.ts, type=stored.type, pid=stored.pid,
                     ppid=stored.ppid, uid=stored.uid, summary=stored.summary, data_json=data)  # fmt: skip


def _types_judged(rs) -> set[str]:
    """The record types some rule of `rs` has a condition on (all of them for a rule without one)."""
    from logira.detect.prefilter import steps_of

    out: set[str] = set()
    for lr in rs.rules:
        steps = steps_of(lr.rule)
        if not steps:
            return {"exec", "proc", "file", "net"}
        for step in steps:
            for w in step:
                kinds = [k for k in ("exec", "file", "net", "proc") if getattr(w, k) is not None]
                out.update(kinds or ("exec", "proc", "file", "net"))
    return out


def hunt_run(rs, run_dir: Path, stats: HuntStats | None = None) -> tuple[list[HuntHit], int]:
    """Detections the ruleset produces on one stored run, and the number of records evaluated.

    With a published index, each rule's prefilter (detect/prefilter.py) first asks whether the
    run has any row the rule could match: a run where none can is not read at all, and for
    non-sequence rules only the candidate rows (plus exec/proc rows, for the process tree and
    lineage) are evaluated. The engine decides exactly; the prefilter is a superset.
    """
    from logira.detect.engine import Detector
    from logira.detect.prefilter import prefilters
    from logira.model.proctree import ProcessTree
    from logira.read import reader

    stats = stats if stats is not None else HuntStats()
    stats.runs += 1
    meta = reader.read_meta(run_dir)
    home, ws = _home_of(meta.uid), meta.cwd or "/"
    db = reader.open_db(run_dir) if meta.status != "running" else None
    records = None
    try:
        if db is not None:
            live, clauses, sequence = [], [], False
            indexes = frozenset(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'"))
            for lr in rs.rules:
                pfs = prefilters(lr.rule, home, ws, indexes)
                # each clause probed on its own (an index each), the rule is live if every step has a row
                if pfs and all(any(db.execute(f"SELECT 1 FROM events WHERE {w} LIMIT 1", p).fetchone()
                                   for w, p in pf.clauses) for pf in pfs):  # fmt: skip
                    live.append(lr)
                    clauses += [pf.sql() for pf in pfs]
                    sequence |= lr.rule.sequence is not None
            if not live:
                stats.skipped += 1
                return [], 0
            rs = _subset(rs, live)
            if sequence:
                stats.full += 1
                records = list(_records_from_db(db, _JUDGED, [], meta.run_id))
            else:
                stats.narrowed += 1
                where = " OR ".join(f"({w})" for w, _ in clauses)
                params = [x for _, p in clauses for x in p]
                records = list(_records_from_db(db, f"type IN ('exec', 'proc') OR {where}", params, meta.run_id))
    finally:
        if db is not None:
            db.close()
    if records is None:
        stats.full += 1
        records = _records_from_jsonl(run_dir)
    tree = ProcessTree()
    det = Detector(rs, home=home, workspace=ws, tree=tree)
    judged = _types_judged(rs)  # records of other types only build the process tree
    hits: list[HuntHit] = []
    n = 0
    for rec in records:
        n += 1
        tree.observe(rec)
        if rec.type not in judged:
            continue
        for d in det.process(rec):
            hits.append(HuntHit(meta.run_id, d.related_event_seq, d.rule_id, d.severity, d.message, d.title,
                                d.category, d.steps))  # fmt: skip
    stats.events += n
    return hits, n


def cmd_test(args: argparse.Namespace) -> int:
    from logira.read import reader

    name, text = _read_file(args.file)
    rs = _load([(name, text)])  # validated merged with the built-in rules (ids, overrides)
    own = [lr for lr in rs.rules if lr.source == name]
    if not args.with_builtin:
        if not own:
            raise CliError(f"{name} defines no active rule to test (add rules, or pass --with-builtin)")
        rs = _subset(rs, own)
    home = reader.resolve_home()
    if args.all_runs:
        dirs = [r.dir for r in reader.list_runs(home)]
        if not dirs:
            raise CliError(f"no runs yet under {home / 'runs'}")
    else:
        dirs = [reader.resolve_run(home, args.run)]
    hits: list[HuntHit] = []
    stats = HuntStats()
    for d in dirs:
        try:
            h, _ = hunt_run(rs, d, stats)
        except CliError as exc:  # one unreadable run (meta.json broken) does not stop the hunt
            print(f"warning: {exc}", file=sys.stderr)
            continue
        hits += h
    if args.json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(hits), indent=2).decode() + "\n")
        return 0
    from logira.render.escape import esc

    for x in hits:
        steps = f" steps={','.join(map(str, x.steps))}" if x.steps else ""
        print(f"{x.run_id} seq={x.related_seq} [{x.severity}] {x.rule_id}: {esc(x.message)}{steps}")
    print(f"{len(hits)} detections in {len(dirs)} run(s), {stats.events} events evaluated "
          f"({stats.skipped} runs ruled out by their index, {stats.narrowed} read through it, {stats.full} in full)")
    return 0
