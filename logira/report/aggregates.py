"""Aggregations over one run shared by `view`, `explain` and `report` (plain SQL over `events`)."""

from __future__ import annotations

import sqlite3
from typing import Protocol, TypeVar

import msgspec

from logira.model.paths import is_pseudo
from logira.model.record import SEVERITIES

SEV_ORDER = (
    "CASE severity " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(SEVERITIES)) + " ELSE -1 END"
)


class RuleGroup(msgspec.Struct):
    rule_id: str
    severity: str
    count: int
    first_ts: int
    last_ts: int
    first_seq: int
    title: str = ""
    description: str = ""


class FileChange(msgspec.Struct):
    op: str
    path: str
    path2: str | None
    count: int
    errno: int = 0  # non-zero: the attempts failed (view lists them under "Denied", never as changes)
    pseudo: bool = False  # /dev/null, ttys, /proc/<pid>/..., pipes: recorded, not a change to a file


class Destination(msgspec.Struct):
    dst: str  # ip:port, [v6]:port or unix path
    proto: str
    ops: str
    count: int  # connect/send/accept/... records (connection records not counted)
    dns: list[str] = []
    sent: int = 0  # bytes sent / received over the TCP connections to it (their close records)
    received: int = 0
    connections: int = 0  # closed TCP connections


class _TreeNode(Protocol):
    ppid: int
    children: list  # of the same node type


N = TypeVar("N", bound=_TreeNode)


def link_tree(nodes: dict[int, N]) -> list[N]:
    """Hang each process (by pid) under its parent by ppid; those whose parent is not there are roots.

    A process that is its own parent (pid reuse, pid 0) is a root rather than a loop.
    """
    roots: list[N] = []
    for n in nodes.values():
        parent = nodes.get(n.ppid)
        if parent is not None and parent is not n:
            parent.children.append(n)
        else:
            roots.append(n)
    return roots


def counts_by_type(db: sqlite3.Connection) -> dict[str, int]:
    return dict(db.execute("SELECT type, count(*) FROM events GROUP BY type").fetchall())


def rule_groups(db: sqlite3.Connection) -> list[RuleGroup]:
    """Detections grouped by (rule, severity): most severe, then most frequent first."""
    rows = db.execute(
        "SELECT rule_id, severity, count(*), min(ts), max(ts), min(seq), max(data_json ->> '$.title') FROM events "
        f"WHERE type = 'detection' GROUP BY rule_id, severity ORDER BY {SEV_ORDER} DESC, count(*) DESC, rule_id"
    ).fetchall()
    return [RuleGroup(r[0] or "?", r[1] or "?", r[2], r[3], r[4], r[5], r[6] or "") for r in rows]


def has_index(db: sqlite3.Connection, name: str) -> bool:
    return (
        db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone()
        is not None
    )


def file_changes(db: sqlite3.Connection) -> list[FileChange]:
    """Every path with its non-read ops, and every failed file op (reads included), by path.

    Successful ops are changes; failed ones (errno != 0) are attempts. Pseudo files are
    marked (the stored flag, or recomputed for records written before it existed).
    """
    hint = "INDEXED BY ev_change" if has_index(db, "ev_change") else ""
    err = "COALESCE(data_json ->> '$.errno', 0)"
    sql = (f"SELECT op, path, path2, count(*), {err} AS err FROM events {hint} "
           "WHERE type = 'file' AND op != 'read' GROUP BY path, op, path2, err "
           f"UNION ALL SELECT op, path, path2, count(*), {err} AS err FROM events "
           f"WHERE type = 'file' AND op = 'read' AND {err} != 0 GROUP BY path, op, path2, err")  # fmt: skip
    out = []
    for op, path, path2, n, errno in db.execute(sql):
        path = path or ""
        out.append(FileChange(op, path, path2, n, int(errno or 0), is_pseudo(path2 or path)))
    return out


def destinations(db: sqlite3.Connection) -> list[Destination]:
    """Remote destinations (connect/send/accept…), with the DNS names seen for them and the
    bytes sent/received over their TCP connections (close records)."""
    hint = "INDEXED BY ev_net" if has_index(db, "ev_net") else ""
    out: list[Destination] = []
    conn = "op IN ('established', 'close')"
    rows = db.execute(
        f"SELECT dst_ip, dst_port, group_concat(DISTINCT CASE WHEN NOT {conn} THEN op END), "
        f"sum(NOT {conn}), group_concat(DISTINCT dns), "
        "(SELECT p.data_json ->> '$.proto' FROM events p WHERE p.dst_ip = e.dst_ip AND p.dst_port = e.dst_port "
        "LIMIT 1), "
        "sum(CASE WHEN op = 'close' THEN data_json ->> '$.bytes' ELSE 0 END), "
        "sum(CASE WHEN op = 'close' THEN data_json ->> '$.bytes_received' ELSE 0 END), "
        "sum(op = 'close') "
        f"FROM events e {hint} WHERE type = 'net' AND dst_ip IS NOT NULL AND dst_ip != '' "
        "GROUP BY dst_ip, dst_port"
    ).fetchall()
    for ip, port, ops, n, dns, proto, sent, received, conns in rows:
        dst = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        names = sorted(set(dns.split(","))) if dns else []
        out.append(Destination(dst, proto or "?", ops or "", n or 0, names, int(sent or 0), int(received or 0),
                               conns or 0))  # fmt: skip
    rows = db.execute(
        f"SELECT data_json ->> '$.unix_path' AS u, group_concat(DISTINCT op), count(*) FROM events {hint} "
        "WHERE type = 'net' AND dst_ip IS NULL AND u IS NOT NULL AND u != '' GROUP BY u"
    ).fetchall()
    out.extend(Destination(u, "unix", ops or "", n) for u, ops, n in rows)
    out.sort(key=lambda d: (-d.count, d.dst))
    return out


def dns_names(db: sqlite3.Connection) -> list[tuple[str, int]]:
    return db.execute(
        "SELECT dns, count(*) FROM events WHERE dns IS NOT NULL AND dns != '' GROUP BY dns ORDER BY count(*) DESC, dns"
    ).fetchall()


def load_rule_texts() -> dict[str, tuple[str, str]]:
    """rule id → (title, description) from the rule set, or {} when it cannot be loaded."""
    try:
        from logira.detect.loader import load_rules
    except ImportError:
        return {}
    try:
        rules = load_rules()
    except Exception:  # the read side must work even when the rule files are broken
        return {}
    out: dict[str, tuple[str, str]] = {}
    for loaded in getattr(rules, "rules", rules) or []:
        r = getattr(loaded, "rule", loaded)  # RuleSet.rules holds LoadedRule(rule, source, line)
        rid = getattr(r, "id", None)
        if rid:
            out[rid] = (getattr(r, "title", "") or "", getattr(r, "description", "") or "")
    return out
