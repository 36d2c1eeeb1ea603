"""Address and port matching for net rules: CIDRs (v4/v6), "public", port lists and ranges.

Address classification is cached per address string (bounded), because parsing an
address with `ipaddress` costs far more than the rest of a net rule.

`system_resolver` is the host's own DNS servers: the `nameserver` lines of /etc/resolv.conf
(glibc's 127.0.0.1 / ::1 when there are none) plus the systemd-resolved stubs 127.0.0.53 and
127.0.0.54. The file is read when a matcher is built, i.e. when the daemon compiles the rules
of a run at its start: a DNS query to any other address goes to a resolver the agent chose.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

# Keywords usable in `dst:`/`src:` lists besides CIDRs and plain addresses.
KEYWORDS = ("public", "private", "loopback", "link_local", "any", "system_resolver")

RESOLV_CONF = Path("/etc/resolv.conf")
_STUBS = ("127.0.0.53", "127.0.0.54")
_GLIBC_DEFAULT = ("127.0.0.1", "::1")  # resolv.conf(5): no nameserver line means the local host
_RESOLV_MAX = 64 * 1024

_NOT_PUBLIC = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "2001:db8::/32", "64:ff9b:1::/48",
    )
]  # fmt: skip

IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_addr(text: str) -> IpAddr | None:
    """The address (IPv4-mapped IPv6 unwrapped to IPv4), or None if unparsable/empty."""
    if not text:
        return None
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def system_resolvers(path: Path = RESOLV_CONF) -> frozenset[IpAddr]:
    """The host's DNS servers (see the module docstring); unreadable file: the defaults."""
    found: list[IpAddr] = []
    try:
        with open(path, "rb") as f:
            text = f.read(_RESOLV_MAX).decode("utf-8", "replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            addr = parse_addr(parts[1])
            if addr is not None:
                found.append(addr)
    defaults = _STUBS + (() if found else _GLIBC_DEFAULT)
    return frozenset(found) | frozenset(a for a in map(parse_addr, defaults) if a is not None)


def is_public(addr: IpAddr) -> bool:
    """Globally routable: not private, loopback, link-local, multicast, documentation..."""
    return not any(addr.version == n.version and addr in n for n in _NOT_PUBLIC)


def check_addr_spec(spec: str) -> str | None:
    """Why an address spec (CIDR, address or keyword) is invalid, or None."""
    if spec in KEYWORDS:
        return None
    try:
        ipaddress.ip_network(spec, strict=False)
    except ValueError as exc:
        return f"bad address/CIDR {spec!r}: {exc}"
    return None


class AddrMatcher:
    """Matches an address string against a list of CIDRs and keywords."""

    __slots__ = ("_cache", "_keywords", "_nets", "_resolvers")

    def __init__(self, specs: list[str]) -> None:
        self._keywords = frozenset(s for s in specs if s in KEYWORDS)
        self._nets: list[Net] = [ipaddress.ip_network(s, strict=False) for s in specs if s not in KEYWORDS]
        self._cache: dict[str, bool] = {}
        self._resolvers = system_resolvers() if "system_resolver" in self._keywords else frozenset()

    def __call__(self, text: str) -> bool:
        hit = self._cache.get(text)
        if hit is None:
            hit = self._eval(text)
            if len(self._cache) >= 4096:
                self._cache.clear()
            self._cache[text] = hit
        return hit

    def _eval(self, text: str) -> bool:
        addr = parse_addr(text)
        if addr is None:
            return False
        kw = self._keywords
        if kw:
            if "any" in kw and addr.is_unspecified:
                return True
            if "public" in kw and is_public(addr):
                return True
            if "loopback" in kw and addr.is_loopback:
                return True
            if "link_local" in kw and addr.is_link_local:
                return True
            if "private" in kw and addr.is_private and not addr.is_loopback and not addr.is_link_local:
                return True
            if addr in self._resolvers:
                return True
        return any(addr.version == n.version and addr in n for n in self._nets)


def parse_ports(specs: list[int | str]) -> tuple[frozenset[int], list[tuple[int, int]]] | str:
    """(single ports, ranges) or an error string. Ranges are written "6660-6669"."""
    singles: set[int] = set()
    ranges: list[tuple[int, int]] = []
    for s in specs:
        if isinstance(s, int):
            if not 0 <= s <= 65535:
                return f"port {s} out of range 0-65535"
            singles.add(s)
            continue
        lo_s, sep, hi_s = s.partition("-")
        try:
            lo, hi = int(lo_s), int(hi_s if sep else lo_s)
        except ValueError:
            return f'bad port or range {s!r} (use 4444 or "6660-6669")'
        if not (0 <= lo <= hi <= 65535):
            return f"bad port range {s!r}"
        if lo == hi:
            singles.add(lo)
        else:
            ranges.append((lo, hi))
    return frozenset(singles), ranges
