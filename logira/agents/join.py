"""The join: which tool call caused each process, file change, connection and detection (pure).

Inputs are the run's records in seq order (decoded lightly, `Ev`) and the tool calls the agent
declared (hook messages in the record; transcript lines read at finalize). Kernel facts decide,
claims only label (DESIGN.md, "Facts, hints and claims"):
- a process is attributed through the kernel tree: a child of an agent process forked inside a
  call's window (PreToolUse→PostToolUse, or tool_use→tool_result in a transcript), disambiguated by
  the exec'd command line against `tool_input.command` and by session markers of the exec; every
  descendant inherits its ancestor's call, whenever it runs;
- an agent process's own file changes are attributed to its Edit/Write call by path and time;
- what is left is the agent's runtime (known bookkeeping) or nothing, and while hooks were active
  "nothing" is itself a finding (undeclared activity), as is a change to hook/permission config
  (tampering) and a declared command the kernel never saw exec'd (declared vs done).

Linear in the number of records: one pass builds processes, one attributes them in creation order,
one attributes records. Windows are searched per agent process among its own calls only.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import msgspec

from logira.agents.runtime import RuntimeClassifier, agent_of_exec
from logira.model.record import AgentCall, DetectionData, declared_part

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ash", "busybox", "env", "timeout", "nice", "nohup"})
# tools that run a subagent (Claude Code 2.1 calls it Agent, earlier versions Task): the calls the
# subagent makes are its children (AgentCall.parent_call)
SUBAGENT_TOOLS = frozenset({"Agent", "Task"})
BASH_TOOLS = frozenset({"Bash", "exec_command", "shell", "local_shell", "container.exec", "run_shell_command"})
EDIT_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit", "apply_patch", "write_file", "replace"})
CHANGE_OPS = frozenset({"create", "modify", "delete", "rename", "chmod", "truncate", "link", "symlink",
                        "mkdir", "rmdir", "chown", "write"})  # fmt: skip
NET_OPS = frozenset({"connect", "send"})
HOOK_SLACK_NS = 5_000_000  # hook records are stamped at receipt, kernel records at the event (clock skew)
TRANSCRIPT_SLACK_NS = 2_000_000_000  # transcript lines are stamped by the agent, in ms, when written
LEFT_RUNNING_GRACE_NS = 1_000_000_000

RULE_UNDECLARED = "agent-undeclared-activity"
RULE_TAMPER = "agent-hook-tampering"
RULE_MISMATCH = "agent-declared-mismatch"


class EvData(msgspec.Struct, gc=False):
    op: str = ""
    filename: str = ""
    argv: list[str] = []
    argv_truncated: bool = False
    errno: int = 0
    agent_markers: dict[str, str] = {}  # ExecData, when the exec probes read them (hints)
    child_pid: int = 0
    path: str = ""
    path2: str = ""
    dst_ip: str = ""
    dst_port: int = 0
    unix_path: str = ""
    rule_id: str = ""
    related_event_seq: int = 0
    # agent records
    source: str = ""
    event: str = ""
    session_id: str = ""
    tool_use_id: str = ""
    tool_name: str = ""
    command: str = ""
    description: str = ""
    file_path: str = ""
    agent_id: str = ""
    sender_pid: int = 0
    status: str = ""
    agent: str = ""
    transcript_path: str = ""
    permission_mode: str = ""
    error: str = ""


class Ev(msgspec.Struct, gc=False):
    """One stored record, decoded with only what the join needs (unknown fields are skipped)."""

    seq: int
    ts: int
    type: str
    pid: int = 0
    ppid: int = 0
    data_json: EvData = msgspec.field(default_factory=EvData)


class Proc:
    """One process of the run as the kernel records show it (a pid reused later is a new Proc)."""

    __slots__ = (
        "agent",
        "argv",
        "argvs",
        "call",
        "exe",
        "exec_seq",
        "exit_ts",
        "how",
        "late_flagged",
        "markers",
        "parent",
        "pid",
        "ppid",
        "runtime",
        "start_ts",
    )  # fmt: skip

    def __init__(self, pid: int, ppid: int, start_ts: int, parent: Proc | None = None) -> None:
        self.pid, self.ppid, self.start_ts, self.parent = pid, ppid, start_ts, parent
        self.argv: list[str] = []  # first exec after the fork
        self.argvs: list[list[str]] = []  # its first few execs (wrappers exec the tool)
        self.exe = ""
        self.exec_seq = 0
        self.markers: dict[str, str] = {}
        self.exit_ts = 0
        self.agent = ""  # this process is an agent's main process (claude|codex|gemini)
        self.call: Call | None = None
        self.how = ""
        self.runtime = False
        self.late_flagged = False


@dataclass(eq=False)
class Call:
    """A declared tool call being joined (becomes an AgentCall)."""

    call_id: str
    source: str  # hook | transcript
    session_id: str = ""
    agent: str = ""
    tool: str = ""
    command: str = ""
    description: str = ""
    file_path: str = ""
    start_ts: int = 0
    end_ts: int = 0
    status: str = ""
    subagent: str = ""
    parent_call: str = ""  # the Agent/Task call whose subagent made this call
    agent_proc: Proc | None = None
    seqs: list[int] = field(default_factory=list)
    hows: list[str] = field(default_factory=list)
    direct: list[Proc] = field(default_factory=list)  # processes the agent spawned for it
    execs: int = 0
    paths: set[str] = field(default_factory=set)
    dests: set[str] = field(default_factory=set)
    detections: int = 0
    left_running: list[int] = field(default_factory=list)

    def window(self, run_end: int) -> tuple[int, int]:
        slack = HOOK_SLACK_NS if self.source == "hook" else TRANSCRIPT_SLACK_NS
        return self.start_ts - slack, (self.end_ts or run_end) + slack


@dataclass
class Declared:
    """A tool call as a transcript declares it (parsed by logira/agents/transcript.py)."""

    call_id: str
    agent: str
    tool: str = ""
    command: str = ""
    description: str = ""
    file_path: str = ""
    start_ts: int = 0
    end_ts: int = 0
    status: str = ""
    session_id: str = ""
    subagent: str = ""


@dataclass
class Finding:
    rule_id: str
    severity: str
    title: str
    message: str
    seq: int  # related record
    ts: int
    pid: int
    call: Call | None
    how: str


@dataclass
class JoinResult:
    calls: list[Call]
    attribution: dict[int, tuple[str, str]]  # seq -> (call_id, how)
    runtime_seqs: list[int]
    findings: list[Finding]
    counts: dict[str, int]
    sessions: list[str]


def command_matches(declared: str, argv: list[str]) -> bool:
    """The exec'd command line carries the declared command (as is, or single-quoted for `eval`)."""
    d = declared.strip()
    if not d or not argv:
        return False
    text = " ".join(argv)
    if d[:1024] in text:
        return True
    quoted = d.replace("'", "'\"'\"'")  # Claude: eval '<command with ' as '"'"'>'
    return quoted[:1024] in text


def _proc_matches(declared: str, p: Proc) -> bool:
    return any(command_matches(declared, argv) for argv in (p.argvs or [p.argv]))


def _basename(p: str) -> str:
    return p.rsplit("/", 1)[-1]


def _agent_ancestor(sender: Proc | None) -> Proc | None:
    """The agent process above a hook sender (`logira hook`): skip the `sh -c "logira hook"` wrappers."""
    p = sender.parent if sender is not None else None
    depth = 0
    while p is not None and depth < 8 and not p.agent and RuntimeClassifier.runtime_exec(p.argv) == "logira":
        p = p.parent
        depth += 1
    return p


def _edit_targets(path: str, path2: str) -> tuple[str, ...]:
    """The file an agent's own write may be for: itself, or the temp file it renames over it.

    Claude's Write/Edit write `<file>.tmp.<pid>.<hex>` and rename it onto `<file>`.
    """
    out = [p for p in (path, path2) if p]
    for p in (path, path2):
        cut = p.find(".tmp.")
        if cut > 0:
            out.append(p[:cut])
    return tuple(out)


def _ranges(seqs: list[int], hows: list[str]) -> tuple[list[list[int]], list[str]]:
    out: list[list[int]] = []
    out_how: list[str] = []
    for s, h in sorted(zip(seqs, hows, strict=True)):
        if out and s == out[-1][1] + 1 and out_how[-1] == h:
            out[-1][1] = s
        else:
            out.append([s, s])
            out_how.append(h)
    return out, out_how


def to_agent_call(c: Call) -> AgentCall:
    seqs, hows = _ranges(c.seqs, c.hows)
    return AgentCall(
        **declared_part(c),
        status=c.status or ("running" if not c.end_ts else "unknown"), source=c.source,
        agent_pid=c.agent_proc.pid if c.agent_proc else 0, subagent=c.subagent, execs=c.execs,
        files=len(c.paths), destinations=len(c.dests), detections=c.detections, seqs=seqs, how=hows,
        left_running=sorted(c.left_running), parent_call=c.parent_call,
    )  # fmt: skip


class _Joiner:
    def __init__(self, events: list[Ev], declared: list[Declared], home: str, uid: int, run_end: int):
        self.events = events
        self.declared = declared
        self.cls = RuntimeClassifier(home, uid)
        self.run_end = run_end or (events[-1].ts if events else 0)
        self.procs: list[Proc] = []
        self.ev_proc: list[Proc | None] = []
        self.calls: dict[str, Call] = {}
        self.by_agent: dict[int, list[Call]] = {}  # id(agent Proc) -> calls sorted by start
        self.unbound: list[Call] = []  # calls whose agent process is unknown (transcript only)
        self.active: dict[int, tuple[int, int]] = {}  # id(agent Proc) -> hooks active span
        self.counts: dict[str, int] = {}
        self.findings: list[Finding] = []
        self.modes: dict[str, str] = {}  # session -> last declared permission_mode
        self.subagent_parent: dict[str, str] = {}  # subagent id -> the call that started it (SubagentStart)
        # hook calls that came without an id (logira named them), by (agent, tool, command), in start order
        self.unnamed: dict[tuple[str, str, str], list[Call]] = {}

    def bump(self, k: str, n: int = 1) -> None:
        self.counts[k] = self.counts.get(k, 0) + n

    # -- pass 1: processes and hook calls ------------------------------------------------
    def build(self) -> None:
        cur: dict[int, Proc] = {}
        pending: dict[tuple[str, str], list[Call]] = {}  # (session, tool) -> calls without an id
        for ev in self.events:
            d = ev.data_json
            t = ev.type
            p = cur.get(ev.pid) if ev.pid else None
            if t == "proc" and d.op == "fork" and d.child_pid:
                child = Proc(d.child_pid, ev.pid, ev.ts, parent=p)
                cur[d.child_pid] = child
                self.procs.append(child)
            elif t == "exec" and not d.errno:
                if p is None or p.exit_ts:
                    p = Proc(ev.pid, ev.ppid, ev.ts, parent=cur.get(ev.ppid))
                    cur[ev.pid] = p
                    self.procs.append(p)
                if not p.exec_seq:
                    p.argv, p.exe, p.exec_seq = d.argv, d.filename, ev.seq
                else:
                    p.exe = d.filename  # a later exec of the same process (argv of the first is kept)
                if len(p.argvs) < 4:
                    p.argvs.append(d.argv)
                if d.agent_markers:
                    p.markers = d.agent_markers
                # the image decides: Codex re-execs itself (`/proc/self/exe --codex-run-as-process-setup`)
                # before exec'ing the tool's shell, which is then no agent any more
                p.agent = agent_of_exec(d.filename, d.argv)
            elif t == "proc" and d.op == "exit" and p is not None:
                p.exit_ts = ev.ts
            elif p is None and ev.pid and t in ("file", "net", "exec", "proc"):
                p = Proc(ev.pid, ev.ppid, ev.ts, parent=cur.get(ev.ppid))
                cur[ev.pid] = p
                self.procs.append(p)
            if t == "agent" and d.source == "hook" and not d.error:
                self._hook(ev, cur, pending)
            self.ev_proc.append(p)

    def _hook(self, ev: Ev, cur: dict[int, Proc], pending: dict[tuple[str, str], list[Call]]) -> None:
        d = ev.data_json
        self.bump("hook_messages")
        if d.permission_mode:
            before = self.modes.get(d.session_id)
            self.modes[d.session_id] = d.permission_mode
            if before is not None and before != d.permission_mode:
                self.findings.append(Finding(
                    RULE_TAMPER, "medium", "Agent permission mode changed during the session",
                    f"session {d.session_id}: permission mode {before} -> {d.permission_mode} (declared by its hooks)",
                    ev.seq, ev.ts, ev.pid, None, "none",
                ))  # fmt: skip
        agent_proc = _agent_ancestor(cur.get(d.sender_pid))
        if agent_proc is not None:
            if not agent_proc.agent:
                agent_proc.agent = d.agent or "agent"
            lo, _hi = self.active.get(id(agent_proc), (ev.ts, ev.ts))
            self.active[id(agent_proc)] = (lo, agent_proc.exit_ts or self.run_end)
        if d.event == "SubagentStart" and d.agent_id:
            self._subagent_started(d.session_id, d.agent_id)
        if d.event not in ("PreToolUse", "PostToolUse", "PostToolUseFailure"):
            return
        key = (d.session_id, d.tool_name)
        cid = d.tool_use_id
        if d.event == "PreToolUse":
            if not cid:
                cid = f"hook-{ev.seq}"
            if cid in self.calls:
                self.bump("duplicate_call_ids")  # a forged or replayed id: the first one stands
                return
            c = Call(cid, "hook", session_id=d.session_id, agent=d.agent or (agent_proc.agent if agent_proc else ""),
                     tool=d.tool_name, command=d.command, description=d.description, file_path=d.file_path,
                     start_ts=ev.ts, subagent=d.agent_id, agent_proc=agent_proc)  # fmt: skip
            self.calls[cid] = c
            if not d.tool_use_id:
                pending.setdefault(key, []).append(c)
                self.unnamed.setdefault((c.agent, c.tool, c.command), []).append(c)
            self._bind(c)
            return
        ended: Call | None
        if cid:
            ended = self.calls.get(cid)
        else:
            waiting = pending.get(key)
            ended = waiting.pop(0) if waiting else None
        if ended is None:
            self.bump("post_without_pre")
            return
        c = ended
        if c.end_ts:
            self.bump("duplicate_call_ids")
            return
        c.end_ts = ev.ts
        c.status = d.status or ("error" if d.event == "PostToolUseFailure" else "ok")

    def _adopt_id(self, dcl: Declared) -> Call | None:
        """A hook call without an id (Gemini's hooks carry none: logira named it `hook-<seq>`) takes the
        id its transcript gives the same call: same agent, tool and command, started inside its span."""
        same = self.unnamed.get((dcl.agent, dcl.tool, dcl.command))
        if not same:
            return None
        lo, hi = dcl.start_ts - TRANSCRIPT_SLACK_NS, (dcl.end_ts or self.run_end) + TRANSCRIPT_SLACK_NS
        for i, c in enumerate(same):  # start order: the oldest unnamed match takes the id
            if lo <= c.start_ts <= hi:
                del same[i]
                del self.calls[c.call_id]
                c.call_id = dcl.call_id
                self.calls[c.call_id] = c
                self.bump("ids_from_transcript")
                return c
        return None

    def _subagent_started(self, session: str, agent_id: str) -> None:
        """The subagent belongs to the oldest open Agent/Task call of its session not yet given one."""
        if agent_id in self.subagent_parent:
            return
        taken = set(self.subagent_parent.values())
        for c in self.calls.values():  # start order
            if c.session_id == session and c.tool in SUBAGENT_TOOLS and not c.end_ts and c.call_id not in taken:
                self.subagent_parent[agent_id] = c.call_id
                return
        self.bump("subagents_without_call")

    def link_subagents(self) -> None:
        """Each subagent call's parent: from SubagentStart, else the Agent/Task call open at its start."""
        spawners = sorted((c for c in self.calls.values() if c.tool in SUBAGENT_TOOLS), key=lambda c: c.start_ts)
        for c in self.calls.values():
            if not c.subagent:
                continue
            parent = self.subagent_parent.get(c.subagent, "")
            if not parent:
                for s in spawners:  # transcript-only runs: by time, the latest spawner still open
                    if s.session_id == c.session_id and s.start_ts <= c.start_ts and (not s.end_ts or c.start_ts <= s.end_ts):
                        parent = s.call_id
                self.subagent_parent[c.subagent] = parent
            c.parent_call = parent if parent != c.call_id else ""

    def _bind(self, c: Call) -> None:
        if c.agent_proc is not None:
            lst = self.by_agent.setdefault(id(c.agent_proc), [])
            lst.append(c)  # hook calls arrive in start order
        else:
            self.unbound.append(c)

    # -- transcripts ---------------------------------------------------------------------
    def merge_declared(self) -> None:
        agents_by_kind: dict[str, list[Proc]] = {}
        for p in self.procs:
            if p.agent:
                agents_by_kind.setdefault(p.agent, []).append(p)
        for dcl in self.declared:
            have = self.calls.get(dcl.call_id) or self._adopt_id(dcl)
            if have is not None:
                self.bump("transcript_confirmed")
                have.command = have.command or dcl.command
                have.file_path = have.file_path or dcl.file_path
                if not have.end_ts and dcl.end_ts:
                    have.end_ts, have.status = dcl.end_ts, have.status or dcl.status
                continue
            self.bump("transcript_only_calls")
            c = Call(dcl.call_id, "transcript", session_id=dcl.session_id, agent=dcl.agent, tool=dcl.tool,
                     command=dcl.command, description=dcl.description, file_path=dcl.file_path,
                     start_ts=dcl.start_ts, end_ts=dcl.end_ts, status=dcl.status, subagent=dcl.subagent)  # fmt: skip
            # the agent process: the one of that kind alive over the call's start
            for p in agents_by_kind.get(dcl.agent, []):
                if p.start_ts <= c.start_ts + TRANSCRIPT_SLACK_NS and (not p.exit_ts or p.exit_ts >= c.start_ts):
                    c.agent_proc = p
            self.calls[c.call_id] = c
            if c.agent_proc is not None:
                lst = self.by_agent.setdefault(id(c.agent_proc), [])
                lst.append(c)
            else:
                self.unbound.append(c)
        for lst in self.by_agent.values():
            lst.sort(key=lambda c: c.start_ts)

    # -- pass 2: processes, in creation order ---------------------------------------------
    def attribute_procs(self) -> None:
        starts = {k: [c.start_ts for c in v] for k, v in self.by_agent.items()}
        for p in self.procs:
            parent = p.parent
            if parent is None:
                continue
            if parent.call is not None:
                p.call, p.how = parent.call, parent.how
                continue
            if parent.runtime and not parent.agent:
                p.runtime = True
                continue
            if not parent.agent or p.agent:
                continue
            kind = RuntimeClassifier.runtime_exec(p.argv)
            if kind == "logira":
                p.runtime = True
                continue
            calls = self.by_agent.get(id(parent), [])
            marked = self.calls.get(p.markers.get("CODEX_TOOL_CALL_ID", "")) if p.markers else None
            if marked is not None and marked.agent_proc is parent:
                # Codex names the call in the command's environment: a hint read by the kernel at exec,
                # taken only for a call of this very agent process
                p.call, p.how = marked, "marker"
                marked.direct.append(p)
                self.bump("marker_attributed")
                continue
            cands = self._candidates(calls, starts.get(id(parent), []), p.start_ts)
            by_marker = False
            if p.markers:
                sess = p.markers.get("CLAUDE_CODE_SESSION_ID") or p.markers.get("CODEX_THREAD_ID")
                if sess:
                    by_sess = [c for c in cands if c.session_id == sess]
                    if by_sess and len(by_sess) < len(cands):
                        cands, by_marker = by_sess, True  # the session marker told the candidates apart
                        self.bump("marker_disambiguated")
            matched = [c for c in cands if c.tool in BASH_TOOLS and _proc_matches(c.command, p)]
            chosen: Call | None = None
            if len(matched) >= 1:
                chosen = matched[-1]
                if len(matched) > 1:
                    self.bump("ambiguous")
            elif kind:
                p.runtime = True
                continue
            elif len(cands) == 1 and cands[0].tool not in EDIT_TOOLS:
                chosen = cands[0]
            elif cands:
                bash = [c for c in cands if c.tool in BASH_TOOLS]
                if len(bash) == 1:
                    chosen = bash[0]
                elif bash:
                    chosen = bash[-1]
                    self.bump("ambiguous")
            if chosen is None:
                continue
            p.call = chosen
            p.how = "marker" if by_marker else ("hook_window" if chosen.source == "hook" else "transcript")
            chosen.direct.append(p)

    def _candidates(self, calls: list[Call], starts: list[int], ts: int) -> list[Call]:
        # calls started (with slack) before ts; those whose window still covers ts
        hi = bisect.bisect_right(starts, ts + TRANSCRIPT_SLACK_NS)
        out = []
        for c in calls[:hi]:
            lo, end = c.window(self.run_end)
            if lo <= ts <= end:
                out.append(c)
        return out

    # -- pass 3: records -----------------------------------------------------------------
    def attribute_records(self) -> tuple[dict[int, tuple[str, str]], list[int]]:
        attribution: dict[int, tuple[str, str]] = {}
        runtime: list[int] = []
        edits: dict[int, dict[str, list[Call]]] = {}
        for key, calls in self.by_agent.items():
            for c in calls:
                if c.tool in EDIT_TOOLS and c.file_path:
                    edits.setdefault(key, {}).setdefault(c.file_path, []).append(c)
        by_seq: dict[int, tuple[Call | None, str]] = {}
        cls = self.cls
        for ev, p in zip(self.events, self.ev_proc, strict=True):
            t = ev.type
            d = ev.data_json
            if t == "agent":
                continue
            if t == "detection":
                dcall, dhow = by_seq.get(d.related_event_seq, (None, ""))
                if dcall is not None:
                    dcall.detections += 1
                    dcall.seqs.append(ev.seq)
                    dcall.hows.append(dhow)
                    attribution[ev.seq] = (dcall.call_id, dhow)
                continue
            call: Call | None = p.call if p is not None else None
            how = p.how if p is not None else ""
            is_change = t == "file" and d.op in CHANGE_OPS
            if call is None and p is not None and p.agent and is_change:
                for path in _edit_targets(d.path, d.path2):
                    for c in edits.get(id(p), {}).get(path, []):
                        lo, end = c.window(self.run_end)
                        if lo <= ev.ts <= end:
                            call, how = c, ("hook_window" if c.source == "hook" else "transcript")
                            break
                    if call is not None:
                        break
            if call is not None:
                attribution[ev.seq] = (call.call_id, how)
                by_seq[ev.seq] = (call, how)
                call.seqs.append(ev.seq)
                call.hows.append(how)
                if t == "exec" and not d.errno:
                    call.execs += 1
                elif is_change:
                    call.paths.add(d.path)
                elif t == "net" and d.op in NET_OPS and (d.dst_ip or d.unix_path):
                    call.dests.add(d.unix_path or f"{d.dst_ip}:{d.dst_port}")
                self._late(ev, p, call)
            else:
                if (t == "file" and (cls.runtime_agent(d.path) and (not d.path2 or cls.runtime_agent(d.path2)))) or (
                    p is not None and p.runtime
                ):
                    runtime.append(ev.seq)
                elif p is not None and self._agent_tree(p) is not None:
                    self._undeclared(ev, p, is_change)
            if is_change and (cls.is_config(d.path) or cls.is_config(d.path2)):
                path = d.path if cls.is_config(d.path) else d.path2
                self.findings.append(Finding(
                    RULE_TAMPER, "high", "Agent hook, permission or audit configuration changed",
                    f"{d.op} {path}: the agent's hook/permission/MCP configuration or logira's record was changed"
                    + (f" by tool call {call.call_id}" if call else ""),
                    ev.seq, ev.ts, ev.pid, call, how or "none",
                ))  # fmt: skip
        return attribution, runtime

    def _agent_tree(self, p: Proc) -> Proc | None:
        """The agent process p is or descends from, when hooks were active for it."""
        q: Proc | None = p
        depth = 0
        while q is not None and depth < 64:
            if q.agent and id(q) in self.active:
                return q
            q = q.parent
            depth += 1
        return None

    def _undeclared(self, ev: Ev, p: Proc, is_change: bool) -> None:
        d = ev.data_json
        agent = self._agent_tree(p)
        lo, hi = self.active.get(id(agent), (0, 0))
        if not lo <= ev.ts <= hi + HOOK_SLACK_NS:
            return
        if p is not agent and (p.late_flagged or (p.parent is not None and p.parent.late_flagged)):
            p.late_flagged = True  # one finding per undeclared subtree, on its first process
            return
        if ev.type == "exec" and not d.errno and p is not agent:
            what = f"exec {' '.join(d.argv)[:200]} (pid {ev.pid}) outside every declared tool call"
        elif is_change and not self.cls.runtime_agent(d.path):
            who = "the agent process itself" if p is agent else f"pid {ev.pid}"
            what = f"{d.op} {d.path} by {who} outside its runtime dirs and every declared tool call"
        elif ev.type == "net" and d.op in NET_OPS and p is not agent and (d.dst_ip or d.unix_path):
            what = f"{d.op} {d.unix_path or f'{d.dst_ip}:{d.dst_port}'} by pid {ev.pid} outside every declared tool call"
        else:
            return
        self.bump("undeclared")
        if p is not agent:
            p.late_flagged = True
        self.findings.append(Finding(RULE_UNDECLARED, "medium", "Activity no declared tool call explains",
                                     what, ev.seq, ev.ts, ev.pid, None, "none"))  # fmt: skip

    def _late(self, ev: Ev, p: Proc | None, call: Call) -> None:
        """A process of a call still doing things after the call ended: flagged once per process."""
        if p is None or p.late_flagged or not call.end_ts or ev.ts <= call.end_ts + LEFT_RUNNING_GRACE_NS:
            return
        if ev.type not in ("exec", "file", "net") or (ev.type == "file" and ev.data_json.op == "read"):
            return
        p.late_flagged = True
        call.left_running.append(p.pid)
        self.findings.append(Finding(
            RULE_UNDECLARED, "medium", "Activity no declared tool call explains",
            f"pid {p.pid} ({' '.join(p.argv)[:120] or p.exe}) of tool call {call.call_id} is still active "
            f"{(ev.ts - call.end_ts) / 1e9:.1f}s after the call ended: {ev.type} {ev.data_json.op}",
            ev.seq, ev.ts, ev.pid, call, p.how or "hook_window",
        ))  # fmt: skip

    def mismatches(self) -> None:
        for c in self.calls.values():
            if c.tool not in BASH_TOOLS or not c.command or not c.end_ts or c.agent_proc is None:
                continue
            if any(_proc_matches(c.command, p) for p in c.direct):
                continue
            seen = "; ".join(" ".join(p.argv)[:120] for p in c.direct[:3]) or "no process"
            seq = c.direct[0].exec_seq if c.direct and c.direct[0].exec_seq else 0
            self.bump("mismatches")
            self.findings.append(Finding(
                RULE_MISMATCH, "medium", "Declared command differs from what was executed",
                f"tool call {c.call_id} declared `{c.command[:200]}` but the kernel saw: {seen}",
                seq, c.start_ts, c.agent_proc.pid, c, "hook_window" if c.source == "hook" else "transcript",
            ))  # fmt: skip

    def run(self) -> JoinResult:
        self.build()
        self.merge_declared()
        self.link_subagents()
        self.attribute_procs()
        attribution, runtime = self.attribute_records()
        self.mismatches()
        calls = sorted(self.calls.values(), key=lambda c: (c.start_ts, c.call_id))
        self.bump("calls", len(calls))
        self.bump("attributed", len(attribution))
        self.bump("runtime", len(runtime))
        sessions = sorted({c.session_id for c in calls if c.session_id})
        return JoinResult(calls, attribution, runtime, self.findings, self.counts, sessions)


def join(events: list[Ev], declared: list[Declared], *, home: str, uid: int, run_end: int = 0) -> JoinResult:
    """Attribute the run's records to tool calls (see the module docstring)."""
    return _Joiner(events, declared, home, uid, run_end).run()


def finding_detection(f: Finding) -> DetectionData:
    return DetectionData(
        rule_id=f.rule_id, severity=f.severity, message=f.message, related_event_seq=f.seq, title=f.title,
        category="agent", tags=["agent"], tool_call_id=f.call.call_id if f.call else "",
        attribution=f.how if f.call else "none",
    )  # fmt: skip
