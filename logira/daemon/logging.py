"""logirad logging: structlog to stderr (JSON lines or console), mirrored to journald.

Every daemon log entry (run start/stop, detections, drops, errors) is rendered on stderr
and, when journald is enabled, also sent as a native journal entry with its key/values as
upper-case fields (RUN_ID, RULE_ID, SEVERITY, ...), PRIORITY mapped from the detection
severity or else the log level, and SYSLOG_IDENTIFIER=logirad.
"""

from __future__ import annotations

import sys
from typing import Any

import structlog

from logira.errors import LogiraError
from logira.sinks.journald import LEVEL_PRIORITY, SEVERITY_PRIORITY, JournaldSink

_journal: JournaldSink | None = None


class LoggingError(LogiraError):
    """A one-line logging setup problem."""


def _to_journald(_logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    if _journal is not None:
        event = str(event_dict.get("event", ""))
        fields = {k: v for k, v in event_dict.items() if k not in ("event", "timestamp", "level")}
        sev = str(event_dict.get("severity", ""))
        prio = SEVERITY_PRIORITY.get(sev, LEVEL_PRIORITY.get(method, 6))
        if event == "detection":
            # what a human reads in `journalctl -t logirad`: the record's summary line
            text = f"[{sev}] {fields.get('rule_id', '')}: {fields.pop('message', '')}"
            fields["detection_message"] = event_dict.get("message", "")
        else:
            text = event
        _journal.send(text, priority=prio, logira_event=event, **fields)
    return event_dict


def _escape_strings(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Terminal-safe values for the console renderer (journald got the exact values already)."""
    from logira.render.escape import esc

    def clean(v: Any) -> Any:
        if isinstance(v, str):
            return esc(v)
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return {k: clean(v) for k, v in event_dict.items()}


def setup(log_format: str = "json", journald: str = "auto", journald_socket: str = "") -> JournaldSink | None:
    """Configure structlog; returns the journald sink in use (or None)."""
    global _journal
    from logira.sinks.journald import DEFAULT_SOCKET

    path = journald_socket or DEFAULT_SOCKET
    _journal = None
    if journald == "on" and not JournaldSink.available(path):
        raise LoggingError(
            f"journald=on but journald is not listening on {path}; start systemd-journald or set journald=auto"
        )
    if journald in ("on", "auto") and JournaldSink.available(path):
        _journal = JournaldSink(path)
    # JSON escapes every control and non-ASCII character (ensure_ascii); the console format
    # would print the agent's argv/paths raw into the operator's terminal, so it escapes first.
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    escape: list[Any] = [] if log_format == "json" else [_escape_strings]
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _to_journald,
            *escape,
            renderer,
        ],
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    return _journal


def journal() -> JournaldSink | None:
    """The active journald sink, for status/counters."""
    return _journal


def get(name: str = "logirad") -> Any:
    """A bound structlog logger."""
    return structlog.get_logger(name)
