"""The files of one run (run dir, events.jsonl, index.sqlite, meta.json, seal), daemon side.

A thin layer over logira.storage so the session manager deals with one object: it creates
the run dir through dirfds (never following the user's symlinks), names the run's sinks
(`RunFiles.sinks`: the one place they are wired), writes meta.json, and at the end seals and
hands the directory over to the user.
`recover_run` does the same for a run a crashed daemon left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from logira.agents.collect import AgentCollector
from logira.errors import LogiraError
from logira.format.jsonl import scan_chain_fd
from logira.format.meta import RunMeta, decode_meta, encode_meta
from logira.sinks.base import Sink
from logira.sinks.egress import EgressCollector
from logira.sinks.journald import Journal, JournaldSink
from logira.sinks.jsonl import JsonlSink
from logira.sinks.otlp import OtlpExporter, OtlpSink
from logira.sinks.sqlite import SqliteSink
from logira.storage.safefs import RunDir, RunDirError, UnsafePathError, open_runs_dir
from logira.storage.seal import write_seal


class RunFilesError(LogiraError):
    """The run's files could not be created or reopened (one line, shown to the client)."""


class RunFiles:
    """One run's directory and the writers in it: the chain (events.jsonl) and the sinks."""

    def __init__(self, rundir: RunDir, state_dir: Path) -> None:
        self.rundir = rundir
        self.state_dir = state_dir
        self.run_id = rundir.run_id
        self.display_path = rundir.display_path
        self.chain = JsonlSink(rundir.create_file("events.jsonl"), rundir.run_id)
        # root's own read fd of events.jsonl, for finalize steps that read the run back (agents join)
        self.jsonl_read_fd = rundir.open_read("events.jsonl")
        self.published = False

    def sinks(self, journal: Journal | None, fields: dict[str, Any], otlp: OtlpExporter | None = None,
              otlp_wait: float = 2.0, egress: bool = False) -> list[Sink]:  # fmt: skip
        """Every sink of the run, in fan-out order. A new sink is one module and one line here."""
        sinks: list[Sink] = [SqliteSink(self.rundir.proc_path("index.sqlite"))]
        sinks.append(AgentCollector())  # keeps the records for the agent join at finalize (bounded)
        if egress:  # remembers destinations for the new-egress detection (daemon/egress.py)
            sinks.append(EgressCollector())
        if journal is not None:
            sinks.append(JournaldSink(journal, fields=fields))
        if otlp is not None:  # last: it closes after the others, so its copy ends with the run's final state
            sinks.append(OtlpSink(otlp, otlp_wait))
        return sinks

    def write_meta(self, meta: RunMeta, durable: bool = True) -> None:
        self.rundir.write_atomic("meta.json", encode_meta(meta), durable=durable)

    async def publish(self, meta: RunMeta) -> list[str]:
        """Write the final meta, seal, hand the dir over to the user (the sinks are closed).

        Every step runs even if an earlier one failed (the JSONL is the authoritative record,
        the user must get their directory back); the failures are returned as one-line strings.
        """
        if self.published:
            return []
        self.published = True
        errors: list[str] = []
        with contextlib.suppress(OSError):
            os.close(self.jsonl_read_fd)

        def publish() -> None:
            for step, fn in (
                ("meta.json", lambda: self.write_meta(meta)),
                ("seal", lambda: write_seal(self.state_dir, meta)),
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


def _id_taken(state_dir: Path, uid: int) -> Callable[[str], bool]:
    """Run ids in use for uid in any home: sealed, or active (staging). Root's own dirs: lexists is safe."""
    seals, staging = state_dir / "seals" / str(uid), state_dir / "staging"

    def taken(name: str) -> bool:
        return os.path.lexists(seals / f"{name}.json") or os.path.lexists(staging / f"{uid}-{name}")

    return taken


def open_run_files(home: str, uid: int, gid: int, tool: str, now_ns: int, state_dir: Path) -> RunFiles:
    """Create a fresh run dir under `<home>/runs` for uid and open its sinks."""
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
    try:
        fd = rundir.open_read("events.jsonl")
    except OSError:
        return 0, "", False
    st = scan_chain_fd(fd)
    return st.last_seq, st.last_hash if st.count else "", st.partial_tail


def recover_run(home: str, uid: int, gid: int, run_id: str, state_dir: Path, reason: str) -> RunMeta:
    """Close a run left open by a crashed daemon: meta incomplete, sealed, handed over."""
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
