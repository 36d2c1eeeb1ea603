"""meta.json: what a run was, how it ended and how much of it was lost (`RunMeta`, version 4).

The daemon writes it atomically at start, after every state change and at the end; the read
side decodes it tolerantly (unknown fields from newer versions are ignored).
"""

from __future__ import annotations

from typing import Any

import msgspec

from logira.errors import LogiraError
from logira.format.textsafe import display

META_VERSION = 4
STATUSES = ("running", "complete", "incomplete", "interrupted")


class MetaError(LogiraError):
    """meta.json cannot be decoded (one-line message)."""


class ProbesMeta(msgspec.Struct, kw_only=True):
    exec: bool = True
    file: bool = True
    net: bool = True


class DropsMeta(msgspec.Struct, kw_only=True):
    kernel: dict[str, int] = {}  # by record kind name
    kernel_total: int = 0
    reader: int = 0
    queue: int = 0
    total: int = 0


class FilteredMeta(msgspec.Struct, kw_only=True):
    """Events left out on purpose by the run's --no-exec/--no-file/--no-net (not a loss)."""

    exec: int = 0
    file: int = 0
    net: int = 0


class RunMeta(msgspec.Struct, kw_only=True):
    version: int = META_VERSION
    run_id: str
    tool: str = ""
    command: str = ""
    command_argv: list[str] = []
    cwd: str = ""
    uid: int = -1
    gid: int = -1
    user: str = ""
    host: str = ""
    run_dir: str = ""  # absolute run directory as the daemon created it (tells the homes apart)
    start_ts: int = 0  # wall-clock UTC ns, daemon clock
    end_ts: int | None = None
    status: str = "running"
    complete: bool = False
    exit_code: int | None = None
    exit_signal: int | None = None
    probes: ProbesMeta = msgspec.field(default_factory=ProbesMeta)
    counts: dict[str, int] = {}  # records by type
    detections: dict[str, int] = {}  # detections by severity
    suspicious_count: int = 0
    drops: DropsMeta = msgspec.field(default_factory=DropsMeta)
    filtered: FilteredMeta = msgspec.field(default_factory=FilteredMeta)
    detect_errors: int = 0  # records stored but not evaluated by the rules (makes the run incomplete)
    sqlite_missing: int = 0  # records events.jsonl has and index.sqlite lacks (makes it incomplete)
    # records an exporter could not deliver, by exporter then reason (shed, failed, rejected, unsent);
    # the run's own record is complete regardless: the export is a copy
    export_losses: dict[str, dict[str, int]] = {}
    # every sink of the fan-out (sqlite, journald, otlp, collectors): records written / failed, batches,
    # and its last error; a failed sqlite record is also sqlite_missing, a failed copy only lands here
    sinks: dict[str, dict[str, int | str]] = {}
    event_count: int = 0  # records in events.jsonl (= last seq)
    final_hash: str = ""  # hash of the last JSONL line
    rules_sha256: str = ""
    custom_rules_path: str = ""
    custom_rules_sha256: str = ""
    logira_version: str = ""
    kernel_release: str = ""
    stragglers: list[int] = []
    root_pid: int = 0
    incomplete_reasons: list[str] = []
    # agent-aware runs (docs/agents.md): hook/transcript/join counts, session ids, notes; {} = no agent
    agents: dict[str, Any] = {}


def _display_safe(obj: object) -> object:
    # meta strings come from the client (argv, cwd): a lone surrogate (undecodable byte) would make
    # the encoder fail and lose the whole meta, so it is written as a visible \xNN escape instead.
    if isinstance(obj, str):
        return display(obj)
    if isinstance(obj, list):
        return [_display_safe(v) for v in obj]
    if isinstance(obj, dict):
        return {_display_safe(k): _display_safe(v) for k, v in obj.items()}
    return obj


def encode_meta(m: RunMeta) -> bytes:
    """Indented JSON (2 spaces), keys in field order, trailing newline."""
    try:
        raw = msgspec.json.encode(m)
    except UnicodeEncodeError:
        raw = msgspec.json.encode(_display_safe(msgspec.to_builtins(m)))
    return msgspec.json.format(raw, indent=2) + b"\n"


def decode_meta(data: bytes) -> RunMeta:
    """Decode meta.json; unknown fields are ignored, garbage raises MetaError (one line)."""
    try:
        return msgspec.json.decode(data, type=RunMeta)
    except msgspec.DecodeError as exc:
        raise MetaError(f"meta.json is not valid: {exc}") from None
