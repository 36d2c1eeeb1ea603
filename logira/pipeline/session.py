"""The per-run pipeline: kernel events in, stored records out.

One `RunPipeline` per active run, fed synchronously by the daemon's ring-buffer router
(`enqueue`) and drained by its own asyncio task: convert -> seq -> process tree ->
enrich exe -> detection -> JSONL (hash chain) + SQLite (one transaction per batch) + live
followers + journald for detections. Nothing is ever dropped in user space: the queue is
unbounded here and the router applies back-pressure by pausing the ring reader above the
high watermark, so an overload ends up as counted kernel ring drops.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

from logira.model.kernel import AnyKernelEvent
from logira.model.proctree import ProcessTree
from logira.model.record import DetectionData, FileData, NetData, ProcData, Record
from logira.pipeline.convert import convert, domain
from logira.sinks.live import LiveHub

BATCH_MAX = 4096
_ENRICHED = frozenset({FileData, NetData, ProcData})  # records that carry the process's exe


class RunPipeline:
    """Processes one run's events in order and writes them to its sinks."""

    def __init__(
        self,
        *,
        run_id: str,
        jsonl: Any,  # logira.sinks.jsonl.JsonlSink
        sqlite: Any,  # logira.sinks.sqlite.SqliteSink (async)
        detector: Any | None,  # logira.detect.engine.Detector
        tree: ProcessTree,
        domains: dict[str, bool],
        jsonl_read_fd: int,
        flush_interval: float = 0.5,
        on_detection: Callable[[Record], None] | None = None,
        on_drain: Callable[[], None] | None = None,
    ) -> None:
        self.run_id = run_id
        self.jsonl = jsonl
        self.sqlite = sqlite
        self.detector = detector
        self.tree = tree
        self.domains = domains
        self.flush_interval = flush_interval
        self.on_detection = on_detection
        self.on_drain = on_drain
        self.live = LiveHub()
        self.queue: collections.deque[AnyKernelEvent] = collections.deque()
        self.seq = 0
        self.counts: dict[str, int] = {}
        self.detections: dict[str, int] = {}
        self.filtered = {"exec": 0, "file": 0, "net": 0}  # left out by the run's --no-<domain>
        self.errors = 0  # events that could not be converted: lost, counted as queue drops
        self.detect_errors = 0  # records stored but not evaluated by the rules
        self.sqlite_missing = 0  # records in events.jsonl that index.sqlite could not take
        self.last_error = ""
        self.received = 0
        self._read_fd = jsonl_read_fd
        self._read_off = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._last_flush = time.monotonic()
        self._sql_pending: asyncio.Future[None] | None = None

    # -- producer side (synchronous, called from the ring reader callback) -------------

    def enqueue(self, ev: AnyKernelEvent) -> None:
        self.queue.append(ev)
        self.received += 1
        self._idle.clear()
        self._wake.set()

    def append_record(self, rec: Record) -> None:
        """A non-kernel record (an agent's claim, a finalize result) in queue order.

        It takes the next seq and goes through the same hash chain and sinks as kernel records;
        it is neither fed to the process tree nor to the rules.
        """
        self.enqueue(rec)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.queue)

    # -- consumer side -----------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"run-{self.run_id}")

    async def wait_idle(self) -> None:
        """Wait until everything enqueued so far has been written."""
        while self.queue or not self._idle.is_set():
            self._wake.set()
            await self._idle.wait()

    async def stop(self) -> None:
        """Process what is queued, flush, and end the task."""
        await self.wait_idle()
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self.flush()
        self.live.end()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval)
            self._wake.clear()
            while self.queue:
                n = min(BATCH_MAX, len(self.queue))
                batch = [self.queue.popleft() for _ in range(n)]
                if self.on_drain is not None:
                    self.on_drain()
                try:
                    await self._process(batch)
                except Exception as exc:  # a bug must not stall the run: the batch is counted as lost
                    self.errors += len(batch)
                    self.last_error = f"{type(exc).__name__}: {exc}"
                if self.live or time.monotonic() - self._last_flush >= self.flush_interval:
                    self._safe_flush()
            if time.monotonic() - self._last_flush >= self.flush_interval:
                self._safe_flush()
            await self._sql_wait()
            if self.queue:
                continue
            self._idle.set()
            if self._closing and not self.queue:
                return

    async def _process(self, batch: list[AnyKernelEvent]) -> None:
        # The per-event loop of the daemon: attribute lookups are hoisted into locals on purpose.
        out: list[Record] = []
        append = out.append
        domains, filtered, counts = self.domains, self.filtered, self.counts
        filtering = not all(domains.get(d, True) for d in filtered)
        observe, exe_of = self.tree.observe, self.tree.exe
        detect = self.detector.process if self.detector is not None else None
        run_id = self.run_id
        for ev in batch:
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
                dom = domain(ev)
                if not domains.get(dom, True):
                    filtered[dom] += 1
                    continue
            seq = self.seq + 1
            try:
                rec = convert(ev, run_id, seq)
            except Exception:
                self.errors += 1
                continue
            self.seq = seq
            observe(rec)
            data = rec.data_json
            if type(data) in _ENRICHED and not data.exe:  # type: ignore[union-attr]
                data.exe = exe_of(rec.pid)  # type: ignore[union-attr]
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
        if out:
            try:
                self.jsonl.write(out)
            except Exception as exc:  # e.g. ENOSPC on an auto-flush: these records are lost, and counted
                self.errors += len(out)
                self.last_error = f"events.jsonl: {exc}"
                return
            # SQLite runs in the sink's thread: keep one batch in flight so the next batch's
            # convert/detect/JSONL work overlaps with it (order is kept: one write at a time).
            await self._sql_wait()
            self._sql_pending = asyncio.ensure_future(self._sql_write(out))

    async def _sql_write(self, out: list[Record]) -> None:
        try:
            await self.sqlite.write(out)
        except Exception as exc:  # the JSONL has them; the index is short, and says so
            self.sqlite_missing += len(out)
            self.last_error = f"index.sqlite: {exc}"

    async def _sql_wait(self) -> None:
        if self._sql_pending is not None:
            await self._sql_pending
            self._sql_pending = None

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
        if self.on_detection is not None:
            with contextlib.suppress(Exception):
                self.on_detection(drec)
        return drec

    def flush(self) -> None:
        """Write buffered JSONL to the file and hand the new lines to live followers."""
        self.jsonl.flush()
        self._last_flush = time.monotonic()
        if self.live:
            self._publish_new()
        else:
            self._read_off = os.fstat(self._read_fd).st_size

    def _safe_flush(self) -> None:
        try:
            self.flush()
        except OSError as exc:  # the buffer is kept by the sink and retried on the next flush
            self.last_error = f"events.jsonl flush: {exc}"

    def _publish_new(self) -> None:
        size = os.fstat(self._read_fd).st_size
        if size <= self._read_off:
            return
        data = os.pread(self._read_fd, size - self._read_off, self._read_off)
        end = data.rfind(b"\n") + 1  # only whole lines
        if end == 0:
            return
        self._read_off += end
        lines = data[:end].decode("utf-8", "surrogateescape").splitlines()
        self.live.publish(lines)

    def follow_position(self) -> int:
        """Flush and return the next seq a new follower will receive live."""
        self.flush()
        return self.jsonl.last_seq + 1

    @property
    def event_count(self) -> int:
        return self.seq
