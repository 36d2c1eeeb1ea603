"""Net-domain records (bpf/net.bpf.c, kinds 32..47) -> `NetOp`.

One record layout serves every op (`struct net_rec`, 256 bytes, or 512 when it carries the
first bytes of a DNS query). The op comes from the kind; a TCP fast-open send is a
connect record. Offsets below mirror bpf/net.bpf.c; keep them in lock step.
"""

from __future__ import annotations

import ipaddress
import struct

from logira.model.kernel import NetOp
from logira.probes.decode import Header
from logira.probes.dns import parse_query
from logira.probes.layout import HDR_SIZE

K_NET_CONNECT = 32
K_NET_SEND = 33
K_NET_BIND = 34
K_NET_LISTEN = 35
K_NET_ACCEPT = 36

KIND_NAMES: dict[int, str] = {
    K_NET_CONNECT: "net_connect",
    K_NET_SEND: "net_send",
    K_NET_BIND: "net_bind",
    K_NET_LISTEN: "net_listen",
    K_NET_ACCEPT: "net_accept",
}

_OPS = {
    K_NET_CONNECT: "connect",
    K_NET_SEND: "send",
    K_NET_BIND: "bind",
    K_NET_LISTEN: "listen",
    K_NET_ACCEPT: "accept",
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
}

F_ADDR_FAULT = 1
F_DST_REMEMBERED = 2
F_PAYLOAD_FAULT = 4
F_FASTOPEN = 8

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
    has_dst = op in ("connect", "send", "accept") and not flags & F_ADDR_FAULT
    has_src = op in ("bind", "listen", "accept") and not (op == "bind" and flags & F_ADDR_FAULT)
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
    if dst_port == DNS_PORT and payload_len and len(buf) >= PAYLOAD_OFF + payload_len:
        q = parse_query(buf[PAYLOAD_OFF : PAYLOAD_OFF + min(payload_len, PAYLOAD_MAX)])
        if q is not None:
            ev.dns_qname, ev.dns_qtype = q.qname, q.qtype
    return ev


DECODERS = dict.fromkeys(_OPS, decode_net)
