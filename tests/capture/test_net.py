"""Real-BPF tests of the network domain (bpf/net.bpf.c): real sockets, exact records.

Peers (listeners, receivers) run in the test process, outside the tracked cgroup, so only
the workload's side is recorded. The glibc resolver test runs in a private mount+net
namespace with its own resolv.conf and a tiny DNS responder on 127.0.0.1:53 or [::1]:53.
Workloads that need exact syscalls (sendmmsg, unmapped arguments) are small C programs.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import sys
import textwrap
import threading
import time

import pytest

from logira.model.kernel import NetOp

pytestmark = pytest.mark.usefixtures("require_bpf")

PY = sys.executable


CONN_OPS = ("established", "close")  # TCP state-change records: their own tests below


def net_events(tracked, pid: int | None = None, **match) -> list[NetOp]:
    evs = [e for e in tracked.events() if isinstance(e, NetOp)]
    if "op" not in match:
        evs = [e for e in evs if e.op not in CONN_OPS]
    if pid is not None:
        evs = [e for e in evs if e.pid == pid]
    return [e for e in evs if all(getattr(e, k) == v for k, v in match.items())]


def run_py(tracked, code: str, *args: str, user=None):
    done = tracked.run([PY, "-c", textwrap.dedent(code), *args], user=user)
    assert done.returncode == 0, done.stderr
    done.stdout = done.stdout.decode()
    return done


def dns_query(name: str, qtype: int = 1) -> bytes:
    out = bytes.fromhex("abcd01000001000000000000")
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0" + qtype.to_bytes(2, "big") + b"\0\1"


def free_port(family: int = socket.AF_INET, host: str = "127.0.0.1") -> int:
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


NONBLOCK_CONNECT = """
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam)
s.setblocking(False)
print(s.connect_ex((sys.argv[1], int(sys.argv[2]))))
"""


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_nonblocking_connect_in_progress(tracked, family, host):
    with socket.socket(family) as lsn:
        lsn.bind((host, 0))
        lsn.listen()
        port = lsn.getsockname()[1]
        done = run_py(tracked, NONBLOCK_CONNECT, host, str(port))
    err = int(done.stdout.strip())
    assert err in (0, 115)
    (ev,) = net_events(tracked, done.pid, op="connect")
    assert (ev.family, ev.proto, ev.dst_ip, ev.dst_port, ev.syscall, ev.ret) == (
        "inet6" if family == socket.AF_INET6 else "inet",
        "tcp",
        host,
        port,
        "connect",
        -err,
    )
    assert (ev.src_ip, ev.unix_path, ev.dns_qname) == ("", "", "")


def test_refused_connect_as_unprivileged_user(tracked, test_user):
    port = free_port()  # bound then closed: nothing listens there
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
        user=test_user,
    )
    assert done.stdout.strip() == "refused"
    (ev,) = net_events(tracked, done.pid, op="connect")
    assert (ev.dst_ip, ev.dst_port, ev.proto, ev.ret) == ("127.0.0.1", port, "tcp", -111)
    assert (ev.uid, ev.gid) == (test_user.uid, test_user.gid)


def test_unix_connect_path_and_abstract(tracked, world_tmp):
    path = str(world_tmp / "peer.sock")
    abstract = f"logira-h3-{secrets.token_hex(4)}"
    with socket.socket(socket.AF_UNIX) as a, socket.socket(socket.AF_UNIX) as b:
        a.bind(path)
        a.listen()
        b.bind("\0" + abstract)
        b.listen()
        done = run_py(
            tracked,
            """
            import socket, sys
            for addr in sys.argv[1:]:
                s = socket.socket(socket.AF_UNIX)
                s.connect(addr.replace("@", "\\0", 1))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            print(s.connect_ex("/nonexistent/logira-h3.sock"))
            """,
            path,
            "@" + abstract,
        )
    assert done.stdout.strip() == "2"
    got = [(e.family, e.proto, e.unix_path, e.ret) for e in net_events(tracked, done.pid, op="connect")]
    assert got == [
        ("unix", "unix", path, 0),
        ("unix", "unix", "@" + abstract, 0),
        ("unix", "unix", "/nonexistent/logira-h3.sock", -2),
    ]


def test_udp_sendto_once_per_destination(tracked):
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as r1,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as r2,
    ):
        r1.bind(("127.0.0.1", 0))
        r2.bind(("127.0.0.1", 0))
        p1, p2 = r1.getsockname()[1], r2.getsockname()[1]
        done = run_py(
            tracked,
            """
            import socket, sys
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for _ in range(20):
                u.sendto(b"0123456789", ("127.0.0.1", int(sys.argv[1])))
            u.sendmsg([b"abc", b"de"], [], 0, ("127.0.0.1", int(sys.argv[2])))
            """,
            str(p1),
            str(p2),
        )
    sends = net_events(tracked, done.pid, op="send")
    got = [(e.family, e.proto, e.dst_ip, e.dst_port, e.syscall, e.ret, e.bytes) for e in sends]
    assert got == [
        ("inet", "udp", "127.0.0.1", p1, "sendto", 10, 10),
        ("inet", "udp", "127.0.0.1", p2, "sendmsg", 5, 5),
    ]


def test_dns_sendto_every_query_reported(tracked):
    # port 53 is never deduplicated: each query carries a different name
    done = run_py(
        tracked,
        """
        import socket, sys
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for q in sys.argv[1:-1]:
            u.sendto(bytes.fromhex(q), ("127.0.0.1", 53))
        # a query cut into three iovecs still yields its name
        q = bytes.fromhex(sys.argv[-1])
        u.sendmsg([q[:12], q[12:20], q[20:]], [], 0, ("127.0.0.1", 53))
        """,
        dns_query("a.example.test").hex(),
        dns_query("b.example.test", 28).hex(),
        dns_query("a.example.test", 16).hex(),
        dns_query("split.example.test", 28).hex(),
    )
    got = [(e.dst_ip, e.dst_port, e.dns_qname, e.dns_qtype) for e in net_events(tracked, done.pid, op="send")]
    assert got == [
        ("127.0.0.1", 53, "a.example.test", 1),
        ("127.0.0.1", 53, "b.example.test", 28),
        ("127.0.0.1", 53, "a.example.test", 16),
        ("127.0.0.1", 53, "split.example.test", 28),
    ]


def test_connected_udp_53_send_write_and_no_stale_fd(tracked, world_tmp):
    q = dns_query("conn.example.test")
    done = run_py(
        tracked,
        """
        import os, socket, sys
        q = bytes.fromhex(sys.argv[1])
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.connect(("127.0.0.1", 53))
        fd = c.fileno()
        c.send(q)
        try:
            os.write(fd, q)
        except ConnectionRefusedError:  # ICMP port unreachable from the first query
            os.write(fd, q)
        c.close()
        # the same fd number, now a plain file: writing a query-shaped buffer is no send
        f = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o600)
        assert f == fd, (f, fd)
        os.write(f, q)
        """,
        q.hex(),
        str(world_tmp / "not-a-socket"),
    )
    evs = net_events(tracked, done.pid)
    got = [(e.op, e.proto, e.dst_ip, e.dst_port, e.syscall, e.dns_qname) for e in evs]
    assert got[0] == ("connect", "udp", "127.0.0.1", 53, "connect", "")
    assert got[1] == ("send", "udp", "127.0.0.1", 53, "sendto", "conn.example.test")
    assert set(got[2:]) == {("send", "udp", "127.0.0.1", 53, "write", "conn.example.test")}
    assert all(e.ret in (len(q), -111) for e in evs[1:])


RESPONDER = r"""
import socket, sys
host = sys.argv[2]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, 53))
open(sys.argv[1], "w").write("ready")
while True:
    q, peer = s.recvfrom(512)
    i = 12
    while q[i]:
        i += q[i] + 1
    qtype = q[i + 1 : i + 3]
    question = q[12 : i + 5]
    ans = b""
    if qtype == b"\0\1":  # A 192.0.2.7
        ans = b"\xc0\x0c\0\1\0\1\0\0\0\x3c\0\4" + bytes([192, 0, 2, 7])
    hdr = q[:2] + b"\x81\x80" + b"\0\1" + (b"\0\1" if ans else b"\0\0") + b"\0\0\0\0"
    s.sendto(hdr + question + ans, peer)
"""

RESOLVE_SH = r"""
set -e
ip link set lo up
mount --bind "$1/resolv.conf" /etc/resolv.conf
python3 "$1/responder.py" "$1/ready" "$2" &
for _ in $(seq 500); do [ -s "$1/ready" ] && break; sleep 0.01; done
getent ahosts example.test
kill $!
"""


@pytest.mark.parametrize(("family", "server"), [("inet", "127.0.0.1"), ("inet6", "::1")])
def test_glibc_resolver_qname_via_connected_udp(tracked, tmp_path, family, server):
    if not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs unshare (util-linux) and ip (iproute2)")
    (tmp_path / "resolv.conf").write_text(f"nameserver {server}\noptions timeout:2 attempts:1\n")
    (tmp_path / "responder.py").write_text(RESPONDER)
    done = tracked.run(["unshare", "-mn", "sh", "-c", RESOLVE_SH, "sh", str(tmp_path), server], timeout=20)
    assert done.returncode == 0, done.stderr
    assert b"192.0.2.7" in done.stdout
    evs = [e for e in net_events(tracked) if e.comm == "getent"]
    (conn,) = [e for e in evs if e.op == "connect" and e.dst_port == 53]
    assert (conn.family, conn.proto, conn.dst_ip, conn.ret) == (family, "udp", server, 0)
    queries = [e for e in evs if e.op == "send"]
    assert queries, evs
    assert {(e.family, e.dst_ip, e.dst_port, e.proto, e.dns_qname) for e in queries} == {
        (family, server, 53, "udp", "example.test")
    }
    # glibc sends A and AAAA together with sendmmsg on the connected socket (no address)
    assert {(e.syscall, e.dns_qtype) for e in queries} >= {("sendmmsg", 1), ("sendmmsg", 28)}
    assert all(e.bytes == 30 and e.ret >= 1 for e in queries)


def test_tcp_listener_bind_listen_accept(tracked):
    port = free_port()
    client: dict[str, tuple] = {}

    def connect_when_listening() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                    client["addr"] = c.getsockname()
                    c.recv(1)
                    return
            except ConnectionRefusedError:
                time.sleep(0.02)

    t = threading.Thread(target=connect_when_listening, daemon=True)
    t.start()
    done = run_py(
        tracked,
        """
        import socket, sys
        l = socket.socket()
        l.bind(("127.0.0.1", int(sys.argv[1])))
        l.listen()
        s, peer = l.accept()
        s.close()
        print(peer[1])
        """,
        str(port),
    )
    t.join(5)
    assert client["addr"][1] == int(done.stdout)
    evs = net_events(tracked, done.pid)
    got = [(e.op, e.family, e.proto, e.src_ip, e.src_port, e.dst_ip, e.dst_port, e.ret > 0) for e in evs]
    assert got == [
        ("bind", "inet", "tcp", "127.0.0.1", port, "", 0, False),
        ("listen", "inet", "tcp", "127.0.0.1", port, "", 0, False),
        ("accept", "inet", "tcp", "127.0.0.1", port, "127.0.0.1", client["addr"][1], True),
    ]
    assert [e.syscall for e in evs] == ["bind", "listen", "accept4"]


def test_bind_port_zero_reports_chosen_port_and_unix_listener(tracked):
    name = f"logira-h3-{secrets.token_hex(4)}"
    done = run_py(
        tracked,
        """
        import socket, sys
        l = socket.socket(socket.AF_INET6)
        l.bind(("::1", 0))
        print(l.getsockname()[1])
        u = socket.socket(socket.AF_UNIX)
        u.bind("\\0" + sys.argv[1])
        u.listen()
        """,
        name,
    )
    port = int(done.stdout)
    got = [
        (e.op, e.family, e.proto, e.src_ip, e.src_port, e.unix_path) for e in net_events(tracked, done.pid)
    ]
    assert got == [
        ("bind", "inet6", "tcp", "::1", port, ""),
        ("bind", "unix", "unix", "", 0, "@" + name),
        ("listen", "unix", "unix", "", 0, "@" + name),
    ]


def test_tcp_fast_open_is_a_connect(tracked):
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen()
        port = lsn.getsockname()[1]
        done = run_py(
            tracked,
            """
            import socket, sys
            c = socket.socket()
            print(c.sendto(b"hello", socket.MSG_FASTOPEN, ("127.0.0.1", int(sys.argv[1]))))
            """,
            str(port),
        )
    (ev,) = net_events(tracked, done.pid, op="connect")
    assert (ev.proto, ev.dst_ip, ev.dst_port, ev.syscall, ev.ret) == ("tcp", "127.0.0.1", port, "sendto", 5)


def test_untracked_cgroup_records_nothing(tracked, untracked):
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen()
        port = lsn.getsockname()[1]
        code = NONBLOCK_CONNECT + "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        code += "u.sendto(b'x', ('127.0.0.1', 53))\n"
        other = untracked.run([PY, "-c", code, "127.0.0.1", str(port)])
        mine = run_py(tracked, code, "127.0.0.1", str(port))
    assert other.returncode == 0
    # the tracked twin proves the workload does produce records
    assert [e.op for e in net_events(tracked, mine.pid)] == ["connect", "send"]
    time.sleep(0.05)
    assert untracked.events() == []
    assert not [e for e in tracked.events() if getattr(e, "pid", None) == other.pid]


SENDMMSG_C = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define N 300
static struct mmsghdr m[N];
static struct iovec iov[N];
static struct sockaddr_in dst[N];
static unsigned char bufs[N][64];

/* a DNS query for name (labels separated by '.') into b; returns its length */
static int query(unsigned char *b, const char *name) {
    int n = 12, start;
    memset(b, 0, 12);
    b[0] = 0x42; b[2] = 1; b[5] = 1;
    while (*name) {
        start = n++;
        while (*name && *name != '.') b[n++] = *name++;
        b[start] = n - start - 1;
        if (*name) name++;
    }
    b[n++] = 0; b[n++] = 0; b[n++] = 1; b[n++] = 0; b[n++] = 1;
    return n;
}

int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    for (int i = 0; i < N; i++) {
        int port = atoi(argv[1]), len = 7;
        if (i == 250) port = atoi(argv[2]), len = 9;
        memset(bufs[i], 'x', sizeof bufs[i]);
        if (i >= 100 && i < 103) {
            char name[32];
            snprintf(name, sizeof name, "m%d.example.test", i);
            len = query(bufs[i], name);
            port = 53;
        }
        dst[i].sin_family = AF_INET;
        dst[i].sin_port = htons(port);
        dst[i].sin_addr.s_addr = htonl(0x7f000001);
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = len;
        m[i].msg_hdr.msg_name = &dst[i];
        m[i].msg_hdr.msg_namelen = sizeof dst[i];
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    printf("%d\n", sendmmsg(s, m, N, 0));
    return 0;
}
"""


def test_sendmmsg_every_message_inspected(tracked, cc):
    exe = cc.source(SENDMMSG_C, "h3_sendmmsg")
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ra,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rb,
    ):
        ra.bind(("127.0.0.1", 0))
        rb.bind(("127.0.0.1", 0))
        pa, pb = ra.getsockname()[1], rb.getsockname()[1]
        done = tracked.run([str(exe), str(pa), str(pb)])
    assert done.returncode == 0 and done.stdout.strip() == b"300"
    got = [
        (e.dst_port, e.syscall, e.ret, e.bytes, e.dns_qname) for e in net_events(tracked, done.pid, op="send")
    ]
    assert got == [
        (pa, "sendmmsg", 300, 7, ""),
        (53, "sendmmsg", 300, 35, "m100.example.test"),
        (53, "sendmmsg", 300, 35, "m101.example.test"),
        (53, "sendmmsg", 300, 35, "m102.example.test"),
        (pb, "sendmmsg", 300, 9, ""),
    ]


def test_sendmmsg_1024_dns_queries_all_recorded(tracked, cc, probes):
    # the largest batch the kernel accepts: 1024 pending records at once, none lost
    src = SENDMMSG_C.replace("#define N 300", "#define N 1024").replace("i >= 100 && i < 103", "1")
    exe = cc.source(src, "h3_sendmmsg_dns")
    before = probes.drop_counts().get("net_send", 0)
    done = tracked.run([str(exe), "9", "9"])
    assert done.returncode == 0 and done.stdout.strip() == b"1024"
    names = [e.dns_qname for e in net_events(tracked, done.pid, op="send")]
    assert names == [f"m{i}.example.test" for i in range(1024)]
    assert probes.drop_counts().get("net_send", 0) == before


EDGE_C = r"""
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long pg = sysconf(_SC_PAGESIZE);
    /* 1: a 24-byte sockaddr_in6 (no scope id) ending exactly at an unmapped page */
    char *two = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(two + pg, pg);
    struct sockaddr_in6 *a6 = (void *)(two + pg - 24);
    memset(a6, 0, 24);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(atoi(argv[1]));
    inet_pton(AF_INET6, "::1", &a6->sin6_addr);
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    printf("%d ", connect(s, (void *)a6, 24));
    /* 2: a sockaddr_in in a file page this process never touched (not yet mapped) */
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    a4.sin_addr.s_addr = htonl(0x7f000001);
    int fd = open(argv[3], O_RDWR | O_CREAT | O_TRUNC, 0600);
    write(fd, &a4, sizeof a4);
    a4.sin_port = 0;
    write(fd, &a4, sizeof a4);
    void *m = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, 0);
    s = socket(AF_INET, SOCK_STREAM, 0);
    printf("%d ", connect(s, m, sizeof a4));
    /* 3: bind with the address in a second, fresh mapping of that file */
    char *m2 = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, 0);
    s = socket(AF_INET, SOCK_DGRAM, 0);
    socklen_t alen = sizeof a4;
    printf("%d ", bind(s, (void *)(m2 + sizeof a4), sizeof a4));
    getsockname(s, (void *)&a4, &alen);
    printf("%d\n", ntohs(a4.sin_port));
    return 0;
}
"""


def test_connect_address_at_page_edge_and_not_yet_mapped(tracked, cc, world_tmp):
    exe = cc.source(EDGE_C, "h3_edge")
    with socket.socket(socket.AF_INET6) as l6, socket.socket() as l4:
        l6.bind(("::1", 0))
        l6.listen()
        l4.bind(("127.0.0.1", 0))
        l4.listen()
        p6, p4 = l6.getsockname()[1], l4.getsockname()[1]
        done = tracked.run([str(exe), str(p6), str(p4), str(world_tmp / "addr.bin")])
    c6, c4, b, bport = done.stdout.split()
    assert done.returncode == 0 and (c6, c4, b) == (b"0", b"0", b"0")
    got = [(e.family, e.dst_ip, e.dst_port, e.ret) for e in net_events(tracked, done.pid, op="connect")]
    assert got == [("inet6", "::1", p6, 0), ("inet", "127.0.0.1", p4, 0)]
    (bind,) = net_events(tracked, done.pid, op="bind")
    assert (bind.proto, bind.src_ip, bind.src_port, bind.ret) == ("udp", "127.0.0.1", int(bport), 0)


UNMAPPED_SEND_C = r"""
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* Everything the probe reads at sys_enter lives in file pages this process never touched:
 * the tracepoint cannot fault them in, the kernel's own copy does. */
int main(int argc, char **argv) {
    long pg = sysconf(_SC_PAGESIZE);
    static const unsigned char q[] = "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                                     "\x05" "lazy1" "\x07" "example" "\x04" "test" "\x00\x00\x01\x00\x01";
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    a.sin_addr.s_addr = htonl(0x7f000001);
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    char page[4096] = {0};
    memcpy(page, &a, sizeof a);
    memcpy(page + 64, q, sizeof q - 1);
    write(fd, page, sizeof page);
    /* page 2: a msghdr for sendmsg pointing at resident memory, except the query (page 1) */
    static unsigned char q2[sizeof q];
    memcpy(q2, q, sizeof q);
    q2[17] = '2';
    static struct iovec iov;
    iov.iov_base = q2;
    iov.iov_len = sizeof q - 1;
    static struct sockaddr_in a2;
    a2 = a;
    struct msghdr mh = {.msg_name = &a2, .msg_namelen = sizeof a2, .msg_iov = &iov, .msg_iovlen = 1};
    memset(page, 0, sizeof page);
    memcpy(page, &mh, sizeof mh);
    write(fd, page, sizeof page);
    char *m = mmap(NULL, 2 * pg, PROT_READ, MAP_PRIVATE, fd, 0);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    printf("%zd ", sendto(s, m + 64, sizeof q - 1, 0, (void *)m, sizeof a));
    printf("%zd\n", sendmsg(s, (void *)(m + pg), 0));
    return 0;
}
"""


def test_send_arguments_not_yet_mapped_are_read_at_exit(tracked, cc, world_tmp):
    exe = cc.source(UNMAPPED_SEND_C, "h3_unmapped_send")
    done = tracked.run([str(exe), str(world_tmp / "args.bin")])
    assert done.returncode == 0 and done.stdout.strip() == b"36 36"
    got = [
        (e.dst_ip, e.dst_port, e.syscall, e.ret, e.dns_qname)
        for e in net_events(tracked, done.pid, op="send")
    ]
    assert got == [
        ("127.0.0.1", 53, "sendto", 36, "lazy1.example.test"),
        ("127.0.0.1", 53, "sendmsg", 36, "lazy2.example.test"),
    ]


DNS_FD_LIFECYCLE = """
import os, socket, sys, time
def wait(p):
    while not os.path.exists(p):
        time.sleep(0.005)
d = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", 53))
open(d + "/connected.tmp", "w").write(f"{os.getpid()} {s.fileno()}")
os.rename(d + "/connected.tmp", d + "/connected")
wait(d + "/go")
s.close()
open(d + "/closed", "w").close()
wait(d + "/go2")
"""


def _dns_fd_entry(probes, tgid: int, fd: int) -> bytes | None:
    import struct

    from logira.probes import libbpf

    obj = next(o.obj for o in probes._objs if o.obj.has_map("dns_fds"))
    return libbpf.map_lookup(obj.map("dns_fds").fd, struct.pack("<Ii", tgid, fd), 32)


def _close_forgets(run, probes, tmp_path) -> None:
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(done=run(DNS_FD_LIFECYCLE, str(tmp_path))))
    t.start()
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "connected").exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        pid, fd = map(int, (tmp_path / "connected").read_text().split())
        entry = _dns_fd_entry(probes, pid, fd)
        assert entry is not None and entry[8:12] == (2).to_bytes(2, "little") + (53).to_bytes(2, "little")
        (tmp_path / "go").touch()
        while not (tmp_path / "closed").exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _dns_fd_entry(probes, pid, fd) is None
    finally:
        (tmp_path / "go").touch()
        (tmp_path / "go2").touch()
        t.join(20)
    assert result["done"].returncode == 0


def test_close_forgets_the_remembered_dns_fd(tracked, probes, tmp_path):
    # connect() of a UDP socket to port 53 remembers (tgid, fd); close() must forget it
    # (on x86 the raw sys_enter program of exec.bpf.c does it, see bpf/dnsfds.h)
    import platform

    attached = {prog.name for o in probes.probes._objs for prog, _ in o.points}
    if "exec" in probes.probes.domains and platform.machine() == "x86_64":
        assert "net_enter_close" not in attached  # no tracepoint program on every close()
    _close_forgets(lambda *a: run_py(tracked, *a), probes.probes, tmp_path)


def test_close_forgets_the_dns_fd_without_the_exec_domain(require_bpf, cgroup_parent, tmp_path):
    # without exec.bpf.o net's own sys_enter_close program is attached and does the cleanup
    import os
    import subprocess

    from logira import cgroup2
    from logira.probes.loader import ProbeConfig, Probes

    p = Probes(ProbeConfig(exec=False, file=False, net=True))
    cg = cgroup2.create(cgroup_parent, f"close-{secrets.token_hex(3)}")
    procs = os.fsencode(cg / "cgroup.procs")

    def enter() -> None:
        fd = os.open(procs, os.O_WRONLY)
        os.write(fd, b"0\n")
        os.close(fd)

    def run(code: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [PY, "-c", textwrap.dedent(code), *args], preexec_fn=enter, timeout=20, check=False
        )

    try:
        p.load()
        assert "net_enter_close" in {prog.name for o in p._objs for prog, _ in o.points}
        p.track(cgroup2.cgroup_id(cg))
        _close_forgets(run, p, tmp_path)
    finally:
        p.close()
        cgroup2.kill_all(cg)
        cgroup2.remove(cg)
