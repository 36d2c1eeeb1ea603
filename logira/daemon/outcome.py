"""How complete a finished run is: the loss counters -> `complete` and the reasons why not.

Pure logic, kept apart from the session lifecycle so every integrity loss has one place that
turns it into a reason. Events filtered by the run's own --no-exec/--no-file/--no-net are NOT
a loss (the user asked for that) and never appear here.
"""

from __future__ import annotations

import msgspec


class Losses(msgspec.Struct, kw_only=True):
    """Everything that can make a run's record short, counted over the run."""

    kernel_total: int = 0  # ring reservations that failed (global counters, delta over the run)
    reader: int = 0  # records that could not be decoded
    queue: int = 0  # events lost in the pipeline (conversion or JSONL write failures)
    detect_errors: int = 0  # records stored but not evaluated by the rules
    sqlite_missing: int = 0  # records in events.jsonl that index.sqlite lacks
    interrupted: bool = False  # the daemon was stopped during the run
    last_error: str = ""  # the pipeline's last error, to explain sqlite_missing


def outcome(loss: Losses) -> tuple[bool, list[str]]:
    """Return (complete, incomplete_reasons) for a finished run."""
    reasons: list[str] = []
    if loss.kernel_total:
        reasons.append(
            f"kernel ring dropped {loss.kernel_total} events while this run was active "
            "(the counters are global: some may belong to concurrent runs)"
        )
    if loss.reader:
        reasons.append(f"{loss.reader} kernel records could not be decoded")
    if loss.queue:
        reasons.append(f"{loss.queue} events failed in the pipeline")
    if loss.sqlite_missing:
        why = f": {loss.last_error}" if loss.last_error else ""
        reasons.append(f"index.sqlite lacks {loss.sqlite_missing} records (events.jsonl has them){why}")
    if loss.detect_errors:
        reasons.append(f"rule evaluation failed on {loss.detect_errors} records (they are stored)")
    if loss.interrupted:
        reasons.append("logirad was stopped during the run")
    return not reasons, reasons
