"""Tool calls of a run for the report, from the agent attribution (issue 10, logira/agents/).

The report has no tool-call model of its own: when the attribution's read side is not available
(or the run carries no tool calls) the section says so.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from logira.report.model import ToolCalls

NONE_NOTE = "This run has no tool-call attribution (no agent hooks or transcript were joined to it)."


def tool_calls_of(run_dir: Path, db: sqlite3.Connection) -> ToolCalls:
    return ToolCalls(available=False, note=NONE_NOTE)
