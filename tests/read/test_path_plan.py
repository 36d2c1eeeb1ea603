"""--path's loose index scan (GLOB over distinct paths, capped, then a range scan) finds exactly
what the plain scan finds, whichever branch of it does the work."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from logira.format.meta import RunMeta
from logira.model.record import FileData, Record
from logira.read import filter as filt
from logira.read.query import EventFilter
from logira.read.source import RunSource
from logira.sinks.jsonl import JsonlSink
from logira.sinks.sqlite import SqliteSink

RUN = "20260101-000000-plan"
PATHS = [f"/home/u/{d}/{f}" for d in ("proj", ".ssh", "proj/.ssh", "a b", ".sshx") for f in ("x", "id_rsa", "k.pub")]


def _records() -> list[Record]:
    recs = []
    for i in range(600):
        p = PATHS[i % len(PATHS)]
        op, p2 = ("rename", PATHS[(i * 7) % len(PATHS)] + ".new") if i % 11 == 0 else ("modify", "")
        recs.append(Record(run_id=RUN, seq=i + 1, ts=i, type="file", pid=1, ppid=0, uid=1000, summary=f"file {op} {p}",
                           data_json=FileData(op=op, path=p, path2=p2)))  # fmt: skip
    return recs


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("plan") / RUN
    d.mkdir()
    recs = _records()
    sink = JsonlSink(os.open(d / "events.jsonl", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), RUN)
    sink.write(recs)
    sink.close()

    async def index() -> None:
        db = await SqliteSink.create(str(d / "index.sqlite"), RunMeta(run_id=RUN))
        await db.write_batch(recs)
        await db.close()

    asyncio.run(index())
    return d


@pytest.mark.parametrize("pattern", ["**/.ssh/**", "*.pub", "**/proj/**", "/home/u/a b/*", "**/.ssh*/id_*", "*.new"])
@pytest.mark.parametrize("rows", [600, 8 * 3, 8])  # cap rows//8: above the distinct count, below it, 1
def test_loose_scan_finds_exactly_what_the_plain_scan_finds(
    run_dir: Path, pattern: str, rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    flt = EventFilter(types=("file",), path=pattern)
    with RunSource(run_dir) as src:
        plain = [r.seq for r in src.select(flt)]
        monkeypatch.setattr(filt, "LOOSE_SCAN_MIN_ROWS", 0)
        src._rows = rows
        cf = filt.CompiledFilter(flt, src.indexes, src.rows)
        assert "WITH RECURSIVE" in cf.sql(False, None)[0]
        loose = [r.seq for r in src.select(flt)]
    assert plain and loose == plain
