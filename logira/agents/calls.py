"""The read side of agent-aware runs: a run's tool calls and which call each record belongs to.

Everything comes from the `agent` records the daemon appended at finalize (op `tool_call`,
`runtime`, `summary`), so it works the same on index.sqlite and on the JSONL fallback index
(`RunSource`). Public API, used by `view`, `explain`, `calls`, `query` and the reports:

    tool_calls(db) -> list[ToolCall]            # in start order; shape documented in docs/agents.md
    attribution(db) -> dict[seq, (call_id, how)]
    runtime_seqs(db) -> set[int]
    summary(db) -> dict[str, int]               # join counts (hooks, attributed, parse errors, ...)
"""

from __future__ import annotations

import sqlite3

import msgspec

from logira.model.record import AgentCall, AgentData, DeclaredCall, declared_part


class ToolCall(DeclaredCall, kw_only=True):
    """One tool call as `logira calls --json` prints it (docs/agents.md): the stored AgentCall, counted."""

    duration_ms: int | None = None
    status: str = ""
    source: str = ""  # hook | transcript
    declared: bool = True  # the call itself is a claim of the agent; its counts are kernel facts
    agent_pid: int = 0
    subagent: str = ""
    parent_call: str = ""  # the Agent/Task call whose subagent made this call
    execs: int = 0
    files: int = 0
    destinations: int = 0
    records: int = 0
    detections: list[str] = []  # rule ids of the detections attributed to the call, in seq order
    detection_seqs: list[int] = []
    left_running: list[int] = []
    how: dict[str, int] = {}  # records by attribution method
    seq: int = 0  # of the tool_call record


_agent_dec = msgspec.json.Decoder(AgentData)


def _agent_rows(db: sqlite3.Connection, op: str):
    for seq, data in db.execute("SELECT seq, data_json FROM events WHERE type = 'agent' AND op = ? ORDER BY seq", (op,)):
        try:
            yield seq, _agent_dec.decode(data or "{}")
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue


def _joined(db: sqlite3.Connection) -> list[tuple[int, AgentCall]]:
    """The tool_call records; for a run the daemon could not finalize (crash), the join made now."""
    calls = [(seq, d.call) for seq, d in _agent_rows(db, "tool_call") if d.call is not None]
    if calls or db.execute("SELECT 1 FROM events WHERE type = 'agent' AND op = 'summary' LIMIT 1").fetchone():
        return calls
    if not db.execute("SELECT 1 FROM events WHERE type = 'agent' AND op = 'hook' LIMIT 1").fetchone():
        return []
    if _READ_SIDE and _READ_SIDE[0][0] is db:  # one cached join, holding its connection (no id reuse)
        return _READ_SIDE[0][1]
    _READ_SIDE[:] = [(db, read_side_join(db))]
    return _READ_SIDE[0][1]


_READ_SIDE: list[tuple[sqlite3.Connection, list[tuple[int, AgentCall]]]] = []


def read_side_join(db: sqlite3.Connection) -> list[tuple[int, AgentCall]]:
    """The join over the stored records (hooks only: transcripts are read by the daemon)."""
    from logira.agents.join import Ev, EvData, join, to_agent_call

    dec = msgspec.json.Decoder(EvData)
    evs = []
    for seq, ts, typ, pid, ppid, data in db.execute("SELECT seq, ts, type, pid, ppid, data_json FROM events ORDER BY seq"):
        try:
            evs.append(Ev(seq, ts, typ, pid or 0, ppid or 0, dec.decode(data or "{}")))
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    home = ""
    res = join(evs, [], home=home, uid=-1)
    return [(0, to_agent_call(c)) for c in res.calls]


def tool_calls(db: sqlite3.Connection) -> list[ToolCall]:
    """The run's tool calls in start order (empty when the run had none, or predates agent support).

    A run whose daemon crashed has hook records but no join results: the join is made here from
    its hooks (`seq` 0 on each call then).
    """
    out: list[ToolCall] = []
    calls = _joined(db)
    det_seqs = {s for _, c in calls for a, b in c.seqs for s in range(a, b + 1)}
    rules: dict[int, str] = {}
    if det_seqs:
        for seq, rule in db.execute("SELECT seq, rule_id FROM events WHERE type = 'detection'"):
            if seq in det_seqs:
                rules[seq] = rule or "?"
    for seq, c in calls:
        hows: dict[str, int] = {}
        n = 0
        dets: list[int] = []
        for (a, b), h in zip(c.seqs, c.how, strict=False):
            hows[h] = hows.get(h, 0) + (b - a + 1)
            n += b - a + 1
            dets.extend(s for s in range(a, b + 1) if s in rules)
        out.append(ToolCall(
            **declared_part(c),
            duration_ms=(c.end_ts - c.start_ts) // 1_000_000 if c.end_ts and c.start_ts else None,
            status=c.status, source=c.source, agent_pid=c.agent_pid, subagent=c.subagent, execs=c.execs,
            files=c.files, destinations=c.destinations, records=n, detections=[rules[s] for s in dets],
            detection_seqs=dets, left_running=c.left_running, how=hows, seq=seq, parent_call=c.parent_call,
        ))  # fmt: skip
    out.sort(key=lambda t: (t.start_ts, t.seq))
    return out


def attribution(db: sqlite3.Connection) -> dict[int, tuple[str, str]]:
    """seq -> (tool call id, how: marker | hook_window | transcript) for attributed records."""
    out: dict[int, tuple[str, str]] = {}
    for _seq, call in _joined(db):
        for (a, b), h in zip(call.seqs, call.how, strict=False):
            for s in range(a, b + 1):
                out[s] = (call.call_id, h)
    return out


def call_seqs(db: sqlite3.Connection, call_id: str) -> list[int] | None:
    """The seqs attributed to one tool call (prefix of its id accepted when unique), None if unknown."""
    found = [c for _s, c in _joined(db)]
    exact = [c for c in found if c.call_id == call_id]
    match = exact or [c for c in found if c.call_id.startswith(call_id)]
    if len(match) != 1:
        return None
    return [s for a, b in match[0].seqs for s in range(a, b + 1)]


def runtime_seqs(db: sqlite3.Connection) -> set[int]:
    """Records classified as the agent's own runtime (bookkeeping), collapsed by `view`."""
    out: set[int] = set()
    for _seq, d in _agent_rows(db, "runtime"):
        for a, b in d.seqs:
            out.update(range(a, b + 1))
    return out


def summary(db: sqlite3.Connection) -> dict[str, int]:
    out: dict[str, int] = {}
    for _seq, d in _agent_rows(db, "summary"):
        out.update(d.counts)
    return out
