"""`logira view`: one-screen dashboard of a run."""

from __future__ import annotations

import argparse
import posixpath
from collections import Counter, defaultdict

import msgspec

from logira.agents.calls import ToolCall
from logira.cli import readside
from logira.model.paths import errno_name, result_of
from logira.model.record import RECORD_TYPES, SEVERITIES
from logira.read.query import RunSource
from logira.render.escape import esc, esc_argv, esc_path
from logira.render.table import Column, render_table, truncate
from logira.render.timefmt import fmt_date, fmt_seconds
from logira.report import aggregates as agg

TREE_MAX = 50  # above this many processes the tree is summarised
CHILDREN_SHOWN = 6
FILES_PER_DIR = 8
DIRS_SHOWN = 15
DENIED_SHOWN = 20
DESTS_SHOWN = 20

EXAMPLES = """\
  logira view                 # the most recently started run
  logira view 20260102-150405-claude --ts both
  logira view last --json | jq .files
"""


def register(subparsers) -> None:
    p = readside.add_parser(
        subparsers, "view", "View a run summary (default: last).",
        "Dashboard of one run: command, exit, completeness and drops, counts, detections by rule, "
        "process tree, changed files by directory, network destinations.", EXAMPLES,
    )  # fmt: skip
    readside.add_selector(p)
    p.add_argument(
        "--all",
        action="store_true",
        help="do not summarise the process tree, files or destinations; list pseudo files (/dev/null, /proc/self/…) too",
    )
    readside.add_output(p, json_help="the dashboard's data as one JSON document")
    p.set_defaults(func=run)


class ProcNode(msgspec.Struct):
    pid: int
    ppid: int
    argv: list[str]
    exe: str
    execs: int = 1
    children: list[ProcNode] = []


class _ExecLite(msgspec.Struct):
    filename: str = ""
    argv: list[str] = []


class RuntimeDoc(msgspec.Struct):
    """The agent's own bookkeeping, collapsed in the text view (all of it stays in `query`)."""

    records: int = 0
    paths: int = 0  # changed paths that are agent runtime (left out of `files` below)
    dirs: list[str] = []


class ViewDoc(msgspec.Struct):
    meta: msgspec.Raw
    counts: dict[str, int]
    detections: list[agg.RuleGroup]
    processes: int
    tree: list[ProcNode]
    files: list[agg.FileChange]  # changes: successful, not pseudo files (unless --all)
    destinations: list[agg.Destination]
    dns: list[tuple[str, int]]
    tool_calls: list[ToolCall] = []
    agent_runtime: RuntimeDoc = msgspec.field(default_factory=RuntimeDoc)
    denied: list[agg.FileChange] = []  # failed attempts (errno != 0), reads included
    pseudo_hidden: int = 0  # paths of pseudo files left out of `files` (view --all lists them)


def split_files(files: list[agg.FileChange], full: bool) -> tuple[list[agg.FileChange], list[agg.FileChange], int]:
    """(changes, failed attempts, pseudo paths hidden): a failed op is never a change."""
    changes = [f for f in files if not f.errno and f.op != "read" and (full or not f.pseudo)]
    denied = [f for f in files if f.errno]
    hidden = len({f.path for f in files if not f.errno and f.pseudo}) if not full else 0
    return changes, denied, hidden


def run(args: argparse.Namespace) -> int:
    from logira.read import reader

    out = readside.Out(args)  # validates --color/--ts before touching any run
    run_dir = readside.resolve(args)
    meta = reader.read_meta(run_dir)
    out.set_start(meta.start_ts)
    out.run_dir = run_dir  # the tool calls section looks up sessions in the other runs of the home
    with RunSource(run_dir, running=meta.status == "running") as src:
        db = src.db
        counts = agg.counts_by_type(db)
        groups = agg.rule_groups(db)
        roots, nprocs = process_tree(db)
        files = agg.file_changes(db)
        dests = agg.destinations(db)
        dns = agg.dns_names(db)
        calls, files, runtime = _agent_parts(db, files)
    texts = agg.load_rule_texts()
    for g in groups:  # the rule set's title wins; the stored title covers rules no longer loaded
        title, g.description = texts.get(g.rule_id, ("", ""))
        g.title = title or g.title
    changes, denied, hidden = split_files(files, args.all)
    if args.json:
        doc = ViewDoc(
            msgspec.Raw(msgspec.json.encode(meta)), counts, groups, nprocs, roots, changes, dests, dns,
            calls, runtime, denied=denied, pseudo_hidden=hidden,
        )
        readside.print_json(doc)
        return 0
    _render(out, args, meta, counts, groups, roots, nprocs, (changes, denied, hidden), dests, dns, calls, runtime)
    out.flush()
    return 0


def _agent_parts(db, files: list[agg.FileChange]) -> tuple[list[ToolCall], list[agg.FileChange], RuntimeDoc]:
    """Tool calls, the changed files without the agent's runtime, and what was folded away."""
    from logira.agents import calls as agent_calls

    calls = agent_calls.tool_calls(db)
    runtime_seqs = agent_calls.runtime_seqs(db)
    if not runtime_seqs:
        return calls, files, RuntimeDoc()
    runtime_paths: set[str] = set()
    kept_paths: set[str] = set()
    for seq, path in db.execute("SELECT seq, path FROM events WHERE type = 'file' AND op != 'read'"):
        (runtime_paths if seq in runtime_seqs else kept_paths).add(path or "")
    folded = runtime_paths - kept_paths  # a path the agent's tools also changed stays in the list
    dirs = sorted({posixpath.dirname(p) for p in folded})
    kept = [f for f in files if f.path not in folded]
    return calls, kept, RuntimeDoc(len(runtime_seqs), len(folded), dirs[:20])


def process_tree(db) -> tuple[list[ProcNode], int]:
    """Processes that exec'd, linked by ppid; roots are those whose parent never exec'd."""
    nodes: dict[int, ProcNode] = {}
    dec = msgspec.json.Decoder(_ExecLite)
    for pid, ppid, data_json in db.execute(
        "SELECT pid, ppid, data_json FROM events WHERE type = 'exec' AND op = 'exec' ORDER BY seq"
    ):
        d = dec.decode(data_json or "{}")
        n = nodes.get(pid)
        if n is None:
            nodes[pid] = ProcNode(pid or 0, ppid or 0, d.argv, d.filename)
        else:
            n.argv, n.exe, n.execs = d.argv, d.filename, n.execs + 1
    roots = agg.link_tree(nodes)
    return roots, len(nodes)


def status_word(meta) -> str:
    if meta.status == "running":
        return "RUNNING"
    return "COMPLETE" if meta.complete else "INCOMPLETE"


def _render(out, args, meta, counts, groups, roots, nprocs, files, dests, dns, calls=(), runtime=None) -> None:
    pal, tf = out.palette, out.tf
    word = status_word(meta)
    word_c = (
        pal.ok(word) if word == "COMPLETE" else (pal.warn(word) if word == "INCOMPLETE" else pal.bold(word))
    )
    out.line(f"{pal.bold('Run ' + esc(meta.run_id))}  {word_c}")
    cmd = esc_argv(meta.command_argv) if meta.command_argv else esc(meta.command)
    out.line(f"  command:   {cmd}")
    out.line(f"  tool:      {esc(meta.tool) or '-'}")
    out.line(f"  cwd:       {esc(meta.cwd) or '-'}")
    who = f"{esc(meta.user) or '?'} (uid {meta.uid})" + (f" on {esc(meta.host)}" if meta.host else "")
    out.line(f"  user:      {who}")
    if meta.end_ts:
        dur = fmt_seconds(meta.end_ts - meta.start_ts)
        out.line(f"  started:   {fmt_date(meta.start_ts)}  duration {dur}")
    else:
        out.line(f"  started:   {fmt_date(meta.start_ts)}  (still running)")
    out.line(f"  exit:      {_exit_text(meta)}")
    out.line(f"  record:    {_completeness(meta, pal)}")
    copies = _copies_text(meta)
    if copies:
        out.line(f"  copies:    {pal.warn(copies)}")
    filtered = _filtered_text(meta)
    if filtered:
        out.line(f"  filtered:  {filtered}")
    agents = _agents_text(meta)
    if agents:
        out.line(f"  agents:    {agents}")
    total = sum(counts.values())
    parts = "  ".join(f"{t} {counts.get(t, 0)}" for t in RECORD_TYPES if t != "agent" or counts.get(t))
    out.line(f"Events      {parts}  (total {total})")
    sev = Counter({g.severity: 0 for g in groups})
    for g in groups:
        sev[g.severity] += g.count
    ndet = sum(sev.values())
    sev_txt = "  ".join(pal.severity(f"{s} {sev[s]}", s) for s in reversed(SEVERITIES) if sev.get(s))
    out.line(f"Detections  {ndet}" + (f"  ({sev_txt})" if ndet else ""))
    out.line("")
    if groups:
        cols = [
            Column("sev"),
            Column("rule"),
            Column("count", right=True),
            Column("first"),
            Column("last"),
            Column("title"),
        ]
        rows = [[(g.severity, pal_code(g.severity)), esc(g.rule_id), str(g.count), tf(g.first_ts), tf(g.last_ts),
                 esc(g.title) or "-"] for g in groups]  # fmt: skip
        out.lines(render_table(cols, rows, pal))
        out.line("")
    if calls:
        _render_calls(out, meta, calls, args.all)
    out.line(pal.bold(f"Processes ({nprocs} that exec'd)"))
    if not roots:
        out.line("  (none)")
    else:
        out.lines(_tree_lines(roots, nprocs, args.all))
    out.line("")
    changes, denied, hidden = files
    _render_files(out, changes, args.all, hidden)
    if runtime is not None and runtime.records:
        out.line(f"  agent runtime: {runtime.records} records, {runtime.paths} paths folded "
                 f"(e.g. {esc(', '.join(runtime.dirs[:3]))}); logira query --agent-runtime")  # fmt: skip
        out.line("")
    _render_denied(out, denied, args.all)
    _render_net(out, dests, dns, args.all)
    _render_new(out, meta)
    rid = esc(meta.run_id)
    out.line(pal.bold("Next"))
    if groups:
        out.line(f"  logira explain {rid}                 # why each detection fired, with evidence")
    out.line(f"  logira query {rid} --type exec        # every command, with argv and cwd")
    out.line(f"  logira query {rid} --type file --op delete")
    out.line(f"  logira query {rid} --type net         # every connection")


NEW_SHOWN = 5  # items per kind in the "new in this run" block


def _render_new(out, meta) -> None:
    """A short "new in this run" block when the workspace has history (logira diff has it all)."""
    from logira.cli.diff import LABELS
    from logira.read import reader
    from logira.report.diff import new_in_run_of

    new = new_in_run_of(reader.resolve_home(), meta)
    if new is None or not new.baseline_runs:
        return
    pal = out.palette
    out.line(pal.bold(f"New in this run (vs {new.baseline_runs} earlier runs of the workspace)"))
    empty = True
    for field, label in LABELS:
        items = getattr(new, field)
        if items:
            empty = False
            more = f", … {len(items) - NEW_SHOWN} more" if len(items) > NEW_SHOWN else ""
            out.line(f"  {label}: " + ", ".join(esc_path(i) for i in items[:NEW_SHOWN]) + more)
    if empty:
        out.line("  nothing new")
    out.line(f"  logira diff {esc(meta.run_id)}             # everything new, in full")
    out.line("")


def _render_calls(out, meta, calls: list[ToolCall], full: bool) -> None:
    from logira.cli.calls import CallsDoc, render_calls, session_docs

    out.line(out.palette.bold(f"Tool calls ({len(calls)})"))
    run_dir = getattr(out, "run_dir", None)
    doc = CallsDoc(meta.run_id, session_docs(run_dir, calls) if run_dir else [], {}, calls)
    out.lines(["  " + ln for ln in render_calls(out, doc, wide=full)])
    out.line("")


def pal_code(sev: str) -> str | None:
    from logira.render.color import SEVERITY_CODES

    return SEVERITY_CODES.get(sev)


def _exit_text(meta) -> str:
    if meta.status == "running" and meta.exit_code is None:
        return "- (running)"
    if meta.exit_signal:
        return f"killed by signal {meta.exit_signal}"
    return "-" if meta.exit_code is None else str(meta.exit_code)


def _agents_text(meta) -> str:
    """One line on the agent join (docs/agents.md): how many calls, from which source, what was not read."""
    a = getattr(meta, "agents", None) or {}
    if not a:
        return ""
    parts = [f"{a.get('calls', 0)} tool calls", f"{a.get('hooks', 0)} hook messages"]
    if a.get("transcript_files"):
        parts.append(f"{a['transcript_files']} transcripts")
    if a.get("attributed"):
        parts.append(f"{a['attributed']} records attributed")
    sessions = a.get("sessions") or []
    if len(sessions) > 1:
        parts.append(f"{len(sessions)} sessions")
    for key, what in (("hook_errors", "unparsable hooks"), ("transcripts_refused", "transcripts refused"),
                      ("transcript_parse_errors", "transcript lines unparsable"), ("join_errors", "join errors")):  # fmt: skip
        if a.get(key):
            parts.append(f"{a[key]} {what}")
    return esc(", ".join(parts))


def _filtered_text(meta) -> str:
    """Events left out by --no-exec/--no-file/--no-net: on request, so not shown as loss."""
    off = [d for d in ("exec", "file", "net") if not getattr(meta.probes, d)]
    counts = {d: getattr(meta.filtered, d) for d in ("exec", "file", "net")}
    shown = [d for d in ("exec", "file", "net") if d in off or counts[d]]
    if not shown:
        return ""
    flags = " ".join(f"--no-{d}" for d in off)
    return (
        ", ".join(f"{d} {counts[d]}" for d in shown)
        + f" events not recorded on request ({flags or 'filter'})"
    )


def _copies_text(meta) -> str:
    """Records a copy of the run (journald, an exporter) did not get; the run's own record is whole."""
    parts = []
    for name, st in sorted((getattr(meta, "sinks", None) or {}).items()):
        if name != "sqlite" and st.get("failed"):  # sqlite's losses make the run INCOMPLETE (record line)
            err = f" ({esc(str(st['last_error']))})" if st.get("last_error") else ""
            parts.append(f"{esc(name)} failed {st['failed']}{err}")
    for name, losses in sorted((getattr(meta, "export_losses", None) or {}).items()):
        lost = {k: v for k, v in losses.items() if v}
        if lost:
            parts.append(f"{esc(name)} lost " + ", ".join(f"{esc(k)} {v}" for k, v in sorted(lost.items())))
    return "; ".join(parts)


def _completeness(meta, pal) -> str:
    d = meta.drops
    if meta.status == "running":
        base = "in progress"
    elif meta.complete and not d.total:
        return pal.ok("complete, no events dropped")
    else:
        base = pal.warn("INCOMPLETE")
    kernel = f"kernel {d.kernel_total}"
    if any(d.kernel.values()):
        kernel += " [" + ", ".join(f"{esc(k)} {v}" for k, v in sorted(d.kernel.items()) if v) + "]"
    txt = f"{base}, dropped {d.total} ({kernel}, reader {d.reader}, queue {d.queue})"
    if meta.incomplete_reasons:
        txt += "; " + "; ".join(esc(r) for r in meta.incomplete_reasons)
    if meta.stragglers:
        txt += f"; stragglers still running: {', '.join(map(str, meta.stragglers))}"
    return txt


def _label(n: ProcNode) -> str:
    argv = esc_argv(n.argv) if n.argv else esc(n.exe)
    label = f"{n.pid} {truncate(argv, 100)}"
    if n.execs > 1:
        label += f"  ({n.execs} execs)"
    return label


def _tree_lines(roots: list[ProcNode], nprocs: int, full: bool) -> list[str]:
    lines: list[str] = []
    budget = None if full or nprocs <= TREE_MAX else TREE_MAX
    shown = 0

    def walk(n: ProcNode, prefix: str, last: bool, top: bool) -> None:
        nonlocal shown
        if budget is not None and shown >= budget:
            return
        conn = "" if top else ("└─ " if last else "├─ ")
        lines.append("  " + prefix + conn + _label(n))
        shown += 1
        kids = n.children
        limit = len(kids) if budget is None else CHILDREN_SHOWN
        child_prefix = prefix + ("" if top else ("   " if last else "│  "))
        hidden = kids[limit:]
        for i, c in enumerate(kids[:limit]):
            walk(c, child_prefix, i == len(kids[:limit]) - 1 and not hidden, False)
        if hidden:
            by = Counter(posixpath.basename(c.exe) or "?" for c in hidden)
            desc = ", ".join(f"{esc(k)} x{v}" for k, v in by.most_common(5))
            lines.append("  " + child_prefix + f"└─ … {len(hidden)} more children ({desc})")

    for i, r in enumerate(roots):
        walk(r, "", i == len(roots) - 1, True)
    if budget is not None and nprocs > shown:
        lines.append(
            f"  … tree summarised: {shown} of {nprocs} processes shown (view --all, or query --type exec)"
        )
    return lines


def _render_files(out, files: list[agg.FileChange], full: bool, hidden: int = 0) -> None:
    pal = out.palette
    by_dir: dict[str, list[agg.FileChange]] = defaultdict(list)
    for f in files:
        by_dir[posixpath.dirname(f.path) or "/"].append(f)
    out.line(pal.bold(f"Files changed ({len({f.path for f in files})} paths in {len(by_dir)} directories)"))
    if not files:
        out.line("  (none)")
    dirs = sorted(by_dir.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    for d, entries in dirs if full else dirs[:DIRS_SHOWN]:
        out.line(f"  {esc_path(d)}/  ({len(entries)})")
        for f in entries if full else entries[:FILES_PER_DIR]:
            name = esc_path(posixpath.basename(f.path))
            if f.path2:
                name += " -> " + esc_path(f.path2)
            times = f"  x{f.count}" if f.count > 1 else ""
            out.line(f"    {f.op:<8}  {name}{times}")
        if not full and len(entries) > FILES_PER_DIR:
            out.line(f"    … {len(entries) - FILES_PER_DIR} more")
    if not full and len(dirs) > DIRS_SHOWN:
        out.line(f"  … {len(dirs) - DIRS_SHOWN} more directories (view --all, or query --type file)")
    if hidden:
        out.line(f"  ({hidden} pseudo files such as /dev/null or /proc/self/… not shown: view --all)")
    out.line("")


def _render_denied(out, denied: list[agg.FileChange], full: bool) -> None:
    """Failed attempts: what the agent tried and the kernel refused (never listed as changes)."""
    if not denied:
        return
    pal = out.palette
    out.line(pal.bold(f"Denied or failed ({sum(f.count for f in denied)} attempts on {len({f.path for f in denied})} paths)"))
    rows = sorted(denied, key=lambda f: (f.path, f.op))
    for f in rows if full else rows[:DENIED_SHOWN]:
        label = ("DENIED" if result_of(f.errno) == "denied" else "FAILED") + f" ({errno_name(f.errno)})"
        name = esc(f.path) + (" -> " + esc(f.path2) if f.path2 else "")
        times = f"  x{f.count}" if f.count > 1 else ""
        out.line(f"  {f.op:<8} {pal.warn(label)}  {name}{times}")
    if not full and len(rows) > DENIED_SHOWN:
        out.line(f"  … {len(rows) - DENIED_SHOWN} more (view --all, or query --type file --result failed)")
    out.line("")


def _names(names: list[str], full: bool) -> str:
    if not names:
        return "-"
    if full or len(names) <= 3:
        return esc(", ".join(names))
    return esc(", ".join(names[:3])) + f", … {len(names) - 3} more"


def _bytes(n: int, connections: int) -> str:
    """Bytes over closed TCP connections ("-" when there were none: UDP, or still open)."""
    if not connections:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _render_net(out, dests: list[agg.Destination], dns: list[tuple[str, int]], full: bool) -> None:
    pal = out.palette
    out.line(pal.bold(f"Network ({len(dests)} destinations)"))
    if not dests:
        out.line("  (none)")
    else:
        shown = dests if full else dests[:DESTS_SHOWN]
        cols = [Column("  dst"), Column("proto"), Column("ops"), Column("count", right=True),
                Column("sent", right=True), Column("received", right=True), Column("dns")]  # fmt: skip
        rows = [
            ["  " + esc(d.dst), esc(d.proto), esc(d.ops), str(d.count), _bytes(d.sent, d.connections),
             _bytes(d.received, d.connections), _names(d.dns, full)]
            for d in shown
        ]  # fmt: skip
        out.lines(render_table(cols, rows, pal))
        if len(dests) > len(shown):
            out.line(f"  … {len(dests) - len(shown)} more (view --all, or query --type net)")
    if dns:
        names = ", ".join(f"{esc(n)}" + (f" x{c}" if c > 1 else "") for n, c in (dns if full else dns[:20]))
        more = f", … {len(dns) - 20} more" if not full and len(dns) > 20 else ""
        out.line(f"  DNS names: {names}{more}")
    out.line("")
