"""Real-BPF tests: every way of sending a DNS name to port 53 yields the name.

The workload is one Python program that sends one query per spelling to a local resolver on
127.0.0.77:53 (UDP and TCP servers in the test process, outside the tracked cgroup); each
query carries its own name, so the test can say exactly which spelling was lost.
"""

from __future__ import annotations

import socket
import sys
import textwrap
import threading

import pytest

from logira.model.kernel import NetOp

pytestmark = pytest.mark.usefixtures("require_bpf")

HOST = "127.0.0.77"

WORKLOAD = r'''
import ctypes, os, socket, struct, sys, time
HOST = sys.argv[1]

def q(name, flags=0x0100, qdcount=1, qtype=1):
    out = struct.pack(">HHHHHH", 0x4242, flags, qdcount, 0, 0, 0)
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0" + struct.pack(">HH", qtype, 1)

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.connect((HOST, 53))
fd = u.fileno()
u.send(q("send.example.test"))
os.write(fd, q("write.example.test"))
m = q("writev.example.test")
os.writev(fd, [m[:5], b"", m[5:9], m[9:]])
u.sendmsg([b""] * 40 + [q("sendmsg-empties.example.test")])
u.sendmsg([bytes([c]) for c in q("sendmsg-bytes.example.test")])
u.send(q("qr-set.example.test", flags=0x8180))
u.send(q("qdcount-zero.example.test", qdcount=0))
two = q("first.example.test", qdcount=2) + b"\x06second\xc0\x12" + struct.pack(">HH", 28, 1)
u.send(two)
ptr = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\x07pointer\xc0\x1a" + b"\x00\x01\x00\x01"
ptr += b"\x07example\x04test\x00"  # the pointer's target, after the question
u.send(ptr)
m = q("pwritev2.example.test")
libc = ctypes.CDLL(None, use_errno=True)
iov = (ctypes.c_char_p * 2)()
class IOV(ctypes.Structure):
    _fields_ = [("base", ctypes.c_char_p), ("len", ctypes.c_size_t)]
vec = (IOV * 2)(IOV(m[:7], 7), IOV(m[7:], len(m) - 7))
n = libc.syscall(328, fd, vec, 2, ctypes.c_long(-1), ctypes.c_long(-1), 0)  # pwritev2(..., -1, 0)
assert n == len(m), (n, ctypes.get_errno())
d = os.dup(fd)
os.write(d, q("dup.example.test"))
un = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
un.sendto(q("sendto.example.test"), (HOST, 53))
# a child inherits the connected socket; the parent closes its copy first
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.read(r, 1)
    os.write(fd, q("inherited.example.test"))
    os._exit(0)
u.close()
os.close(d)
os.write(w, b"x")
os.waitpid(pid, 0)
t = socket.create_connection((HOST, 53))
m = q("tcp.example.test")
t.sendall(struct.pack(">H", len(m)) + m)
m = q("tcp-split.example.test")
t.sendall(struct.pack(">H", len(m)))
t.sendall(m)
print("ok")
'''

SPELLINGS = {
    "send.example.test": "sendto",
    "write.example.test": "write",
    "writev.example.test": "writev",
    "sendmsg-empties.example.test": "sendmsg",
    "sendmsg-bytes.example.test": "sendmsg",
    "qr-set.example.test": "sendto",
    "qdcount-zero.example.test": "sendto",
    "first.example.test": "sendto",
    "pointer.example.test": "sendto",
    "pwritev2.example.test": "pwritev2",
    "dup.example.test": "write",
    "sendto.example.test": "sendto",
    "inherited.example.test": "write",
    "tcp.example.test": "sendto",
    "tcp-split.example.test": "sendto",
}


class Resolver:
    """UDP and TCP listeners on HOST:53 that swallow what they get."""

    def __init__(self) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((HOST, 53))
        self.tcp = socket.socket()
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((HOST, 53))
        self.tcp.listen()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            while True:
                self.conns.append(self.tcp.accept()[0])
        except OSError:
            pass

    def close(self) -> None:
        self.tcp.shutdown(socket.SHUT_RDWR)  # wakes the accept thread
        for s in (self.udp, self.tcp, *self.conns):
            s.close()


@pytest.fixture
def resolver():
    r = Resolver()
    yield r
    r.close()


def test_every_send_path_to_port_53_yields_its_name(tracked, resolver):
    done = tracked.run([sys.executable, "-c", textwrap.dedent(WORKLOAD), HOST])
    assert done.returncode == 0 and done.stdout.strip() == b"ok", done.stderr
    evs = [e for e in tracked.events() if isinstance(e, NetOp) and e.op == "send" and e.dst_port == 53]
    got = {e.dns_qname: e for e in evs if e.dns_qname}
    # the one send without a name: tcp-split's 2-byte length prefix on its own
    assert [(e.proto, e.bytes) for e in evs if not e.dns_qname] == [("tcp", 2)]
    assert set(got) == set(SPELLINGS), sorted(set(SPELLINGS) - set(got))
    for name, syscall in SPELLINGS.items():
        e = got[name]
        assert (e.dst_ip, e.syscall) == (HOST, syscall), name
    assert got["qr-set.example.test"].dns_response is True
    assert got["first.example.test"].dns_qnames == ["first.example.test", "second.example.test"]
    assert got["first.example.test"].dns_qtype == 1
    assert got["tcp.example.test"].proto == "tcp" and got["tcp-split.example.test"].proto == "tcp"
    assert got["inherited.example.test"].pid != done.pid  # sent by the child
    assert all(e.peer_verified for e in evs if e.syscall != "sendto" or e.proto == "tcp")


def test_sendmsg_query_after_1023_empty_iovecs_is_read(tracked, resolver):
    # 1023 empty iovecs then the query: the whole array the kernel accepts is walked
    code = """
    import socket, struct, sys
    m = struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\\x04deep\\x07example\\x04test\\x00\\x00\\x01\\x00\\x01"
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.connect((sys.argv[1], 53))
    print(u.sendmsg([b""] * 1023 + [m]))
    """
    done = tracked.run([sys.executable, "-c", textwrap.dedent(code), HOST])
    assert done.returncode == 0, done.stderr
    (e,) = [e for e in tracked.events() if isinstance(e, NetOp) and e.op == "send"]
    assert (e.dns_qname, e.syscall, e.ret) == ("deep.example.test", "sendmsg", int(done.stdout))
