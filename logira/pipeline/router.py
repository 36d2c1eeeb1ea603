"""The router: kernel events from the source to the run they belong to (by run cgroup id).

The ring reader delivers every decoded batch here (`route`); each event goes to its run's
pipeline queue, and an event of no known run is counted as `unrouted`. After each batch the
flow control is told, so back-pressure is decided in one place (pipeline/flow.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from logira.model.kernel import KernelEvent
from logira.pipeline.flow import FlowControl


class Inlet(Protocol):
    """What the router feeds: a run pipeline's queue."""

    def enqueue(self, ev: KernelEvent) -> None: ...

    def __len__(self) -> int: ...


class Router:
    def __init__(self, flow: FlowControl) -> None:
        self.flow = flow
        self.unrouted = 0  # events whose run cgroup is no active run (e.g. the tail of an ended run)
        self.lost = 0  # events lost in user space by runs that have ended (status `queue`)
        self._by_cg: dict[int, Inlet] = {}

    def add(self, cg_id: int, inlet: Inlet) -> None:
        self._by_cg[cg_id] = inlet
        self.flow.watch(inlet)

    def remove(self, cg_id: int) -> None:
        inlet = self._by_cg.pop(cg_id, None)
        if inlet is not None:
            self.flow.unwatch(inlet)

    def route(self, events: Sequence[KernelEvent]) -> None:
        """The source's batch handler: each event to its run, then let flow control decide."""
        get = self._by_cg.get
        for ev in events:
            inlet = get(ev.run_cgroup_id)
            if inlet is None:
                self.unrouted += 1
            else:
                inlet.enqueue(ev)
        self.flow.check()
