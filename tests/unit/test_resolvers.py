"""system_resolver: the host's DNS servers from resolv.conf (pure parsing, a temp file)."""

from __future__ import annotations

import ipaddress

from logira.detect.netmatch import system_resolvers


def addrs(*texts: str) -> frozenset:
    return frozenset(ipaddress.ip_address(t) for t in texts)


def test_nameserver_lines_and_the_stubs(tmp_path):
    p = tmp_path / "resolv.conf"
    p.write_text("# comment\nsearch example.test\nnameserver 10.255.255.53\nnameserver  fd00::53 \nnameserver bogus\n")
    assert system_resolvers(p) == addrs("10.255.255.53", "fd00::53", "127.0.0.53", "127.0.0.54")


def test_no_nameserver_means_the_local_host(tmp_path):
    p = tmp_path / "resolv.conf"
    p.write_text("options ndots:1\n")
    assert system_resolvers(p) == addrs("127.0.0.1", "::1", "127.0.0.53", "127.0.0.54")
    assert system_resolvers(tmp_path / "missing") == addrs("127.0.0.1", "::1", "127.0.0.53", "127.0.0.54")
