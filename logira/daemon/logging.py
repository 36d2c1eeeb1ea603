"""logirad's own log: structlog to stderr (JSON lines or console), nothing else.

Detections and run lifecycle reach journald through the runs' `JournaldSink` (sinks/journald.py),
not through this log: `setup` only decides whether there is a journal and returns it, and the
daemon hands it to the session manager. Under systemd, stderr lands in the journal anyway.
"""

from __future__ import annotations

import sys
from typing import Any

import structlog

from logira.errors import LogiraError
from logira.sinks.journald import DEFAULT_SOCKET, Journal


class LoggingError(LogiraError):
    """A one-line logging setup problem."""


def _escape_strings(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Terminal-safe values for the console renderer."""
    from logira.render.escape import esc

    def clean(v: Any) -> Any:
        if isinstance(v, str):
            return esc(v)
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return {k: clean(v) for k, v in event_dict.items()}


def open_journal(journald: str = "auto", journald_socket: str = "") -> Journal | None:
    """The journal to send detections and run lifecycle to, per the `journald` setting."""
    path = journald_socket or DEFAULT_SOCKET
    if journald == "on" and not Journal.available(path):
        raise LoggingError(
            f"journald=on but journald is not listening on {path}; start systemd-journald or set journald=auto"
        )
    if journald in ("on", "auto") and Journal.available(path):
        return Journal(path)
    return None


def setup(log_format: str = "json") -> None:
    """Configure structlog for the daemon's stderr."""
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
            *escape,
            renderer,
        ],
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(name: str = "logirad") -> Any:
    """A bound structlog logger."""
    return structlog.get_logger(name)
