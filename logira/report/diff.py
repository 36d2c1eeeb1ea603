"""What a run did that earlier runs of the same workspace did not (`logira diff`, `view`, reports).

Harden-Runner's baseline idea, kept local: the history is the per-home summary index
(read/summaries.py), refreshed from the runs' meta.json on each use, so comparing with 1 000
runs is a few indexed lookups, not a rescan of their events.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from logira.format.meta import RunMeta
from logira.read.summaries import KINDS, RunSummary, SummaryIndex, summarize
from logira.report.model import NewItems

FIELDS = {"program": "programs", "destination": "destinations", "dns": "dns", "write_outside": "writes_outside",
          "credential": "credentials", "detection": "detections"}  # fmt: skip
SHOWN_MAX = 1000  # per kind in the model


def _subject(index: SummaryIndex, run_dir: Path, meta: RunMeta) -> RunSummary:
    s = index.cached(meta.run_id) if meta.status != "running" else None
    if s is not None:
        return s
    from logira.read.query import RunSource

    with RunSource(run_dir, running=True) as src:
        return summarize(src.db, meta)


def compare(
    home: Path, meta: RunMeta, *, against: str | None = None, last: int | None = None
) -> tuple[NewItems, RunSummary]:
    """The new items of run `meta` against its baseline (all earlier runs of its workspace by default)."""
    try:
        return _compare(home, meta, against, last)
    except sqlite3.DatabaseError:  # a corrupt summary index: rebuilt from the runs, once
        (home / "summaries.sqlite").unlink(missing_ok=True)
        return _compare(home, meta, against, last)


def _compare(home: Path, meta: RunMeta, against: str | None, last: int | None) -> tuple[NewItems, RunSummary]:
    with SummaryIndex(home) as index:
        index.refresh(home)
        run_dir = home / "runs" / meta.run_id
        subject = _subject(index, run_dir, meta)
        if against:
            base = [against] if index.cached(against) is not None else []
            label = f"run {against}"
        else:
            base = index.baseline(subject.workspace, meta.start_ts, meta.run_id, last)
            label = f"the last {last} runs of the workspace" if last else "all earlier runs of the workspace"
        new = index.new_items(subject, base) if base else {k: [] for k in KINDS}
    truncated = subject.truncated or any(len(v) > SHOWN_MAX for v in new.values())
    fields = {FIELDS[k]: sorted(v)[:SHOWN_MAX] for k, v in new.items()}
    dns = fields.pop("dns")
    return NewItems(baseline_runs=len(base), baseline=label, dns=dns, truncated=truncated, **fields), subject


def new_in_run_of(home: Path, meta: RunMeta) -> NewItems | None:
    """The default comparison for view/report; None when it cannot be computed (never fails the caller)."""
    try:
        return compare(home, meta)[0]
    except Exception:  # the comparison is an extra: a broken history must not break view/report
        return None
