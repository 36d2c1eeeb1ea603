"""Back-pressure, as one explicit object: `FlowControl` pauses and resumes the source.

Data flows down (source → router → run pipelines → sinks); control goes through here and
nowhere else. The router reports after every batch it routed, each run pipeline after every
batch it took off its queue; when any run holds more than `high` events the source is paused
(the kernel ring absorbs the burst and counts what it cannot hold), and it is resumed once every
run is below `low`. Nothing is dropped in user space.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Protocol


class Pausable(Protocol):
    def pause(self) -> None: ...

    def resume(self) -> None: ...


class FlowControl:
    """Pauses the source while any queue is above `high`, resumes when all are below `low`."""

    def __init__(self, high: int, low: int) -> None:
        if low >= high:
            raise ValueError("low must be below high")
        self.high = high
        self.low = low
        self.paused = False
        self.pauses = 0  # times the source was paused (status: reader_pauses)
        self._source: Pausable | None = None
        self._queues: dict[int, Sized] = {}  # by id(): a queue need not be hashable

    def attach(self, source: Pausable) -> None:
        """The one source this object controls (the ring reader)."""
        self._source = source

    def watch(self, queue: Sized) -> None:
        self._queues[id(queue)] = queue

    def unwatch(self, queue: Sized) -> None:
        self._queues.pop(id(queue), None)
        self.check()

    def depth(self) -> int:
        """The deepest queue right now (events waiting in user space)."""
        return max((len(q) for q in self._queues.values()), default=0)

    def queued(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def check(self) -> None:
        """Re-evaluate after queues changed; pauses or resumes the source when a watermark is crossed."""
        if not self.paused:
            if any(len(q) > self.high for q in self._queues.values()):
                self.paused = True
                self.pauses += 1
                if self._source is not None:
                    self._source.pause()
        elif all(len(q) < self.low for q in self._queues.values()):
            self.paused = False
            if self._source is not None:
                self._source.resume()
