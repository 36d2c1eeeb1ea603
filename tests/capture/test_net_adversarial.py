"""Real-BPF adversarial tests of the network domain: the agent tries to make a connect vanish
or be recorded with a peer it did not contact.

Peers (listeners) run in the test process, outside the tracked cgroup. A "full" listener
(backlog 0 with one connection already queued) drops every further SYN, so a connect to it
blocks until its SO_SNDTIMEO: that is how the workloads hold a connect in flight on purpose.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from logira.model.kernel import NetOp

pytestmark = pytest.mark.usefixtures("require_bpf")


def connects(tracked, pid: int) -> list[NetOp]:
    return [e for e in tracked.events() if isinstance(e, NetOp) and e.pid == pid and e.op == "connect"]


@contextmanager
def full_listener() -> Iterator[int]:
    """A loopback listener whose accept queue is full: connects to it block in SYN_SENT."""
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(0)
        port = lsn.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            yield port


def test_thread_storm_cannot_evict_a_blocked_connect(tracked, cc, probes):
    # 5000 threads of the agent enter (and block in) connects while one thread's connect is
    # in flight: more than any shared table held. The blocked connect is recorded, exactly,
    # and every storm connect is either recorded or counted as a drop.
    exe = cc("net_thread_storm", "-pthread")
    n = 5000
    before = probes.drop_counts().get("net_connect", 0)
    with full_listener() as port:
        done = tracked.run([str(exe), str(n), str(port)], timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode().split()
    assert out[:3] == ["victim", "-1", "115"] and out[-1] == str(n)  # EINPROGRESS after SO_SNDTIMEO
    evs = connects(tracked, done.pid)
    dropped = probes.drop_counts().get("net_connect", 0) - before
    assert len(evs) + dropped == n + 1
    assert dropped == 0  # per-task storage: nothing to evict
    assert all((e.dst_ip, e.dst_port, e.ret, e.peer_verified) == ("127.0.0.1", port, -115, True) for e in evs)
    assert len({e.tid for e in evs}) == n + 1


def test_thread_storm_cannot_evict_a_blocked_dns_send(tracked, cc, probes):
    # the same storm while one thread is blocked in send() of a DNS query on a TCP socket
    # connected to a resolver's port 53 (its send buffer full: the server never reads)
    exe = cc("net_thread_storm", "-pthread")
    n = 5000
    before = {k: probes.drop_counts().get(k, 0) for k in ("net_send", "net_connect")}
    with socket.socket() as srv, full_listener() as port:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by the accepted socket
        srv.bind(("127.0.0.78", 53))
        srv.listen()
        held: list[socket.socket] = []
        t = threading.Thread(target=lambda: held.append(srv.accept()[0]), daemon=True)
        t.start()
        done = tracked.run([str(exe), str(n), str(port), "127.0.0.78"], timeout=60)
        t.join(5)
        for c in held:
            c.close()
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode().split()
    assert out[:3] == ["victim", "-1", "11"] and out[-1] == str(n)  # EAGAIN after SO_SNDTIMEO
    sends = [e for e in tracked.events() if isinstance(e, NetOp) and e.pid == done.pid and e.op == "send"]
    (victim,) = [e for e in sends if e.dns_qname == "victim.example.test"]
    assert (victim.dst_ip, victim.dst_port, victim.proto, victim.ret, victim.peer_verified) == (
        "127.0.0.78", 53, "tcp", -11, True
    )
    dropped = {k: probes.drop_counts().get(k, 0) - v for k, v in before.items()}
    assert len(connects(tracked, done.pid)) + dropped["net_connect"] == n + 1  # the DNS connect too
    assert dropped == {"net_send": 0, "net_connect": 0}


def test_connect_buffer_rewritten_while_blocked_records_the_real_peer(tracked, cc, world_tmp):
    # the sockaddr is in a page the probe cannot read at enter; while connect blocks, another
    # thread rewrites it to 10.9.9.9:4444. The kernel connected to 127.0.0.1:<port>.
    exe = cc("net_peer_race", "-pthread")
    with full_listener() as port:
        done = tracked.run([str(exe), "late", str(port), "4444", str(world_tmp / "sa.bin")])
    assert done.returncode == 0 and done.stdout.strip() == b"-1", done.stderr
    (ev,) = connects(tracked, done.pid)
    assert (ev.dst_ip, ev.dst_port, ev.ret, ev.peer_verified) == ("127.0.0.1", port, -115, True)
    assert (ev.peer_mismatch, ev.claimed_dst_ip, ev.claimed_dst_port) == ("socket", "10.9.9.9", 4444)


def test_connect_buffer_flipped_by_a_racing_thread_is_recorded_as_connected(tracked, cc):
    # a thread flips the port in the (resident) buffer between A and B as fast as it can while
    # the main thread connects: whichever value the probe read at enter, the recorded peer is
    # the one the kernel connected to (getpeername), and a differing read is flagged.
    exe = cc("net_peer_race", "-pthread")
    n = 300
    with socket.socket() as a, socket.socket() as b:
        for s in (a, b):
            s.bind(("127.0.0.1", 0))
            s.listen(4096)
        pa, pb = a.getsockname()[1], b.getsockname()[1]
        done = tracked.run([str(exe), "flip", str(pa), str(pb), str(n)], timeout=60)
    assert done.returncode == 0, done.stderr
    real = [int(x) for x in done.stdout.split()]
    assert len(real) == n and set(real) <= {pa, pb}
    evs = connects(tracked, done.pid)
    assert [e.dst_port for e in evs] == real
    for e in evs:
        assert e.peer_verified and e.ret == 0
        # flagged exactly when what the probe read differs from what the kernel used
        assert (e.peer_mismatch == "socket") == (e.claimed_dst_port not in (0, e.dst_port))
        assert e.peer_mismatch in ("", "socket")
