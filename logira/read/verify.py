"""`logira verify`: is a stored run exactly what the daemon wrote?

Checks, each producing one precise line per finding:
1. events.jsonl's hash chain and seq numbering (edited, deleted, inserted/reordered lines);
2. the file against root's seal (truncation, appended records, a recomputed chain);
3. meta.json against the file and against the meta captured in the seal (forged fields);
4. index.sqlite against events.jsonl: row count, then row by row EVERY column, the derived ones
   (op, exe, path, path2, destination, dns, rule, severity, related seq) recomputed from the
   hash-chained line with the writer's own function (format/index.py `stored_row`), so a forged
   severity or path in the index (what `view`/`explain`/`query` show) is named;
5. index.sqlite's `runs` row against the sealed meta.
Runs as the user, reads only, streams the JSONL (twice at most) instead of loading it.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from logira.format.index import EVENT_COLUMNS, RUN_COLUMNS, run_row, stored_row
from logira.format.jsonl import ZERO_HASH, chain_hash, split_line
from logira.format.meta import MetaError, RunMeta, decode_meta
from logira.model.record import StoredRecord
from logira.storage.seal import Seal

MAX_DETAILS = 20  # per kind of finding; the rest is summarised in one line


class VerifyReport(msgspec.Struct, kw_only=True):
    run_id: str
    intact: bool = True
    problems: list[str] = []
    notes: list[str] = []  # facts that are not tampering (run in progress, no seal, ...)
    sealed: bool = False
    records: int = 0
    last_seq: int = 0
    final_hash: str = ZERO_HASH


class _Seq(msgspec.Struct):
    seq: int


class _Limited:
    """Collects findings of one kind, keeping the first MAX_DETAILS and counting the rest."""

    def __init__(self, kind: str):
        self.kind = kind
        self.items: list[str] = []
        self.more = 0

    def add(self, msg: str) -> None:
        if len(self.items) < MAX_DETAILS:
            self.items.append(msg)
        else:
            self.more += 1

    def lines(self) -> list[str]:
        extra = [f"... and {self.more} more {self.kind}"] if self.more else []
        return self.items + extra


def _check_chain(path: Path, running: bool, rep: VerifyReport) -> None:
    chain = _Limited("chain problems")
    prev_hash, prev_seq = ZERO_HASH, 0
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                if running:
                    rep.notes.append(f"line {n} is still being written (run in progress)")
                else:
                    chain.add(f"line {n}: incomplete last line (file truncated mid-record)")
                break
            parts = split_line(line[:-1])
            if parts is None:
                chain.add(f"line {n}: malformed (no valid hash suffix)")
                continue
            body, stored = parts
            try:
                seq = msgspec.json.decode(body, type=_Seq).seq
            except msgspec.DecodeError:
                chain.add(f"line {n}: not a valid record")
                prev_hash = stored
                continue
            if seq > prev_seq + 1:
                # The chain necessarily breaks here too; the gap is the exact explanation.
                missing = seq - prev_seq - 1
                chain.add(f"seq gap: {prev_seq} → {seq} ({missing} record{'s' if missing > 1 else ''} deleted)")
            elif seq <= prev_seq:
                chain.add(f"line {n} (seq {seq}) is out of order after seq {prev_seq} "
                          "(records inserted, duplicated or reordered)")
            elif chain_hash(prev_hash, body) != stored:
                chain.add(f"line {n} (seq {seq}) was edited: hash mismatch")
            prev_hash, prev_seq = stored, max(prev_seq, seq)
            rep.records += 1
    rep.problems += chain.lines()
    rep.last_seq, rep.final_hash = prev_seq, prev_hash


def _check_seal(seal: Seal, run_id: str, rep: VerifyReport) -> None:
    if seal.run_id != run_id:
        rep.problems.append(f"the seal is for run {seal.run_id}, not {run_id}")
    if rep.last_seq < seal.events:
        rep.problems.append(f"truncated: seal has {seal.events} records, file has {rep.records}")
    elif rep.last_seq > seal.events:
        rep.problems.append(f"records added after sealing: seal has {seal.events} records, "
                            f"file has {rep.records}")
    elif rep.final_hash != seal.final_hash:
        rep.problems.append("final hash differs from the seal (the chain was recomputed after the run)")


def _meta_diff(sealed: RunMeta, current: RunMeta) -> list[str]:
    a, b = msgspec.to_builtins(sealed), msgspec.to_builtins(current)
    return [k for k in a.keys() | b.keys() if a.get(k) != b.get(k)]


def _check_meta(meta: RunMeta, run_id: str, seal: Seal | None, rep: VerifyReport) -> None:
    if meta.run_id != run_id:
        rep.problems.append(f"meta.json run_id is {meta.run_id!r}, the directory is {run_id}")
    if meta.status != "running" and (meta.event_count != rep.last_seq or meta.final_hash != rep.final_hash):
        rep.problems.append(
            f"meta.json event_count/final_hash differ from events.jsonl "
            f"(meta: {meta.event_count} / {meta.final_hash[:12] or '-'}, "
            f"file: {rep.last_seq} / {rep.final_hash[:12]})")
    if seal is None:
        return
    if seal.meta is not None:
        changed = sorted(_meta_diff(seal.meta, meta))
        if changed:
            rep.problems.append(f"meta.json differs from the sealed meta: {', '.join(changed)}")
    elif meta.event_count != seal.events or meta.final_hash != seal.final_hash:
        rep.problems.append("meta.json event_count/final_hash differ from the seal")


def _sqlite_rows(conn: sqlite3.Connection) -> Iterator[tuple[Any, ...]]:
    yield from conn.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY seq")


_BASE = tuple(i for i, c in enumerate(EVENT_COLUMNS) if c in ("seq", "ts", "type", "pid", "ppid", "uid", "summary",
                                                              "data_json", "run_id"))  # fmt: skip


def _jsonl_rows(path: Path) -> Iterator[tuple[tuple[Any, ...], bool]]:
    """(row, derived) per record: the index row the writer derives from the line; `derived` is False
    when the payload cannot be decoded (then only the envelope columns can be compared)."""
    dec = msgspec.json.Decoder(StoredRecord)
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                return
            try:
                r = dec.decode(line)
            except msgspec.DecodeError:
                continue
            try:
                yield stored_row(r), True
            except (msgspec.DecodeError, msgspec.ValidationError, KeyError):
                row: list[Any] = [None] * len(EVENT_COLUMNS)
                for i, v in zip(_BASE, (r.seq, r.ts, r.type, r.pid, r.ppid, r.uid, r.summary,
                                        bytes(r.data_json).decode(), r.run_id), strict=True):  # fmt: skip
                    row[i] = v
                yield tuple(row), False


def _row_diff(s: tuple[Any, ...], j: tuple[Any, ...], derived: bool) -> list[str]:
    cols = range(len(EVENT_COLUMNS)) if derived else _BASE
    return [EVENT_COLUMNS[i] for i in cols if s[i] != j[i]]


def _check_events(conn: sqlite3.Connection, jsonl: Path, rep: VerifyReport) -> None:
    n = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    if n != rep.records:
        rep.problems.append(f"index.sqlite has {n} events, events.jsonl has {rep.records}")
    diffs = _Limited("rows differing between index.sqlite and events.jsonl")
    srows, jrows = _sqlite_rows(conn), _jsonl_rows(jsonl)
    s, jd = next(srows, None), next(jrows, None)
    while s is not None or jd is not None:
        if jd is None or (s is not None and s[0] < jd[0][0]):
            assert s is not None
            diffs.add(f"seq {s[0]} is in index.sqlite but not in events.jsonl")
            s = next(srows, None)
        elif s is None or jd[0][0] < s[0]:
            diffs.add(f"seq {jd[0][0]} is in events.jsonl but not in index.sqlite")
            jd = next(jrows, None)
        else:
            fields = _row_diff(s, *jd)
            if fields:
                diffs.add(f"index.sqlite row seq {s[0]} differs from events.jsonl ({', '.join(fields)})")
            s, jd = next(srows, None), next(jrows, None)
    rep.problems += diffs.lines()


def _check_runs_table(conn: sqlite3.Connection, ref: RunMeta, rep: VerifyReport) -> None:
    rows = conn.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs").fetchall()
    if len(rows) != 1:
        rep.problems.append(f"index.sqlite runs table has {len(rows)} rows, expected 1")
        if not rows:
            return
    got = dict(zip(RUN_COLUMNS, rows[0], strict=True))
    want = dict(zip(RUN_COLUMNS, run_row(ref), strict=True))
    changed = [c for c in RUN_COLUMNS if c != "meta_json" and got[c] != want[c]]
    try:
        stored = msgspec.json.decode(got["meta_json"] or "", type=RunMeta)
        changed += [f"meta_json.{k}" for k in sorted(_meta_diff(ref, stored))]
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
        changed.append("meta_json")
    if changed:
        rep.problems.append(f"index.sqlite runs row differs from the sealed meta: {', '.join(changed)}")


def _check_sqlite(run_dir: Path, jsonl: Path, ref: RunMeta | None, rep: VerifyReport) -> None:
    db = run_dir / "index.sqlite"
    if not db.is_file():
        rep.notes.append("index.sqlite is missing (queries fall back to events.jsonl)")
        return
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(str(db))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        rep.problems.append(f"index.sqlite cannot be opened: {exc}")
        return
    try:
        _check_events(conn, jsonl, rep)
        if ref is not None:
            _check_runs_table(conn, ref, rep)
    except sqlite3.Error as exc:
        rep.problems.append(f"index.sqlite cannot be read: {exc}")
    finally:
        conn.close()


def verify_run(run_dir: Path, seal: Seal | None) -> VerifyReport:
    """Check one run dir (and its seal, if any); `.intact` is False iff `.problems` is not empty."""
    rep = VerifyReport(run_id=run_dir.name, sealed=seal is not None)
    if not run_dir.is_dir():
        rep.problems.append("run deleted (seal exists, directory gone)" if seal else "run directory missing")
        rep.intact = False
        return rep
    meta: RunMeta | None = None
    try:
        meta = decode_meta((run_dir / "meta.json").read_bytes())
    except FileNotFoundError:
        rep.problems.append("meta.json missing")
    except (OSError, MetaError) as exc:
        rep.problems.append(f"meta.json unreadable: {exc}")
    running = meta is not None and meta.status == "running" and seal is None
    jsonl = run_dir / "events.jsonl"
    if jsonl.is_file():
        _check_chain(jsonl, running, rep)
        if seal is not None:
            _check_seal(seal, run_dir.name, rep)
    else:
        rep.problems.append("events.jsonl missing")
    if meta is not None:
        _check_meta(meta, run_dir.name, seal, rep)
    if jsonl.is_file() and not running:
        # the runs row is checked against the sealed meta only: without a seal, meta.json is no
        # reference (whoever edits the index can edit it too), and a crashed run's row lags by design
        _check_sqlite(run_dir, jsonl, seal.meta if seal is not None else None, rep)
    if seal is not None and seal_run_dir(seal) and seal_run_dir(seal) != os.path.realpath(run_dir):
        rep.notes.append(f"the seal was written for {seal_run_dir(seal)}: this run was moved or copied")
    if seal is None:
        rep.notes.append("run in progress: not sealed yet" if running else
                         "no seal for this run: a rewrite of the whole run could not be detected")
    rep.intact = not rep.problems
    return rep


def seal_run_dir(seal: Seal) -> str:
    """The absolute run directory a seal was written for ("" for seals older than the field)."""
    return seal.run_dir or (seal.meta.run_dir if seal.meta is not None else "")


def seals_of_home(home: Path, seals: list[Seal], legacy: bool = True) -> list[Seal]:
    """The seals of runs that were created under `<home>/runs` (seals are per uid, not per home).

    Seals without a recorded directory (older daemons) are taken as this home's when `legacy`.
    """
    runs = os.path.realpath(home / "runs")
    out = []
    for s in seals:
        rd = seal_run_dir(s)
        if (os.path.dirname(rd) == runs) if rd else legacy:
            out.append(s)
    return out


def verify_missing_runs(home: Path, seals: list[Seal], legacy: bool = True) -> list[str]:
    """One problem line per sealed run of this home whose directory no longer exists."""
    runs = home / "runs"
    return [f"run {s.run_id} deleted (seal exists, directory gone)"
            for s in seals_of_home(home, seals, legacy)
            if not Path(seal_run_dir(s) or runs / s.run_id).is_dir()]
