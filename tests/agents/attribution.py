"""What logira's join stored for a run: its tool calls and which call each record was attributed to.

Read through logira's own read-side API (logira/agents/calls.py, over index.sqlite), the same one
`logira calls`, `view` and `explain` use; the tests compare it with the facts kernel_view.py derives
from the exec/fork records alone.
"""

from __future__ import annotations

import contextlib
import sqlite3

from e2e_support import StoredRun
from kernel_view import describe

from logira.agents import calls as agent_calls

AGENT_RULES = ("agent-undeclared-activity", "agent-hook-tampering", "agent-declared-mismatch")


class Joined:
    def __init__(self, run: StoredRun):
        self.run = run
        with contextlib.closing(sqlite3.connect(f"file:{run.dir / 'index.sqlite'}?mode=ro", uri=True)) as db:
            self.calls = {c.call_id: c for c in agent_calls.tool_calls(db)}
            self.of = agent_calls.attribution(db)  # seq -> (call id, how)
            self.runtime = agent_calls.runtime_seqs(db)
            self.summary = agent_calls.summary(db)

    def call_of(self, record: dict) -> str:
        return self.of.get(record["seq"], ("", ""))[0]

    def assert_all_of(self, records: list[dict], call_id: str, hows: tuple[str, ...] | None = None) -> None:
        """Every one of `records` is attributed to `call_id` (and, if given, by one of `hows`)."""
        assert records, "nothing to check"
        wrong = [
            (r["seq"], r["summary"][:80], self.of.get(r["seq"]))
            for r in records
            if self.call_of(r) != call_id or (hows is not None and self.of[r["seq"]][1] not in hows)
        ]
        assert not wrong, f"not attributed to {call_id} {hows or ''}: {wrong}\n{describe(self.run)}"

    def findings(self, rule_id: str | None = None) -> list[dict]:
        """The join's own detections (agent-* rules)."""
        return [
            r
            for r in self.run.of_type("detection")
            if r["data_json"]["rule_id"] in AGENT_RULES
            and (rule_id is None or r["data_json"]["rule_id"] == rule_id)
        ]


def kernel_records(run: StoredRun, pids: set[int]) -> list[dict]:
    """The kernel facts (exec, proc, file, net) of the processes `pids`."""
    return [r for r in run.records if r["type"] in ("exec", "proc", "file", "net") and r["pid"] in pids]
