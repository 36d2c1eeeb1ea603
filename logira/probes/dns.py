"""DNS wire format: the query name and type of the first question of a query.

The kernel copies the first bytes (at most 256) of every datagram sent to port 53; this
module turns them into a name. Input is untrusted (the audited agent chooses the bytes,
and the copy may be cut short), so every read is bounds-checked and anything that is not
a well-formed query yields None instead of an exception.

Names are rendered exactly: label bytes outside printable ASCII, and `.` or `\\` inside
a label, are escaped as `\\DDD` (decimal, as dig/BIND print them), so a label carrying
arbitrary data (DNS tunnelling) is neither lost nor confused with a label boundary.
"""

from __future__ import annotations

from typing import NamedTuple

_HEADER = 12
_MAX_NAME = 255  # RFC 1035: wire length of a name including length bytes and the root
_QR = 0x8000  # response bit of the flags word

# byte -> its text form inside a label
_ESCAPE = tuple(chr(b) if 0x21 <= b <= 0x7E and b not in (0x2E, 0x5C) else f"\\{b:03d}" for b in range(256))


class DnsQuery(NamedTuple):
    qname: str  # "example.test" (no trailing dot); "." for the root
    qtype: int  # 1 = A, 28 = AAAA, ...; 0 when the bytes were cut before the type


def parse_query(payload: bytes | memoryview) -> DnsQuery | None:
    """The first question of a DNS query message, or None if `payload` is not one."""
    b = bytes(payload)
    if len(b) < _HEADER + 1:
        return None
    flags = int.from_bytes(b[2:4], "big")
    qdcount = int.from_bytes(b[4:6], "big")
    if flags & _QR or qdcount == 0:
        return None
    pos = _HEADER
    labels: list[str] = []
    wire = 1  # the root byte
    while True:
        if pos >= len(b):
            return None  # cut inside the name
        n = b[pos]
        pos += 1
        if n == 0:
            break
        if n > 63:
            return None  # compression pointers and reserved label types are not valid here
        wire += n + 1
        if wire > _MAX_NAME or pos + n > len(b):
            return None
        labels.append("".join(_ESCAPE[c] for c in b[pos : pos + n]))
        pos += n
    qtype = int.from_bytes(b[pos : pos + 2], "big") if pos + 2 <= len(b) else 0
    return DnsQuery(".".join(labels) if labels else ".", qtype)
