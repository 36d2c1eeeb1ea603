"""The per-run pipeline: kernel events in, stored records out, as a list of stages.

    router ─► queue ─► convert ─► process tree ─► enrich exe ─► detect ─► chain ─► fan-out
             (enqueue,  (KernelEvent  (fork/exec/     (file/net/   (rules)    (seq, hash,  (SQLite,
              records)   → Record)     exit)           proc exe)              JSONL; live  journald,
                                                                              followers)   exporters)

One `RunPipeline` per active run. The router fills its queue synchronously (`enqueue`); `run()`,
a task of the run's task group, takes batches off it. Declared (non-kernel) records enter the same
queue through `append_record` and get their seq, hash and sinks the same way, in arrival order.
Nothing is dropped in user space: the queue is unbounded and flow control (pipeline/flow.py)
pauses the source above its high watermark, so an overload ends up as counted kernel ring drops.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Sequence
from typing import Protocol

from logira.format.meta import RunMeta
from logira.model.kernel import FileOp, KernelEvent
from logira.model.proctree import ProcessTree
from logira.model.record import DetectionData, FileData, NetData, ProcData, Record
from logira.pipeline.convert import convert, domain
from logira.pipeline.fanout import FanOut
from logira.pipeline.filecheck import FileChecker
from logira.pipeline.flow import FlowControl
from logira.sinks.base import Sink
from logira.sinks.jsonl import JsonlSink
from logira.sinks.live import LiveHub

BATCH_MAX = 4096
_FILE_OF = {"sqlite": "index.sqlite"}  # how a sink's errors are named to the user
_ENRICHED = frozenset({FileData, NetData, ProcData})  # records that carry the process's exe


class Detect(Protocol):
    """The detect stage (logira.detect.engine.Detector): findings for one record."""

    def process(self, rec: Record) -> list[DetectionData]: ...


class RunPipeline:
    """Processes one run's events in order and writes them to its chain and sinks."""

    def __init__(
        self,
        *,
        run_id: str,
        chain: JsonlSink,
        sinks: Sequence[Sink] = (),
        detector: Detect | None,
        tree: ProcessTree,
        file_checker: FileChecker | None = None,
        domains: dict[str, bool],
        flow: FlowControl | None = None,
        flush_interval: float = 0.5,
    ) -> None:
        self.run_id = run_id
        self.chain = chain
        self.fanout = FanOut(sinks)
        self.detector = detector
        self.tree = tree
        self.file_checker = file_checker
        self.domains = domains
        self.flow = flow
        self.flush_interval = flush_interval
        self.queue: collections.deque[KernelEvent | Record] = collections.deque()
        self.seq = chain.last_seq
        self.counts: dict[str, int] = {}
        self.detections: dict[str, int] = {}
        self.filtered = {"exec": 0, "file": 0, "net": 0}  # left out by the run's --no-<domain>
        self.egress: dict[str, int] = {}  # dst_ip -> bytes sent by the run's closed TCP connections
        self.errors = 0  # events that could not be converted or chained: lost, counted as queue drops
        self.detect_errors = 0  # records stored but not evaluated by the rules
        self.received = 0
        self._last_error = ""
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._done = asyncio.Event()
        self._done.set()  # no consumer running (yet)
        self._last_flush = time.monotonic()

    # -- producer side (synchronous: the router, or a daemon handler for appended records) ----

    def enqueue(self, ev: KernelEvent) -> None:
        self.queue.append(ev)
        self.received += 1
        self._idle.clear()
        self._wake.set()

    def append_record(self, rec: Record) -> None:
        """A non-kernel record (an agent's claim, a finalize result) in queue order.

        It takes the next seq (its `seq` and `run_id` are overwritten), joins the hash chain and
        goes to every sink exactly like a kernel record, in order with the kernel events already
        queued. It is neither fed to the process tree nor to the rules (a claim is not a fact).
        """
        self.queue.append(rec)
        self._idle.clear()
        self._wake.set()

    def __len__(self) -> int:
        return len(self.queue)

    @property
    def live(self) -> LiveHub:
        """The run's live followers (fed by the chain's flushes)."""
        return self.chain.live

    @property
    def sqlite_missing(self) -> int:
        """Records in events.jsonl that index.sqlite could not take."""
        st = self.fanout.stats().get("sqlite")
        return st.failed if st is not None else 0

    @property
    def last_error(self) -> str:
        """The pipeline's last error, else the first sink error (to explain what a sink lacks)."""
        if self._last_error:
            return self._last_error
        for name, st in self.fanout.stats().items():
            if st.last_error:
                return f"{_FILE_OF.get(name, name)}: {st.last_error}"
        return ""

    @property
    def event_count(self) -> int:
        return self.seq

    # -- consumer side -------------------------------------------------------------------------

    async def open(self, meta: RunMeta) -> None:
        """Open every sink for the run (before the first event is routed here)."""
        await self.fanout.open(meta)

    async def run(self) -> None:
        """Consume the queue until stop(); a task of the run's task group."""
        self._done.clear()
        try:
            async with asyncio.TaskGroup() as tg:  # owns the sinks' in-flight writes
                self.fanout.bind(tg)
                await self._consume()
                await self.fanout.drain()
        finally:
            self.fanout.bind(None)
            self._done.set()
            self._idle.set()

    async def wait_idle(self) -> None:
        """Wait until everything enqueued so far has been written."""
        while self.queue or not self._idle.is_set():
            self._wake.set()
            await self._idle.wait()

    async def stop(self) -> None:
        """Process what is queued, flush, and end run()."""
        await self.wait_idle()
        self._closing = True
        self._wake.set()
        if not self._done.is_set():
            await self._done.wait()
        await self.fanout.drain()
        self.flush()

    async def close(self, meta: RunMeta) -> list[str]:
        """Close the fan-out's sinks and the chain with the final meta; one line per failure."""
        errors = await self.fanout.close(meta)
        try:
            self.chain.close()
        except OSError as exc:
            errors.append(f"events.jsonl: {exc}")
        return errors

    async def _consume(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval)
            self._wake.clear()
            while self.queue:
                n = min(BATCH_MAX, len(self.queue))
                batch = [self.queue.popleft() for _ in range(n)]
                if self.flow is not None:
                    self.flow.check()
                mark = (self.seq, dict(self.counts), dict(self.detections), dict(self.filtered))
                try:
                    out = self._stages(batch)
                except Exception as exc:  # a stage bug must not stall the run: the batch is counted as lost
                    # none of it was written: its seqs are given again, so the stored seqs have no gap
                    self.seq, self.counts, self.detections, self.filtered = mark
                    self.errors += len(batch)
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    continue
                await self._emit(out)
                if self.live or time.monotonic() - self._last_flush >= self.flush_interval:
                    self._safe_flush()
            if time.monotonic() - self._last_flush >= self.flush_interval:
                self._safe_flush()
            if self.queue:
                continue
            await self.fanout.drain()
            if self.queue:
                continue
            self._idle.set()
            if self._closing:
                return

    def _stages(self, batch: list[KernelEvent | Record]) -> list[Record]:
        """convert → process tree → enrich exe → detect, for one batch; returns the records in seq order.

        The per-event loop of the daemon: attribute lookups are hoisted into locals on purpose.
        """
        out: list[Record] = []
        append = out.append
        domains, filtered, counts = self.domains, self.filtered, self.counts
        filtering = not all(domains.get(d, True) for d in filtered)
        observe, exe_of = self.tree.observe, self.tree.exe
        detect = self.detector.process if self.detector is not None else None
        run_id = self.run_id
        checker = self.file_checker
        if checker is not None:
            checker.begin_batch(batch)
        for i, ev in enumerate(batch):
            if type(ev) is Record:  # appended by append_record: already a record, only seq is ours
                self.seq += 1
                ev.seq, ev.run_id = self.seq, run_id
                append(ev)
                counts[ev.type] = counts.get(ev.type, 0) + 1
                if ev.type == "detection":
                    sev = ev.data_json.severity  # type: ignore[union-attr]
                    self.detections[sev] = self.detections.get(sev, 0) + 1
                continue
            if filtering:
                dom = domain(ev)  # type: ignore[arg-type]
                if not domains.get(dom, True):
                    filtered[dom] += 1
                    continue
            seq = self.seq + 1
            try:
                rec = convert(ev, run_id, seq)  # type: ignore[arg-type]
            except Exception:
                self.errors += 1
                continue
            self.seq = seq
            if checker is not None and type(ev) is FileOp:
                try:
                    checker.check(rec, ev, i)
                except Exception:  # the record stands without its receipt checks: counted like a
                    self.detect_errors += 1  # record the rules could not fully judge
            observe(rec)
            data = rec.data_json
            if type(data) in _ENRICHED and not data.exe:  # type: ignore[union-attr]
                data.exe = exe_of(rec.pid)  # type: ignore[union-attr]
            if type(data) is NetData and data.op == "close":  # the run's total to this address so far
                data.run_dst_bytes = self.egress[data.dst_ip] = self.egress.get(data.dst_ip, 0) + data.bytes
            append(rec)
            t = rec.type
            counts[t] = counts.get(t, 0) + 1
            if detect is not None:
                try:
                    found = detect(rec)
                except Exception:
                    self.detect_errors += 1
                    continue
                for det in found:
                    append(self._detection(rec, det))
        return out

    async def _emit(self, out: list[Record]) -> None:
        """The chain (seq order, hash, JSONL), then the fan-out to every other sink."""
        if not out:
            return
        try:
            self.chain.write(out)
        except Exception as exc:  # e.g. ENOSPC on an auto-flush: these records are lost, and counted
            self.errors += len(out)
            self._last_error = f"events.jsonl: {exc}"
            return
        await self.fanout.write(out)

    def _detection(self, rec: Record, det: DetectionData) -> Record:
        self.seq += 1
        if not det.related_event_seq:
            det.related_event_seq = rec.seq
        summary = f"[{det.severity}] {det.rule_id}: {det.message}"
        drec = Record(
            run_id=self.run_id,
            seq=self.seq,
            ts=rec.ts,
            type="detection",
            pid=rec.pid,
            ppid=rec.ppid,
            uid=rec.uid,
            summary=summary,
            data_json=det,
        )
        self.counts["detection"] = self.counts.get("detection", 0) + 1
        self.detections[det.severity] = self.detections.get(det.severity, 0) + 1
        return drec

    def flush(self) -> None:
        """Write buffered JSONL to the file (the chain hands the new lines to live followers)."""
        self.chain.flush()
        self._last_flush = time.monotonic()

    def _safe_flush(self) -> None:
        try:
            self.flush()
        except OSError as exc:  # the buffer is kept by the chain and retried on the next flush
            self._last_error = f"events.jsonl flush: {exc}"

    def follow_position(self) -> int:
        """Flush and return the next seq a new follower will receive live."""
        self.flush()
        return self.chain.last_seq + 1
