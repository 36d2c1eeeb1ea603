"""RingReader.pause()/resume(): the daemon's back-pressure, on a real ring buffer.

While paused nothing is delivered (neither by the epoll fd nor by the drain timer) but the
kernel keeps the records; resume() delivers them, and drain() works while paused.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from logira import cgroup2
from logira.model.kernel import KernelEvent, ProcExec
from logira.probes.loader import ProbeConfig, Probes
from logira.probes.ringbuf import DRAIN_INTERVAL_S, RingReader


@pytest.fixture
def run_cgroup(require_bpf: None) -> Iterator[Path]:
    parent = cgroup2.find_cgroup2_mount() / f"logira-test-{secrets.token_hex(4)}"
    os.mkdir(parent, 0o755)
    run = cgroup2.create(parent, "pause")
    yield run
    cgroup2.kill_all(run)
    cgroup2.remove(run)
    cgroup2.remove(parent)


def _run_in(cg: Path, marker: str) -> None:
    procs = str(cg / "cgroup.procs")

    def enter() -> None:
        fd = os.open(procs, os.O_WRONLY)
        os.write(fd, b"0\n")
        os.close(fd)

    subprocess.run(["/bin/true", marker], preexec_fn=enter, check=True, timeout=10)


def _markers(events: list[KernelEvent]) -> list[str]:
    return [e.argv[1] for e in events if isinstance(e, ProcExec) and e.argv[:1] == ["/bin/true"]]


async def _settle() -> None:
    await asyncio.sleep(DRAIN_INTERVAL_S * 10)


async def test_pause_holds_records_in_the_ring_until_resume(run_cgroup: Path) -> None:
    probes = Probes(ProbeConfig(exec=True, file=False, net=False))
    probes.load()
    got: list[KernelEvent] = []
    reader = RingReader(probes, got.extend)
    try:
        probes.track(cgroup2.cgroup_id(run_cgroup))
        reader.start()
        _run_in(run_cgroup, "before")
        for _ in range(100):
            if _markers(got):
                break
            await asyncio.sleep(DRAIN_INTERVAL_S)
        assert _markers(got) == ["before"]

        reader.pause()
        reader.pause()  # idempotent
        _run_in(run_cgroup, "paused-1")
        await _settle()
        assert _markers(got) == ["before"], "a paused reader delivered records"

        reader.resume()
        for _ in range(100):
            if len(_markers(got)) == 2:
                break
            await asyncio.sleep(DRAIN_INTERVAL_S)
        assert _markers(got) == ["before", "paused-1"]

        reader.pause()
        _run_in(run_cgroup, "paused-2")
        await _settle()
        assert _markers(got) == ["before", "paused-1"]
        assert reader.drain() > 0  # an explicit drain still works while paused (run end)
        assert _markers(got) == ["before", "paused-1", "paused-2"]
        assert reader.paused
    finally:
        reader.stop()
        probes.untrack(cgroup2.cgroup_id(run_cgroup))
        probes.close()
