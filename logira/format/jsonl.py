"""events.jsonl, the format: one hash-chained JSON object per record (see docs/jsonl.md).

Line = the msgspec encoding of the `Record` (the body) without its final `}`, then
`,"hash":"<hex>"}` and a newline, where hash = sha256(previous line's hash hex + body) and the
first line's previous hash is 64 zeros. Any edit, deletion or reordering breaks the chain at that
line; a full rewrite is caught by the root-owned seal (logira.storage.seal).

Defined once here, below both the writer (sinks/jsonl.py) and the readers (read/, verify).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import msgspec

from logira.model.record import StoredRecord

ZERO_HASH = "0" * 64
HASH_KEY = b',"hash":"'
_SUFFIX_LEN = len(HASH_KEY) + 64 + 2  # ,"hash":" + hex + "}
_HEX = frozenset(b"0123456789abcdef")


def chain_hash(prev_hex: str, body: bytes) -> str:
    """Hash of one line: sha256(prev hash hex (ASCII) + body bytes), as hex."""
    h = hashlib.sha256(prev_hex.encode("ascii"))
    h.update(body)
    return h.hexdigest()


def append_line(buf: bytearray, body: bytes, prev_hex: str) -> str:
    """Append the stored line of `body` (with its newline) to `buf`; returns the line's hash."""
    h = hashlib.sha256(prev_hex.encode("ascii"))
    h.update(body)
    digest = h.hexdigest()
    buf += body[:-1]
    buf += HASH_KEY
    buf += digest.encode("ascii")
    buf += b'"}\n'
    return digest


def split_line(line: bytes) -> tuple[bytes, str] | None:
    """A stored line (without newline) → (body, stored hash), or None if it has no valid hash suffix."""
    if len(line) < _SUFFIX_LEN + 2 or not line.endswith(b'"}'):
        return None
    cut = len(line) - _SUFFIX_LEN
    if line[cut : cut + len(HASH_KEY)] != HASH_KEY:
        return None
    hexpart = line[cut + len(HASH_KEY) : -2]
    if not _HEX.issuperset(hexpart):
        return None
    return line[:cut] + b"}", hexpart.decode("ascii")


class ChainState(msgspec.Struct, kw_only=True):
    """Where an existing events.jsonl ends: enough to seal it or continue its chain."""

    count: int = 0
    last_seq: int = 0
    last_hash: str = ZERO_HASH
    broken_at: int = 0  # first line (1-based) whose hash does not chain; 0 = intact
    partial_tail: bool = False  # the file ends inside a line (writer died mid-write)


class _SeqOnly(msgspec.Struct):
    seq: int


def scan_chain(lines: Iterable[bytes]) -> ChainState:
    """Walk raw lines (with their newlines) and report the chain's end state."""
    st = ChainState()
    for n, line in enumerate(lines, 1):
        if not line.endswith(b"\n"):
            st.partial_tail = True
            break
        parts = split_line(line[:-1])
        if parts is None:
            st.broken_at = st.broken_at or n
            continue
        body, stored = parts
        if st.broken_at == 0 and chain_hash(st.last_hash, body) != stored:
            st.broken_at = n
        try:
            seq = msgspec.json.decode(body, type=_SeqOnly).seq
        except msgspec.DecodeError:
            st.broken_at = st.broken_at or n
            continue
        st.count += 1
        st.last_seq = seq
        st.last_hash = stored
    return st


def scan_chain_fd(fd: int) -> ChainState:
    """scan_chain() over an fd opened for reading (e.g. RunDir.open_read("events.jsonl")); closes it."""
    with os.fdopen(fd, "rb") as f:
        return scan_chain(f)


_decoder = msgspec.json.Decoder(StoredRecord)


def decode_line(line: bytes | str) -> StoredRecord:
    """One stored line → StoredRecord (raises msgspec.DecodeError)."""
    return _decoder.decode(line)


def iter_jsonl(path: str | Path, on_error: Callable[[int, str], None] | None = None) -> Iterator[StoredRecord]:
    """Stream records from an events.jsonl, one line at a time.

    A final line without its newline (the writer is mid-flush) is not yielded. Undecodable lines
    are skipped and reported to `on_error(line_no, message)` when given.
    """
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                return
            try:
                yield _decoder.decode(line)
            except msgspec.DecodeError as exc:
                if on_error is not None:
                    on_error(n, str(exc))


class _RawBytesOnly(msgspec.Struct):
    raw_bytes: dict[str, str] = {}


def raw_bytes_of(line: bytes) -> dict[str, str]:
    """The `raw_bytes` member of a stored line (field path → hex of exact bytes); {} when absent."""
    return msgspec.json.decode(line, type=_RawBytesOnly).raw_bytes
