"""The fan-out: each batch of a run's records to every sink, in order, counted per sink.

One batch is in flight per sink: the next batch's convert/detect/JSONL work overlaps with the
SQLite thread's commit of the previous one, and each sink still sees batches in seq order. A
sink that raises loses that batch for itself only; the failure is counted in its `SinkStats`,
never swallowed silently, and never stops the other sinks. The in-flight writes are tasks of
the run's task group (`bind`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from logira.format.meta import RunMeta
from logira.model.record import Record
from logira.sinks.base import Sink, SinkStats


class FanOut:
    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)
        self._tg: asyncio.TaskGroup | None = None
        self._inflight: dict[str, asyncio.Task[None]] = {}

    def stats(self) -> dict[str, SinkStats]:
        return {s.name: s.stats for s in self.sinks}

    def bind(self, tg: asyncio.TaskGroup | None) -> None:
        """The task group that owns the in-flight writes (the run's); None = write inline."""
        self._tg = tg

    async def open(self, meta: RunMeta) -> None:
        """Open every sink; a sink that cannot open fails the run's start (raises)."""
        for s in self.sinks:
            await s.open(meta)

    async def write(self, batch: Sequence[Record]) -> None:
        for s in self.sinks:
            prev = self._inflight.pop(s.name, None)
            if prev is not None:
                await prev
            if self._tg is None:
                await self._write_one(s, batch)
            else:
                self._inflight[s.name] = self._tg.create_task(self._write_one(s, batch), name=f"sink-{s.name}")

    async def _write_one(self, s: Sink, batch: Sequence[Record]) -> None:
        try:
            await s.write_batch(batch)
        except Exception as exc:  # counted against this sink: its copy is short, and says so
            s.stats.failed += len(batch)
            s.stats.last_error = f"{type(exc).__name__}: {exc}"
        else:
            s.stats.batches += 1
            s.stats.written += len(batch)

    async def drain(self) -> None:
        """Wait for every in-flight write."""
        while self._inflight:
            _, task = self._inflight.popitem()
            await task

    async def flush(self) -> None:
        await self.drain()
        for s in self.sinks:
            try:
                await s.flush()
            except Exception as exc:
                s.stats.last_error = f"flush: {type(exc).__name__}: {exc}"

    async def close(self, meta: RunMeta) -> list[str]:
        """Close every sink with the final meta, in order; returns one line per failure.

        Each failure is added to `meta.incomplete_reasons` before the next sink closes, so a
        later sink (journald's run_finished, an exporter) reports the run as it really ended.
        """
        await self.drain()
        errors: list[str] = []
        for s in self.sinks:
            try:
                await s.close(meta)
            except Exception as exc:
                err = f"{s.name} close: {type(exc).__name__}: {exc}"
                errors.append(err)
                meta.incomplete_reasons = [*meta.incomplete_reasons, err]
                meta.complete = False
                if meta.status == "complete":
                    meta.status = "incomplete"
        return errors
