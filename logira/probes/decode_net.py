"""Net-domain records (bpf/net.bpf.c, kinds 32..47) -> `NetOp`.

One record layout serves every op (`struct net_rec`, 256 bytes, or 512 when it carries the
first bytes of a DNS query). The op comes from the kind; a TCP fast-open send is a
connect record. Offsets below mirror bpf/net.bpf.c; keep them in lock step.

The 112 bytes at offset 144 are a union: the unix path (AF_UNIX), what user memory named as
the peer (inet connect/send: `claim_*`), or the counters of a TCP connection
(established/close).
"""

from __future__ import annotations

import ipaddress
import struct

from logira.model.kernel import NetOp
from logira.probes.decode import Header
from logira.probes.dns import parse_message
from logira.probes.layout import HDR_SIZE

K_NET_CONNECT = 32
K_NET_SEND = 33
K_NET_BIND = 34
K_NET_LISTEN = 35
K_NET_ACCEPT = 36
K_NET_ESTABLISHED = 37
K_NET_CLOSE = 38

KIND_NAMES: dict[int, str] = {
    K_NET_CONNECT: "net_connect",
    K_NET_SEND: "net_send",
    K_NET_BIND: "net_bind",
    K_NET_LISTEN: "net_listen",
    K_NET_ACCEPT: "net_accept",
    K_NET_ESTABLISHED: "net_established",
    K_NET_CLOSE: "net_close",
}

_OPS = {
    K_NET_CONNECT: "connect",
    K_NET_SEND: "send",
    K_NET_BIND: "bind",
    K_NET_LISTEN: "listen",
    K_NET_ACCEPT: "accept",
    K_NET_ESTABLISHED: "established",
    K_NET_CLOSE: "close",
}

# enum net_syscall
SYSCALLS = {
    1: "connect",
    2: "sendto",
    3: "sendmsg",
    4: "sendmmsg",
    5: "write",
    6: "bind",
    7: "listen",
    8: "accept",
    9: "accept4",
    10: "writev",
    11: "pwritev2",
}

F_ADDR_FAULT = 1
F_DST_REMEMBERED = 2
F_PAYLOAD_FAULT = 4
F_FASTOPEN = 8
F_PEER_SOCKET = 0x10  # dst read from the kernel socket
F_PEER_MISMATCH = 0x20  # (unused by the kernel side today: the comparison is done here)
F_ADDR_CHANGED = 0x40  # the sockaddr was rewritten while the syscall ran (claim = exit value)
F_DNS_SOCKET = 0x80  # a socket connected to port 53 found from the socket, not a remembered connect
F_FIN_RECEIVED = 0x200  # close: the peer's FIN arrived; it counts 1 in tcp_sock.bytes_received

AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW = 1, 2, 3
_FAMILIES = {AF_UNIX: "unix", AF_INET: "inet", AF_INET6: "inet6"}
_TCP_PROTOS = (0, 6, 262)  # default, IPPROTO_TCP, IPPROTO_MPTCP
_UDP_PROTOS = (0, 17, 136)  # default, IPPROTO_UDP, IPPROTO_UDPLITE
DNS_PORT = 53

# struct net_rec after the header: ret, bytes, fd, family, sock_type, sock_proto, syscall,
# dst_port, src_port, dst_addr, src_addr, path_len, payload_len, flags, _pad0,
# payload_total, _pad1, path[112]; then payload[256] in full records.
BODY = struct.Struct("<qQiHHHHHH16s16sHHHHII112s")
REC_SMALL = HDR_SIZE + BODY.size
PAYLOAD_OFF = REC_SMALL
PAYLOAD_MAX = 256
REC_FULL = REC_SMALL + PAYLOAD_MAX
assert REC_SMALL == 256, REC_SMALL

_unpack = BODY.unpack_from
PATH_OFF = HDR_SIZE + BODY.size - 112
CLAIM = struct.Struct("<16sHH")  # claim_addr, claim_port, claim_family
CONN = struct.Struct("<QQQQiHHII")  # bytes_received, bytes_acked, start_ns, established_ns,
# sk_err, old_state, new_state, segs_out, retrans

# TCP states (include/net/tcp_states.h) and errno values the outcome is derived from
TCP_ESTABLISHED, TCP_SYN_SENT, TCP_SYN_RECV, TCP_CLOSE, TCP_CLOSE_WAIT = 1, 2, 3, 7, 8
EPIPE, ENETUNREACH, ECONNRESET, ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH = 32, 101, 104, 110, 111, 113


def proto_name(family: int, sock_type: int, sock_proto: int) -> str:
    """tcp | udp | raw | unix | other, from the socket's family, type and protocol."""
    if family == AF_UNIX:
        return "unix"
    if sock_type == SOCK_STREAM and sock_proto in _TCP_PROTOS:
        return "tcp"
    if sock_type == SOCK_DGRAM and sock_proto in _UDP_PROTOS:
        return "udp"
    if sock_type == SOCK_RAW:
        return "raw"
    return "other"


def ip_text(family: int, raw: bytes) -> str:
    """The address as text ("" for non-IP families)."""
    if family == AF_INET:
        return str(ipaddress.IPv4Address(raw[:4]))
    if family == AF_INET6:
        return str(ipaddress.IPv6Address(raw[:16]))
    return ""


def unix_path(raw: bytes) -> str:
    """sun_path bytes as given: abstract names (leading NUL) become "@name", exactly."""
    if not raw:
        return ""
    if raw[0] == 0:
        return "@" + raw[1:].decode("utf-8", "surrogateescape")
    n = raw.find(b"\0")
    return (raw if n < 0 else raw[:n]).decode("utf-8", "surrogateescape")


def outcome(kind: int, established: bool, sk_err: int, old_state: int) -> str:
    """How a TCP connection went, from the state change that reported it."""
    if kind == K_NET_ESTABLISHED:
        return "established"
    if not established:
        if sk_err == ECONNREFUSED:
            return "refused"
        if sk_err == ETIMEDOUT:
            return "timeout"
        if sk_err in (ENETUNREACH, EHOSTUNREACH):
            return "unreachable"
        return "error" if sk_err else "aborted"  # closed before the handshake completed
    if sk_err in (ECONNRESET, EPIPE):
        return "reset"  # a RST from the peer
    if sk_err == ETIMEDOUT:
        return "timeout"
    if sk_err:
        return "error"
    # straight from an open state to CLOSE, no FIN exchange: this end sent a RST (close with
    # unread data, SO_LINGER 0)
    return "aborted" if old_state in (TCP_ESTABLISHED, TCP_CLOSE_WAIT, TCP_SYN_RECV) else "closed"


def _same_peer(fam: int, addr: bytes, port: int, cfam: int, caddr: bytes, cport: int) -> bool:
    """The socket's peer equals the claimed one (a v4 address on a v6 socket is v4-mapped)."""
    if port != cport:
        return False
    if fam == cfam:
        return addr[: 4 if fam == AF_INET else 16] == caddr[: 4 if fam == AF_INET else 16]
    if fam == AF_INET6 and cfam == AF_INET:
        return addr[:12] == b"\0" * 10 + b"\xff\xff" and addr[12:16] == caddr[:4]
    return False


def _conn(ev: NetOp, buf: memoryview, kind: int, flags: int) -> None:
    received, acked, start, established, sk_err, old_state, _new, _segs, retrans = CONN.unpack_from(buf, PATH_OFF)
    if flags & F_FIN_RECEIVED and received:
        received -= 1  # data bytes only
    ev.bytes_received, ev.bytes_acked, ev.retransmits = received, acked, retrans
    ev.outcome = outcome(kind, established != 0, sk_err, old_state)
    ev.connect_ns = max(0, established - start) if established else 0
    ev.duration_ns = max(0, ev.mono_ns - start) if start else 0
    ev.peer_verified = True


def decode_net(buf: memoryview, hdr: Header, base: dict) -> NetOp | None:
    """Decode one net record (any net kind)."""
    (
        ret,
        nbytes,
        _fd,
        family,
        sock_type,
        sock_proto,
        syscall,
        dst_port,
        src_port,
        dst_addr,
        src_addr,
        path_len,
        payload_len,
        flags,
        _pad0,
        _payload_total,
        _pad1,
        path,
    ) = _unpack(buf, HDR_SIZE)
    op = _OPS[hdr.kind]
    conn = hdr.kind in (K_NET_ESTABLISHED, K_NET_CLOSE)
    has_dst = (conn or op in ("connect", "send", "accept")) and not flags & F_ADDR_FAULT
    has_src = conn or (op in ("bind", "listen", "accept") and not (op == "bind" and flags & F_ADDR_FAULT))
    ev = NetOp(
        **base,
        op=op,
        family=_FAMILIES.get(family, "other"),
        proto=proto_name(family, sock_type, sock_proto),
        dst_ip=ip_text(family, dst_addr) if has_dst else "",
        dst_port=dst_port if has_dst else 0,
        src_ip=ip_text(family, src_addr) if has_src else "",
        src_port=src_port if has_src else 0,
        unix_path=unix_path(path[: min(path_len, len(path))]) if family == AF_UNIX else "",
        syscall=SYSCALLS.get(syscall, ""),
        ret=ret,
        bytes=nbytes,
    )
    if conn:
        _conn(ev, buf, hdr.kind, flags)
        return ev
    if family in (AF_INET, AF_INET6) and op in ("connect", "send"):
        ev.peer_verified = bool(flags & F_PEER_SOCKET)
        caddr, cport, cfam = CLAIM.unpack_from(buf, PATH_OFF)
        if flags & F_ADDR_CHANGED:
            ev.peer_mismatch = "changed"  # rewritten while the syscall ran
        elif flags & F_PEER_SOCKET and cfam and not _same_peer(family, dst_addr, dst_port, cfam, caddr, cport):
            ev.peer_mismatch = "socket"  # the user buffer named another peer than the kernel used
        if ev.peer_mismatch and cfam in (AF_INET, AF_INET6):
            ev.claimed_dst_ip, ev.claimed_dst_port = ip_text(cfam, caddr), cport
    if dst_port == DNS_PORT and payload_len and len(buf) >= PAYLOAD_OFF + payload_len:
        tcp = ev.proto == "tcp"
        q = parse_message(buf[PAYLOAD_OFF : PAYLOAD_OFF + min(payload_len, PAYLOAD_MAX)], tcp=tcp)
        if q is not None:
            ev.dns_qname, ev.dns_qtype, ev.dns_qnames = q.qname, q.qtype, list(q.qnames)
            ev.dns_response, ev.dns_truncated = q.response, q.truncated or payload_len < _payload_total
    return ev


DECODERS = dict.fromkeys(_OPS, decode_net)
