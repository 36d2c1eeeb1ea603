"""The daemon side of agent-aware runs at run end: read the run back, join, append the results.

Called by the session manager once every kernel record of the run is written and before the
sinks close. It never fails the run: any error is counted in meta.json `agents.join_errors`
with the reason in `agents_notes`. The results go through the run pipeline's append path, so
they are in the same hash chain and in index.sqlite (docs/agents.md, "Stored records").
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

import msgspec

from logira.agents.collect import AgentCollector, ev_of
from logira.agents.join import Ev, JoinResult, finding_detection, join, to_agent_call
from logira.agents.runtime import agent_of_exec
from logira.agents.transcript import TranscriptStats, kind_of, read_transcripts
from logira.model.record import AgentData, Record

RANGES_PER_RECORD = 2000  # keeps each runtime record line well under the follower frame budget
_dec = msgspec.json.Decoder(Ev)
_dec_all = msgspec.json.Decoder(list[Ev])


def wants_join(tree: Any, hooks_received: int) -> bool:
    """Only runs that saw an agent (hook messages, or an agent binary exec'd) pay for the join."""
    if hooks_received:
        return True
    return any(agent_of_exec(p.exe, p.argv) for p in tree.all())


def read_events(read_fd: int) -> tuple[list[Ev], int]:
    """Every record of events.jsonl (root's own read fd), decoded lightly; and the undecodable count.

    The file is decoded as one JSON array (one call into msgspec instead of one per line); only if
    that fails (a damaged line) is it decoded line by line, counting what does not decode.
    """
    size = os.fstat(read_fd).st_size
    data = os.pread(read_fd, size, 0)
    end = data.rfind(b"\n") + 1  # a last line without its newline is still being written: not ours
    body = data[:end].rstrip(b"\n")
    if not body:
        return [], 0
    try:
        return _dec_all.decode(b"[" + body.replace(b"\n", b",") + b"]"), 0
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    out: list[Ev] = []
    bad = 0
    for line in body.split(b"\n"):
        if not line:
            continue
        try:
            out.append(_dec.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError):
            bad += 1
    return out, bad


def transcript_paths(events: list[Ev], home: str) -> list[str]:
    """Transcript files named by hooks (claims) or written in the run (kernel facts), allowed ones first."""
    out: list[str] = []
    for ev in events:
        d = ev.data_json
        if ev.type == "agent" and d.transcript_path:
            out.append(d.transcript_path)
        elif ev.type == "file" and d.op in ("create", "modify") and d.path.endswith(".jsonl") and kind_of(d.path, home):
            out.append(d.path)
    seen: dict[str, None] = {}
    for p in out:
        seen.setdefault(p, None)
    return list(seen)


def run_join(read_fd: int, home: str, uid: int, end_ts: int,
             kept: list[Record] | None = None) -> tuple[JoinResult, TranscriptStats, int]:  # fmt: skip
    """The synchronous part (file reads and the join), run off the event loop.

    The cyclic GC is paused meanwhile: the join allocates one object per process and record, and
    with 100 k of them alive each generation-2 pass would rescan all of them (no cycles are made).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        if kept is not None:  # the collector sink's records: no re-read, no JSON decode
            events, bad = [ev_of(r) for r in kept], 0
        else:
            events, bad = read_events(read_fd)
        stats = TranscriptStats()
        declared = read_transcripts(transcript_paths(events, home), home, uid, stats)
        return join(events, declared, home=home, uid=uid, run_end=end_ts), stats, bad
    finally:
        if enabled:
            gc.enable()


def result_records(res: JoinResult, stats: TranscriptStats, uid: int, now: int) -> list[Record]:
    """The records appended to the run: tool calls, runtime ranges, findings, one summary."""
    recs: list[Record] = []
    for c in res.calls:
        call = to_agent_call(c)
        what = (c.command or c.file_path or c.description).replace("\n", " ")
        summary = f"agent tool_call {c.call_id} {c.tool}: {what}"[:200]
        data = AgentData(op="tool_call", source="join", declared=False, agent=c.agent, event="tool_call",
                         session_id=c.session_id, tool_use_id=c.call_id, tool_name=c.tool, command=c.command,
                         description=c.description, file_path=c.file_path, agent_id=c.subagent,
                         status=call.status, call=call)  # fmt: skip
        recs.append(Record(run_id="", seq=0, ts=c.start_ts or now, type="agent",
                           pid=call.agent_pid, uid=uid, summary=summary, data_json=data))  # fmt: skip
    ranges: list[list[int]] = []
    for s in res.runtime_seqs:
        if ranges and s == ranges[-1][1] + 1:
            ranges[-1][1] = s
        else:
            ranges.append([s, s])
    for i in range(0, len(ranges), RANGES_PER_RECORD):
        part = ranges[i : i + RANGES_PER_RECORD]
        data = AgentData(op="runtime", source="join", declared=False, event="runtime", seqs=part)
        recs.append(Record(run_id="", seq=0, ts=now, type="agent", uid=uid,
                           summary=f"agent runtime {sum(b - a + 1 for a, b in part)} records", data_json=data))  # fmt: skip
    for f in res.findings:
        det = finding_detection(f)
        recs.append(Record(run_id="", seq=0, ts=f.ts, type="detection", pid=f.pid, uid=uid,
                           summary=f"[{det.severity}] {det.rule_id}: {det.message}"[:500], data_json=det))  # fmt: skip
    counts = {**res.counts, **stats.as_dict()}
    data = AgentData(op="summary", source="join", declared=False, event="summary", counts=counts)
    recs.append(Record(run_id="", seq=0, ts=now, type="agent", uid=uid,
                       summary=f"agent join: {res.counts.get('calls', 0)} tool calls, "
                               f"{res.counts.get('attributed', 0)} records attributed", data_json=data))  # fmt: skip
    return recs


async def finalize_agents(pipe: Any, tree: Any, *, read_fd: int, home: str, uid: int, end_ts: int,
                          hooks: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    """Join and append; returns meta.json's `agents` object ({} when the run had no agent)."""
    collector = next((s for s in getattr(getattr(pipe, "fanout", None), "sinks", []) if isinstance(s, AgentCollector)),
                     None)  # fmt: skip
    return await _finalize(pipe, tree, read_fd, home, uid, end_ts, hooks, collector)


async def _finalize(pipe: Any, tree: Any, read_fd: int, home: str, uid: int, end_ts: int, hooks: dict[str, int],
                    collector: AgentCollector | None) -> dict[str, Any]:  # fmt: skip
    import asyncio

    if not wants_join(tree, hooks.get("hooks", 0)):
        return {k: v for k, v in hooks.items() if v}
    t0 = time.monotonic()
    kept = None
    if collector is not None and not collector.overflow:
        await pipe.fanout.drain()  # every batch so far is in the collector
        kept = collector.records
    else:
        pipe.flush()
    res, stats, bad = await asyncio.to_thread(run_join, read_fd, home, uid, end_ts, kept)
    for rec in result_records(res, stats, uid, time.time_ns()):
        pipe.append_record(rec)
    await pipe.wait_idle()
    meta: dict[str, Any] = {**hooks, **res.counts, **stats.as_dict()}
    meta = {k: v for k, v in meta.items() if v}
    meta["sessions"] = res.sessions
    meta["undecodable_records"] = bad
    meta["join_ms"] = round(1000 * (time.monotonic() - t0))
    meta["join_source"] = "records" if kept is not None else "jsonl"
    if stats.reasons:
        meta["notes"] = stats.reasons
    return meta
