"""events.jsonl writer: appends hash-chained lines (the format: logira/format/jsonl.py).

Records are encoded and chained into a memory buffer; flush() writes whole lines with os.write.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from logira.format.jsonl import ZERO_HASH, append_line
from logira.format.textsafe import encode_exact
from logira.model.record import Record

AUTOFLUSH_BYTES = 1 << 20


class JsonlSink:
    """Appends records to events.jsonl through `fd`, buffering in memory until flush()."""

    def __init__(self, fd: int, run_id: str, *, prev_hash: str = ZERO_HASH, last_seq: int = 0,
                 count: int = 0):
        self.fd = fd
        self.run_id = run_id
        self.count = count  # records accepted (buffered or written)
        self.last_hash = prev_hash
        self.last_seq = last_seq
        self.flushed_seq = last_seq  # every seq <= this is in the file
        self._buf = bytearray()
        self._buf_last_seq = last_seq

    def write(self, records: Iterable[Record]) -> None:
        """Encode and chain `records` (seq strictly increasing) into the buffer."""
        buf = self._buf
        prev = self.last_hash
        for rec in records:
            if rec.seq <= self.last_seq:
                raise ValueError(f"JSONL seq must increase: got {rec.seq} after {self.last_seq}")
            body = encode_exact(rec)
            prev = append_line(buf, body, prev)
            self.last_seq = rec.seq
            self.last_hash = prev
            self.count += 1
        if len(buf) >= AUTOFLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the buffer with os.write (whole lines only); afterwards flushed_seq == last_seq."""
        view = memoryview(self._buf)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        finally:
            written = len(self._buf) - len(view)
            view.release()
            del self._buf[:written]
        self.flushed_seq = self.last_seq

    def close(self) -> None:
        """Flush, fsync and close the fd (idempotent)."""
        if self.fd < 0:
            return
        try:
            self.flush()
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = -1
