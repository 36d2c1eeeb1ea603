"""Real-BPF tests of TCP connection outcome and volume (tp_btf/inet_sock_set_state).

The peer runs in the test process (outside the tracked cgroup); the workload's side is
recorded: an `established` record when the handshake completes, and a `close` record at
TCP_CLOSE with the outcome, bytes sent/received (tcp_sock counters) and the duration.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from logira.model.kernel import NetOp

pytestmark = pytest.mark.usefixtures("require_bpf")


ORDER = {"connect": 0, "established": 1, "close": 2}


def conn_events(tracked, pid: int) -> list[NetOp]:
    """connect, established, close of the process. On loopback the handshake completes inside
    connect(), so the established record (softirq) is emitted before the connect record (at
    sys_exit): the ring order is the kernel's; this sorts by op for the assertions."""
    evs = tracked.events(wait_for=lambda e: isinstance(e, NetOp) and e.pid == pid and e.op == "close")
    return sorted((e for e in evs if isinstance(e, NetOp) and e.pid == pid), key=lambda e: ORDER.get(e.op, 3))


def run_py(tracked, code: str, *args: str):
    done = tracked.run([sys.executable, "-c", textwrap.dedent(code), *args])
    assert done.returncode == 0, done.stderr
    return done


class Server:
    """Accepts one connection, receives everything until EOF, answers with `reply` bytes
    first; with reset=True it resets the connection instead (SO_LINGER 0) after reading."""

    def __init__(self, reply: int = 0, reset: bool = False) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.got = 0
        self.reply, self.reset = reply, reset
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        c, _ = self.sock.accept()
        with c:
            if self.reply:
                c.sendall(b"r" * self.reply)
            if self.reset:
                c.recv(1)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            while data := c.recv(65536):
                self.got += len(data)

    def close(self) -> None:
        self.thread.join(10)
        self.sock.close()


CLIENT = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
got = 0
while got < int(sys.argv[3]):
    got += len(s.recv(65536))
s.sendall(b"x" * int(sys.argv[2]))
s.close()
print(got)
"""


def test_established_and_close_with_bytes_sent_and_received(tracked):
    srv = Server(reply=5000)
    try:
        done = run_py(tracked, CLIENT, str(srv.port), "100000", "5000")
    finally:
        srv.close()
    assert int(done.stdout) == 5000 and srv.got == 100000
    evs = conn_events(tracked, done.pid)
    assert [e.op for e in evs] == ["connect", "established", "close"]
    connect, est, close = evs
    for e in (est, close):
        assert (e.dst_ip, e.dst_port, e.src_ip, e.proto) == ("127.0.0.1", srv.port, "127.0.0.1", "tcp")
        assert e.src_port == est.src_port != 0 and (e.pid, e.tid) == (connect.pid, connect.tid)
        assert e.run_cgroup_id == tracked.id
    assert est.outcome == "established"
    assert close.outcome == "closed"
    assert (close.bytes, close.bytes_received) == (100000, 5000)
    # an invariant of the record (the handshake is part of the connection), not a speed check
    handshake, lifetime = close.connect_ns, close.duration_ns
    assert lifetime >= handshake > 0


def test_refused_connect_closes_as_refused(tracked):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: the SYN gets a RST
    done = run_py(
        tracked,
        """
        import socket, sys
        try:
            socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        except ConnectionRefusedError:
            print("refused")
        """,
        str(port),
    )
    assert done.stdout.strip() == b"refused"
    evs = conn_events(tracked, done.pid)
    assert [(e.op, e.ret) for e in evs] == [("connect", -111), ("close", -111)]
    close = evs[1]
    assert (close.outcome, close.dst_port, close.bytes, close.bytes_received) == ("refused", port, 0, 0)


def test_reset_by_the_peer(tracked):
    srv = Server(reset=True)
    try:
        done = run_py(
            tracked,
            """
            import socket, sys, time
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
            s.sendall(b"hello")
            try:
                while s.recv(100):
                    pass
                print("eof")
            except ConnectionResetError:
                print("reset")
            """,
            str(srv.port),
        )
    finally:
        srv.close()
    assert done.stdout.strip() == b"reset"
    close = [e for e in conn_events(tracked, done.pid) if e.op == "close"]
    assert [(e.outcome, e.bytes, e.ret) for e in close] == [("reset", 5, -104)]


def test_nonblocking_connect_outcome_follows_einprogress(tracked):
    srv = Server()
    try:
        done = run_py(
            tracked,
            """
            import select, socket, sys
            s = socket.socket()
            s.setblocking(False)
            print(s.connect_ex(("127.0.0.1", int(sys.argv[1]))))
            select.select([], [s], [], 5)
            s.setblocking(True)
            s.sendall(b"y" * 777)
            s.close()
            """,
            str(srv.port),
        )
    finally:
        srv.close()
    evs = conn_events(tracked, done.pid)
    assert [e.op for e in evs] == ["connect", "established", "close"]
    assert evs[0].ret in (0, -115) and evs[2].outcome == "closed" and evs[2].bytes == 777


def test_accepted_connection_volume(tracked):
    port_box: dict[str, int] = {}
    ready = threading.Event()

    def client() -> None:
        ready.wait(10)
        with socket.create_connection(("127.0.0.1", port_box["port"])) as c:
            c.sendall(b"z" * 3000)
            c.shutdown(socket.SHUT_WR)
            while c.recv(65536):
                pass

    t = threading.Thread(target=client, daemon=True)
    t.start()
    code = """
    import os, socket, sys
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen()
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(l.getsockname()[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    s, _ = l.accept()
    got = 0
    while data := s.recv(65536):
        got += len(data)
    s.sendall(b"a" * 1234)
    s.close()
    """
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o777)
        path = os.path.join(d, "port")
        result: dict = {}
        runner = threading.Thread(target=lambda: result.update(done=run_py(tracked, code, path)))
        runner.start()
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)
        port_box["port"] = int(Path(path).read_text())  # listening: a connect now is queued
        ready.set()
        runner.join(20)
        t.join(10)
    done = result["done"]
    close = [e for e in conn_events(tracked, done.pid) if e.op == "close"]
    assert len(close) == 1
    assert (close[0].src_port, close[0].bytes, close[0].bytes_received, close[0].outcome) == (
        port_box["port"],
        1234,
        3000,  # data only: the peer's FIN, which counts one in tcp_sock.bytes_received, is not
        "closed",
    )
