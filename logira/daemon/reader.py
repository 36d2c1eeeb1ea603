"""A RingReader that can pause, for back-pressure from the per-run queues.

Pausing removes the epoll reader and the drain timer but keeps the ring buffer, so the
kernel ring absorbs a burst while the pipelines catch up; whatever it cannot hold is counted
by the kernel drop counters. (RingReader.stop() frees the ring, so it cannot be used here.)
"""

from __future__ import annotations

from logira.probes.ringbuf import DRAIN_INTERVAL_S, RingReader


class PausableReader(RingReader):
    paused = False

    def pause(self) -> None:
        """Stop consuming until resume(); drain() still works (used at run end)."""
        if self.paused or self._loop is None or self._rb is None:
            return
        self.paused = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop.remove_reader(self._rb.epoll_fd)

    def resume(self) -> None:
        if not self.paused or self._loop is None or self._rb is None:
            return
        self.paused = False
        self._loop.add_reader(self._rb.epoll_fd, self._drain_cb)
        self._timer = self._loop.call_later(DRAIN_INTERVAL_S, self._tick)
