"""`RingReader`: the shared ring buffer on the asyncio loop, decoded in batches.

The BPF side batches wake-ups (`BPF_RB_NO_WAKEUP` until `wake_bytes` are pending), so the
reader both watches the epoll fd and drains on a short timer; without the timer a quiet
run's last records would sit in the ring until the next burst.
The ctypes callback only copies bytes (and returns 0: anything else stops libbpf's
consume loop); decoding happens afterwards, once per batch, in plain Python.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import Callable

import structlog

from logira.model.kernel import KernelEvent
from logira.probes import decode as dec
from logira.probes import libbpf
from logira.probes.loader import ProbeError, Probes

DRAIN_INTERVAL_S = 0.02
log = structlog.get_logger("logira.ringbuf")


class RingReader:
    """Consumes the `events` ring of loaded Probes and hands decoded batches to `on_batch`."""

    def __init__(self, probes: Probes, on_batch: Callable[[list[KernelEvent]], None]) -> None:
        if probes.events_fd < 0:
            raise ProbeError("probes are not loaded: call Probes.load() before creating a RingReader")
        self.probes = probes
        self.on_batch = on_batch
        self.received = 0  # records taken out of the ring
        self.decode_errors = 0  # malformed/unknown records (count as reader drops)
        self.ignored = 0  # records a decoder deliberately returned None for
        self.handler_lost = 0  # decoded events lost because on_batch raised
        self.last_error = ""
        self.clock = dec.Clock()
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._string_at = ctypes.string_at
        self._rb: libbpf.RingBuffer | None = libbpf.RingBuffer(probes.events_fd, self._on_record)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.paused = False  # pause()d: not watching the ring (the kernel keeps filling it)
        self.record: list[bytes] | None = None  # set to a list to keep every raw record (scripts/record_ring.py)

    def _on_record(self, _ctx: int | None, data: int, size: int) -> int:
        self._pending.append(self._string_at(data, size))
        return 0

    def start(self) -> None:
        """Watch the ring from the running asyncio loop (epoll fd + drain timer)."""
        loop = asyncio.get_running_loop()
        assert self._rb is not None
        self._loop = loop
        loop.add_reader(self._rb.epoll_fd, self._drain_cb)
        self._timer = loop.call_later(DRAIN_INTERVAL_S, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._drain_cb()  # may pause() (back-pressure): then no new timer until resume()
        if self._loop is not None and not self.paused and self._timer is None:
            self._timer = self._loop.call_later(DRAIN_INTERVAL_S, self._tick)

    def pause(self) -> None:
        """Stop consuming until resume() but keep the ring: the kernel ring absorbs a burst
        meanwhile and counts what it cannot hold. drain() still works while paused."""
        if self.paused or self._loop is None or self._rb is None:
            return
        self.paused = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop.remove_reader(self._rb.epoll_fd)

    def resume(self) -> None:
        """Undo pause(): watch the epoll fd and restart the drain timer."""
        if not self.paused or self._loop is None or self._rb is None:
            return
        self.paused = False
        self._loop.add_reader(self._rb.epoll_fd, self._drain_cb)
        if self._timer is None:
            self._timer = self._loop.call_later(DRAIN_INTERVAL_S, self._tick)

    def _drain_cb(self) -> None:
        try:
            self.drain()
        except Exception:  # libbpf consume failure: keep the loop alive, it is logged
            log.exception("ring buffer consume failed")

    def drain(self) -> int:
        """Consume everything in the ring now and deliver it; returns the number of records."""
        with self._lock:
            if self._rb is None:
                return 0
            self._rb.consume()
            raw, self._pending = self._pending, []
            if not raw:
                return 0
            self.received += len(raw)
            events = self._decode(raw)
        if events:
            try:
                self.on_batch(events)
            except Exception:
                # the consumer failed: these events are lost to the record, count them
                self.handler_lost += len(events)
                log.exception("ring batch handler failed", lost=len(events))
        return len(raw)

    def _decode(self, raw: list[bytes]) -> list[KernelEvent]:
        if self.record is not None:
            self.record.extend(raw)
        d = dec.decode_batch(raw, self.clock)
        self.decode_errors += d.errors
        self.ignored += d.ignored
        if d.last_error:
            self.last_error = d.last_error
        return d.events

    def stop(self) -> None:
        """Stop watching and free the ring buffer (a final drain is the caller's choice)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with self._lock:
            if self._rb is not None:
                if self._loop is not None:
                    self._loop.remove_reader(self._rb.epoll_fd)
                self._rb.free()
                self._rb = None
        self._loop = None
