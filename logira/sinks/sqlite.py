"""index.sqlite writer (the format: logira/format/index.py; docs/sqlite.md).

One transaction per batch (multi-row INSERTs in the sink's own thread), WAL with synchronous=NORMAL
while the run is active; the indexes are built when the run ends (INDEX_SQL).
close() folds the WAL back and switches to journal_mode=DELETE, so the published file needs no
-wal/-shm and opens read-only (`mode=ro`) for the user without creating anything.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import sqlite3
from collections.abc import Sequence
from typing import Any

from logira.format.index import (
    EVENT_COLUMNS,
    INDEX_SQL,
    INSERT_EVENT,
    INSERT_MULTI,
    MULTI_ROWS,
    SCHEMA_VERSION,
    TABLES_SQL,
    UPSERT_RUN,
    check_version,
    event_row,
    run_row,
)
from logira.format.meta import RunMeta
from logira.model.record import Record
from logira.sinks.base import SinkStats


def _open_sync(path: str, runs_row: tuple[Any, ...]) -> sqlite3.Connection:
    # Autocommit mode: transactions are explicit (one per batch), and PRAGMAs never run inside one.
    # Created in the writer thread and only ever used there.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL").fetchall()
        conn.execute("PRAGMA synchronous=NORMAL")
        check_version(conn)
        conn.executescript(TABLES_SQL)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute(UPSERT_RUN, runs_row)
    except BaseException:
        conn.close()
        raise
    return conn


def _insert_batch(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    # Multi-row INSERTs: the sqlite3 module releases the GIL around every statement step and must
    # get it back afterwards, which waits for the busy pipeline thread (up to the switch interval).
    # MULTI_ROWS rows per step make that handoff rare; the rest go one by one.
    full = len(rows) - len(rows) % MULTI_ROWS
    conn.execute("BEGIN")
    try:
        if full:
            flat = list(itertools.chain.from_iterable(rows[:full]))
            width = len(EVENT_COLUMNS) * MULTI_ROWS
            conn.executemany(INSERT_MULTI, [flat[i : i + width] for i in range(0, len(flat), width)])
        if full < len(rows):
            conn.executemany(INSERT_EVENT, rows[full:])
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _upsert_run(conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    conn.execute(UPSERT_RUN, row)


def _close_sync(conn: sqlite3.Connection, runs_row: tuple[Any, ...] | None) -> None:
    try:
        if runs_row is not None:
            conn.execute(UPSERT_RUN, runs_row)
        conn.executescript(INDEX_SQL)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        conn.execute("PRAGMA journal_mode=DELETE").fetchall()
    finally:
        conn.close()


class SqliteSink:
    """Async writer of one run's index.sqlite (a `Sink`): the SQLite work runs in its own thread.

    One thread per sink (not aiosqlite): a whole batch (BEGIN, inserts, COMMIT) is one hop to the
    thread, and the sink decides how statements are stepped (see _insert_batch). It gets decoded
    records and derives each row with format.index.event_row (the same function verify uses).
    """

    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path  # RunDir.proc_path("index.sqlite")
        self.stats = SinkStats()
        self.count = 0
        self.last_seq = 0
        self._conn: sqlite3.Connection | None = None
        self._ex: concurrent.futures.ThreadPoolExecutor | None = None

    @classmethod
    async def create(cls, path: str, meta: RunMeta) -> SqliteSink:
        """A sink at `path`, opened for the run of `meta` (the runs row is inserted)."""
        sink = cls(path)
        await sink.open(meta)
        return sink

    async def open(self, meta: RunMeta) -> None:
        """Open/create the database and insert the runs row."""
        ex = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="logira-sqlite")
        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(ex, _open_sync, self.path, run_row(meta))
        except BaseException:
            ex.shutdown(wait=False)
            raise
        self._ex = ex

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._ex, fn, *args)

    async def write_batch(self, records: Sequence[Record]) -> None:
        """Insert a batch in one transaction (all or nothing)."""
        rows = [event_row(r) for r in records]
        if not rows:
            return
        await self._call(_insert_batch, self._conn, rows)
        self.count += len(rows)
        self.last_seq = rows[-1][0]

    write = write_batch

    async def flush(self) -> None:
        return None  # every batch is its own committed transaction

    async def update_run(self, meta: RunMeta) -> None:
        """Replace the runs row (end_ts, suspicious_count, meta_json) from the current meta."""
        await self._call(_upsert_run, self._conn, run_row(meta))

    async def close(self, meta: RunMeta | None = None) -> None:
        """Write the final runs row (when given), build the indexes, checkpoint the WAL (TRUNCATE),
        leave WAL mode so no -wal/-shm remain, close. Idempotent."""
        if self._conn is None or self._ex is None:
            return
        conn, ex, self._conn = self._conn, self._ex, None
        try:
            await asyncio.get_running_loop().run_in_executor(ex, _close_sync, conn, run_row(meta) if meta else None)
        finally:
            ex.shutdown(wait=False)
