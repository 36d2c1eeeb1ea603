"""Address and port matching for net rules: CIDRs (v4/v6), "public", port lists and ranges.

Address classification is cached per address string (bounded), because parsing an
address with `ipaddress` costs far more than the rest of a net rule.
"""

from __future__ import annotations

import ipaddress

# Keywords usable in `dst:`/`src:` lists besides CIDRs and plain addresses.
KEYWORDS = ("public", "private", "loopback", "link_local", "any")

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

    __slots__ = ("_cache", "_keywords", "_nets")

    def __init__(self, specs: list[str]) -> None:
        self._keywords = frozenset(s for s in specs if s in KEYWORDS)
        self._nets: list[Net] = [ipaddress.ip_network(s, strict=False) for s in specs if s not in KEYWORDS]
        self._cache: dict[str, bool] = {}

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
