"""`RunSource`: read access to one run's events (its index.sqlite, or a temporary index of its JSONL)."""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec

from logira.errors import LogiraError
from logira.read.filter import CompiledFilter, EventFilter
from logira.read.row import COLUMNS, N_COLS, Row, _full_record


class RunSource:
    """Read access to one run's events: its index.sqlite, or a temporary index of its JSONL."""

    def __init__(self, run_dir: Path, db: sqlite3.Connection | None = None, running: bool = False):
        from logira.read import reader

        self.dir = run_dir
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.fallback = False
        self.db = db if db is not None else reader.open_db(run_dir)
        if self.db is None or not _has_events(self.db):
            self.db = self._index_jsonl(run_dir, quiet=running)
            self.fallback = True
        self.indexes = frozenset(
            n for (n,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        )
        self._rows: int | None = None

    @property
    def rows(self) -> int:
        """About how many events the run has (its last seq: one index seek, not a count)."""
        if self._rows is None:
            self._rows = int(self.db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
        return self._rows

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> RunSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _index_jsonl(self, run_dir: Path, quiet: bool) -> sqlite3.Connection:
        # A run in progress has no published index yet (by design), so no note for it.
        from logira.format.index import create_schema, event_row
        from logira.read import reader

        if not (run_dir / "events.jsonl").exists():
            raise LogiraError(f"run {run_dir.name} has neither a readable index.sqlite nor events.jsonl")
        if not quiet:
            print(
                f"note: {run_dir.name}: index.sqlite unreadable; indexing events.jsonl into a temporary database",
                file=sys.stderr,
            )
        self._tmp = tempfile.TemporaryDirectory(prefix="logira-idx-")
        conn = sqlite3.connect(os.path.join(self._tmp.name, "index.sqlite"))
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        create_schema(conn)
        batch: list[tuple] = []
        ins = f"INSERT OR IGNORE INTO events({COLUMNS}) VALUES ({','.join('?' * N_COLS)})"
        for rec in reader.iter_records(run_dir):
            try:
                batch.append(event_row(_full_record(rec)))
            except (msgspec.DecodeError, msgspec.ValidationError, KeyError):  # counted by `verify`, not here
                continue
            if len(batch) >= 5000:
                conn.executemany(ins, batch)
                batch.clear()
        conn.executemany(ins, batch)
        conn.commit()
        return conn

    def select(self, flt: EventFilter, limit: int | None = None, reverse: bool = False) -> Iterator[Row]:
        """Rows matching `flt` in seq order (or reversed), at most `limit`."""
        cf = CompiledFilter(flt, self.indexes, self.rows)
        sql, params, join = cf.sql(reverse, limit)
        n = 0
        if limit is not None and limit <= 0:
            return
        for tup in self.db.execute(sql, params):
            row = Row(*tup[:N_COLS])
            rel = Row(*tup[N_COLS:]) if join and tup[N_COLS] is not None else None
            if cf.row_match(row, rel):
                yield row
                n += 1
                if limit is not None and n >= limit:
                    return

    def get(self, seq: int) -> Row | None:
        """One row by seq."""
        tup = self.db.execute(f"SELECT {COLUMNS} FROM events WHERE seq = ?", (seq,)).fetchone()
        return Row(*tup) if tup else None

    def descendants(self, pids: tuple[int, ...]) -> tuple[int, ...]:
        """`pids` and every process forked below them (from exec/proc records)."""
        children: dict[int, set[int]] = {}
        for pid, ppid in self.db.execute(
            "SELECT DISTINCT pid, ppid FROM events WHERE type IN ('exec','proc')"
        ):
            if pid is not None and ppid is not None:
                children.setdefault(ppid, set()).add(pid)
        out, todo = set(pids), list(pids)
        while todo:
            for c in children.get(todo.pop(), ()):
                if c not in out:
                    out.add(c)
                    todo.append(c)
        return tuple(sorted(out))


def _has_events(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT seq FROM events LIMIT 1").fetchall()
        return True
    except sqlite3.Error:
        return False
