"""Back-pressure is one object: FlowControl pauses the source above `high`, resumes below `low`."""

from __future__ import annotations

import pytest

from logira.model.kernel import ProcFork
from logira.pipeline.flow import FlowControl
from logira.pipeline.router import Router


class Source:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


class Inlet(list):
    def enqueue(self, ev: object) -> None:
        self.append(ev)


def _ev(cg: int) -> ProcFork:
    return ProcFork(ts=1, mono_ns=1, cgroup_id=cg, run_cgroup_id=cg, pid=2, tid=2, ppid=1, uid=0, gid=0,
                    comm="x", child_pid=3)  # fmt: skip


def test_pause_above_high_and_resume_only_below_low() -> None:
    src, q = Source(), Inlet()
    flow = FlowControl(high=4, low=2)
    flow.attach(src)
    flow.watch(q)
    q.extend(range(4))
    flow.check()
    assert src.calls == [] and not flow.paused  # at high: not above it
    q.append(4)
    flow.check()
    flow.check()  # idempotent while paused
    assert src.calls == ["pause"] and flow.paused and flow.pauses == 1
    del q[:3]  # 2 left: not below low
    flow.check()
    assert src.calls == ["pause"]
    q.pop()
    flow.check()
    assert src.calls == ["pause", "resume"] and not flow.paused


def test_a_queue_that_goes_away_releases_the_source() -> None:
    src, q = Source(), Inlet(range(10))
    flow = FlowControl(high=4, low=2)
    flow.attach(src)
    flow.watch(q)
    flow.check()
    flow.unwatch(q)  # its run ended: nothing holds the source back any more
    assert src.calls == ["pause", "resume"]


def test_watermarks_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        FlowControl(high=2, low=2)


def test_router_routes_by_run_cgroup_and_counts_the_rest() -> None:
    src = Source()
    flow = FlowControl(high=3, low=2)
    flow.attach(src)
    router = Router(flow)
    a, b = Inlet(), Inlet()
    router.add(7, a)
    router.add(8, b)
    router.route([_ev(7), _ev(8), _ev(9), _ev(7), _ev(7), _ev(7)])
    assert (len(a), len(b), router.unrouted) == (4, 1, 1)
    assert src.calls == ["pause"]  # run 7 is above high after this batch
    router.remove(7)
    assert src.calls == ["pause", "resume"]
    router.route([_ev(7)])
    assert router.unrouted == 2
