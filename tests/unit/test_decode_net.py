"""Pure-logic tests for DNS wire parsing and the net record decoder (hand-packed bytes)."""

from __future__ import annotations

import random
import socket
import struct

import pytest

from logira.model.kernel import NET_OPS, NetOp
from logira.probes import decode as registry
from logira.probes import decode_net as dn
from logira.probes.dns import DnsQuery, parse_message, parse_query
from logira.probes.layout import HDR, HDR_SIZE


def dns_query(name: str, qtype: int = 1, *, flags: int = 0x0100, qdcount: int = 1) -> bytes:
    """A query as a resolver sends it: header, one question."""
    out = struct.pack(">HHHHHH", 0x1234, flags, qdcount, 0, 0, 0)
    for label in name.split(".") if name else []:
        raw = label.encode()
        out += bytes([len(raw)]) + raw
    return out + b"\0" + struct.pack(">HH", qtype, 1)


# ---------------------------------------------------------------- dns.py


def test_parse_query_a_and_aaaa():
    assert parse_query(dns_query("example.test", 1)) == DnsQuery("example.test", 1)
    assert parse_query(dns_query("www.Example.COM", 28)) == DnsQuery("www.Example.COM", 28)


def test_parse_query_root_and_cut_before_type():
    assert parse_query(dns_query("", 2)) == DnsQuery(".", 2)
    # the kernel copy may end right after the name: the name still counts, the type is unknown
    assert parse_query(dns_query("a.b", 1)[:-4]) == DnsQuery("a.b", 0)


def test_parse_query_escapes_binary_and_dots_inside_labels():
    msg = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x04a.b\x00\x03x\\y" + b"\x00\x00\x10\x00\x01"
    q = parse_query(msg)
    assert q == DnsQuery("a\\046b\\000.x\\092y", 16)


H1 = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0)  # a header with one question


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00" * 12,  # header only
        H1 + b"\xc0\x0c\x00\x01\x00\x01",  # a pointer to itself: no label ever
        H1 + b"\x40" + b"a" * 64 + b"\x00",  # reserved label type first
        H1 + b"\xc0",  # a pointer cut in half
    ],
)
def test_parse_query_without_any_name_is_none(payload):
    assert parse_query(payload) is None


def test_response_bit_and_zero_qdcount_still_give_the_name():
    # an agent sets QR or qdcount=0 so that a "query" parser skips it: the name still left
    assert parse_query(dns_query("exfil.example.test", flags=0x8180)) == DnsQuery(
        "exfil.example.test", 1, (), True, False
    )
    assert parse_query(dns_query("zero.example.test", qdcount=0)).qname == "zero.example.test"


def test_compression_pointers_are_followed_with_bounds():
    # question 1 "a.example.test"; question 2 "b" + pointer to "example.test" at offset 14
    q1 = b"\x01a\x07example\x04test\x00" + struct.pack(">HH", 1, 1)
    q2 = b"\x01b\xc0\x0e" + struct.pack(">HH", 28, 1)
    msg = struct.pack(">HHHHHH", 9, 0x0100, 2, 0, 0, 0) + q1 + q2
    assert parse_query(msg) == DnsQuery("a.example.test", 1, ("a.example.test", "b.example.test"), False, False)
    # a pointer loop ends at the hop bound, keeping what was read
    loop = H1 + b"\x01x\xc0\x0c"
    q = parse_query(loop)
    assert q is not None and q.qname.startswith("x.x") and q.truncated
    # a pointer past the captured bytes
    q = parse_query(H1 + b"\x01y\xc0\xff")
    assert q == DnsQuery("y", 0, (), False, True)


def test_cut_and_overlong_names_are_kept_as_prefixes():
    q = parse_query(dns_query("example.test")[:15])  # cut inside the first label
    assert q is not None and q.qname == "ex" and q.truncated
    q = parse_query(H1 + (b"\x3f" + b"a" * 63) * 4 + b"\x00")  # over 255 bytes
    assert q is not None and q.qname == ".".join(["a" * 63] * 3) and q.truncated
    assert parse_query(H1 + b"\x05abc") == DnsQuery("abc", 0, (), False, True)


def test_dns_over_tcp_length_prefix():
    msg = dns_query("tcp.example.test", 16)
    framed = len(msg).to_bytes(2, "big") + msg
    assert parse_message(framed, tcp=True).qname == "tcp.example.test"
    assert parse_message(msg, tcp=True).qname == "tcp.example.test"  # prefix sent separately
    assert parse_message(b"\x00\x2a", tcp=True) is None  # the prefix alone


def test_many_questions_are_bounded():
    qs = b"".join(b"\x02q" + bytes([48 + i % 10]) + b"\x00" + struct.pack(">HH", 1, 1) for i in range(40))
    q = parse_query(struct.pack(">HHHHHH", 1, 0x0100, 40, 0, 0, 0) + qs)
    assert q is not None and len(q.qnames) == 16


def test_parse_query_never_raises_on_garbage():
    rng = random.Random(53)
    for _ in range(3000):
        blob = rng.randbytes(rng.randrange(0, 300))
        q = parse_query(blob)
        assert q is None or isinstance(q, DnsQuery)
        # and headers that look like a query followed by random labels
        q = parse_query(struct.pack(">HHHHHH", 7, 0, 1, 0, 0, 0) + blob)
        assert q is None or (isinstance(q.qname, str) and 0 <= q.qtype <= 0xFFFF)


def test_parse_query_max_length_name_accepted():
    name = ".".join(["a" * 63] * 3 + ["b" * 61])  # wire length exactly 255
    assert parse_query(dns_query(name)) == DnsQuery(name, 1)


# ------------------------------------------------------------ decode_net.py


def pack_rec(
    kind: int,
    *,
    ret: int = 0,
    nbytes: int = 0,
    fd: int = 3,
    family: int = dn.AF_INET,
    sock_type: int = dn.SOCK_STREAM,
    sock_proto: int = 6,
    syscall: int = 1,
    dst_port: int = 0,
    src_port: int = 0,
    dst_addr: bytes = b"",
    src_addr: bytes = b"",
    path: bytes = b"",
    flags: int = 0,
    payload: bytes | None = None,
) -> bytes:
    size = dn.REC_FULL if payload is not None else dn.REC_SMALL
    hdr = HDR.pack(10**9, 77, 4242, 4243, 1, 1000, 1000, kind, size, b"python3".ljust(16, b"\0"), 99)
    body = dn.BODY.pack(
        ret,
        nbytes,
        fd,
        family,
        sock_type,
        sock_proto,
        syscall,
        dst_port,
        src_port,
        dst_addr.ljust(16, b"\0"),
        src_addr.ljust(16, b"\0"),
        len(path),
        len(payload or b""),
        flags,
        0,
        len(payload or b""),
        0,
        path.ljust(112, b"\0"),
    )
    out = hdr + body
    if payload is not None:
        out += payload.ljust(dn.PAYLOAD_MAX, b"\0")
    assert len(out) == size
    return out


def decode(raw: bytes) -> NetOp:
    ev = registry.decode(raw, registry.Clock())
    assert isinstance(ev, NetOp)
    return ev


def test_registry_has_every_net_kind():
    decs = registry.decoders()
    names = registry.all_kind_names()
    for kind in range(32, 39):
        assert decs[kind] is dn.decode_net
        assert names[kind] == "net_" + dn._OPS[kind]
    assert set(dn._OPS.values()) == set(NET_OPS)
    assert HDR_SIZE == 64 and dn.REC_SMALL == 256 and dn.REC_FULL == 512


def test_connect_inet_in_progress():
    raw = pack_rec(
        dn.K_NET_CONNECT, ret=-115, dst_port=8080, dst_addr=socket.inet_aton("10.1.2.3"), syscall=1
    )
    ev = decode(raw)
    assert (ev.op, ev.family, ev.proto, ev.dst_ip, ev.dst_port, ev.ret, ev.syscall) == (
        "connect",
        "inet",
        "tcp",
        "10.1.2.3",
        8080,
        -115,
        "connect",
    )
    assert (ev.pid, ev.tid, ev.ppid, ev.uid, ev.comm, ev.run_cgroup_id, ev.cgroup_id) == (
        4242,
        4243,
        1,
        1000,
        "python3",
        99,
        77,
    )
    assert ev.src_ip == "" and ev.dns_qname == ""


def test_connect_inet6_refused():
    raw = pack_rec(
        dn.K_NET_CONNECT,
        ret=-111,
        family=dn.AF_INET6,
        dst_port=9,
        dst_addr=socket.inet_pton(socket.AF_INET6, "fd00::1"),
    )
    ev = decode(raw)
    assert (ev.family, ev.dst_ip, ev.dst_port, ev.ret) == ("inet6", "fd00::1", 9, -111)


def test_connect_unix_path_and_abstract():
    ev = decode(pack_rec(dn.K_NET_CONNECT, family=dn.AF_UNIX, sock_type=1, path=b"/run/x.sock\0"))
    assert (ev.family, ev.proto, ev.unix_path, ev.dst_ip) == ("unix", "unix", "/run/x.sock", "")
    ev = decode(pack_rec(dn.K_NET_CONNECT, family=dn.AF_UNIX, sock_type=2, path=b"\0logira-abs"))
    assert ev.unix_path == "@logira-abs"


def test_connect_addr_fault_leaves_destination_empty():
    raw = pack_rec(dn.K_NET_CONNECT, dst_port=1, dst_addr=b"\1\2\3\4", flags=dn.F_ADDR_FAULT)
    ev = decode(raw)
    assert (ev.dst_ip, ev.dst_port) == ("", 0)


def test_send_dns_with_payload():
    raw = pack_rec(
        dn.K_NET_SEND,
        ret=2,
        nbytes=30,
        sock_type=2,
        sock_proto=17,
        syscall=4,
        dst_port=53,
        dst_addr=socket.inet_aton("127.0.0.1"),
        flags=dn.F_DST_REMEMBERED,
        payload=dns_query("example.test", 28),
    )
    ev = decode(raw)
    assert (ev.op, ev.proto, ev.dst_ip, ev.dst_port, ev.syscall, ev.ret, ev.bytes) == (
        "send",
        "udp",
        "127.0.0.1",
        53,
        "sendmmsg",
        2,
        30,
    )
    assert (ev.dns_qname, ev.dns_qtype) == ("example.test", 28)


def test_send_garbage_payload_to_53_keeps_event_without_qname():
    raw = pack_rec(dn.K_NET_SEND, sock_type=2, sock_proto=17, dst_port=53, payload=b"\xff" * 40)
    ev = decode(raw)
    assert (ev.op, ev.dst_port, ev.dns_qname, ev.dns_qtype) == ("send", 53, "", 0)


def test_payload_ignored_for_other_ports():
    raw = pack_rec(dn.K_NET_SEND, sock_type=2, sock_proto=17, dst_port=5353, payload=dns_query("x.local"))
    assert decode(raw).dns_qname == ""


def test_bind_listen_accept_addresses():
    ev = decode(pack_rec(dn.K_NET_BIND, syscall=6, src_port=8000, src_addr=b"\0\0\0\0"))
    assert (ev.op, ev.src_ip, ev.src_port, ev.dst_ip) == ("bind", "0.0.0.0", 8000, "")
    ev = decode(pack_rec(dn.K_NET_LISTEN, syscall=7, src_port=8000, src_addr=socket.inet_aton("127.0.0.1")))
    assert (ev.op, ev.src_ip, ev.src_port) == ("listen", "127.0.0.1", 8000)
    ev = decode(
        pack_rec(
            dn.K_NET_ACCEPT,
            ret=5,
            syscall=9,
            family=dn.AF_INET6,
            src_port=8000,
            src_addr=socket.inet_pton(socket.AF_INET6, "::1"),
            dst_port=40000,
            dst_addr=socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1"),
        )
    )
    assert (ev.op, ev.syscall, ev.src_ip, ev.src_port, ev.dst_ip, ev.dst_port, ev.ret) == (
        "accept",
        "accept4",
        "::1",
        8000,
        "::ffff:7f00:1",
        40000,
        5,
    )


@pytest.mark.parametrize(
    ("family", "stype", "sproto", "want"),
    [
        (dn.AF_INET, 1, 6, "tcp"),
        (dn.AF_INET6, 1, 262, "tcp"),
        (dn.AF_INET, 2, 17, "udp"),
        (dn.AF_INET, 3, 1, "raw"),
        (dn.AF_INET, 2, 1, "other"),  # ICMP ping socket
        (dn.AF_INET, 1, 132, "other"),  # SCTP
        (dn.AF_UNIX, 1, 0, "unix"),
        (16, 3, 0, "raw"),  # netlink raw
        (dn.AF_INET, 0, 0, "other"),  # socket not resolved
    ],
)
def test_proto_names(family, stype, sproto, want):
    assert dn.proto_name(family, stype, sproto) == want


def test_unknown_family_is_other():
    ev = decode(pack_rec(dn.K_NET_CONNECT, family=16, sock_type=3, dst_addr=b"\1" * 16))
    assert (ev.family, ev.dst_ip, ev.unix_path) == ("other", "", "")


def test_truncated_record_is_a_decode_error():
    raw = pack_rec(dn.K_NET_CONNECT)
    with pytest.raises(registry.DecodeError):
        registry.decode(raw[:200], registry.Clock())


def test_path_len_larger_than_field_is_clamped():
    raw = bytearray(pack_rec(dn.K_NET_CONNECT, family=dn.AF_UNIX, path=b"/p"))
    struct.pack_into("<H", raw, HDR_SIZE + 64, 5000)  # path_len
    assert decode(bytes(raw)).unix_path == "/p"


def test_random_bodies_always_decode_to_a_netop():
    rng = random.Random(47)
    for _ in range(2000):
        kind = rng.choice(list(dn.KIND_NAMES))
        size = rng.choice((dn.REC_SMALL, dn.REC_FULL))
        hdr = HDR.pack(1, 2, 3, 4, 5, 6, 7, kind, size, b"x" * 16, 8)
        raw = hdr + rng.randbytes(size - HDR_SIZE)
        ev = decode(raw)
        assert ev.op == dn._OPS[kind] and ev.family in ("inet", "inet6", "unix", "other")
        assert ev.proto in ("tcp", "udp", "raw", "unix", "other")


# ------------------------------------------------- peers and TCP connection records


def with_union(raw: bytes, blob: bytes) -> bytes:
    """The record with `blob` written at the 112-byte union (offset 144)."""
    b = bytearray(raw)
    b[dn.PATH_OFF : dn.PATH_OFF + len(blob)] = blob
    return bytes(b)


def test_connect_peer_from_socket_and_claim_that_differs():
    raw = pack_rec(dn.K_NET_CONNECT, ret=0, dst_port=443, dst_addr=socket.inet_aton("1.2.3.4"), flags=dn.F_PEER_SOCKET)
    same = decode(with_union(raw, dn.CLAIM.pack(socket.inet_aton("1.2.3.4").ljust(16, b"\0"), 443, dn.AF_INET)))
    assert (same.peer_verified, same.peer_mismatch, same.claimed_dst_ip) == (True, "", "")
    other = decode(with_union(raw, dn.CLAIM.pack(socket.inet_aton("10.9.9.9").ljust(16, b"\0"), 4444, dn.AF_INET)))
    assert (other.dst_ip, other.peer_mismatch, other.claimed_dst_ip, other.claimed_dst_port) == (
        "1.2.3.4", "socket", "10.9.9.9", 4444
    )
    # no claim (the buffer was unreadable at enter and exit): verified, nothing to compare
    assert decode(raw).peer_mismatch == ""


def test_v4_claim_on_a_v6_socket_is_the_mapped_address():
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:1.2.3.4")
    raw = pack_rec(dn.K_NET_CONNECT, family=dn.AF_INET6, dst_port=80, dst_addr=mapped, flags=dn.F_PEER_SOCKET)
    ev = decode(with_union(raw, dn.CLAIM.pack(socket.inet_aton("1.2.3.4").ljust(16, b"\0"), 80, dn.AF_INET)))
    assert ev.peer_mismatch == ""


def test_sockaddr_changed_during_the_syscall():
    raw = pack_rec(dn.K_NET_SEND, sock_type=2, sock_proto=17, dst_port=9, dst_addr=b"\x7f\0\0\1",
                   flags=dn.F_ADDR_CHANGED)  # fmt: skip
    ev = decode(with_union(raw, dn.CLAIM.pack(b"\x01\x02\x03\x04".ljust(16, b"\0"), 53, dn.AF_INET)))
    assert (ev.peer_verified, ev.peer_mismatch, ev.claimed_dst_ip, ev.claimed_dst_port) == (
        False, "changed", "1.2.3.4", 53
    )


def test_unix_path_is_not_read_as_a_claim():
    ev = decode(pack_rec(dn.K_NET_CONNECT, family=dn.AF_UNIX, sock_type=1, path=b"/run/x.sock\0"))
    assert (ev.unix_path, ev.peer_mismatch, ev.claimed_dst_ip) == ("/run/x.sock", "", "")


def conn_rec(kind: int, *, sk_err: int = 0, old: int = 9, established: int = 2_000, fin: bool = True) -> NetOp:
    raw = pack_rec(kind, ret=-sk_err, nbytes=700, dst_port=443, dst_addr=b"\1\2\3\4", src_port=5555,
                   src_addr=b"\x0a\0\0\1", syscall=12, flags=dn.F_FIN_RECEIVED if fin else 0)  # fmt: skip
    blob = dn.CONN.pack(51, 702, 1_000, established, sk_err, old, 7, 9, 1)
    return decode(with_union(raw, blob))


def test_close_record_volume_and_duration():
    ev = conn_rec(dn.K_NET_CLOSE)
    assert (ev.op, ev.outcome, ev.bytes, ev.bytes_received, ev.bytes_acked, ev.retransmits) == (
        "close", "closed", 700, 50, 702, 1  # the FIN's count is not data
    )
    assert (ev.dst_ip, ev.dst_port, ev.src_ip, ev.src_port, ev.peer_verified) == ("1.2.3.4", 443, "10.0.0.1", 5555, True)
    assert ev.connect_ns == 1_000 and ev.duration_ns == 10**9 - 1_000  # mono_ns is the header's 10**9
    assert conn_rec(dn.K_NET_CLOSE, fin=False).bytes_received == 51
    assert conn_rec(dn.K_NET_ESTABLISHED).outcome == "established"


@pytest.mark.parametrize(
    ("established", "sk_err", "old", "want"),
    [
        (0, 111, 2, "refused"),
        (0, 110, 2, "timeout"),
        (0, 113, 2, "unreachable"),
        (0, 0, 2, "aborted"),
        (0, 5, 2, "error"),
        (2_000, 104, 1, "reset"),
        (2_000, 32, 8, "reset"),
        (2_000, 0, 1, "aborted"),
        (2_000, 0, 5, "closed"),
        (2_000, 0, 9, "closed"),
        (2_000, 110, 4, "timeout"),
    ],
)
def test_close_outcomes(established, sk_err, old, want):
    assert conn_rec(dn.K_NET_CLOSE, sk_err=sk_err, old=old, established=established).outcome == want
