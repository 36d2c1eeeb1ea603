"""`logira explain`: detections grouped by rule, with the evidence behind each."""

from __future__ import annotations

import argparse
import textwrap

import msgspec

from logira.agents.calls import ToolCall
from logira.cli import readside
from logira.cli.errors import CliError
from logira.cli.query import OutRecord, to_out
from logira.cli.view import status_word
from logira.model.record import SEVERITIES
from logira.read.query import COLUMNS, Row, RunSource
from logira.render.escape import esc, esc_argv
from logira.report import aggregates as agg
from logira.report.model import RuleSummary

EXAMPLES = """\
  logira explain                      # last run
  logira explain 20260102-150405-claude --ts both
  logira explain last --drill 57      # one detection (or event) in full
  logira explain --json | jq '.groups[] | {rule_id, count}'
"""


def register(subparsers) -> None:
    p = readside.add_parser(
        subparsers, "explain", "Explain detections for a run (default: last).",
        "Detections grouped by rule (most severe first) with title, description, count, first/last "
        "time and evidence: the related event, its process lineage and, for sequence rules, each step.",
        EXAMPLES,
    )  # fmt: skip
    readside.add_selector(p)
    p.add_argument(
        "--drill",
        type=int,
        metavar="SEQ",
        help="show one detection (or one event and its detections) in full",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=1,
        metavar="N",
        help="evidence for the first N detections of each rule (default 1)",
    )
    readside.add_output(p, json_help="groups and evidence as one JSON document")
    from logira.cli.check import add_fail_on

    add_fail_on(p)  # CI gate: the exit status says whether the run passes (logira check)
    p.set_defaults(func=run)


class Evidence(msgspec.Struct):
    detection: OutRecord
    related: OutRecord | None
    steps: list[OutRecord]
    tool_call: ToolCall | None = None  # the agent tool call the detection is attributed to
    attribution: str = ""  # how: marker | hook_window | transcript | "" (none)


class GroupDoc(RuleSummary, kw_only=True):
    """One rule's detections, as the report summarises them, with sampled evidence."""

    evidence: list[Evidence]


class ExplainDoc(msgspec.Struct):
    run_id: str
    status: str
    detections: int
    by_severity: dict[str, int]
    groups: list[GroupDoc]


def run(args: argparse.Namespace) -> int:
    from logira.read import reader

    out = readside.Out(args)  # validates --color/--ts before touching any run
    run_dir = readside.resolve(args)
    meta = reader.read_meta(run_dir)
    out.set_start(meta.start_ts)
    if args.fail_on:
        from logira.cli.check import check_level

        check_level(args.fail_on)  # an invalid level fails before any output
    if args.samples < 1:
        raise CliError(f"invalid --samples {args.samples} (expected 1 or more)", exit_code=2)
    with RunSource(run_dir, running=meta.status == "running") as src:
        _load_calls(src)
        if args.drill is not None:
            return _drill(src, args, meta, out)
        groups = agg.rule_groups(src.db)
        texts = agg.load_rule_texts()
        docs: list[GroupDoc] = []
        for g in groups:
            title, desc = texts.get(g.rule_id, (g.title, ""))
            ev = [_evidence(src, r, meta.run_id) for r in _samples(src, g, args.samples)]
            docs.append(GroupDoc(rule_id=g.rule_id, severity=g.severity, title=title, description=desc,
                                 count=g.count, first_ts=g.first_ts, last_ts=g.last_ts, evidence=ev))  # fmt: skip
    by_sev: dict[str, int] = {}
    for g in docs:
        by_sev[g.severity] = by_sev.get(g.severity, 0) + g.count
    doc = ExplainDoc(meta.run_id, status_word(meta), sum(by_sev.values()), by_sev, docs)
    if args.json:
        readside.print_json(doc)
    else:
        _render(out, meta, doc)
        out.flush()
    if args.fail_on:
        from logira.cli.check import gate

        return gate(meta, by_sev, args.fail_on, args.allow_incomplete)
    return 0


def _load_calls(src: RunSource) -> None:
    from logira.agents import calls as agent_calls

    src.tool_calls = {c.call_id: c for c in agent_calls.tool_calls(src.db)}  # type: ignore[attr-defined]
    src.attribution = agent_calls.attribution(src.db) if src.tool_calls else {}  # type: ignore[attr-defined]


def _samples(src: RunSource, g: agg.RuleGroup, n: int) -> list[Row]:
    rows = src.db.execute(
        f"SELECT {COLUMNS} FROM events WHERE type = 'detection' AND rule_id = ? AND severity = ? ORDER BY seq LIMIT ?",
        (g.rule_id, g.severity, n),
    ).fetchall()
    return [Row(*r) for r in rows]


def _evidence(src: RunSource, det: Row, run_id: str) -> Evidence:
    d = det.data()
    related = src.get(d.related_event_seq) if d.related_event_seq else None
    steps = [r for s in d.steps if (r := src.get(s)) is not None]
    att = getattr(src, "attribution", {})
    cid, how = att.get(det.seq, (getattr(d, "tool_call_id", ""), getattr(d, "attribution", "")))
    call = getattr(src, "tool_calls", {}).get(cid) if cid else None
    return Evidence(
        to_out(det, run_id), to_out(related, run_id) if related else None, [to_out(s, run_id) for s in steps],
        call, how if call else "",
    )


def _render(out: readside.Out, meta, doc: ExplainDoc) -> None:
    pal, tf = out.palette, out.tf
    sev_txt = ", ".join(f"{s} {doc.by_severity[s]}" for s in reversed(SEVERITIES) if doc.by_severity.get(s))
    out.line(
        pal.bold(f"Run {esc(meta.run_id)}")
        + f"  {doc.status}  {doc.detections} detections"
        + (f" ({sev_txt})" if sev_txt else "")
    )
    cmd = esc_argv(meta.command_argv) if meta.command_argv else esc(meta.command)
    out.line(f"  command: {cmd}")
    if not doc.groups:
        out.line("")
        out.line("No detections: the active rules matched nothing in this run.")
        return
    for g in doc.groups:
        out.line("")
        span = tf(g.first_ts) if g.count == 1 else f"{tf(g.first_ts)} … {tf(g.last_ts)}"
        head = pal.severity(f"[{g.severity.upper()}]", g.severity)
        out.line(f"{head} {pal.bold(esc(g.rule_id))}  {esc(g.title) or '(no title)'}   {g.count}x, {span}")
        if g.description:  # rule text (trusted, from YAML): reflowed, still escaped
            for ln in textwrap.wrap(" ".join(g.description.split()), 100):
                out.line(f"  {esc(ln)}")
        for i, ev in enumerate(g.evidence):
            _render_evidence(out, ev, f"evidence {i + 1} of {g.count}")
        out.line(
            f"  more: logira query {esc(meta.run_id)} --rule {esc(g.rule_id)}   |   logira explain --drill <seq>"
        )


def _render_evidence(out: readside.Out, ev: Evidence, label: str) -> None:
    tf = out.tf
    d = msgspec.json.decode(ev.detection.data_json)
    out.line(f"  {label} (detection seq {ev.detection.seq}, {tf(ev.detection.ts)}):")
    out.line(f"    message:  {esc(d.get('message', ''))}")
    if ev.tool_call is not None:
        from logira.cli.calls import call_label

        effect = f" → {esc(_effect(ev.related.summary))}" if ev.related is not None else ""
        out.line(f"    tool call: {esc(ev.tool_call.call_id)} {call_label(ev.tool_call)}{effect}  ({esc(ev.attribution)})")
    if ev.related is not None:
        r = ev.related
        out.line(f"    event:    seq {r.seq} {tf(r.ts)} pid {r.pid}  {esc(r.summary)}")
    elif d.get("related_event_seq"):
        out.line(f"    event:    seq {d['related_event_seq']} (not found in this run)")
    for i, entry in enumerate(d.get("lineage") or []):
        who = "process" if i == 0 else ("parent" if i == 1 else "ancestor")
        argv = esc_argv(entry.get("argv") or []) or esc(entry.get("exe", "")) or "?"
        cwd = f"  (cwd {esc(entry['cwd'])})" if entry.get("cwd") else ""
        out.line(f"    {who + ':':<9} pid {entry.get('pid', '?')} {argv}{cwd}")
    for i, s in enumerate(ev.steps, 1):
        out.line(f"    step {i}:   seq {s.seq} {tf(s.ts)} pid {s.pid}  {esc(s.summary)}")


def _effect(summary: str) -> str:
    """`file modify /x` -> `modified /x`, for the one-line tool call → effect sentence."""
    words = {"create": "created", "modify": "wrote", "delete": "deleted", "rename": "renamed", "chmod": "chmod'ed",
             "read": "read", "connect": "connected to", "send": "sent to"}  # fmt: skip
    parts = summary.split(" ", 2)
    if len(parts) == 3 and parts[0] in ("file", "net") and parts[1] in words:
        return f"{words[parts[1]]} {parts[2]}"
    return summary


def _drill(src: RunSource, args: argparse.Namespace, meta, out: readside.Out) -> int:
    row = src.get(args.drill)
    if row is None:
        raise CliError(f"seq {args.drill} not found in run {meta.run_id}")
    if row.type == "detection":
        dets = [row]
        subject = None
    else:
        subject = row
        dets = [
            Row(*r)
            for r in src.db.execute(
                f"SELECT {COLUMNS} FROM events WHERE type = 'detection' AND related_seq = ? ORDER BY seq",
                (row.seq,),
            )
        ]
    evs = [_evidence(src, d, meta.run_id) for d in dets]
    if args.json:
        readside.print_json({"event": to_out(subject, meta.run_id) if subject else None, "detections": evs})
        return 0
    out.line(out.palette.bold(f"Run {esc(meta.run_id)}"))
    if subject is not None:
        out.line(
            f"Event seq {subject.seq} {out.tf(subject.ts)} {subject.type} pid {subject.pid}: {esc(subject.summary or '')}"
        )
        out.line(f"  data: {esc(subject.data_json or '')}")
        if not evs:
            out.line("  no detection refers to this event")
    for ev in evs:
        d = msgspec.json.decode(ev.detection.data_json)
        sev = d.get("severity", "?")
        out.line(
            out.palette.severity(f"[{sev.upper()}]", sev)
            + f" {esc(d.get('rule_id', '?'))}  {esc(d.get('title', ''))}"
        )
        _render_evidence(out, ev, "detection")
        if ev.related is not None:
            out.line(f"    data:     {esc(bytes(ev.related.data_json).decode())}")
    out.flush()
    return 0
