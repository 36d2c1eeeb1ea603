"""Tool calls of a run for the report, from the agent attribution (issue 10, logira/agents/calls.py).

The report has no tool-call model of its own: it shows `agents.calls.ToolCall` as the attribution
reads it from the run's `agent` records; a run without them says so.
"""

from __future__ import annotations

import sqlite3

from logira.agents import calls as agent_calls
from logira.report.model import ToolCalls

CALLS_MAX = 2000
NONE_NOTE = "This run has no tool-call attribution (no agent hooks or transcript were joined to it)."


def tool_calls_of(db: sqlite3.Connection) -> ToolCalls:
    try:
        calls = agent_calls.tool_calls(db)
    except sqlite3.Error:
        calls = []
    if not calls:
        return ToolCalls(available=False, note=NONE_NOTE)
    return ToolCalls(available=True, note="Tool calls are declared by the agent (hooks / transcript); the "
                     "processes, files and destinations under each are what the kernel recorded.",
                     calls=calls[:CALLS_MAX], total=len(calls), truncated=len(calls) > CALLS_MAX)  # fmt: skip


def attribution_of(db: sqlite3.Connection) -> dict[int, str]:
    """seq -> tool call id, for the records the attribution placed in a call."""
    try:
        return {seq: cid for seq, (cid, _how) in agent_calls.attribution(db).items()}
    except sqlite3.Error:
        return {}
