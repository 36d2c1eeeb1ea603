"""Read side of runs, as the user: listing, selecting, meta, SQLite (read-only) and JSONL streaming.

Never writes, never needs the daemon, and works on runs in progress (the run dir is root:<gid>
0750 while active, so its owner can read it; its SQLite index is published only at the end,
so in-progress runs are read from events.jsonl).
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import msgspec

from logira.errors import LogiraError
from logira.format.jsonl import iter_jsonl
from logira.format.meta import MetaError, RunMeta, decode_meta
from logira.model.record import StoredRecord
from logira.storage.home import client_home
from logira.storage.runids import run_id_start_ns, validate_run_id

META_MAX_BYTES = 1 << 20


class RunInfo(msgspec.Struct, kw_only=True):
    run_id: str
    dir: Path
    meta: RunMeta | None  # None when meta.json is missing or unreadable

    @property
    def start_ts(self) -> int:
        return self.meta.start_ts if self.meta is not None else run_id_start_ns(self.run_id)


def resolve_home() -> Path:
    """$LOGIRA_HOME (made absolute) or ~/.logira of the current user. No side effects."""
    return client_home()


def _load_meta(run_dir: Path) -> RunMeta:
    with open(run_dir / "meta.json", "rb") as f:
        return decode_meta(f.read(META_MAX_BYTES))


def read_meta(run_dir: Path) -> RunMeta:
    """meta.json of a run; a one-line LogiraError if it is missing or not valid."""
    try:
        return _load_meta(run_dir)
    except FileNotFoundError:
        raise LogiraError(f"{run_dir}/meta.json is missing") from None
    except OSError as exc:
        raise LogiraError(f"cannot read {run_dir}/meta.json: {exc.strerror}") from None
    except MetaError as exc:
        raise LogiraError(f"{run_dir}/{exc}") from None


def list_runs(home: Path) -> list[RunInfo]:
    """Every run dir under <home>/runs with a valid id, sorted by start time then run id."""
    runs: list[RunInfo] = []
    try:
        entries = list(os.scandir(home / "runs"))
    except OSError:
        return runs
    for entry in entries:
        try:
            validate_run_id(entry.name)
        except ValueError:
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        run_dir = Path(entry.path)
        try:
            meta: RunMeta | None = _load_meta(run_dir)
        except (OSError, MetaError):
            meta = None
        runs.append(RunInfo(run_id=entry.name, dir=run_dir, meta=meta))
    runs.sort(key=lambda r: (r.start_ts, r.run_id))
    return runs


def resolve_run(home: Path, selector: str) -> Path:
    """A run dir from "last" (most recently started, by meta.start_ts) or a run id; LogiraError otherwise."""
    runs_dir = home / "runs"
    if selector in ("", "last"):
        runs = list_runs(home)
        if not runs:
            raise LogiraError(f"no runs yet under {runs_dir}")
        return runs[-1].dir
    try:
        validate_run_id(selector)
    except ValueError as exc:
        raise LogiraError(str(exc)) from None
    run_dir = runs_dir / selector
    if not run_dir.is_dir() or run_dir.is_symlink():
        raise LogiraError(f"run {selector} not found under {runs_dir}")
    return run_dir


def open_db(run_dir: Path) -> sqlite3.Connection | None:
    """index.sqlite opened read-only (`mode=ro`), or None when absent/unusable (fall back to JSONL)."""
    path = run_dir / "index.sqlite"
    if not path.is_file():
        return None
    from logira.format.index import SCHEMA_VERSION  # lazily: sqlite3 stays out of CLI startup

    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        return None
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            conn.close()
            return None
        conn.execute("SELECT 1 FROM events LIMIT 1").fetchall()
    except sqlite3.Error:
        conn.close()
        return None
    return conn


def iter_records(run_dir: Path) -> Iterator[StoredRecord]:
    """Stream the run's records from events.jsonl in file (= seq) order, one line at a time."""
    return iter_jsonl(run_dir / "events.jsonl")
