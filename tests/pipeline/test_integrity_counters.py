"""The per-run pipeline's integrity counters, with the real JSONL and SQLite sinks.

filtered (per domain, not a loss), detect_errors (rules raised) and sqlite_missing (the index
refused a batch) must be counted exactly, and outcome() must turn the losses into reasons.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import msgspec

from logira.daemon.outcome import Losses, outcome
from logira.format.jsonl import scan_chain
from logira.format.meta import RunMeta, decode_meta, encode_meta
from logira.model.kernel import AnyKernelEvent, FileOp, NetOp, ProcExec
from logira.model.proctree import ProcessTree
from logira.model.record import Record
from logira.pipeline.session import RunPipeline
from logira.sinks.jsonl import JsonlSink
from logira.sinks.sqlite import SqliteSink

T0 = 1_700_000_000_000_000_000
HDR = dict(mono_ns=1, cgroup_id=9, run_cgroup_id=9, tid=0, ppid=1, uid=1000, gid=1000, comm="x")


def _events() -> list[AnyKernelEvent]:
    evs: list[AnyKernelEvent] = []
    for i in range(10):
        pid = 100 + i
        evs.append(ProcExec(ts=T0 + 3 * i, pid=pid, filename="/usr/bin/true", argv=["true", str(i)], **HDR))
        evs.append(FileOp(ts=T0 + 3 * i + 1, pid=pid, op="create", path=f"/tmp/f{i}", **HDR))
        evs.append(NetOp(ts=T0 + 3 * i + 2, pid=pid, op="connect", family="inet", proto="tcp",
                         dst_ip="127.0.0.1", dst_port=80 + i, **HDR))  # fmt: skip
    return evs


class FailingDetector:
    """Raises on every exec record (a rule engine bug), finds nothing otherwise."""

    def process(self, rec: Record) -> list:
        if rec.type == "exec":
            raise RuntimeError("rule bug")
        return []


async def _pipeline(tmp_path: Path, *, net: bool, poison_seq: int = 0) -> tuple[RunPipeline, Path]:
    path = tmp_path / "events.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    db_path = str(tmp_path / "index.sqlite")
    sink = await SqliteSink.create(db_path, RunMeta(run_id="r1"))
    if poison_seq:  # a row the pipeline's batch will collide with: the whole batch is refused
        con = sqlite3.connect(db_path)
        con.execute("INSERT INTO events(seq, ts, type) VALUES (?, 0, 'x')", (poison_seq,))
        con.commit()
        con.close()
    pipe = RunPipeline(
        run_id="r1",
        chain=JsonlSink(fd, "r1"),
        sinks=[sink],
        detector=FailingDetector(),
        tree=ProcessTree(),
        domains={"exec": True, "file": True, "net": net},
    )
    return pipe, path


async def _feed_all(pipe: RunPipeline) -> None:
    """Run every _events() record through the pipeline, then stop it and close both sinks."""
    async with asyncio.TaskGroup() as tg:
        tg.create_task(pipe.run())
        for ev in _events():
            pipe.enqueue(ev)
        await pipe.stop()
    assert await pipe.close(RunMeta(run_id="r1")) == []


async def test_filtered_and_detect_errors_are_counted_per_domain(tmp_path: Path) -> None:
    pipe, path = await _pipeline(tmp_path, net=False)
    await _feed_all(pipe)
    assert pipe.filtered == {"exec": 0, "file": 0, "net": 10}
    assert pipe.detect_errors == 10  # one per exec record; the records are still stored
    assert (pipe.event_count, pipe.errors, pipe.sqlite_missing) == (20, 0, 0)
    st = scan_chain(path.open("rb"))
    assert (st.count, st.broken_at) == (20, 0)
    assert pipe.counts == {"exec": 10, "file": 10}


async def test_a_refused_sqlite_batch_is_counted_as_missing(tmp_path: Path) -> None:
    pipe, path = await _pipeline(tmp_path, net=True, poison_seq=5)
    await _feed_all(pipe)
    # one batch of 30 records, refused as a whole (rolled back): the JSONL still has all of them
    assert pipe.sqlite_missing == 30
    assert "index.sqlite" in pipe.last_error and "UNIQUE" in pipe.last_error
    assert scan_chain(path.open("rb")).count == 30
    con = sqlite3.connect(tmp_path / "index.sqlite")
    assert con.execute("SELECT count(*) FROM events WHERE type != 'x'").fetchone()[0] == 0
    con.close()


def test_outcome_turns_every_loss_into_a_reason() -> None:
    assert outcome(Losses()) == (True, [])
    complete, reasons = outcome(Losses(detect_errors=2))
    assert not complete and reasons == ["rule evaluation failed on 2 records (they are stored)"]
    complete, reasons = outcome(Losses(sqlite_missing=7, last_error="index.sqlite: disk full"))
    assert not complete
    assert reasons == ["index.sqlite lacks 7 records (events.jsonl has them): index.sqlite: disk full"]
    complete, reasons = outcome(Losses(kernel_total=1, reader=2, queue=3, interrupted=True))
    assert not complete and len(reasons) == 4


def test_meta_keeps_filtered_and_integrity_counters() -> None:
    meta = msgspec.convert(
        {
            "run_id": "r1",
            "filtered": {"exec": 0, "file": 4, "net": 2},
            "detect_errors": 3,
            "sqlite_missing": 5,
        },
        RunMeta,
    )
    back = decode_meta(encode_meta(meta))
    assert (back.filtered.file, back.filtered.net, back.detect_errors, back.sqlite_missing) == (4, 2, 3, 5)
    old = decode_meta(b'{"run_id": "r0"}')  # a meta.json written before these fields existed
    assert (old.filtered.exec, old.detect_errors, old.sqlite_missing) == (0, 0, 0)
