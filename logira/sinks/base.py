"""The seam every sink plugs into: `Sink` (open / write_batch / flush / close) and its counters.

A sink receives the run's records in seq order, in batches, after the hash chain has been
extended by the JSONL sink (the authoritative record). It never sees kernel bytes. A failure is
raised, never swallowed: the fan-out counts it against that sink (`SinkStats.failed`) and the
run's meta says what is short (docs/architecture.md, "Adding a sink").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from logira.format.meta import RunMeta
from logira.model.record import Record


class SinkStats(msgspec.Struct, kw_only=True):
    """Per-sink counters, reported in the run's meta and by `logira status`."""

    batches: int = 0
    written: int = 0  # records the sink accepted
    failed: int = 0  # records the sink could not take (its batch raised)
    last_error: str = ""


class Sink(Protocol):
    """One destination of a run's records."""

    name: str  # short, stable: "jsonl", "sqlite", "journald", "otlp", ...
    stats: SinkStats

    async def open(self, meta: RunMeta) -> None:
        """Prepare for the run described by `meta` (initial meta: status "running")."""
        ...

    async def write_batch(self, records: Sequence[Record]) -> None:
        """Take one batch, in seq order; raise if the batch is not taken (counted by the fan-out)."""
        ...

    async def flush(self) -> None:
        """Make what was written visible (called at least every flush_interval and at the end)."""
        ...

    async def close(self, meta: RunMeta) -> None:
        """Flush and release; `meta` is the final meta (status, counts, losses). Idempotent."""
        ...
