"""The end of a run, as pure steps: its losses, its exit status, its final meta.

Kept apart from the session manager so the arithmetic of what a run lost (kernel ring deltas,
reader decode errors, pipeline losses, sinks that are short) is in one readable place, and every
loss becomes a reason through daemon/outcome.py.
"""

from __future__ import annotations

import time

from logira.daemon.outcome import Losses, outcome
from logira.format.meta import DropsMeta, FilteredMeta, RunMeta
from logira.model.proctree import ProcessTree
from logira.pipeline.session import RunPipeline


class Baseline:
    """The global loss counters when the run started (they are daemon-wide; a run owns the delta)."""

    def __init__(self, kernel: dict[str, int], reader: int) -> None:
        self.kernel = kernel
        self.reader = reader


def drops(base: Baseline, kernel_now: dict[str, int], reader_now: int, pipe: RunPipeline) -> DropsMeta:
    """What this run lost, by place (kernel ring per kind, reader, pipeline queue)."""
    kernel = {k: v - base.kernel.get(k, 0) for k, v in kernel_now.items() if v - base.kernel.get(k, 0) > 0}
    kernel_total = sum(kernel.values())
    reader = max(0, reader_now - base.reader)
    queue = pipe.errors  # events lost in user space (conversion or JSONL write failures), never silent
    return DropsMeta(kernel=kernel, kernel_total=kernel_total, reader=reader, queue=queue,
                     total=kernel_total + reader + queue)  # fmt: skip


def exit_status(tree: ProcessTree, root_pid: int, client_exit: tuple[int, int] | None) -> tuple[int | None, int]:
    """(exit_code, exit_signal) of the agent: the kernel's exit record first, else what the client saw."""
    info = tree.get(root_pid)
    if info is not None and info.exit_ts:
        return (info.exit_code if not info.exit_signal else None), info.exit_signal
    if client_exit is not None:
        return (client_exit[0] if not client_exit[1] else None), client_exit[1]
    return None, 0


def final_meta(meta: RunMeta, pipe: RunPipeline, d: DropsMeta, *, exit_code: int | None, exit_signal: int,
               stragglers: list[int], interrupted: bool, failure: str = "") -> RunMeta:
    """The run's meta at its end; `failure` = a stage that failed outright (the run is incomplete)."""
    complete, reasons = outcome(
        Losses(kernel_total=d.kernel_total, reader=d.reader, queue=d.queue, detect_errors=pipe.detect_errors,
               sqlite_missing=pipe.sqlite_missing, interrupted=interrupted, last_error=pipe.last_error)
    )  # fmt: skip
    if failure:
        complete, reasons = False, [*reasons, failure]
    f = pipe.filtered
    meta.end_ts = time.time_ns()
    meta.exit_code = exit_code
    meta.exit_signal = exit_signal
    meta.counts = dict(pipe.counts)
    meta.detections = dict(pipe.detections)
    meta.suspicious_count = sum(pipe.detections.values())
    meta.drops = d
    meta.filtered = FilteredMeta(exec=f["exec"], file=f["file"], net=f["net"])
    meta.detect_errors = pipe.detect_errors
    meta.sqlite_missing = pipe.sqlite_missing
    meta.sinks = {
        name: {"written": st.written, "failed": st.failed, "batches": st.batches}
        | ({"last_error": st.last_error[:300]} if st.last_error else {})
        for name, st in pipe.fanout.stats().items()
    }
    meta.event_count = pipe.event_count
    meta.final_hash = pipe.chain.last_hash
    meta.stragglers = stragglers
    meta.complete = complete
    meta.incomplete_reasons = reasons
    meta.status = "interrupted" if interrupted else ("complete" if complete else "incomplete")
    return meta
