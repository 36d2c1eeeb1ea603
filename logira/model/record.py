"""Stored records: the envelope written to events.jsonl and index.sqlite.

The envelope is compatible with the original logira's documented JSONL schema
(`run_id, seq, ts, type, pid, ppid, uid, summary, data_json`); `data_json` is an
embedded JSON object whose shape depends on `type`. Additions are documented in
docs/jsonl.md. uid/pid 0 are written as 0, never omitted.
"""

from __future__ import annotations

from typing import Any

import msgspec

RECORD_TYPES = ("exec", "proc", "file", "net", "detection", "agent")
SEVERITIES = ("info", "low", "medium", "high", "critical")


class ExecData(msgspec.Struct, kw_only=True, gc=False):
    filename: str
    argv: list[str]
    argv_truncated: bool = False
    comm: str = ""
    cwd: str = ""
    errno: int = 0  # non-zero: the exec attempt failed with this errno
    tid: int = 0
    gid: int = 0
    cgroup_id: int = 0
    # argv longer than the capture cap: argv[:argv_cut] is its head, argv[argv_cut:] its tail,
    # argv_omitted bytes are missing between them (0 = nothing cut)
    argv_cut: int = 0
    argv_omitted: int = 0
    argv_head_partial: bool = False  # argv[argv_cut-1] is only the start of an argument
    argv_tail_partial: bool = False  # argv[argv_cut] is only the end of an argument
    requested: str = ""  # the name the kernel was asked to run, as given (bprm->filename)
    script: str = ""  # the script that was asked to run (#! script, ld.so operand), absolute
    interp: str = ""  # the #! line's interpreter path (the kernel's bprm->interp)
    caller_argv: list[str] = []  # #! scripts: the argv the caller passed (argv[0] read at sys_enter)
    exe_kind: str = ""  # file | fd | loader | memfd | anon | deleted ("" in older records)
    fileless: bool = False  # the image or the script has no file on disk (memfd, anon, deleted)
    exe_uid: int = -1  # owner of the binary that ran (its inode, read in the kernel)
    exe_mode: int = -1
    exe_writable: bool = False  # the process's uid could rewrite that binary
    exe_dev: int = 0
    exe_ino: int = 0
    fds: dict[int, str] = {}  # fd -> pipe/FIFO identity at exec (0/1 also file/tty/socket)
    agent_markers: dict[str, str] = {}  # agent env markers at exec (hints: a process can clear them)
    agent_markers_truncated: bool = False  # the bounded environment scan did not see everything


class ProcData(msgspec.Struct, kw_only=True, gc=False):
    op: str  # fork | exit | io_uring_setup | compat_syscall | a namespace/mount op (kernel.NS_OPS)
    comm: str = ""
    exe: str = ""
    child_pid: int = 0
    exit_code: int = 0
    signal: int = 0
    core_dumped: bool = False
    syscall_nr: int = -1
    # namespace / mount ops (logira.model.kernel.NsOp)
    flags: int = 0
    namespaces: list[str] = []
    source: str = ""
    target: str = ""
    fstype: str = ""
    ret: int = 0
    errno: int = 0


class FileData(msgspec.Struct, kw_only=True, gc=False):
    op: str
    path: str
    path2: str = ""
    syscall: str = ""
    flags: int = 0
    mode: int = -1
    ret: int = 0
    errno: int = 0
    path_truncated: bool = False
    path_unresolved: bool = False
    comm: str = ""
    exe: str = ""
    tid: int = 0
    # --- exactness (docs/jsonl.md, "file"); defaults keep older records valid
    path_literal: str = ""  # the path as the caller wrote it (alias, symlinked dir), when it differs
    path2_literal: str = ""
    resolved: str = ""  # "kernel": aliases resolved from the task's own tables (exact); "receipt": by logirad (can race)
    path_unverified: str = ""  # why the recorded name may not be what the kernel acted on (empty: verified or n/a)
    dev: int = 0  # identity of the file acted on (st_dev, st_ino); 0 when unknown
    ino: int = 0
    same_file_as: str = ""  # a watched sensitive path that is this very file (same dev/ino), when path differs
    pseudo: bool = False  # /dev/null, /dev/tty, /proc/..., pipes, sockets: recorded, not a change
    mnt_ns: int = 0  # mount namespace (inode number) the names are in


class NetData(msgspec.Struct, kw_only=True, gc=False):
    op: str
    proto: str
    family: str = ""
    dst_ip: str = ""
    dst_port: int = 0
    src_ip: str = ""
    src_port: int = 0
    unix_path: str = ""
    syscall: str = ""
    ret: int = 0
    errno: int = 0
    bytes: int = 0
    dns_qname: str = ""
    dns_qtype: int = 0
    dns_qnames: list[str] = []
    dns_response: bool = False
    dns_truncated: bool = False
    peer_verified: bool = False
    peer_mismatch: str = ""
    claimed_dst_ip: str = ""
    claimed_dst_port: int = 0
    outcome: str = ""
    bytes_received: int = 0
    bytes_acked: int = 0
    retransmits: int = 0
    connect_ns: int = 0
    duration_ns: int = 0
    run_dst_bytes: int = 0  # close: bytes sent to this dst_ip by the run so far, this one included
    comm: str = ""
    exe: str = ""
    tid: int = 0


class LineageEntry(msgspec.Struct, kw_only=True):
    pid: int
    exe: str = ""
    argv: list[str] = []
    cwd: str = ""


class DetectionData(msgspec.Struct, kw_only=True):
    rule_id: str
    severity: str
    message: str
    related_event_seq: int = 0
    title: str = ""
    category: str = ""
    tags: list[str] = []
    lineage: list[LineageEntry] = []  # related process first, then its ancestors
    steps: list[int] = []  # seqs of every step of a sequence rule, in order
    # which tool call of the agent caused the related event (logira/agents/join.py), "" = none known,
    # and how that was established: marker | hook_window | transcript | none (docs/agents.md)
    tool_call_id: str = ""
    attribution: str = ""


class DeclaredCall(msgspec.Struct, kw_only=True):
    """What the agent declared about one tool call: the fields every tool-call shape starts with.

    The stored AgentCall and the read side's ToolCall (logira/agents/calls.py) both extend it, so
    the declared part is defined once and keeps its place first in their JSON (record and --json
    field order are part of the format).
    """

    call_id: str  # tool_use_id (Claude/Gemini) or call_id (Codex), as the agent declared it
    session_id: str = ""
    agent: str = ""  # claude | codex | gemini
    tool: str = ""
    command: str = ""  # tool_input.command / cmd (Bash-like tools)
    description: str = ""
    file_path: str = ""  # Edit/Write/Read tools
    start_ts: int = 0  # wall-clock ns: PreToolUse received / transcript tool_use time
    end_ts: int = 0  # PostToolUse(Failure) / tool_result time; 0 = never ended


def declared_part(call: object) -> dict[str, Any]:
    """The DeclaredCall fields of any object that has them (a join Call, an AgentCall), by name."""
    return {name: getattr(call, name) for name in DeclaredCall.__struct_fields__}


class AgentCall(DeclaredCall, kw_only=True):
    """One tool call as joined to the kernel record at finalize (AgentData op `tool_call`)."""

    status: str = ""  # ok | error | interrupted | running | unknown
    source: str = ""  # hook | transcript (where the call itself is known from)
    agent_pid: int = 0  # the agent process whose children the call spawned (kernel tree)
    subagent: str = ""  # agent_id when the call was made inside a subagent
    parent_call: str = ""  # call_id of the Agent/Task call that started that subagent
    execs: int = 0
    files: int = 0
    destinations: int = 0
    detections: int = 0
    # every attributed record, as [first_seq, last_seq] ranges, with how each range was attributed
    seqs: list[list[int]] = []
    how: list[str] = []  # parallel to seqs: marker | hook_window | transcript
    left_running: list[int] = []  # pids of the call still active after it ended
    mismatch: str = ""  # declared command not seen exec'd (declared vs done)


class AgentData(msgspec.Struct, kw_only=True):
    """What an agent declared (hook message, transcript line) or what logira joined from it.

    `declared` is True for the agent's claims (op `hook`, `transcript`): they are stored in the
    hash chain but never override a kernel fact. Records made by logira's join at finalize
    (`tool_call`, `runtime`, `summary`) have declared False and source `join`.
    """

    op: str  # hook | transcript | tool_call | runtime | summary
    source: str = ""  # hook | transcript | join
    declared: bool = True
    agent: str = ""  # claude | codex | gemini | "" (unknown)
    event: str = ""  # hook_event_name, or the transcript item kind (tool_use, tool_result, ...)
    session_id: str = ""
    tool_use_id: str = ""
    tool_name: str = ""
    command: str = ""
    description: str = ""
    file_path: str = ""
    prompt_id: str = ""
    agent_id: str = ""  # subagent id
    agent_type: str = ""
    transcript_path: str = ""
    cwd: str = ""
    permission_mode: str = ""
    status: str = ""  # ok | error | interrupted (PostToolUse / PostToolUseFailure / tool_result)
    duration_ms: int = -1
    exit_code: int | None = None
    sender_pid: int = 0  # SO_PEERCRED pid of the hook sender (a kernel fact, unlike the rest)
    payload_bytes: int = 0
    error: str = ""  # why the message could not be parsed (it is still recorded)
    call: AgentCall | None = None  # op tool_call
    seqs: list[list[int]] = []  # op runtime: records classified as agent runtime, as ranges
    counts: dict[str, int] = {}  # op summary: attribution counts, parse errors, ...


RecordData = ExecData | ProcData | FileData | NetData | DetectionData | AgentData

DATA_TYPES: dict[str, type[msgspec.Struct]] = {
    "exec": ExecData,
    "proc": ProcData,
    "file": FileData,
    "net": NetData,
    "detection": DetectionData,
    "agent": AgentData,
}


class Record(msgspec.Struct, kw_only=True, gc=False):
    run_id: str
    seq: int
    ts: int  # wall-clock UTC ns of the kernel event (detections: of the related event)
    type: str
    pid: int = 0
    ppid: int = 0
    uid: int = 0
    summary: str
    data_json: RecordData


class StoredRecord(msgspec.Struct, kw_only=True):
    """A record as read back: `data_json` still raw so it can be decoded by `type`."""

    run_id: str
    seq: int
    ts: int
    type: str
    pid: int = 0
    ppid: int = 0
    uid: int = 0
    summary: str = ""
    data_json: msgspec.Raw = msgspec.Raw(b"{}")
    # field path -> hex of the exact bytes, when a text field held undecodable bytes (docs/jsonl.md)
    raw_bytes: dict[str, str] = {}
    hash: str = ""

    def data(self) -> RecordData:
        return msgspec.json.decode(self.data_json, type=DATA_TYPES[self.type])
