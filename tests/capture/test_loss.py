"""Loss accounting, real BPF: with a stalled consumer and a tiny ring, every record the
kernel produced is either received or counted as a drop, exactly."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from logira import cgroup2
from logira.model.kernel import ProcExec, ProcExit, ProcFork
from logira.probes.loader import ProbeConfig, Probes
from logira.probes.ringbuf import RingReader

pytestmark = pytest.mark.bpf


@pytest.fixture
def own_cgroup(cgroup_parent: Path) -> Iterator[Path]:
    path = cgroup2.create(cgroup_parent, "loss-" + secrets.token_hex(3))
    yield path
    cgroup2.kill_all(path)
    cgroup2.remove(path)


def _run_in(cg: Path, argv: list[str]) -> subprocess.CompletedProcess:
    procs = os.fsencode(cg / "cgroup.procs")

    def enter() -> None:
        fd = os.open(procs, os.O_WRONLY)
        os.write(fd, b"0\n")
        os.close(fd)

    return subprocess.run(argv, preexec_fn=enter, capture_output=True, check=True, timeout=60)


def _capture(ring_bytes: int, cg: Path, argv: list[str]) -> tuple[list, Probes, RingReader, dict, dict]:
    p = Probes(ProbeConfig(file=False, net=False, ring_bytes=ring_bytes))
    p.load()
    got: list = []
    reader = RingReader(p, got.extend)
    p.track(cgroup2.cgroup_id(cg))
    try:
        _run_in(cg, argv)  # the consumer is stalled: nobody reads while this runs
        reader.drain()
        drops, emitted = p.drop_counts(), p.emitted_counts()
    finally:
        reader.stop()
        p.close()
    return got, p, reader, drops, emitted


def test_forced_loss_is_counted_exactly(own_cgroup, cc):
    n = 400
    wl = cc("exit_many")
    got, _p, reader, drops, emitted = _capture(4096, own_cgroup, [str(wl), str(n)])
    expected = {"exec": 1, "fork": n, "exit": n + 1}
    assert reader.decode_errors == 0
    assert sum(drops.values()) > 0
    assert reader.received == len(got) == sum(emitted.values())
    for kind, want in expected.items():
        assert emitted.get(kind, 0) + drops.get(kind, 0) == want, kind
    assert set(drops) | set(emitted) <= set(expected)
    counts = {
        "exec": sum(isinstance(e, ProcExec) for e in got),
        "fork": sum(isinstance(e, ProcFork) for e in got),
        "exit": sum(isinstance(e, ProcExit) for e in got),
    }
    assert counts == {k: emitted.get(k, 0) for k in expected}


def test_no_loss_with_a_large_ring(own_cgroup, cc):
    n = 1000
    wl = cc("exit_many")
    got, _p, reader, drops, emitted = _capture(4 << 20, own_cgroup, [str(wl), str(n)])
    assert drops == {}
    assert emitted == {"exec": 1, "fork": n, "exit": n + 1}
    assert reader.received == len(got) == 2 * n + 2
