"""`logira query`: search the events of a run with filters; table or JSONL output."""

from __future__ import annotations

import argparse
import sys

import msgspec

from logira.cli import readside
from logira.cli.errors import CliError
from logira.read.query import (
    RESULTS,
    Dest,
    EventFilter,
    PathGlob,
    Row,
    RunSource,
    parse_severity,
    parse_types,
)
from logira.render.escape import esc, esc_argv, esc_path, file_summary
from logira.render.table import Column, render_table
from logira.render.timefmt import parse_time_spec

DEFAULT_LIMIT = 100

EXAMPLES = """\
  logira query                                   # last run, first 100 events of every type
  logira query last --type file --path '**/.ssh/**'
  logira query --type net --dest 169.254.0.0/16
  logira query --dest api.example.com:443 --ts both
  logira query --pid 4242 --tree --type exec
  logira query --severity '>=high'               # detections of high or critical severity
  logira query --type file --rule R012           # the file events that rule R012 flagged
  logira query --since +5s --until +10s --contains curl
  logira query 20260102-150405-claude --json --all > events.jsonl
"""


class OutRecord(msgspec.Struct):
    """A record in the stored JSONL schema (without the hash, which belongs to the file)."""

    run_id: str
    seq: int
    ts: int
    type: str
    pid: int
    ppid: int
    uid: int
    summary: str
    data_json: msgspec.Raw
    # field path -> hex of the exact bytes, for strings that held undecodable bytes (docs/jsonl.md)
    raw_bytes: dict[str, str] | msgspec.UnsetType = msgspec.UNSET
    # the agent tool call this record is attributed to (docs/agents.md), when there is one
    tool_call: ToolCallRef | msgspec.UnsetType = msgspec.UNSET


class ToolCallRef(msgspec.Struct):
    call_id: str
    how: str  # marker | hook_window | transcript


def attach_raw_bytes(run_dir, outs: list[OutRecord]) -> None:
    """Copy `raw_bytes` from events.jsonl for records whose text holds a `\\xNN` display form.

    index.sqlite keeps only the display form; the JSONL line keeps the exact bytes. Only
    records that can have them trigger a (single, forward, early-stopping) pass over the file.
    """
    from logira.format.jsonl import raw_bytes_of

    want = {o.seq: o for o in outs if b"\\x" in bytes(o.data_json) or "\\x" in o.summary}
    if not want:
        return
    top = max(want)
    seq_dec = msgspec.json.Decoder(_SeqOnly)
    try:
        f = open(run_dir / "events.jsonl", "rb")  # noqa: SIM115 - closed below
    except OSError:
        return
    with f:
        for line in f:
            try:
                seq = seq_dec.decode(line).seq
            except msgspec.DecodeError:
                continue
            o = want.get(seq)
            if o is not None:
                raw = raw_bytes_of(line)
                if raw:
                    o.raw_bytes = raw
            if seq >= top:
                break


class _SeqOnly(msgspec.Struct):
    seq: int


def attach_tool_calls(run_dir, meta, outs: list[OutRecord]) -> None:
    """Set `tool_call` on each record the agent join attributed to a tool call."""
    if not getattr(meta, "agents", None):
        return
    from logira.agents import calls as agent_calls

    with RunSource(run_dir, running=meta.status == "running") as src:
        att = agent_calls.attribution(src.db)
    for o in outs:
        hit = att.get(o.seq)
        if hit is not None:
            o.tool_call = ToolCallRef(*hit)


def to_out(row: Row, run_id: str) -> OutRecord:
    return OutRecord(
        row.run_id or run_id, row.seq, row.ts, row.type, row.pid or 0, row.ppid or 0, row.uid or 0,
        row.summary or "", msgspec.Raw((row.data_json or "{}").encode()),
    )  # fmt: skip


def add_filters(p: argparse.ArgumentParser, tail: bool = False) -> None:
    """The filter flags shared by `query` and `tail`."""
    g = p.add_argument_group("filters (combined with AND; see docs/cli.md)")
    g.add_argument(
        "--type",
        default="all",
        help="exec|proc|file|net|detection|agent|all, or a list like exec,net (default all)",
    )
    g.add_argument(
        "--pid", type=int, action="append", default=[], metavar="N", help="events of process N (repeatable)"
    )
    g.add_argument("--tree", action="store_true", help="with --pid: include every descendant process")
    g.add_argument(
        "--path",
        metavar="GLOB",
        help="file path or rename target; ** crosses dirs, * does not; no / = basename",
    )
    g.add_argument(
        "--op",
        action="append",
        default=[],
        help="op: create|modify|read|delete|rename|chmod|…|connect|send|fork|exit (repeatable)",
    )
    g.add_argument(
        "--dest",
        metavar="DEST",
        help="ip, ip:port, [v6]:port, :port, CIDR, or host name (matches DNS names and subdomains)",
    )
    g.add_argument(
        "--contains", metavar="TEXT", help="literal text in the summary or data (ASCII case-insensitive)"
    )
    g.add_argument(
        "--rule", action="append", default=[], metavar="ID", help="detections of rule ID (repeatable)"
    )
    g.add_argument(
        "--result",
        metavar="R",
        help="ok | failed (any error, denied included) | denied (EACCES/EPERM): events by outcome",
    )
    g.add_argument("--severity", metavar="LEVEL", help="info|low|medium|high|critical, a list, or >=LEVEL")
    g.add_argument("--min-severity", metavar="LEVEL", help="same as --severity '>=LEVEL'")
    if not tail:
        g.add_argument("--tool-call", metavar="ID", help="records attributed to this agent tool call (id or unique prefix)")
        rt = g.add_mutually_exclusive_group()
        rt.add_argument("--agent-runtime", dest="agent_runtime", action="store_const", const=True, default=None,
                        help="only the agent's own bookkeeping records (state dirs, snapshots, locks)")
        rt.add_argument("--no-agent-runtime", dest="agent_runtime", action="store_const", const=False,
                        help="leave the agent's own bookkeeping records out")  # fmt: skip
        g.add_argument(
            "--since",
            metavar="T",
            help="+5s / 5s after run start, -10s before its end, or ISO time (use --since=-10s)",
        )
        g.add_argument("--until", metavar="T", help="same forms as --since")


def validate_flags(args: argparse.Namespace) -> None:
    """Check every filter flag's syntax before any run is opened (one-line errors)."""
    parse_types(args.type)
    if args.result and args.result not in RESULTS:
        raise CliError(f"invalid --result {args.result!r} (expected ok, failed or denied)", exit_code=2)
    if args.severity:
        parse_severity(args.severity)
    if args.min_severity:
        parse_severity(">=" + args.min_severity)
    if args.dest:
        Dest(args.dest)
    if args.path:
        PathGlob(args.path)
    if getattr(args, "limit", 1) <= 0 and not getattr(args, "all", False):
        raise CliError(f"invalid --limit {args.limit} (expected a positive number, or --all)", exit_code=2)


def build_filter(args: argparse.Namespace, src: RunSource | None, start_ts: int, end_ts: int) -> EventFilter:
    """The EventFilter from the flags (validated; one-line errors)."""
    sev: tuple[str, ...] = ()
    if args.severity and args.min_severity:
        raise CliError("use either --severity or --min-severity, not both", exit_code=2)
    if args.severity:
        sev = parse_severity(args.severity)
    elif args.min_severity:
        sev = parse_severity(">=" + args.min_severity)
    if args.tree and not args.pid:
        raise CliError("--tree needs --pid N", exit_code=2)
    pids = tuple(args.pid)
    if args.tree and src is not None:
        pids = src.descendants(pids)
    since = until = 0
    if getattr(args, "since", None):
        since = parse_time_spec(args.since, "--since", start_ts, end_ts)
    if getattr(args, "until", None):
        until = parse_time_spec(args.until, "--until", start_ts, end_ts)
    seq_in = seq_not_in = None
    if src is not None and (getattr(args, "tool_call", None) or getattr(args, "agent_runtime", None) is not None):
        from logira.agents import calls as agent_calls

        if args.tool_call:
            found = agent_calls.call_seqs(src.db, args.tool_call)
            if found is None:
                raise CliError(f"no tool call {args.tool_call!r} in this run (or the prefix is ambiguous); "
                               "list them with `logira calls`")  # fmt: skip
            seq_in = tuple(found)
        if args.agent_runtime is not None:
            runtime = tuple(sorted(agent_calls.runtime_seqs(src.db)))
            if args.agent_runtime:
                seq_in = runtime if seq_in is None else tuple(sorted(set(seq_in) & set(runtime)))
            else:
                seq_not_in = runtime
    return EventFilter(
        types=parse_types(args.type), pids=pids, path=args.path or "", ops=tuple(args.op),
        dest=args.dest or "", contains=args.contains or "", rules=tuple(args.rule), severities=sev,
        since=since, until=until, seq_in=seq_in, seq_not_in=seq_not_in, result=args.result or "",
    )  # fmt: skip


def register(subparsers) -> None:
    p = readside.add_parser(
        subparsers, "query", "Query events in a run (default: last).",
        "Search one run's events. Filters apply to every type they concern; a detection matches "
        "--pid/--path/--op/--dest when its related event does.", EXAMPLES,
    )  # fmt: skip
    readside.add_selector(p)
    add_filters(p)
    p.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N rows (default {DEFAULT_LIMIT})",
    )
    p.add_argument("--all", action="store_true", help="no row limit and no column truncation")
    p.add_argument("--reverse", action="store_true", help="newest first")
    readside.add_output(p, json_help="JSONL in the stored record schema, one event per line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from logira.read import reader

    out = readside.Out(args)  # validates --color/--ts before touching any run
    validate_flags(args)
    run_dir = readside.resolve(args)
    meta = reader.read_meta(run_dir)
    out.set_start(meta.start_ts)
    with RunSource(run_dir, running=meta.status == "running") as src:
        end = meta.end_ts or _now()
        flt = build_filter(args, src, meta.start_ts, end)
        limit = None if args.all else args.limit + 1
        rows = list(src.select(flt, limit=limit, reverse=args.reverse))
    more = not args.all and len(rows) > args.limit
    rows = rows[: args.limit] if more else rows
    if args.json:
        enc = msgspec.json.Encoder()
        buf = bytearray()
        outs = [to_out(r, meta.run_id) for r in rows]
        attach_raw_bytes(run_dir, outs)
        attach_tool_calls(run_dir, meta, outs)
        for o in outs:
            enc.encode_into(o, buf, len(buf))
            buf += b"\n"
        sys.stdout.buffer.write(bytes(buf))
        sys.stdout.flush()
    elif not rows:
        out.line("(no events)")
    else:
        out.lines(render_rows(rows, flt.types, out, wide=args.all))
    out.flush()
    if more:
        print(f"note: more than {args.limit} events match; use --limit N or --all", file=sys.stderr)
    return 0


def _now() -> int:
    import time

    return time.time_ns()


def render_rows(rows: list[Row], types: tuple[str, ...], out: readside.Out, wide: bool) -> list[str]:
    """The table for `rows`; columns depend on the (single) type asked for."""
    tf, pal = out.tf, out.palette
    kind = types[0] if len(types) == 1 else "all"
    if kind == "exec":
        cols = [Column("seq", right=True), Column("at"), Column("pid", right=True), Column("ppid", right=True),
                Column("uid", right=True), Column("exe", 40), Column("cwd", 32), Column("argv")]  # fmt: skip
        body = []
        for r in rows:
            d = r.data()
            exe = esc(d.filename) + (f" (errno {d.errno})" if d.errno else "")
            argv = esc_argv(d.argv) + (" …[argv truncated]" if d.argv_truncated else "")
            body.append(
                [str(r.seq), tf(r.ts), _n(r.pid), _n(r.ppid), _n(r.uid), exe, esc(d.cwd) or "-", argv]
            )
    elif kind == "file":
        cols = [Column("seq", right=True), Column("at"), Column("pid", right=True), Column("exe", 32),
                Column("op"), Column("path")]  # fmt: skip
        body = []
        for r in rows:
            path = esc_path(r.path or "")
            if r.path2:
                path += " -> " + esc_path(r.path2)
            body.append([str(r.seq), tf(r.ts), _n(r.pid), esc(r.exe or "") or "-", r.op or "-", path])
    elif kind == "net":
        cols = [Column("seq", right=True), Column("at"), Column("pid", right=True), Column("exe", 32),
                Column("op"), Column("proto"), Column("dst"), Column("dns")]  # fmt: skip
        body = []
        for r in rows:
            d = r.data()
            dst = esc(d.unix_path) if d.unix_path else _hostport(r.dst_ip, r.dst_port)
            body.append([str(r.seq), tf(r.ts), _n(r.pid), esc(r.exe or "") or "-", r.op or "-", d.proto,
                         dst, esc(r.dns or "") or "-"])  # fmt: skip
    elif kind == "detection":
        cols = [Column("seq", right=True), Column("at"), Column("sev"), Column("rule"),
                Column("related", right=True), Column("message")]  # fmt: skip
        body = []
        for r in rows:
            sev = r.severity or "-"
            msg = esc(r.data().message)
            body.append([str(r.seq), tf(r.ts), (sev, _sev_code(sev)), esc(r.rule_id or "-"),
                         _n(r.related_seq), msg])  # fmt: skip
    else:
        cols = [
            Column("seq", right=True),
            Column("at"),
            Column("type"),
            Column("pid", right=True),
            Column("summary"),
        ]
        body = []
        for r in rows:
            code = _sev_code(r.severity) if r.type == "detection" else _type_code(r.type)
            summary = (file_summary(r.op or "", r.path or "", r.path2 or "", r.summary or "") if r.type == "file"
                       else esc(r.summary or ""))  # fmt: skip
            body.append([str(r.seq), tf(r.ts), (r.type, code), _n(r.pid), summary])
    return render_table(cols, body, pal, wide=wide)


def _n(v: int | None) -> str:
    return "-" if v is None else str(v)


def _hostport(ip: str | None, port: int | None) -> str:
    if not ip:
        return f":{port}" if port else "-"
    ip = esc(ip)
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _sev_code(sev: str | None) -> str | None:
    from logira.render.color import SEVERITY_CODES

    return SEVERITY_CODES.get(sev or "")


def _type_code(t: str) -> str | None:
    from logira.render.color import TYPE_CODES

    return TYPE_CODES.get(t)
