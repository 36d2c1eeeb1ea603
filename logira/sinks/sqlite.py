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
from collections.abc import Iterable
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


def _close_sync(conn: sqlite3.Connection) -> None:
    try:
        conn.executescript(INDEX_SQL)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        conn.execute("PRAGMA journal_mode=DELETE").fetchall()
    finally:
        conn.close()


class SqliteSink:
    """Async writer of one run's index.sqlite: the SQLite work runs in the sink's own thread.

    One thread per sink (not aiosqlite): a whole batch (BEGIN, inserts, COMMIT) is one hop to the
    thread, and the sink decides how statements are stepped (see _insert_batch).
    """

    def __init__(self, conn: sqlite3.Connection, executor: concurrent.futures.ThreadPoolExecutor):
        self._conn = conn
        self._ex = executor
        self.count = 0
        self.last_seq = 0

    @classmethod
    async def open(cls, path: str, run_row_meta: RunMeta) -> SqliteSink:
        """Open/create the database at `path` (RunDir.proc_path("index.sqlite")) and insert the runs row."""
        ex = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="logira-sqlite")
        try:
            conn = await asyncio.get_running_loop().run_in_executor(ex, _open_sync, path, run_row(run_row_meta))
        except BaseException:
            ex.shutdown(wait=False)
            raise
        return cls(conn, ex)

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._ex, fn, *args)

    async def write(self, records: Iterable[Record]) -> None:
        """Insert a batch in one transaction (all or nothing)."""
        rows = [event_row(r) for r in records]
        if not rows:
            return
        await self._call(_insert_batch, self._conn, rows)
        self.count += len(rows)
        self.last_seq = rows[-1][0]

    async def update_run(self, meta: RunMeta) -> None:
        """Replace the runs row (end_ts, suspicious_count, meta_json) from the current meta."""
        await self._call(self._conn.execute, UPSERT_RUN, run_row(meta))

    async def close(self) -> None:
        """Build the indexes, checkpoint the WAL (TRUNCATE), leave WAL mode so no -wal/-shm remain, close."""
        try:
            await self._call(_close_sync, self._conn)
        finally:
            self._ex.shutdown(wait=False)
