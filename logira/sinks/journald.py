"""journald: the native client (`Journal`) and the run sink for detections and run lifecycle.

`JournaldSink` is one run's view of the daemon's `Journal`: `open` logs run_started,
`write_batch` logs every detection of the batch, `close` logs run_finished with the final
status. It is the alerting copy, not the record: what journald cannot take is counted, never
raised, so it can never make a run short.

Native protocol: one datagram per entry on /run/systemd/journal/socket.

The native protocol is `KEY=VALUE\\n` per field; a value containing a newline uses the
binary-safe form `KEY\\n<u64 little-endian length><value>\\n`. Field names must be
upper-case ASCII letters, digits and `_`, not starting with `_` (those are trusted fields
journald sets itself). Entries too large for one datagram are truncated rather than passed
through a memfd: the JSONL record is the authoritative copy, the journal is the alerting copy.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
from collections.abc import Sequence
from typing import Any

from logira.format.meta import RunMeta
from logira.model.record import DetectionData, Record
from logira.sinks.base import SinkStats

DEFAULT_SOCKET = "/run/systemd/journal/socket"
MAX_VALUE = 16 << 10  # per field; keeps every entry well inside one datagram
_BAD = re.compile(r"[^A-Z0-9_]")

# Syslog priorities for detection severities and log levels.
SEVERITY_PRIORITY = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
LEVEL_PRIORITY = {"critical": 2, "error": 3, "warning": 4, "warn": 4, "info": 6, "debug": 7}


def field_name(key: str) -> str:
    """A journald-valid field name for an arbitrary key."""
    name = _BAD.sub("_", key.upper()).lstrip("_") or "FIELD"
    if name[0].isdigit():
        name = "F" + name
    return name[:64]


def encode_entry(fields: dict[str, str]) -> bytes:
    """Serialize one entry in the native protocol (binary-safe for multi-line values)."""
    out = bytearray()
    for key, value in fields.items():
        name = field_name(key).encode()
        data = value.encode("utf-8", "replace")[:MAX_VALUE]
        if b"\n" in data:
            out += name + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name + b"=" + data + b"\n"
    return bytes(out)


class Journal:
    """Sends entries to journald; counts what could not be delivered (never raises)."""

    def __init__(self, path: str = DEFAULT_SOCKET, identifier: str = "logirad") -> None:
        self.path = path
        self.identifier = identifier
        self.sent = 0
        self.failed = 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setblocking(False)

    @staticmethod
    def available(path: str = DEFAULT_SOCKET) -> bool:
        """True when journald is listening at `path` (a leftover socket file is not enough)."""
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            probe.connect(path)
            return True
        except OSError:
            return False
        finally:
            probe.close()

    def send(self, message: str, priority: int = 6, **fields: object) -> bool:
        """Send one entry; extra fields are upper-cased. Returns False (and counts) on failure."""
        entry = {"MESSAGE": message, "PRIORITY": str(priority), "SYSLOG_IDENTIFIER": self.identifier}
        for key, value in fields.items():
            if value is None or value == "":
                continue
            name = field_name(key)
            if name in entry:  # never let a caller's field replace MESSAGE/PRIORITY/SYSLOG_IDENTIFIER
                name = "LOGIRA_" + name
            entry[name] = value if isinstance(value, str) else str(value)
        try:
            self._sock.sendto(encode_entry(entry), self.path)
        except OSError:
            self.failed += 1
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


class JournaldSink:
    """Detections and run lifecycle of one run, as journald entries (a `Sink`)."""

    name = "journald"

    def __init__(self, journal: Journal, *, fields: dict[str, Any] | None = None) -> None:
        self.journal = journal
        self.fields = fields or {}  # extra run_started fields (pid, cgroup, ...)
        self.stats = SinkStats()
        self.undelivered = 0  # entries journald did not take (the record is unaffected)
        self._closed = False

    def _send(self, message: str, priority: int, **fields: object) -> None:
        if not self.journal.send(message, priority=priority, **fields):
            self.undelivered += 1

    async def open(self, meta: RunMeta) -> None:
        self._send("run_started", 6, logira_event="run_started", run_id=meta.run_id, uid=meta.uid,
                   user=meta.user, tool=meta.tool, run_dir=meta.run_dir, **self.fields)

    async def write_batch(self, records: Sequence[Record]) -> None:
        for rec in records:
            d = rec.data_json
            if rec.type != "detection" or not isinstance(d, DetectionData):
                continue
            # what a human reads in `journalctl -t logirad`: the record's summary line
            self._send(f"[{d.severity}] {d.rule_id}: {d.message}", SEVERITY_PRIORITY.get(d.severity, 4),
                       logira_event="detection", run_id=rec.run_id, rule_id=d.rule_id,
                       severity=d.severity, detection_message=d.message, seq=rec.seq,
                       related_seq=d.related_event_seq, pid=rec.pid)

    async def flush(self) -> None:
        return None

    async def close(self, meta: RunMeta | None = None) -> None:
        if meta is None or self._closed:
            return
        self._closed = True
        d = meta.drops
        self._send("run_finished", 6 if meta.complete else 4, logira_event="run_finished",
                   run_id=meta.run_id, uid=meta.uid, status=meta.status, events=meta.event_count,
                   detections=meta.suspicious_count, dropped=d.total, exit_code=meta.exit_code,
                   exit_signal=meta.exit_signal)
