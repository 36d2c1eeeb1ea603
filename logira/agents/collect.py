"""`AgentCollector`: a fan-out sink that keeps the run's records for the join at finalize.

Re-reading and decoding events.jsonl was two thirds of the finalize join's cost. The sink only
keeps references to the records the pipeline already built (no copy, no work per record beyond a
list extend) and the join turns them into its light `Ev` form at the end. Above `MAX_KEPT` records
it lets go of them and the join reads events.jsonl instead (`agents.join_source: jsonl`), so a
huge run costs no more memory than the cap.
"""

from __future__ import annotations

from collections.abc import Sequence

from logira.agents.join import Ev, EvData
from logira.format.meta import RunMeta
from logira.model.record import Record
from logira.sinks.base import SinkStats

MAX_KEPT = 400_000  # records (~200 MB at most); beyond, the join reads the JSONL back


class AgentCollector:
    name = "agents"

    def __init__(self, cap: int = MAX_KEPT) -> None:
        self.stats = SinkStats()
        self.cap = cap
        self.records: list[Record] = []
        self.overflow = False

    async def open(self, meta: RunMeta) -> None:
        return None

    async def write_batch(self, records: Sequence[Record]) -> None:
        if self.overflow:
            return
        self.records.extend(records)
        if len(self.records) > self.cap:
            self.overflow = True
            self.records = []

    async def flush(self) -> None:
        return None

    async def close(self, meta: RunMeta) -> None:
        self.records = []


def ev_of(rec: Record) -> Ev:
    """The join's view of one stored record (the fields logira/agents/join.py reads)."""
    d = rec.data_json
    t = rec.type
    if t == "file":
        data = EvData(op=d.op, path=d.path, path2=d.path2)  # type: ignore[union-attr]
    elif t == "exec":
        data = EvData(filename=d.filename, argv=d.argv, errno=d.errno,  # type: ignore[union-attr]
                      agent_markers=getattr(d, "agent_markers", None) or {})  # fmt: skip
    elif t == "proc":
        data = EvData(op=d.op, child_pid=d.child_pid)  # type: ignore[union-attr]
    elif t == "net":
        data = EvData(op=d.op, dst_ip=d.dst_ip, dst_port=d.dst_port, unix_path=d.unix_path)  # type: ignore[union-attr]
    elif t == "detection":
        data = EvData(rule_id=d.rule_id, related_event_seq=d.related_event_seq)  # type: ignore[union-attr]
    elif t == "agent":
        data = EvData(op=d.op, source=d.source, event=d.event, session_id=d.session_id,  # type: ignore[union-attr]
                      tool_use_id=d.tool_use_id, tool_name=d.tool_name, command=d.command,  # type: ignore[union-attr]
                      description=d.description, file_path=d.file_path, agent_id=d.agent_id,  # type: ignore[union-attr]
                      sender_pid=d.sender_pid, status=d.status, agent=d.agent,  # type: ignore[union-attr]
                      transcript_path=d.transcript_path, permission_mode=d.permission_mode,  # type: ignore[union-attr]
                      error=d.error)  # type: ignore[union-attr]  # fmt: skip
    else:
        data = EvData(op=getattr(d, "op", "") or "")
    return Ev(rec.seq, rec.ts, t, rec.pid, rec.ppid, data)
