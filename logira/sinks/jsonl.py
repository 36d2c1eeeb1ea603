"""events.jsonl writer: appends hash-chained lines (the format: logira/format/jsonl.py).

The chain stage of every run and its authoritative record, so it is not one of the fan-out's
sinks: it runs first, synchronously, and a batch it cannot take is lost (and counted), while a
fan-out sink that fails only makes its own copy short. Records are encoded and chained into a
memory buffer; flush() writes whole lines with os.write and hands exactly those lines to the
run's live followers (`LiveHub`), so `tail` sees the bytes of the file without re-reading it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from logira.format.jsonl import ZERO_HASH, append_line
from logira.format.textsafe import encode_exact
from logira.model.record import Record
from logira.sinks.base import SinkStats
from logira.sinks.live import LiveHub

AUTOFLUSH_BYTES = 1 << 20


class JsonlSink:
    """Appends records to events.jsonl through `fd`, buffering in memory until flush()."""

    name = "jsonl"

    def __init__(self, fd: int, run_id: str, *, prev_hash: str = ZERO_HASH, last_seq: int = 0,
                 count: int = 0, live: LiveHub | None = None):
        self.fd = fd
        self.run_id = run_id
        self.count = count  # records accepted (buffered or written)
        self.last_hash = prev_hash
        self.last_seq = last_seq
        self.flushed_seq = last_seq  # every seq <= this is in the file
        self.live = live if live is not None else LiveHub()
        self.stats = SinkStats()
        self._buf = bytearray()
        self._carry = b""  # written bytes of a line not yet complete in the file (after a short write)

    def write(self, records: Iterable[Record]) -> None:
        """Encode and chain `records` (seq strictly increasing) into the buffer."""
        buf = self._buf
        prev = self.last_hash
        n = 0
        for rec in records:
            if rec.seq <= self.last_seq:
                raise ValueError(f"JSONL seq must increase: got {rec.seq} after {self.last_seq}")
            prev = append_line(buf, encode_exact(rec), prev)
            self.last_seq = rec.seq
            self.last_hash = prev
            self.count += 1
            n += 1
        self.stats.batches += 1
        self.stats.written += n
        if len(buf) >= AUTOFLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the buffer with os.write (whole lines only); afterwards flushed_seq == last_seq.

        The lines that reached the file go to the live followers, in the same call.
        """
        view = memoryview(self._buf)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        finally:
            written = len(self._buf) - len(view)
            view.release()
            if written:
                self._publish(bytes(self._buf[:written]))
            del self._buf[:written]
        self.flushed_seq = self.last_seq

    def _publish(self, data: bytes) -> None:
        if not self.live:
            self._carry = b""
            return
        data = self._carry + data if self._carry else data
        end = data.rfind(b"\n") + 1  # only whole lines
        self._carry = data[end:]
        if end:
            self.live.publish(data[:end].decode("utf-8", "surrogateescape").splitlines())

    def close(self) -> None:
        """Flush, fsync and close the fd (idempotent); the live followers are told the run ended."""
        if self.fd < 0:
            return
        try:
            self.flush()
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = -1
            self.live.end()
