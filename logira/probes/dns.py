"""DNS wire format: the questions of a message sent to port 53.

The kernel copies the first bytes (at most 256) of every send to port 53; this module turns
them into names. Input is untrusted (the audited agent chooses the bytes, and the copy may
be cut short), so every read is bounds-checked and nothing raises.

Nothing the agent can set makes a name disappear: the QR (response) bit, a question count
of 0, compression pointers (followed, at most 16 hops, inside the captured bytes), several
questions (up to 16, all kept), a name cut by the capture limit (kept, `truncated`).
DNS over TCP is the same message behind a 2-byte length (`parse_message(..., tcp=True)`).

Names are rendered exactly: label bytes outside printable ASCII, and `.` or `\\` inside
a label, are escaped as `\\DDD` (decimal, as dig/BIND print them), so a label carrying
arbitrary data (DNS tunnelling) is neither lost nor confused with a label boundary.
"""

from __future__ import annotations

from typing import NamedTuple

_HEADER = 12
_MAX_NAME = 255  # RFC 1035: wire length of a name including length bytes and the root
_MAX_HOPS = 16  # compression pointers followed per name
_MAX_QUESTIONS = 16
_QR = 0x8000  # response bit of the flags word

# byte -> its text form inside a label
_ESCAPE = tuple(chr(b) if 0x21 <= b <= 0x7E and b not in (0x2E, 0x5C) else f"\\{b:03d}" for b in range(256))


class DnsQuery(NamedTuple):
    qname: str  # first question: "example.test" (no trailing dot); "." for the root
    qtype: int  # 1 = A, 28 = AAAA, ...; 0 when the bytes were cut before the type
    qnames: tuple[str, ...] = ()  # every question's name, when there are several
    response: bool = False  # QR bit set: a "response" sent to port 53 (still a name that left)
    truncated: bool = False  # a name was cut (capture limit or malformed): the text is a prefix


def _name(b: bytes, pos: int) -> tuple[str, int, bool] | None:
    """(name, position after it, cut) of the name at `pos`; None when nothing is readable."""
    labels: list[str] = []
    wire = 1
    end = -1  # position after the name in the original stream (set at the first pointer)
    hops = 0
    while True:
        if pos >= len(b):
            cut = True
            break
        n = b[pos]
        if n == 0:
            pos += 1
            cut = False
            break
        if n & 0xC0 == 0xC0:  # compression pointer
            if pos + 1 >= len(b):
                cut = True
                break
            if end < 0:
                end = pos + 2
            hops += 1
            target = ((n & 0x3F) << 8) | b[pos + 1]
            if hops > _MAX_HOPS or target >= len(b):
                cut = True
                break
            pos = target
            continue
        if n > 63:  # reserved label types (0x40, 0x80)
            cut = True
            break
        wire += n + 1
        if wire > _MAX_NAME:
            cut = True
            break
        chunk = b[pos + 1 : pos + 1 + n]
        labels.append("".join(_ESCAPE[c] for c in chunk))
        if len(chunk) < n:
            cut = True
            pos = len(b)
            break
        pos += 1 + n
    if not labels and cut:
        return None
    text = ".".join(labels) if labels else "."
    return text, (end if end >= 0 else pos), cut


def parse_message(payload: bytes | memoryview, *, tcp: bool = False) -> DnsQuery | None:
    """The questions of a DNS message, or None if no name can be read from `payload`."""
    b = bytes(payload)
    if tcp and len(b) >= 2:
        framed = parse_message(b[2:]) if int.from_bytes(b[:2], "big") >= _HEADER else None
        if framed is not None:
            return framed  # length prefix and message in one send; else a send of the message alone
    if len(b) < _HEADER + 1:
        return None
    flags = int.from_bytes(b[2:4], "big")
    qdcount = int.from_bytes(b[4:6], "big")
    pos = _HEADER
    names: list[str] = []
    first_type = 0
    cut_any = False
    for _ in range(min(max(qdcount, 1), _MAX_QUESTIONS)):
        got = _name(b, pos)
        if got is None:
            break
        text, pos, cut = got
        names.append(text)
        qtype = int.from_bytes(b[pos : pos + 2], "big") if pos + 2 <= len(b) else 0
        if len(names) == 1:
            first_type = qtype
        if cut:
            cut_any = True
            break
        pos += 4  # qtype, qclass
        if pos >= len(b):
            break
    if not names:
        return None
    return DnsQuery(names[0], first_type, tuple(names) if len(names) > 1 else (), bool(flags & _QR), cut_any)


def parse_query(payload: bytes | memoryview) -> DnsQuery | None:
    """Compatibility name: the questions of a UDP DNS message."""
    return parse_message(payload)
