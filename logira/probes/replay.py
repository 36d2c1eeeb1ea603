"""`ReplaySource`: recorded raw ring-buffer records, delivered like the RingReader delivers them.

A recording (`scripts/record_ring.py`, fixtures in tests/fixtures/ring/) is the exact bytes the
kernel put in the ring during a real run, so decoder → router → pipeline → sinks can run without
root or BPF, in tests and benchmarks. Same decode path (`decode.decode_batch`), same counters,
same `on_batch` contract as `RingReader`; `pause`/`resume` make it a FlowControl source.

File format: a JSON header line (`{"version": 1, "clock_offset": ns, "run_cgroup_id": id, ...}`),
then each record as a 4-byte little-endian length and its bytes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from logira.model.kernel import KernelEvent
from logira.probes import decode as dec

_LEN = struct.Struct("<I")
FORMAT_VERSION = 1


class Recording:
    def __init__(self, records: list[bytes], meta: dict[str, Any]) -> None:
        self.records = records
        self.meta = meta

    @property
    def clock(self) -> dec.Clock:
        return dec.Clock.fixed(int(self.meta.get("clock_offset", 0)))


def write_recording(path: Path, records: Sequence[bytes], meta: dict[str, Any]) -> None:
    with open(path, "wb") as f:
        f.write(json.dumps({"version": FORMAT_VERSION, **meta}, sort_keys=True).encode() + b"\n")
        for r in records:
            f.write(_LEN.pack(len(r)))
            f.write(r)


def read_recording(path: Path) -> Recording:
    data = Path(path).read_bytes()
    nl = data.index(b"\n")
    meta = json.loads(data[:nl])
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: recording version {meta.get('version')}, expected {FORMAT_VERSION}")
    records, off = [], nl + 1
    while off < len(data):
        (n,) = _LEN.unpack_from(data, off)
        off += _LEN.size
        records.append(data[off : off + n])
        off += n
    return Recording(records, meta)


class ReplaySource:
    """Delivers recorded records to `on_batch` in batches of `batch` records, when drained."""

    def __init__(self, records: Sequence[bytes], on_batch: Callable[[list[KernelEvent]], None], *,
                 clock: dec.Clock | None = None, batch: int = 256) -> None:  # fmt: skip
        self.on_batch = on_batch
        self.clock = clock or dec.Clock.fixed(0)
        self.batch = batch
        self.received = 0
        self.decode_errors = 0
        self.ignored = 0
        self.handler_lost = 0
        self.last_error = ""
        self.paused = False
        self.pauses = 0
        self._pending = list(records)

    def pause(self) -> None:
        if not self.paused:
            self.paused = True
            self.pauses += 1

    def resume(self) -> None:
        self.paused = False

    def step(self) -> int:
        """Deliver one batch (unless paused); returns the number of records taken."""
        if self.paused or not self._pending:
            return 0
        raw, self._pending = self._pending[: self.batch], self._pending[self.batch :]
        self.received += len(raw)
        d = dec.decode_batch(raw, self.clock)
        self.decode_errors += d.errors
        self.ignored += d.ignored
        self.last_error = d.last_error or self.last_error
        if d.events:
            try:
                self.on_batch(d.events)
            except Exception:
                self.handler_lost += len(d.events)
        return len(raw)

    def drain(self) -> int:
        """Deliver everything still pending (stops early while paused), like RingReader.drain."""
        n = 0
        while (k := self.step()) > 0:
            n += k
        return n

    @property
    def exhausted(self) -> bool:
        return not self._pending
