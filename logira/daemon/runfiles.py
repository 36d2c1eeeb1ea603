"""The files of one run (run dir, events.jsonl, index.sqlite, meta.json, seal), daemon side.

A thin layer over logira.storage so the session manager deals with one object: it creates
the run dir through dirfds (never following the user's symlinks), opens the sinks, writes
meta.json, and at the end closes everything, seals and hands the directory over to the user.
`recover_run` does the same for a run a crashed daemon left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import msgspec

from logira.errors import LogiraError
from logira.format.meta import RunMeta, decode_meta, encode_meta
from logira.storage.safefs import RunDir, open_runs_dir


class RunFilesError(LogiraError):
    """The run's files could not be created or reopened (one line, shown to the client)."""


def to_meta(meta: dict[str, Any]) -> RunMeta:
    """The storage RunMeta for the daemon's meta dict."""
    return msgspec.convert(meta, RunMeta)


class RunFiles:
    def __init__(self, rundir: RunDir, state_dir: Path) -> None:
        from logira.sinks.jsonl import JsonlSink

        self.rundir = rundir
        self.state_dir = state_dir
        self.run_id = rundir.run_id
        self.display_path = rundir.display_path
        fd = rundir.create_file("events.jsonl")
        self.jsonl = JsonlSink(fd, rundir.run_id)
        self.jsonl_read_fd = rundir.open_read("events.jsonl")
        self.sqlite: Any = None
        self.closed = False

    async def open_sqlite(self, meta: dict[str, Any]) -> None:
        from logira.sinks.sqlite import SqliteSink

        self.write_meta(meta)
        self.sqlite = await SqliteSink.open(self.rundir.proc_path("index.sqlite"), to_meta(meta))

    def write_meta(self, meta: dict[str, Any]) -> None:
        self.rundir.write_atomic("meta.json", encode_meta(to_meta(meta)))

    async def finish(self, meta: dict[str, Any], state_dir: Path) -> list[str]:
        """Flush and close the sinks, write the final meta, seal, hand the dir over to the user.

        Every step runs even if an earlier one failed (the JSONL is the authoritative record,
        the user must get their directory back); the failures are returned as one-line strings.
        """
        from logira.storage.seal import write_seal

        if self.closed:
            return []
        self.closed = True
        errors: list[str] = []
        try:
            self.jsonl.close()
        except OSError as exc:
            errors.append(f"events.jsonl: {exc}")
        with contextlib.suppress(OSError):
            os.close(self.jsonl_read_fd)
        if self.sqlite is not None:
            try:
                await self.sqlite.update_run(to_meta(meta))
            except Exception as exc:
                errors.append(f"index.sqlite update: {type(exc).__name__}: {exc}")
            try:
                await self.sqlite.close()
            except Exception as exc:
                errors.append(f"index.sqlite close: {type(exc).__name__}: {exc}")
        if errors:
            meta["incomplete_reasons"] = [*meta.get("incomplete_reasons", []), *errors]
        m = to_meta(meta)

        def publish() -> None:
            for step, fn in (
                ("meta.json", lambda: self.rundir.write_atomic("meta.json", encode_meta(m))),
                ("seal", lambda: write_seal(state_dir, m)),
                ("hand over", self.rundir.hand_over),
            ):
                try:
                    fn()
                except Exception as exc:
                    errors.append(f"{step}: {type(exc).__name__}: {exc}")
            self.rundir.close()

        # hand_over copies the staged SQLite (could be large) and fsyncs: off the event loop, so the
        # ring reader keeps consuming for the other runs meanwhile.
        await asyncio.to_thread(publish)
        return errors


def _id_taken(state_dir: Path, uid: int):
    """Run ids in use for uid in any home: sealed, or active (staging). Root's own dirs: lexists is safe."""
    seals, staging = state_dir / "seals" / str(uid), state_dir / "staging"

    def taken(name: str) -> bool:
        return os.path.lexists(seals / f"{name}.json") or os.path.lexists(staging / f"{uid}-{name}")

    return taken


def open_run_files(home: str, uid: int, gid: int, tool: str, now_ns: int, state_dir: Path) -> RunFiles:
    """Create a fresh run dir under `<home>/runs` for uid and open its sinks."""
    from logira.storage.safefs import RunDirError, UnsafePathError

    try:
        runs_fd = open_runs_dir(home, uid)
    except UnsafePathError as exc:
        raise RunFilesError(f"logira home unsafe or not initialized: {exc}") from None
    try:
        rundir = RunDir.create(
            runs_fd, tool, uid, gid, now_ns, state_dir=state_dir, taken=_id_taken(state_dir, uid)
        )
    except (RunDirError, OSError) as exc:
        raise RunFilesError(f"cannot create the run dir: {exc}") from None
    finally:
        os.close(runs_fd)
    try:
        return RunFiles(rundir, state_dir)
    except BaseException:
        rundir.close()
        raise


def _chain_end(rundir: RunDir) -> tuple[int, str, bool]:
    """(records, hash of the last complete line, partial tail) of events.jsonl, read through the dirfd."""
    from logira.format.jsonl import scan_chain_fd

    try:
        fd = rundir.open_read("events.jsonl")
    except OSError:
        return 0, "", False
    st = scan_chain_fd(fd)
    return st.last_seq, st.last_hash if st.count else "", st.partial_tail


def recover_run(home: str, uid: int, gid: int, run_id: str, state_dir: Path, reason: str) -> RunMeta:
    """Close a run left open by a crashed daemon: meta incomplete, sealed, handed over."""
    from logira.storage.safefs import RunDirError, UnsafePathError
    from logira.storage.seal import write_seal

    try:
        runs_fd = open_runs_dir(home, uid)
    except UnsafePathError as exc:
        raise RunFilesError(str(exc)) from None
    try:
        rundir = RunDir.open_existing(runs_fd, run_id, uid, gid, state_dir=state_dir)
    except RunDirError as exc:
        raise RunFilesError(str(exc)) from None
    finally:
        os.close(runs_fd)
    try:
        try:
            fd = rundir.open_read("meta.json")
            with os.fdopen(fd, "rb") as f:
                meta = decode_meta(f.read())
        except Exception:
            meta = RunMeta(run_id=run_id, uid=uid, gid=gid)
        count, final_hash, partial = _chain_end(rundir)
        meta.run_dir = meta.run_dir or rundir.display_path
        meta.status = "incomplete"
        meta.complete = False
        meta.end_ts = time.time_ns()
        meta.event_count = count
        meta.final_hash = final_hash
        meta.incomplete_reasons = [*meta.incomplete_reasons, reason]
        if partial:
            meta.incomplete_reasons.append("events.jsonl ends inside a line (the daemon died mid-write)")
        # The staged SQLite holds what was committed before the crash; record the final meta in it too.
        staged = getattr(rundir, "_staging_fd", None) is not None  # else there is no database to update
        with contextlib.suppress(Exception):
            if not staged:
                raise FileNotFoundError
            conn = sqlite3.connect(rundir.proc_path("index.sqlite"))
            try:
                conn.execute(
                    "UPDATE runs SET end_ts = ?, meta_json = ?",
                    (meta.end_ts, msgspec.json.encode(meta).decode()),
                )
                conn.commit()
            finally:
                conn.close()
        rundir.write_atomic("meta.json", encode_meta(meta))
        write_seal(state_dir, meta)
        rundir.hand_over()
    finally:
        rundir.close()
    return meta
