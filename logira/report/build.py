"""Build the report model of one run by aggregating in SQLite (never loading the run into memory).

Every section is one or two GROUP BY queries over the run's `events` table; each result list is
capped (the constants below) and the caps are reported in the model. A 1 M-event run costs a few
table scans, not a million Python objects (bench/bench_report.py).
"""

from __future__ import annotations

import errno as errno_mod
import posixpath
import sqlite3
import time

import msgspec

from logira import __version__
from logira.format.meta import RunMeta
from logira.model.record import RECORD_TYPES, SEVERITIES
from logira.read.workspace import workspace_of
from logira.report import aggregates as agg
from logira.report.model import (
    DeniedAttempt,
    Destination,
    Detection,
    Detections,
    Egress,
    EventRef,
    FileChange,
    FileDir,
    Files,
    LineageItem,
    NewItems,
    Processes,
    ProcNode,
    Report,
    RuleSummary,
    RunHeader,
    Timeline,
    TimelineBucket,
    TimelineMark,
    ToolCalls,
)

PROCS_MAX = 2000  # processes that exec'd, shown in the tree
FILE_GROUPS_MAX = 5000  # (path, op, path2) groups of changed files
DENIED_MAX = 1000
DESTS_MAX = 1000
DNS_MAX = 1000
DETECTIONS_MAX = 500  # detections with full evidence
TIMELINE_BUCKETS_MAX = 300
TIMELINE_MARKS_MAX = 500
_BUCKET_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
NS = 1_000_000_000


class _ExecLite(msgspec.Struct):
    filename: str = ""
    argv: list[str] = []
    cwd: str = ""


class _DetLite(msgspec.Struct):
    rule_id: str = ""
    severity: str = ""
    message: str = ""
    title: str = ""
    category: str = ""
    related_event_seq: int = 0
    lineage: list[LineageItem] = []
    steps: list[int] = []


def status_word(meta: RunMeta) -> str:
    if meta.status == "running":
        return "RUNNING"
    return "COMPLETE" if meta.complete else "INCOMPLETE"


def incomplete_reasons(meta: RunMeta) -> list[str]:
    """Why the run is incomplete, in words (the meta's reasons plus the loss counters)."""
    reasons = list(meta.incomplete_reasons)
    d = meta.drops
    if d.total and not any("drop" in r for r in reasons):
        reasons.append(
            f"{d.total} events dropped (kernel {d.kernel_total}, reader {d.reader}, queue {d.queue})"
        )
    if meta.status == "interrupted" and not reasons:
        reasons.append("the run was interrupted (daemon stopped or crashed before the run ended)")
    if meta.status != "running" and not meta.complete and not reasons:
        reasons.append(f"status {meta.status}")
    return reasons


def header(meta: RunMeta, last_ts: int | None) -> RunHeader:
    end = meta.end_ts or last_ts
    d = meta.drops
    return RunHeader(
        run_id=meta.run_id, tool=meta.tool, command_argv=list(meta.command_argv), command=meta.command,
        cwd=meta.cwd, workspace=workspace_of(meta.cwd), user=meta.user, uid=meta.uid, host=meta.host,
        start_ts=meta.start_ts, end_ts=meta.end_ts,
        duration_s=round((end - meta.start_ts) / NS, 3) if end else None,
        exit_code=meta.exit_code, exit_signal=meta.exit_signal, status=status_word(meta),
        incomplete_reasons=incomplete_reasons(meta) if status_word(meta) == "INCOMPLETE" else [],
        drops={"total": d.total, "kernel_total": d.kernel_total, "reader": d.reader, "queue": d.queue},
        drops_by_kind={k: v for k, v in sorted(d.kernel.items()) if v}, stragglers=list(meta.stragglers),
        event_count=meta.event_count, logira_version=meta.logira_version, kernel_release=meta.kernel_release,
        rules_sha256=meta.rules_sha256,
    )  # fmt: skip


def timeline(db: sqlite3.Connection, start_ts: int) -> Timeline:
    first, last = db.execute("SELECT min(ts), max(ts) FROM events").fetchone()
    if first is None:
        return Timeline(bucket_s=1, buckets=[], marks=[], marks_total=0)
    base = min(start_ts or first, first)
    span_s = max(1.0, (last - base) / NS)
    step = next((s for s in _BUCKET_STEPS if span_s / s <= TIMELINE_BUCKETS_MAX), _BUCKET_STEPS[-1])
    width = step * NS
    buckets: dict[int, dict[str, int]] = {}
    for b, typ, n in db.execute(
        "SELECT (ts - ?) / ? AS b, type, count(*) FROM events WHERE type != 'detection' GROUP BY b, type",
        (base, width),
    ):
        buckets.setdefault(int(b), {})[typ] = n
    out = [TimelineBucket(t=float(b * step), counts=buckets[b]) for b in sorted(buckets)]
    marks = [
        TimelineMark(t=round((ts - base) / NS, 3), seq=seq, rule_id=rid or "?", severity=sev or "?")
        for seq, ts, rid, sev in db.execute(
            "SELECT seq, ts, rule_id, severity FROM events WHERE type = 'detection' ORDER BY seq LIMIT ?",
            (TIMELINE_MARKS_MAX,),
        )
    ]
    total = db.execute("SELECT count(*) FROM events WHERE type = 'detection'").fetchone()[0]
    return Timeline(bucket_s=float(step), buckets=out, marks=marks, marks_total=total)


def processes(db: sqlite3.Connection) -> Processes:
    """Processes that exec'd (first PROCS_MAX by seq), linked by ppid."""
    total = db.execute(
        "SELECT count(DISTINCT pid) FROM events WHERE type = 'exec' AND op = 'exec'"
    ).fetchone()[0]
    nodes: dict[int, ProcNode] = {}
    dec = msgspec.json.Decoder(_ExecLite)
    for seq, pid, ppid, data_json in db.execute(
        "SELECT seq, pid, ppid, data_json FROM events WHERE type = 'exec' AND op = 'exec' ORDER BY seq"
    ):
        n = nodes.get(pid)
        if n is None and len(nodes) >= PROCS_MAX:
            continue
        d = dec.decode(data_json or "{}")
        if n is None:
            nodes[pid] = ProcNode(
                pid=pid or 0, ppid=ppid or 0, exe=d.filename, argv=d.argv, cwd=d.cwd, seq=seq
            )
        else:  # a re-exec of the same process: the latest image is what it became
            n.exe, n.argv, n.execs = d.filename, d.argv, n.execs + 1
    roots: list[ProcNode] = []
    for n in nodes.values():
        parent = nodes.get(n.ppid)
        if parent is not None and parent is not n:
            parent.children.append(n)
        else:
            roots.append(n)
    return Processes(total=total, shown=len(nodes), truncated=total > len(nodes), roots=roots)


def files(db: sqlite3.Connection) -> Files:
    """Successful changes grouped by directory; failed (denied) attempts apart."""
    rows = db.execute(
        "SELECT path, op, path2, count(*) FROM events WHERE type = 'file' AND op != 'read' "
        "AND coalesce(data_json ->> '$.errno', 0) = 0 GROUP BY path, op, path2 ORDER BY path, op LIMIT ?",
        (FILE_GROUPS_MAX + 1,),
    ).fetchall()
    truncated = len(rows) > FILE_GROUPS_MAX
    rows = rows[:FILE_GROUPS_MAX]
    total = db.execute(
        "SELECT count(DISTINCT path) FROM events WHERE type = 'file' AND op != 'read' "
        "AND coalesce(data_json ->> '$.errno', 0) = 0"
    ).fetchone()[0]
    by_dir: dict[str, list[FileChange]] = {}
    for path, op, path2, n in rows:
        p = path or ""
        by_dir.setdefault(posixpath.dirname(p) or "/", []).append(
            FileChange(op=op or "?", path=p, path2=path2, count=n)
        )
    dirs = [FileDir(dir=d, changes=c) for d, c in sorted(by_dir.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    denied_rows = db.execute(
        "SELECT op, path, data_json ->> '$.errno' AS e, count(*) FROM events WHERE type = 'file' "
        "AND coalesce(e, 0) != 0 GROUP BY op, path, e ORDER BY count(*) DESC, path LIMIT ?",
        (DENIED_MAX,),
    ).fetchall()
    denied_total = db.execute(
        "SELECT count(*) FROM events WHERE type = 'file' AND coalesce(data_json ->> '$.errno', 0) != 0"
    ).fetchone()[0]
    denied = [
        DeniedAttempt(op=op or "?", path=p or "", errno=int(e), error=errno_mod.errorcode.get(int(e), f"errno {e}"),
                      count=n)
        for op, p, e, n in denied_rows
    ]  # fmt: skip
    return Files(total_paths=total, shown=len({r[0] for r in rows}), truncated=truncated, dirs=dirs,
                 denied=denied, denied_total=denied_total)  # fmt: skip


def egress(db: sqlite3.Connection) -> Egress:
    """Remote destinations with ops, bytes sent, failures and the DNS names seen for them."""
    rows = db.execute(
        "SELECT dst_ip, dst_port, group_concat(DISTINCT op), count(*), group_concat(DISTINCT dns), "
        "sum(coalesce(data_json ->> '$.bytes', 0)), sum(coalesce(data_json ->> '$.errno', 0) != 0), "
        "max(data_json ->> '$.proto') FROM events WHERE type = 'net' AND dst_ip IS NOT NULL AND dst_ip != '' "
        "GROUP BY dst_ip, dst_port ORDER BY count(*) DESC LIMIT ?",
        (DESTS_MAX + 1,),
    ).fetchall()
    out: list[Destination] = []
    for ip, port, ops, n, dns, nbytes, failed, proto in rows[:DESTS_MAX]:
        port = port or 0
        dst = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        out.append(Destination(dst=dst, ip=ip, port=port, proto=proto or "?", ops=sorted(set((ops or "").split(","))),
                               count=n, bytes=int(nbytes or 0), failed=int(failed or 0),
                               dns=sorted(set(dns.split(","))) if dns else []))  # fmt: skip
    unix = db.execute(
        "SELECT data_json ->> '$.unix_path' AS u, group_concat(DISTINCT op), count(*), "
        "sum(coalesce(data_json ->> '$.bytes', 0)), sum(coalesce(data_json ->> '$.errno', 0) != 0) "
        "FROM events WHERE type = 'net' AND dst_ip IS NULL AND u IS NOT NULL AND u != '' "
        "GROUP BY u ORDER BY count(*) DESC LIMIT ?",
        (DESTS_MAX,),
    ).fetchall()
    for u, ops, n, nbytes, failed in unix:
        out.append(Destination(dst=u, ip="", port=0, proto="unix", ops=sorted(set((ops or "").split(","))),
                               count=n, bytes=int(nbytes or 0), failed=int(failed or 0), dns=[]))  # fmt: skip
    total = db.execute(
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE type = 'net' AND dst_ip IS NOT NULL AND dst_ip != '' "
        "GROUP BY dst_ip, dst_port)"
    ).fetchone()[0] + len(unix)
    dns_rows = db.execute(
        "SELECT dns, count(*) FROM events WHERE dns IS NOT NULL AND dns != '' GROUP BY dns "
        "ORDER BY count(*) DESC, dns LIMIT ?",
        (DNS_MAX,),
    ).fetchall()
    return Egress(total=total, truncated=len(rows) > DESTS_MAX or len(unix) >= DESTS_MAX, destinations=out,
                  dns=[(d, n) for d, n in dns_rows])  # fmt: skip


def _ref(row: tuple | None) -> EventRef | None:
    if row is None:
        return None
    seq, ts, typ, pid, summary, path, ip, port, exe = row
    dst = None
    if ip:
        dst = f"[{ip}]:{port or 0}" if ":" in ip else f"{ip}:{port or 0}"
    return EventRef(
        seq=seq, ts=ts, type=typ, pid=pid or 0, summary=summary or "", path=path, dst=dst, exe=exe
    )


_REF_SQL = "SELECT seq, ts, type, pid, summary, path, dst_ip, dst_port, exe FROM events WHERE seq = ?"


def detections(
    db: sqlite3.Connection, rule_texts: dict[str, tuple[str, str]], calls: dict[int, str] | None = None
) -> Detections:
    groups = agg.rule_groups(db)
    rules = []
    by_sev: dict[str, int] = {}
    for g in groups:
        title, desc = rule_texts.get(g.rule_id, ("", ""))
        rules.append(RuleSummary(rule_id=g.rule_id, severity=g.severity, title=title or g.title, description=desc,
                                 count=g.count, first_ts=g.first_ts, last_ts=g.last_ts))  # fmt: skip
        by_sev[g.severity] = by_sev.get(g.severity, 0) + g.count
    dec = msgspec.json.Decoder(_DetLite)
    items: list[Detection] = []
    for seq, ts, data_json in db.execute(
        "SELECT seq, ts, data_json FROM events WHERE type = 'detection' ORDER BY seq LIMIT ?",
        (DETECTIONS_MAX,),
    ).fetchall():
        try:
            d = dec.decode(data_json or "{}")
        except msgspec.DecodeError:
            d = _DetLite(message="(undecodable detection payload)")
        related = (
            _ref(db.execute(_REF_SQL, (d.related_event_seq,)).fetchone()) if d.related_event_seq else None
        )
        steps = [r for s in d.steps[:32] if (r := _ref(db.execute(_REF_SQL, (s,)).fetchone())) is not None]
        title = rule_texts.get(d.rule_id, (d.title, ""))[0] or d.title
        items.append(Detection(seq=seq, ts=ts, rule_id=d.rule_id or "?", severity=d.severity or "?", title=title,
                               category=d.category, message=d.message, related=related, lineage=d.lineage,
                               steps=steps, tool_call=(calls or {}).get(d.related_event_seq)
                               or (calls or {}).get(seq, "")))  # fmt: skip
    total = sum(by_sev.values())
    ordered = {s: by_sev[s] for s in reversed(SEVERITIES) if s in by_sev}
    ordered.update({s: n for s, n in by_sev.items() if s not in ordered})
    return Detections(
        total=total, by_severity=ordered, rules=rules, items=items, truncated=total > len(items)
    )


def build_report(
    db: sqlite3.Connection,
    meta: RunMeta,
    *,
    tool_calls: ToolCalls | None = None,
    attribution: dict[int, str] | None = None,
    new_in_run: NewItems | None = None,
    rule_texts: dict[str, tuple[str, str]] | None = None,
) -> Report:
    """The report of one run from its (read-only) index database and meta."""
    counts = agg.counts_by_type(db)
    counts = {t: counts.get(t, 0) for t in RECORD_TYPES} | {
        t: n for t, n in counts.items() if t not in RECORD_TYPES
    }
    last_ts = db.execute("SELECT max(ts) FROM events").fetchone()[0]
    texts = agg.load_rule_texts() if rule_texts is None else rule_texts
    return Report(
        generated_at=time.time_ns(),
        generator=f"logira {__version__}",
        run=header(meta, last_ts),
        counts=counts,
        timeline=timeline(db, meta.start_ts),
        tool_calls=tool_calls or ToolCalls(available=False, note="this run has no tool-call attribution"),
        processes=processes(db),
        files=files(db),
        egress=egress(db),
        detections=detections(db, texts, attribution),
        new_in_run=new_in_run,
    )


def encode_json(report: Report) -> bytes:
    """The JSON form of the report (indented, keys in model order, trailing newline)."""
    return msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n"
