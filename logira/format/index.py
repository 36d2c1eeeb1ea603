"""index.sqlite, the format: schema, columns and how each row is derived from a record.

Defined once, below the writer (sinks/sqlite.py), the readers (read/query.py's JSONL fallback)
and verify (read/verify.py recomputes every derived column from the hash-chained JSONL with
`event_row` and compares). Schema: docs/sqlite.md, user_version 2.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import msgspec

from logira.errors import LogiraError
from logira.format.meta import RunMeta
from logira.format.textsafe import display, encode_display, has_surrogates
from logira.model.record import Record, StoredRecord

SCHEMA_VERSION = 2

TABLES_SQL = """
CREATE TABLE IF NOT EXISTS runs(id TEXT PRIMARY KEY, start_ts INTEGER, end_ts INTEGER, command TEXT,
                  tool TEXT, suspicious_count INTEGER, meta_json TEXT);
CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, type TEXT NOT NULL, op TEXT,
                    pid INTEGER, ppid INTEGER, uid INTEGER, summary TEXT, data_json TEXT,
                    exe TEXT, path TEXT, path2 TEXT, dst_ip TEXT, dst_port INTEGER, dns TEXT,
                    rule_id TEXT, severity TEXT, related_seq INTEGER, run_id TEXT);
CREATE VIEW IF NOT EXISTS detections AS
  SELECT run_id, seq, ts, rule_id, severity, data_json ->> '$.message' AS message, related_seq
  FROM events WHERE type = 'detection';
"""

# The indexes are built once the run is over (SqliteSink.close, or backfill_from_jsonl after a
# crash): nobody queries the staged database of an active run, and one bulk build costs less than
# maintaining nine indexes per insert (the pipeline's SQLite thread was its bottleneck).
INDEX_SQL = """
CREATE INDEX IF NOT EXISTS ev_type ON events(type, seq);
CREATE INDEX IF NOT EXISTS ev_path ON events(path);
CREATE INDEX IF NOT EXISTS ev_dst ON events(dst_ip, dst_port);
CREATE INDEX IF NOT EXISTS ev_pid ON events(pid);
CREATE INDEX IF NOT EXISTS ev_rule ON events(rule_id) WHERE rule_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ev_ts ON events(ts);
CREATE INDEX IF NOT EXISTS ev_dns ON events(dns) WHERE dns IS NOT NULL;
-- read side (view): changed files and destinations without table lookups (H6)
CREATE INDEX IF NOT EXISTS ev_change ON events(path, op, path2) WHERE type = 'file' AND op != 'read';
CREATE INDEX IF NOT EXISTS ev_net ON events(dst_ip, dst_port, op, dns) WHERE type = 'net';
"""

SCHEMA_SQL = TABLES_SQL + INDEX_SQL

EVENT_COLUMNS = ("seq", "ts", "type", "op", "pid", "ppid", "uid", "summary", "data_json", "exe", "path",
                 "path2", "dst_ip", "dst_port", "dns", "rule_id", "severity", "related_seq", "run_id")
RUN_COLUMNS = ("id", "start_ts", "end_ts", "command", "tool", "suspicious_count", "meta_json")
INSERT_EVENT = f"INSERT INTO events({','.join(EVENT_COLUMNS)}) VALUES ({','.join('?' * len(EVENT_COLUMNS))})"
MULTI_ROWS = 64  # rows per INSERT statement in a batch (64 x 19 parameters, far below SQLite's limit)
INSERT_MULTI = (f"INSERT INTO events({','.join(EVENT_COLUMNS)}) VALUES "
                + ",".join(["(" + ",".join("?" * len(EVENT_COLUMNS)) + ")"] * MULTI_ROWS))
UPSERT_RUN = (f"INSERT OR REPLACE INTO runs({', '.join(RUN_COLUMNS)}) "
              f"VALUES ({','.join('?' * len(RUN_COLUMNS))})")


class SchemaError(LogiraError):
    """index.sqlite has a schema this version does not know (one-line message)."""


def check_version(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, SCHEMA_VERSION):
        raise SchemaError(f"index.sqlite has schema version {version}, expected {SCHEMA_VERSION}")


def create_schema(conn: sqlite3.Connection) -> None:
    """Create tables, indexes and the detections view on a sync connection; set user_version."""
    check_version(conn)
    conn.executescript(SCHEMA_SQL)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.commit()


def event_row(rec: Record) -> tuple[Any, ...]:
    """The `events` row of a record: envelope, data_json text and the denormalised columns."""
    d: Any = rec.data_json
    t = rec.type
    dirty = False
    try:
        data = msgspec.json.encode(d)
    except UnicodeEncodeError:
        data = encode_display(d)
        dirty = True
    op = exe = path = path2 = dst_ip = dst_port = dns = rule_id = severity = related = None
    if t == "exec":
        op = "exec_failed" if d.errno else "exec"
        exe = d.filename or None
    elif t == "proc":
        op, exe = d.op, d.exe or None
    elif t == "file":
        op, exe, path, path2 = d.op, d.exe or None, d.path or None, d.path2 or None
    elif t == "net":
        op, exe = d.op, d.exe or None
        dst_ip, dst_port, dns = d.dst_ip or None, d.dst_port or None, d.dns_qname or None
    elif t == "detection":
        rule_id, severity, related = d.rule_id, d.severity, d.related_event_seq or None
    elif t == "agent":
        op, path = d.op, d.file_path or None
    row: tuple[Any, ...] = (rec.seq, rec.ts, t, op, rec.pid, rec.ppid, rec.uid, rec.summary, data.decode("utf-8"), exe, path,
                              path2, dst_ip, dst_port, dns, rule_id, severity, related, rec.run_id)
    if dirty or has_surrogates(rec.summary) or has_surrogates(rec.run_id):
        # sqlite3 cannot store lone surrogates: same display form as the JSONL text fields.
        row = tuple(display(v) if isinstance(v, str) else v for v in row)
    return row


def stored_row(sr: StoredRecord) -> tuple[Any, ...]:
    """The `events` row of a stored JSONL record, data_json exactly as stored (backfill, verify)."""
    rec = Record(run_id=sr.run_id, seq=sr.seq, ts=sr.ts, type=sr.type, pid=sr.pid, ppid=sr.ppid,
                 uid=sr.uid, summary=sr.summary, data_json=sr.data())
    row = list(event_row(rec))
    row[8] = bytes(sr.data_json).decode("utf-8")  # exactly the stored text
    return tuple(row)


def run_row(meta: RunMeta) -> tuple[Any, ...]:
    """The `runs` row for a meta (meta_json = compact meta.json)."""
    meta_json = encode_display(meta).decode("utf-8")
    return (meta.run_id, meta.start_ts, meta.end_ts, display(meta.command), display(meta.tool),
            meta.suspicious_count, meta_json)


def _last_jsonl_seq(fd: int) -> int:
    """seq of the last complete line of events.jsonl (reads only the tail of the file)."""
    size = os.fstat(fd).st_size
    tail = os.pread(fd, min(size, 1 << 20), max(0, size - (1 << 20)))
    lines = tail.split(b"\n")[:-1]  # the part after the last newline is incomplete
    for line in reversed(lines):
        try:
            return msgspec.json.decode(line, type=StoredRecord).seq
        except msgspec.DecodeError:
            continue
    return 0


def backfill_from_jsonl(conn: sqlite3.Connection, fd: int) -> int:
    """Insert the records of events.jsonl (read from `fd`) that the database lacks; return how many.

    Also builds the indexes if they are missing (a database staged by a daemon that crashed).

    Used when a run is published: after a daemon crash (or a failed batch) SQLite lags behind the
    JSONL, which is the authoritative record, so the index is completed from it. Cheap when
    nothing is missing: only the file's tail is read.
    """
    conn.executescript(INDEX_SQL)  # a crashed daemon never built them (see INDEX_SQL); idempotent
    have = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    if _last_jsonl_seq(fd) <= have:
        return 0
    dec = msgspec.json.Decoder(StoredRecord)
    added = 0
    rows: list[tuple[Any, ...]] = []

    def insert() -> None:
        conn.execute("BEGIN")
        conn.executemany(INSERT_EVENT, rows)
        conn.execute("COMMIT")
        rows.clear()

    with os.fdopen(os.dup(fd), "rb") as f:
        f.seek(0)
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                sr = dec.decode(line)
                if sr.seq <= have:
                    continue
                row = stored_row(sr)
            except (msgspec.DecodeError, msgspec.ValidationError, KeyError):
                continue  # verify reports broken lines; the index just skips them
            rows.append(row)
            added += 1
            if len(rows) >= 10_000:
                insert()
    if rows:
        insert()
    return added
