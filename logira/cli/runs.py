"""`logira runs`: every stored run, oldest first (newest last, next to the prompt)."""

from __future__ import annotations

import argparse

import msgspec

from logira.cli import readside
from logira.model.record import SEVERITIES
from logira.render.escape import esc, esc_argv
from logira.render.table import Column, render_table
from logira.render.timefmt import fmt_date, fmt_seconds

EXAMPLES = """\
  logira runs
  logira runs --json | jq -r '.[] | select(.status != "COMPLETE") | .run_id'
"""


class RunRow(msgspec.Struct):
    run_id: str
    dir: str
    status: str  # COMPLETE | INCOMPLETE | RUNNING | UNREADABLE
    start_ts: int = 0
    end_ts: int | None = None
    tool: str = ""
    command: str = ""
    command_argv: list[str] = []
    exit_code: int | None = None
    exit_signal: int | None = None
    events: int = 0
    detections: dict[str, int] = {}
    dropped: int = 0
    error: str = ""


def register(subparsers) -> None:
    p = readside.add_parser(
        subparsers, "runs", "List saved runs.",
        "Every run under $LOGIRA_HOME/runs (default ~/.logira), sorted by start time, newest last. "
        "Ids are never truncated.", EXAMPLES,
    )  # fmt: skip
    readside.add_output(p, json_help="a JSON array, one object per run", ts=False)
    p.set_defaults(func=run)


def collect() -> list[RunRow]:
    """One RunRow per run directory (unreadable runs included, marked UNREADABLE)."""
    from logira.cli.view import status_word
    from logira.read import reader

    out: list[RunRow] = []
    for info in reader.list_runs(reader.resolve_home()):
        m = info.meta
        if m is None:
            out.append(
                RunRow(info.run_id, str(info.dir), "UNREADABLE", error="meta.json missing or unreadable")
            )
            continue
        events = m.event_count
        if m.status == "running":
            events = _live_count(info.dir) or events
        out.append(RunRow(
            m.run_id, str(info.dir), status_word(m), m.start_ts, m.end_ts, m.tool, m.command, m.command_argv,
            m.exit_code, m.exit_signal, events, dict(m.detections), m.drops.total,
        ))  # fmt: skip
    return out


def _live_count(run_dir) -> int:
    from logira.read import reader

    db = reader.open_db(run_dir)
    if db is None:
        return 0
    try:
        return db.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
    except Exception:  # a run being written may be momentarily unreadable; meta's count stands
        return 0
    finally:
        db.close()


def run(args: argparse.Namespace) -> int:
    out = readside.Out(args)
    rows = collect()
    if args.json:
        readside.print_json(rows)
        return 0
    if not rows:
        from logira.read import reader

        out.line(f"(no runs under {esc(str(reader.resolve_home()))}/runs)")
        out.flush()
        return 0
    pal = out.palette
    cols = [Column("run"), Column("started"), Column("duration", right=True), Column("tool", 16), Column("exit", right=True),
            Column("status"), Column("events", right=True), Column("detections"), Column("command", 80)]  # fmt: skip
    body = []
    for r in rows:
        dur = (
            fmt_seconds(r.end_ts - r.start_ts) if r.end_ts else ("-" if r.status != "RUNNING" else "running")
        )
        ext = f"sig {r.exit_signal}" if r.exit_signal else ("-" if r.exit_code is None else str(r.exit_code))
        code = {"COMPLETE": "32", "INCOMPLETE": "31", "UNREADABLE": "31"}.get(r.status, "1")
        dets = _det_text(r.detections)
        dcode = (
            "31"
            if any(r.detections.get(s) for s in ("high", "critical"))
            else ("33" if dets != "0" else None)
        )
        cmd = esc_argv(r.command_argv) if r.command_argv else esc(r.command or r.error)
        body.append([esc(r.run_id), fmt_date(r.start_ts) if r.start_ts else "-", dur, esc(r.tool) or "-", ext, (r.status, code),
                     str(r.events), (dets, dcode), cmd])  # fmt: skip
    out.lines(render_table(cols, body, pal))
    out.flush()
    return 0


def _det_text(d: dict[str, int]) -> str:
    parts = [f"{d[s]} {s}" for s in reversed(SEVERITIES) if d.get(s)]
    return ", ".join(parts) if parts else "0"
