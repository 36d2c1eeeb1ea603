"""verify: every kind of tampering is named exactly; an intact run has no problems."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from storage_samples import RUN, build_run, sample_records

from logira.format.jsonl import ZERO_HASH, split_line
from logira.format.meta import decode_meta, encode_meta
from logira.read.verify import seals_of_home, verify_missing_runs, verify_run
from logira.storage.seal import list_seals, read_seal


async def _run(tmp_path: Path, n: int = 10):
    run_dir = tmp_path / "home" / "runs" / RUN
    seal = await build_run(run_dir, tmp_path / "state", sample_records(n_extra=n - 6))
    return run_dir, seal


def _lines(run_dir: Path) -> list[bytes]:
    return (run_dir / "events.jsonl").read_bytes().splitlines(keepends=True)


def _put(run_dir: Path, lines: list[bytes]) -> None:
    (run_dir / "events.jsonl").write_bytes(b"".join(lines))


async def test_intact_run(tmp_path: Path) -> None:
    run_dir, seal = await _run(tmp_path)
    rep = verify_run(run_dir, seal)
    assert (rep.intact, rep.problems, rep.notes, rep.records, rep.last_seq) == (True, [], [], 10, 10)
    assert rep.final_hash == seal.final_hash != ZERO_HASH


async def test_edited_line(tmp_path: Path) -> None:
    run_dir, seal = await _run(tmp_path)
    lines = _lines(run_dir)
    lines[6] = lines[6].replace(b"/tmp/f7", b"/tmp/f8")
    _put(run_dir, lines)
    rep = verify_run(run_dir, seal)
    assert not rep.intact
    assert rep.problems == [
        "line 7 (seq 7) was edited: hash mismatch",
        "index.sqlite row seq 7 differs from events.jsonl (summary, data_json, path)",
    ]


async def test_deleted_line(tmp_path: Path) -> None:
    run_dir, seal = await _run(tmp_path)
    lines = _lines(run_dir)
    del lines[4:7]  # seqs 5, 6, 7
    _put(run_dir, lines)
    rep = verify_run(run_dir, seal)
    assert rep.problems == [
        "seq gap: 4 → 8 (3 records deleted)",
        "index.sqlite has 10 events, events.jsonl has 7",
        "seq 5 is in index.sqlite but not in events.jsonl",
        "seq 6 is in index.sqlite but not in events.jsonl",
        "seq 7 is in index.sqlite but not in events.jsonl",
    ]


async def test_reordered_lines(tmp_path: Path) -> None:
    run_dir, seal = await _run(tmp_path)
    lines = _lines(run_dir)
    lines[7], lines[8] = lines[8], lines[7]
    _put(run_dir, lines)
    problems = verify_run(run_dir, seal).problems
    assert problems[:2] == [
        "seq gap: 7 → 9 (1 record deleted)",
        "line 9 (seq 8) is out of order after seq 9 (records inserted, duplicated or reordered)",
    ]


async def test_truncated(tmp_path: Path) -> None:
    run_dir, seal = await _run(tmp_path)
    _put(run_dir, _lines(run_dir)[:8])
    rep = verify_run(run_dir, seal)
    assert rep.problems[0] == "truncated: seal has 10 records, file has 8"
    assert rep.problems[1].startswith(
        "meta.json event_count/final_hash differ from events.jsonl (meta: 10 / "
    )
    assert rep.problems[2:] == [
        "index.sqlite has 10 events, events.jsonl has 8",
        "seq 9 is in index.sqlite but not in events.jsonl",
        "seq 10 is in index.sqlite but not in events.jsonl",
    ]


async def test_truncated_and_meta_forged_to_match(tmp_path: Path) -> None:
    """The user cuts the tail AND fixes meta.json (and SQLite): only the root-owned seal can tell."""
    run_dir, seal = await _run(tmp_path)
    lines = _lines(run_dir)[:8]
    _put(run_dir, lines)
    meta = decode_meta((run_dir / "meta.json").read_bytes())
    meta.event_count, meta.final_hash = 8, split_line(lines[-1][:-1])[1]
    (run_dir / "meta.json").write_bytes(encode_meta(meta))
    (run_dir / "index.sqlite").unlink()
    rep = verify_run(run_dir, seal)
    assert rep.problems == [
        "truncated: seal has 10 records, file has 8",
        "meta.json differs from the sealed meta: event_count, final_hash",
    ]


async def test_forged_meta_field(tmp_path: Path) -> None:
    run_dir, seal = await _run(tmp_path)
    meta = decode_meta((run_dir / "meta.json").read_bytes())
    meta.suspicious_count, meta.exit_code = 0, 0
    (run_dir / "meta.json").write_bytes(encode_meta(meta))
    rep = verify_run(run_dir, seal)
    assert rep.problems == ["meta.json differs from the sealed meta: exit_code, suspicious_count"]


async def test_whole_chain_recomputed(tmp_path: Path) -> None:
    """An edit with every later hash recomputed passes the chain, but not the seal."""
    run_dir, seal = await _run(tmp_path)
    prev, out = ZERO_HASH, []
    for line in _lines(run_dir):
        body, _ = split_line(line[:-1])
        body = body.replace(b"/tmp/f9", b"/tmp/xx")
        prev = hashlib.sha256(prev.encode() + body).hexdigest()
        out.append(body[:-1] + b',"hash":"' + prev.encode() + b'"}\n')
    _put(run_dir, out)
    problems = verify_run(run_dir, seal).problems
    assert problems[0] == "final hash differs from the seal (the chain was recomputed after the run)"
    assert problems[1].startswith("meta.json event_count/final_hash differ from events.jsonl (meta: 10 / ")
    assert problems[2:] == ["index.sqlite row seq 9 differs from events.jsonl (summary, data_json, path)"]


async def test_deleted_run_and_missing_files(tmp_path: Path) -> None:
    run_dir, seal = await _run(tmp_path)
    state = tmp_path / "state"
    assert read_seal(state, seal.uid, RUN) == seal
    assert list_seals(state, seal.uid) == [seal]
    (run_dir / "events.jsonl").unlink()
    assert verify_run(run_dir, seal).problems[0] == "events.jsonl missing"
    shutil.rmtree(run_dir)
    rep = verify_run(run_dir, seal)
    assert (rep.intact, rep.problems) == (False, ["run deleted (seal exists, directory gone)"])
    assert verify_missing_runs(tmp_path / "home", list_seals(state, seal.uid)) == [
        f"run {RUN} deleted (seal exists, directory gone)"
    ]


async def test_unsealed_and_in_progress(tmp_path: Path) -> None:
    run_dir, _ = await _run(tmp_path)
    rep = verify_run(run_dir, None)
    assert rep.intact and rep.notes == [
        "no seal for this run: a rewrite of the whole run could not be detected"
    ]
    meta = json.loads((run_dir / "meta.json").read_bytes())
    meta["status"] = "running"
    (run_dir / "meta.json").write_text(json.dumps(meta))
    with (run_dir / "events.jsonl").open("ab") as f:
        f.write(b'{"run_id":"x","seq":11')  # the writer is mid-line
    rep = verify_run(run_dir, None)
    assert rep.intact and rep.notes == [
        "line 11 is still being written (run in progress)",
        "run in progress: not sealed yet",
    ]


async def test_seals_are_matched_to_their_home_by_run_dir(tmp_path: Path) -> None:
    import os

    import msgspec

    run_dir, seal = await _run(tmp_path)
    real = os.path.realpath(run_dir)
    mine = msgspec.structs.replace(seal, run_dir=real)
    elsewhere = msgspec.structs.replace(
        seal,
        run_id="20260101-000000-other",
        run_dir=str(tmp_path / "home2" / "runs" / "20260101-000000-other"),
    )
    legacy = msgspec.structs.replace(seal, run_id="20260101-000000-old", run_dir="")
    seals = [mine, elsewhere, legacy]
    assert seals_of_home(tmp_path / "home", seals, legacy=False) == [mine]
    assert seals_of_home(tmp_path / "home", seals, legacy=True) == [mine, legacy]
    assert seals_of_home(tmp_path / "home2", seals, legacy=False) == [elsewhere]
    # home2's run dir is gone: deleted there, not in home
    assert verify_missing_runs(tmp_path / "home2", seals, legacy=False) == [
        "run 20260101-000000-other deleted (seal exists, directory gone)"
    ]
    assert verify_missing_runs(tmp_path / "home", seals, legacy=False) == []
    # the seal records where the run was written: a copy elsewhere still verifies, with a note
    copy = tmp_path / "backup" / RUN
    shutil.copytree(run_dir, copy)
    rep = verify_run(copy, mine)
    assert rep.intact and rep.notes == [f"the seal was written for {real}: this run was moved or copied"]
    assert verify_run(run_dir, mine).notes == []


def _sql(run_dir: Path, stmt: str, *args: object) -> None:
    import sqlite3

    conn = sqlite3.connect(run_dir / "index.sqlite")
    assert conn.execute(stmt, args).rowcount >= 1
    conn.commit()
    conn.close()


async def test_forged_derived_columns_of_the_index_fail_verify_by_name(tmp_path: Path) -> None:
    run_dir, seal = await _run(tmp_path)
    # what view/explain/query show, edited in the index only: events.jsonl and its chain are intact
    _sql(run_dir, "UPDATE events SET severity = 'info' WHERE type = 'detection'")
    _sql(run_dir, "UPDATE events SET path = '/tmp/harmless' WHERE seq = 8")
    _sql(run_dir, "UPDATE events SET exe = '/usr/bin/true', related_seq = 1 WHERE seq = 9")
    rep = verify_run(run_dir, seal)
    assert not rep.intact
    det_seq = next(json.loads(x)["seq"] for x in _lines(run_dir) if json.loads(x)["type"] == "detection")
    assert f"index.sqlite row seq {det_seq} differs from events.jsonl (severity)" in rep.problems
    assert "index.sqlite row seq 8 differs from events.jsonl (path)" in rep.problems
    assert "index.sqlite row seq 9 differs from events.jsonl (exe, related_seq)" in rep.problems
    assert len(rep.problems) == 3


async def test_forged_runs_table_fails_verify_by_name(tmp_path: Path) -> None:
    run_dir, seal = await _run(tmp_path)
    _sql(run_dir, "UPDATE runs SET command = 'ls', suspicious_count = 0, "
                  "meta_json = json_set(meta_json, '$.status', 'complete', '$.cwd', '/elsewhere')")
    rep = verify_run(run_dir, seal)
    assert rep.problems == [
        "index.sqlite runs row differs from the sealed meta: command, suspicious_count, meta_json.cwd"
    ]
