"""`logira calls`: the tool calls of a run, joined to what the kernel saw (docs/agents.md)."""

from __future__ import annotations

import argparse

import msgspec

from logira.agents import calls as agent_calls
from logira.cli import readside
from logira.read.query import RunSource
from logira.render.escape import esc
from logira.render.table import Column, render_table, truncate
from logira.render.timefmt import fmt_seconds

EXAMPLES = """\
  logira calls                        # tool calls of the last run
  logira calls 20260102-150405-claude --json | jq '.calls[] | {call_id, command, execs}'
  logira query --tool-call toolu_01   # every record one call caused
"""


def register(subparsers) -> None:
    p = readside.add_parser(
        subparsers, "calls", "List the agent's tool calls in a run (default: last).",
        "One row per tool call the agent declared (hooks, or its transcript), with what the kernel "
        "attributed to it: execs, changed files, destinations and detections.", EXAMPLES,
    )  # fmt: skip
    readside.add_selector(p)
    p.add_argument("--all", action="store_true", help="no column truncation")
    readside.add_output(p, json_help="{run_id, sessions, summary, calls: [...]} (docs/agents.md)")
    p.set_defaults(func=run)


class SessionDoc(msgspec.Struct):
    session_id: str
    calls: int
    subagents: list[str]
    other_runs: list[str]  # other runs of this home that recorded the same session
    subagent_calls: dict[str, str] = {}  # subagent id -> the Agent/Task call that started it


class CallsDoc(msgspec.Struct):
    run_id: str
    sessions: list[SessionDoc]
    summary: dict[str, int]
    calls: list[agent_calls.ToolCall]


def other_runs_of_sessions(run_dir, sessions: list[str]) -> dict[str, list[str]]:
    """Runs in the same home whose meta.json lists one of `sessions` (a session spanning runs)."""
    from logira.read import reader

    out: dict[str, list[str]] = {s: [] for s in sessions}
    if not sessions:
        return out
    want = set(sessions)
    for info in reader.list_runs(run_dir.parent.parent):
        if info.run_id == run_dir.name or info.meta is None:
            continue
        found = info.meta.agents.get("sessions")
        if found is None and info.meta.status in ("incomplete", "interrupted"):
            found = _hook_sessions(info.dir)  # closed after a daemon crash: no join, but its hooks
        for s in set(found or []) & want:
            out[s].append(info.run_id)
    return out


def _hook_sessions(run_dir) -> list[str]:
    from logira.read import reader

    db = reader.open_db(run_dir)
    if db is None:
        return []
    try:
        rows = db.execute("SELECT DISTINCT data_json ->> '$.session_id' FROM events WHERE type = 'agent' AND op = 'hook'")
        return [s for (s,) in rows if s]
    except Exception:  # an unreadable index only loses this hint
        return []
    finally:
        db.close()


def session_docs(run_dir, calls: list[agent_calls.ToolCall]) -> list[SessionDoc]:
    ids: dict[str, list[agent_calls.ToolCall]] = {}
    for c in calls:
        ids.setdefault(c.session_id, []).append(c)
    others = other_runs_of_sessions(run_dir, [s for s in ids if s])
    return [
        SessionDoc(
            s, len(cs), sorted({c.subagent for c in cs if c.subagent}), others.get(s, []),
            {c.subagent: c.parent_call for c in cs if c.subagent and c.parent_call},
        )
        for s, cs in ids.items()
    ]


def run(args: argparse.Namespace) -> int:
    from logira.read import reader

    out = readside.Out(args)
    run_dir = readside.resolve(args)
    meta = reader.read_meta(run_dir)
    out.set_start(meta.start_ts)
    with RunSource(run_dir, running=meta.status == "running") as src:
        calls = agent_calls.tool_calls(src.db)
        summary = agent_calls.summary(src.db)
    doc = CallsDoc(meta.run_id, session_docs(run_dir, calls), summary, calls)
    if args.json:
        readside.print_json(doc)
        return 0
    out.lines(render_calls(out, doc, wide=args.all))
    out.flush()
    return 0


def call_label(c: agent_calls.ToolCall, n: int = 80) -> str:
    """`Bash \\`npm test\\`` (escaped, truncated): how a call is named in view/explain."""
    what = c.command or c.file_path or c.description
    text = f"{esc(c.tool) or '?'} `{truncate(esc(what), n)}`" if what else esc(c.tool) or "?"
    return text


def render_calls(out: readside.Out, doc: CallsDoc, wide: bool = False) -> list[str]:
    tf, pal = out.tf, out.palette
    lines: list[str] = []
    if not doc.calls:
        lines.append("(no tool calls: the run had no agent hooks and no readable transcript; "
                     "see `logira agent hooks install`)")  # fmt: skip
        return lines
    for s in doc.sessions:
        subs = [esc(a) + (f" (from {esc(s.subagent_calls[a])})" if a in s.subagent_calls else "") for a in s.subagents]
        extra = f"  subagents: {', '.join(subs)}" if subs else ""
        also = f"  also in runs: {', '.join(esc(r) for r in s.other_runs)}" if s.other_runs else ""
        lines.append(f"session {esc(s.session_id) or '(none)'}: {s.calls} tool calls{extra}{also}")
    cols = [Column("call"), Column("tool"), Column("command", None if wide else 60), Column("at"),
            Column("dur", right=True), Column("status"), Column("execs", right=True),
            Column("files", right=True), Column("dests", right=True), Column("detections")]  # fmt: skip
    rows = []
    for c in doc.calls:
        what = esc(c.command or c.file_path or c.description).replace("\n", "⏎")
        dur = fmt_seconds(c.end_ts - c.start_ts) if c.end_ts and c.start_ts else "-"
        status = c.status + ("" if c.source == "hook" else f" ({c.source})")
        dets = ", ".join(esc(r) for r in sorted(set(c.detections))) or "-"
        sub = f" [{esc(c.subagent)}]" if c.subagent else ""
        nest = "↳ " if c.parent_call else ""  # made by the subagent of the Agent/Task call above it
        rows.append([nest + esc(c.call_id) + sub, esc(c.tool), what or "-", tf(c.start_ts), dur,
                     (status, pal_code(c.status)), str(c.execs), str(c.files), str(c.destinations),
                     (dets, "31" if c.detections else None)])  # fmt: skip
    lines.extend(render_table(cols, rows, pal, wide=wide))
    return lines


def pal_code(status: str) -> str | None:
    return {"error": "31", "interrupted": "33", "running": "33"}.get(status)
