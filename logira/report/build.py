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
    # two queries: SQLite answers a lone min() or max() from the ev_ts index, both together by a scan
    first = db.execute("SELECT min(ts) FROM events").fetchone()[0]
    last = db.execute("SELECT max(ts) FROM events").fetchone()[0]
    if first is None:
        return Timeline(bucket_s=1, buckets=[], marks=[], marks_total=0)
    base = min(start_ts or first, first)
    span_s = max(1.0, (last - base) / NS)
    step = next((s for s in _BUCKET_STEPS if span_s / s <= TIMELINE_BUCKETS_MAX), _BUCKET_STEPS[-1])
    width = step * NS
    nb = int((last - base) // width) + 1
    if agg.has_index(db, "ev_ts") and agg.has_index(db, "ev_type"):
        buckets = _buckets_by_seq(db, base, width, nb)
    else:
        buckets = {}
        for b, typ, n in db.execute(
            "SELECT (ts - ?) / ? AS b, type, count(*) FROM events WHERE type != 'detection' GROUP BY b, type",
            (base, width),
        ):
            buckets.setdefault(int(b), {})[typ] = n
    out = [TimelineBucket(t=float(b * step), counts=buckets[b]) for b in sorted(buckets) if buckets[b]]
    marks = [
        TimelineMark(t=round((ts - base) / NS, 3), seq=seq, rule_id=rid or "?", severity=sev or "?")
        for seq, ts, rid, sev in db.execute(
            "SELECT seq, ts, rule_id, severity FROM events WHERE type = 'detection' ORDER BY seq LIMIT ?",
            (TIMELINE_MARKS_MAX,),
        )
    ]
    total = db.execute("SELECT count(*) FROM events WHERE type = 'detection'").fetchone()[0]
    return Timeline(bucket_s=float(step), buckets=out, marks=marks, marks_total=total)


def _buckets_by_seq(db: sqlite3.Connection, base: int, width: int, nb: int) -> dict[int, dict[str, int]]:
    """Per bucket and type, counted on the indexes only (no table scan, no sort of a million rows).

    Records are stored in arrival order, so a bucket is the seq range from the first record at or
    after its start time (ev_ts) to the next bucket's; each type's count in a range is an
    index-only range count on ev_type. A record whose time is out of arrival order (another CPU's,
    a few microseconds late) can land in the neighbouring bucket; every record is counted once.
    """
    first_seq = "SELECT seq FROM events INDEXED BY ev_ts WHERE ts >= ? ORDER BY ts LIMIT 1"
    end = db.execute("SELECT max(seq) FROM events").fetchone()[0] + 1
    bounds: list[int] = []
    for i in range(nb):
        row = db.execute(first_seq, (base + i * width,)).fetchone()
        bounds.append(row[0] if row else end)
    bounds = [min(bounds[i:]) for i in range(nb)]  # keep the ranges ordered when times are not
    bounds.append(end)
    types = [t for (t,) in db.execute("SELECT DISTINCT type FROM events INDEXED BY ev_type") if t != "detection"]
    out: dict[int, dict[str, int]] = {}
    bounds[0] = 0
    for typ in types:
        for i in range(nb):
            lo, hi = bounds[i], bounds[i + 1]
            if hi <= lo:
                continue
            n = db.execute("SELECT count(*) FROM events INDEXED BY ev_type WHERE type = ? AND seq >= ? AND seq < ?",
                           (typ, lo, hi)).fetchone()[0]  # fmt: skip
            if n:
                out.setdefault(i, {})[typ] = n
    return out


def processes(db: sqlite3.Connection) -> Processes:
    """Processes that exec'd (first PROCS_MAX by seq), linked by ppid."""
    total = db.execute(
        "SELECT count(DISTINCT pid) FROM events WHERE type = 'exec' AND op = 'exec'"
    ).fetchone()[0]
    nodes: dict[int, ProcNode] = {}
    dec = msgspec.json.Decoder(_ExecLite)
    # the first execs by seq; a few times the cap, so re-execs of kept processes are still seen
    for seq, pid, ppid, data_json in db.execute(
        "SELECT seq, pid, ppid, data_json FROM events WHERE type = 'exec' AND op = 'exec' ORDER BY seq LIMIT ?",
        (PROCS_MAX * 4,),
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
    roots = agg.link_tree(nodes)
    return Processes(total=total, shown=len(nodes), truncated=total > len(nodes), roots=roots)


_FAILED_SUMMARY = "(summary GLOB 'file * DENIED (*' OR summary GLOB 'file * FAILED (*')"


def files(db: sqlite3.Connection) -> Files:
    """Successful changes grouped by directory; failed (denied) attempts apart.

    The changes come from the covering partial index `ev_change` (no table lookups); the failed
    attempts, rare, are found by their summary (`file <op> DENIED (EACCES) <path>`, convert.py) in
    one sequential pass, and only those rows have their data_json read (for the errno).
    """
    hint = "INDEXED BY ev_change" if agg.has_index(db, "ev_change") else ""
    rows = db.execute(
        f"SELECT path, op, path2, count(*) FROM events {hint} WHERE type = 'file' AND op != 'read' "
        "GROUP BY path, op, path2 ORDER BY path, op LIMIT ?",
        (FILE_GROUPS_MAX + 1,),
    ).fetchall()
    denied_rows = db.execute(
        "SELECT op, path, path2, data_json ->> '$.errno' AS e, count(*) FROM events NOT INDEXED "
        f"WHERE type = 'file' AND {_FAILED_SUMMARY} GROUP BY op, path, path2, e ORDER BY count(*) DESC, path"
    ).fetchall()
    failed: dict[tuple, int] = {}
    for op, p, p2, e, n in denied_rows:
        if e:
            failed[(p, op, p2)] = failed.get((p, op, p2), 0) + n
    truncated = len(rows) > FILE_GROUPS_MAX
    by_dir: dict[str, list[FileChange]] = {}
    shown_paths: set[str] = set()
    for path, op, path2, n in rows[:FILE_GROUPS_MAX]:
        n -= failed.get((path, op, path2), 0)  # the index groups failed attempts with the successes
        if n <= 0:
            continue
        p = path or ""
        shown_paths.add(p)
        by_dir.setdefault(posixpath.dirname(p) or "/", []).append(FileChange(op=op or "?", path=p, path2=path2, count=n))
    dirs = [FileDir(dir=d, changes=c) for d, c in sorted(by_dir.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    total = db.execute(f"SELECT count(DISTINCT path) FROM events {hint} WHERE type = 'file' AND op != 'read'").fetchone()[0]
    only_failed = {p for (p, op, _p2) in failed if op != "read"} - shown_paths
    total -= len(only_failed) if not truncated else 0
    denied = [
        DeniedAttempt(op=op or "?", path=p or "", errno=int(e), error=errno_mod.errorcode.get(int(e), f"errno {e}"),
                      count=n)
        for op, p, _p2, e, n in denied_rows[:DENIED_MAX] if e
    ]  # fmt: skip
    return Files(total_paths=total, shown=len(shown_paths), truncated=truncated, dirs=dirs, denied=denied,
                 denied_total=sum(r[4] for r in denied_rows if r[3]))  # fmt: skip


def egress(db: sqlite3.Connection) -> Egress:
    """Remote destinations with ops, bytes sent, failures and the DNS names seen for them.

    Counts, ops and names come from the covering partial index `ev_net`; bytes (send/sendmsg, TCP
    close records), failures and the protocol are read for the shown destinations only (ev_dst).
    """
    hint = "INDEXED BY ev_net" if agg.has_index(db, "ev_net") else ""
    rows = db.execute(
        f"SELECT dst_ip, dst_port, group_concat(DISTINCT op), count(*), group_concat(DISTINCT dns) FROM events {hint} "
        "WHERE type = 'net' AND dst_ip IS NOT NULL AND dst_ip != '' GROUP BY dst_ip, dst_port "
        "ORDER BY count(*) DESC LIMIT ?",
        (DESTS_MAX + 1,),
    ).fetchall()
    out: list[Destination] = []
    for ip, port, ops, n, dns in rows[:DESTS_MAX]:
        nbytes, failed, proto = db.execute(
            "SELECT sum(coalesce(data_json ->> '$.bytes', 0)), sum(coalesce(data_json ->> '$.errno', 0) != 0), "
            "max(data_json ->> '$.proto') FROM events WHERE dst_ip = ? AND dst_port IS ? AND type = 'net'",
            (ip, port),
        ).fetchone()
        port = port or 0
        dst = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        out.append(Destination(dst=dst, ip=ip, port=port, proto=proto or "?", ops=sorted(set((ops or "").split(","))),
                               count=n, bytes=int(nbytes or 0), failed=int(failed or 0),
                               dns=sorted(set(dns.split(","))) if dns else []))  # fmt: skip
    unix = db.execute(
        "SELECT data_json ->> '$.unix_path' AS u, group_concat(DISTINCT op), count(*), "
        "sum(coalesce(data_json ->> '$.bytes', 0)), sum(coalesce(data_json ->> '$.errno', 0) != 0) "
        f"FROM events {hint} WHERE type = 'net' AND dst_ip IS NULL AND u IS NOT NULL AND u != '' "
        "GROUP BY u ORDER BY count(*) DESC LIMIT ?",
        (DESTS_MAX,),
    ).fetchall()
    for u, ops, n, nbytes, failed in unix:
        out.append(Destination(dst=u, ip="", port=0, proto="unix", ops=sorted(set((ops or "").split(","))),
                               count=n, bytes=int(nbytes or 0), failed=int(failed or 0), dns=[]))  # fmt: skip
    total = db.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM events {hint} WHERE type = 'net' AND dst_ip IS NOT NULL AND dst_ip != '' "
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
