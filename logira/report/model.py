"""The report model: one document per run, built by `build.py`, rendered as JSON, HTML, Markdown, SARIF.

Every list is bounded (see the `*_MAX` constants in build.py); a section that had to be cut says
so with `total` and `truncated`, so nothing is left out silently. Field reference: docs/report.md.
Strings that came from the audited run are stored as recorded (display form, see docs/jsonl.md);
each renderer escapes them for its own medium.
"""

from __future__ import annotations

import msgspec

from logira.agents.calls import ToolCall
from logira.model.record import LineageEntry

REPORT_SCHEMA = "logira.report/1"


class RunHeader(msgspec.Struct, kw_only=True):
    run_id: str
    tool: str
    command_argv: list[str]
    command: str
    cwd: str
    workspace: str
    user: str
    uid: int
    host: str
    start_ts: int
    end_ts: int | None
    duration_s: float | None
    exit_code: int | None
    exit_signal: int | None
    status: str  # COMPLETE | INCOMPLETE | RUNNING
    incomplete_reasons: list[str]
    drops: dict[str, int]  # total, kernel_total, reader, queue
    drops_by_kind: dict[str, int]
    stragglers: list[int]
    event_count: int
    logira_version: str
    kernel_release: str
    rules_sha256: str


class TimelineBucket(msgspec.Struct, array_like=False):
    t: float  # seconds from run start (bucket start)
    counts: dict[str, int]  # record type → events in this bucket


class TimelineMark(msgspec.Struct):
    t: float
    seq: int
    rule_id: str
    severity: str


class Timeline(msgspec.Struct, kw_only=True):
    bucket_s: float  # width of one bucket; rates are counts / bucket_s
    buckets: list[TimelineBucket]
    marks: list[TimelineMark]  # detections (first TIMELINE_MARKS_MAX)
    marks_total: int


class ToolCalls(msgspec.Struct, kw_only=True):
    """The run's tool calls as the agent attribution reads them (logira/agents/calls.py, docs/agents.md)."""

    available: bool  # False: this run carries no tool-call attribution
    note: str
    calls: list[ToolCall] = []  # the agents' own model: the call is declared, its counts are kernel facts
    total: int = 0
    truncated: bool = False


class ProcNode(msgspec.Struct, kw_only=True):
    pid: int
    ppid: int
    exe: str
    argv: list[str]
    cwd: str
    seq: int  # first exec
    execs: int = 1
    children: list[ProcNode] = []


class Processes(msgspec.Struct, kw_only=True):
    total: int  # processes that exec'd
    shown: int
    truncated: bool
    roots: list[ProcNode]


class FileChange(msgspec.Struct, kw_only=True):
    op: str
    path: str
    path2: str | None
    count: int


class FileDir(msgspec.Struct, kw_only=True):
    dir: str
    changes: list[FileChange]


class DeniedAttempt(msgspec.Struct, kw_only=True):
    op: str
    path: str
    errno: int
    error: str  # EACCES, EPERM, EROFS …
    count: int


class Files(msgspec.Struct, kw_only=True):
    total_paths: int  # distinct changed paths (successful changes, reads excluded)
    shown: int
    truncated: bool
    dirs: list[FileDir]
    denied: list[DeniedAttempt]  # failed attempts (the kernel refused them), kept apart
    denied_total: int


class Destination(msgspec.Struct, kw_only=True):
    dst: str  # ip:port, [v6]:port, or a unix socket path
    ip: str
    port: int
    proto: str
    ops: list[str]
    count: int
    bytes: int  # bytes sent (send/sendmsg), as the kernel returned them
    failed: int  # attempts that failed (connect refused …)
    dns: list[str]


class Egress(msgspec.Struct, kw_only=True):
    total: int
    truncated: bool
    destinations: list[Destination]
    dns: list[tuple[str, int]]  # every DNS name queried, with its count (first DNS_MAX)


# a detection's lineage is shown as stored: one process of the chain (related process first)
LineageItem = LineageEntry


class EventRef(msgspec.Struct, kw_only=True):
    seq: int
    ts: int
    type: str
    pid: int
    summary: str
    path: str | None = None
    dst: str | None = None
    exe: str | None = None


class Detection(msgspec.Struct, kw_only=True):
    seq: int
    ts: int
    rule_id: str
    severity: str
    title: str
    category: str
    message: str
    related: EventRef | None
    lineage: list[LineageItem]
    steps: list[EventRef]
    tool_call: str = ""  # id of the tool call the related event is attributed to ("" = none known)


class RuleSummary(msgspec.Struct, kw_only=True):
    """One rule's detections in a run; `explain --json` extends it with evidence (same fields, same order)."""

    rule_id: str
    severity: str
    title: str
    description: str
    count: int
    first_ts: int
    last_ts: int


class Detections(msgspec.Struct, kw_only=True):
    total: int
    by_severity: dict[str, int]
    rules: list[RuleSummary]
    items: list[Detection]  # the first DETECTIONS_MAX, in seq order
    truncated: bool


class NewItems(msgspec.Struct, kw_only=True):
    """What this run did that no earlier run of its workspace did (logira diff)."""

    baseline_runs: int  # earlier runs compared against (0: no history)
    baseline: str  # "all earlier runs of the workspace", "run X", "last N runs"
    programs: list[str] = []
    destinations: list[str] = []
    dns: list[str] = []
    writes_outside: list[str] = []
    credentials: list[str] = []
    detections: list[str] = []
    truncated: bool = False


class Report(msgspec.Struct, kw_only=True):
    schema: str = REPORT_SCHEMA
    generated_at: int  # UTC ns
    generator: str  # "logira <version>"
    run: RunHeader
    counts: dict[str, int]
    timeline: Timeline
    tool_calls: ToolCalls
    processes: Processes
    files: Files
    egress: Egress
    detections: Detections
    new_in_run: NewItems | None = None
