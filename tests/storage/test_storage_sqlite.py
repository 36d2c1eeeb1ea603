"""index.sqlite: schema, denormalised columns, agreement with events.jsonl, read-only reopen."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

from storage_samples import RUN, T0, build_run, sample_records

from logira.format.index import SCHEMA_VERSION, create_schema
from logira.read.reader import iter_records, open_db
from logira.read.verify import verify_run


async def test_rows_match_jsonl_including_hostile_strings(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / RUN
    seal = await build_run(run_dir, tmp_path / "state", sample_records(n_extra=3))
    conn = open_db(run_dir)
    assert conn is not None
    rows = conn.execute("SELECT seq, ts, type, pid, ppid, uid, summary, data_json, run_id FROM events "
                        "ORDER BY seq").fetchall()
    from_jsonl = [(r.seq, r.ts, r.type, r.pid, r.ppid, r.uid, r.summary, bytes(r.data_json).decode(), r.run_id)
                  for r in iter_records(run_dir)]
    assert rows == from_jsonl and len(rows) == 9
    # ...and verify's own row-by-row comparison agrees.
    rep = verify_run(run_dir, seal)
    assert (rep.intact, rep.problems, rep.records) == (True, [], 9)


async def test_denormalised_columns(tmp_path: Path) -> None:
    run_dir = tmp_path / RUN
    await build_run(run_dir, tmp_path / "state", sample_records())
    conn = open_db(run_dir)
    assert conn is not None
    got = conn.execute("SELECT seq, type, op, exe, path, path2, dst_ip, dst_port, dns, rule_id, severity, "
                       "related_seq, uid FROM events ORDER BY seq").fetchall()
    assert got == [
        (1, "exec", "exec", "/bin/echo", None, None, None, None, None, None, None, None, 1000),
        (2, "proc", "fork", "/bin/bash", None, None, None, None, None, None, None, None, 1000),
        (3, "file", "create", "/bin/touch",
         "/tmp/evil\n\x1b[31mred\u2028\"\\\\xff\\xc3.txt", None, None, None, None, None, None, None, 1000),
        (4, "net", "connect", "/usr/bin/curl", None, None, "127.0.0.53", 53, "example.com", None, None, None, 0),
        (5, "detection", None, None, None, None, None, None, None, "F001", "high", 3, 0),
        (6, "exec", "exec_failed", "/nope", None, None, None, None, None, None, None, None, 1000),
    ]
    assert conn.execute("SELECT run_id, seq, ts, rule_id, severity, message, related_seq FROM detections"
                        ).fetchall() == [(RUN, 5, T0 + 4, "F001", "high", "write to evil", 3)]
    run = conn.execute("SELECT id, start_ts, end_ts, command, tool, suspicious_count FROM runs").fetchall()
    assert run == [(RUN, T0, T0 + 10**9, "agent --go", "test", 1)]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_closed_db_is_self_contained_and_read_only(tmp_path: Path) -> None:
    run_dir = tmp_path / RUN
    await build_run(run_dir, tmp_path / "state", sample_records())
    assert sorted(p.name for p in run_dir.iterdir()) == ["events.jsonl", "index.sqlite", "meta.json"]
    conn = open_db(run_dir)
    assert conn is not None
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    try:
        conn.execute("DELETE FROM events")
        raise AssertionError("read-only connection accepted a write")
    except sqlite3.OperationalError as exc:
        assert "readonly" in str(exc)
    assert sorted(p.name for p in run_dir.iterdir()) == ["events.jsonl", "index.sqlite", "meta.json"]


def test_query_plans_use_the_indexes(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.sqlite")
    create_schema(conn)
    create_schema(conn)  # idempotent

    def plan(sql: str) -> str:
        return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))

    assert "ev_type" in plan("SELECT * FROM events WHERE type = 'file' ORDER BY seq")
    assert "ev_path" in plan("SELECT * FROM events WHERE path = '/etc/passwd'")
    assert "ev_dst" in plan("SELECT * FROM events WHERE dst_ip = '1.2.3.4' AND dst_port = 443")
    assert "ev_pid" in plan("SELECT * FROM events WHERE pid = 5")
    assert "ev_rule" in plan("SELECT * FROM events WHERE rule_id = 'F001'")
    assert "ev_ts" in plan("SELECT * FROM events WHERE ts BETWEEN 1 AND 2")
    assert "ev_dns" in plan("SELECT * FROM events WHERE dns = 'example.com'")
    assert "ev_type" in plan("SELECT * FROM detections")
    assert "ev_path (path>? AND path<?)" in plan("SELECT * FROM events WHERE path >= '/etc/' AND path < '/etc0'")
    assert "TEMP B-TREE" not in plan("SELECT * FROM events WHERE type = 'net' ORDER BY seq")
    related = plan("SELECT * FROM events WHERE seq IN (SELECT related_seq FROM detections)")
    assert "INTEGER PRIMARY KEY" in related and "ev_type" in related


def test_open_db_returns_none_when_unusable(tmp_path: Path) -> None:
    assert open_db(tmp_path) is None
    assert not (tmp_path / "index.sqlite").exists()  # and it did not create one
    (tmp_path / "index.sqlite").write_bytes(b"not a database at all" * 100)
    assert open_db(tmp_path) is None


def _index_names(conn: sqlite3.Connection) -> list[str]:
    sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'"
    return sorted(n for (n,) in conn.execute(sql))


SCHEMA_INDEXES = ["ev_change", "ev_dns", "ev_dst", "ev_net", "ev_path", "ev_pid", "ev_rule", "ev_ts", "ev_type"]


async def test_batches_of_any_size_are_stored_exactly_and_indexed_at_close(tmp_path: Path) -> None:
    import os

    from logira.format.index import MULTI_ROWS, event_row
    from logira.format.meta import RunMeta
    from logira.model.record import FileData, Record
    from logira.sinks.sqlite import SqliteSink

    recs = [Record(run_id=RUN, seq=i, ts=T0 + i, type="file", pid=100 + i % 7, ppid=1, uid=1000,
                   summary=f"file create /tmp/f{i}", data_json=FileData(op="create", path=f"/tmp/f{i}"))
            for i in range(1, 3 * MULTI_ROWS + 6)]  # fmt: skip
    path = tmp_path / "index.sqlite"
    sink = await SqliteSink.create(str(path), RunMeta(run_id=RUN))
    # batches around the multi-row statement size: less than, exactly, and more than MULTI_ROWS
    cuts = [0, 5, 5 + MULTI_ROWS, 5 + 3 * MULTI_ROWS, len(recs)]
    for a, b in itertools.pairwise(cuts):
        await sink.write(recs[a:b])
    active = sqlite3.connect(path)
    assert _index_names(active) == []  # the active (staged) database is not indexed yet
    active.close()
    await sink.close()
    assert (sink.count, sink.last_seq) == (len(recs), len(recs))
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT * FROM events ORDER BY seq").fetchall() == [event_row(r) for r in recs]
    assert _index_names(conn) == SCHEMA_INDEXES
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    assert sorted(os.listdir(tmp_path)) == ["index.sqlite"]


async def test_backfill_builds_the_indexes_a_crashed_daemon_never_built(tmp_path: Path) -> None:
    import os

    from logira.format.index import backfill_from_jsonl
    from logira.format.meta import RunMeta
    from logira.sinks.jsonl import JsonlSink
    from logira.sinks.sqlite import SqliteSink

    recs = sample_records()
    jpath = tmp_path / "events.jsonl"
    sink = JsonlSink(os.open(jpath, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), RUN)
    sink.write(recs)
    sink.close()
    db = await SqliteSink.create(str(tmp_path / "index.sqlite"), RunMeta(run_id=RUN))
    await db.write(recs[:2])
    db._ex.shutdown(wait=True)  # the daemon dies here: no close(), so no indexes
    conn = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None)
    assert _index_names(conn) == []
    fd = os.open(jpath, os.O_RDONLY)
    try:
        assert backfill_from_jsonl(conn, fd) == len(recs) - 2
    finally:
        os.close(fd)
    assert _index_names(conn) == SCHEMA_INDEXES
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == len(recs)
    conn.close()


def test_rows_from_stored_lines_equal_rows_from_the_records(tmp_path: Path) -> None:
    import os

    from logira.format.index import event_row, stored_row
    from logira.format.jsonl import iter_jsonl
    from logira.sinks.jsonl import JsonlSink

    recs = sample_records(n_extra=3)
    sink = JsonlSink(os.open(tmp_path / "e.jsonl", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), RUN)
    sink.write(recs)
    sink.close()
    assert b',"raw_bytes":{' in (tmp_path / "e.jsonl").read_bytes()  # hostile records are in the sample
    # what verify and backfill derive from the stored lines is what the sink derived from the records
    assert [stored_row(sr) for sr in iter_jsonl(tmp_path / "e.jsonl")] == [event_row(r) for r in recs]
