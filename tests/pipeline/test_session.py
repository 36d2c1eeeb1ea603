"""RunPipeline with the real chain and sinks: declared records, live followers, a failing sink."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from logira.format.jsonl import scan_chain
from logira.format.meta import RunMeta
from logira.model.kernel import FileOp, ProcExec
from logira.model.proctree import ProcessTree
from logira.model.record import FileData, Record
from logira.pipeline.flow import FlowControl
from logira.pipeline.session import RunPipeline
from logira.sinks.base import SinkStats
from logira.sinks.jsonl import JsonlSink

T0 = 1_700_000_000_000_000_000
HDR = dict(mono_ns=1, cgroup_id=9, run_cgroup_id=9, tid=0, ppid=1, uid=1000, gid=1000, comm="x")


class CaptureSink:
    """A sink that keeps what it was given (and can be told to fail every n-th batch)."""

    name = "capture"

    def __init__(self, fail: bool = False) -> None:
        self.stats = SinkStats()
        self.fail = fail
        self.got: list[Record] = []
        self.opened: RunMeta | None = None
        self.closed: list[RunMeta] = []

    async def open(self, meta: RunMeta) -> None:
        self.opened = meta

    async def write_batch(self, records: Sequence[Record]) -> None:
        await asyncio.sleep(0)  # a real hop, like the SQLite thread
        if self.fail:
            raise OSError(28, "No space left on device")
        self.got.extend(records)

    async def flush(self) -> None:
        return None

    async def close(self, meta: RunMeta) -> None:
        self.closed.append(meta)


def _pipe(tmp_path: Path, *sinks: CaptureSink, flow: FlowControl | None = None) -> tuple[RunPipeline, Path]:
    path = tmp_path / "events.jsonl"
    chain = JsonlSink(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "r1")
    pipe = RunPipeline(run_id="r1", chain=chain, sinks=list(sinks), detector=None, tree=ProcessTree(),
                       domains={"exec": True, "file": True, "net": True}, flow=flow)  # fmt: skip
    return pipe, path


def _exec(i: int) -> ProcExec:
    return ProcExec(ts=T0 + i, pid=100 + i, filename="/usr/bin/true", argv=["true", str(i)], **HDR)


async def test_declared_records_share_seq_chain_and_sinks_in_arrival_order(tmp_path: Path) -> None:
    cap = CaptureSink()
    pipe, path = _pipe(tmp_path, cap)
    meta = RunMeta(run_id="r1")
    await pipe.open(meta)
    assert cap.opened is meta
    async with asyncio.TaskGroup() as tg:
        tg.create_task(pipe.run())
        pipe.enqueue(_exec(1))
        pipe.append_record(Record(run_id="", seq=0, ts=T0 + 2, type="file", pid=7, summary="declared",
                                  data_json=FileData(op="create", path="/declared")))  # fmt: skip
        pipe.enqueue(_exec(3))
        await pipe.stop()
    assert await pipe.close(meta) == []
    assert [(r.seq, r.type, r.summary) for r in cap.got] == [
        (1, "exec", "exec true 1"), (2, "file", "declared"), (3, "exec", "exec true 3"),
    ]  # fmt: skip
    st = scan_chain(path.open("rb"))
    assert (st.count, st.last_seq, st.broken_at) == (3, 3, 0)
    assert pipe.counts == {"exec": 2, "file": 1}
    assert cap.closed == [meta] and cap.stats.written == 3 and cap.stats.failed == 0


async def test_live_followers_get_exactly_the_flushed_lines(tmp_path: Path) -> None:
    pipe, path = _pipe(tmp_path)
    follower = pipe.live.add(limit=1000)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(pipe.run())
        for i in range(50):
            pipe.enqueue(FileOp(ts=T0 + i, pid=5, op="create", path=f"/tmp/f{i}", **HDR))
        await pipe.stop()
    await pipe.close(RunMeta(run_id="r1"))
    assert list(follower.buf) == path.read_text().splitlines()
    assert len(follower.buf) == 50 and follower.ended


async def test_a_failing_sink_loses_only_its_copy_and_says_so(tmp_path: Path) -> None:
    good, bad = CaptureSink(), CaptureSink(fail=True)
    bad.name = "other"
    pipe, path = _pipe(tmp_path, bad, good)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(pipe.run())
        for i in range(10):
            pipe.enqueue(_exec(i))
        await pipe.stop()
    await pipe.close(RunMeta(run_id="r1"))
    assert (bad.stats.failed, bad.stats.written, good.stats.written) == (10, 0, 10)
    assert "No space left" in bad.stats.last_error and "No space left" in pipe.last_error
    assert scan_chain(path.open("rb")).count == 10 and pipe.errors == 0


async def test_a_deep_queue_pauses_the_source_until_the_pipeline_drains_it(tmp_path: Path) -> None:
    calls: list[str] = []

    class Src:
        def pause(self) -> None:
            calls.append("pause")

        def resume(self) -> None:
            calls.append("resume")

    flow = FlowControl(high=100, low=10)
    flow.attach(Src())
    pipe, _ = _pipe(tmp_path, flow=flow)
    flow.watch(pipe)
    for i in range(500):
        pipe.enqueue(_exec(i))
    flow.check()
    assert calls == ["pause"]
    async with asyncio.TaskGroup() as tg:
        tg.create_task(pipe.run())
        await pipe.stop()
    await pipe.close(RunMeta(run_id="r1"))
    assert calls == ["pause", "resume"] and pipe.event_count == 500


async def test_a_stage_that_raises_loses_its_batch_counted_and_named_and_the_run_goes_on(tmp_path: Path) -> None:
    class BrokenTree(ProcessTree):
        def observe(self, rec: Record) -> None:
            if rec.pid == 103:
                raise RuntimeError("tree bug")
            super().observe(rec)

    cap = CaptureSink()
    path = tmp_path / "events.jsonl"
    chain = JsonlSink(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "r1")
    pipe = RunPipeline(run_id="r1", chain=chain, sinks=[cap], detector=None, tree=BrokenTree(),
                       domains={"exec": True, "file": True, "net": True})  # fmt: skip
    async with asyncio.TaskGroup() as tg:
        tg.create_task(pipe.run())
        for i in range(5):
            pipe.enqueue(_exec(i))
        await pipe.wait_idle()  # one batch of 5, lost as a whole
        pipe.enqueue(_exec(7))
        await pipe.stop()
    await pipe.close(RunMeta(run_id="r1"))
    assert (pipe.errors, pipe.last_error) == (5, "RuntimeError: tree bug")
    assert [(r.seq, r.summary) for r in cap.got] == [(1, "exec true 7")]  # no seq gap for verify to flag
    assert scan_chain(path.open("rb")).count == 1 and pipe.counts == {"exec": 1}
