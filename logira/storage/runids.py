"""Run ids: `YYYYMMDD-HHMMSS-<tool>` (UTC, daemon clock), validated wherever one crosses a boundary.

A run id becomes a directory name under a user's `runs/` dir and a seal file name under root's
state dir, so anything that is not a plain portable name is refused outright.
"""

from __future__ import annotations

import calendar
import re
import time

_RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_TOOL_JUNK = re.compile(r"[^a-z0-9._-]+")
TOOL_MAX = 48


def sanitize_tool(s: str) -> str:
    """Lowercase, runs of anything outside [a-z0-9._-] → "-", trimmed of "-", ≤48 chars, "" → "unknown"."""
    tool = _TOOL_JUNK.sub("-", s.lower()).strip("-")[:TOOL_MAX].strip("-")
    # "." and ".." alone would make a run id that is still valid, but keep tools readable.
    return tool if tool.strip(".") else "unknown"


def validate_run_id(s: str) -> str:
    """Return `s` if it is a safe run id, else raise ValueError with a one-line message."""
    if not isinstance(s, str) or not _RUN_ID.fullmatch(s) or s in (".", ".."):
        shown = repr(s)[:80]
        raise ValueError(f"invalid run id {shown}: use letters, digits, '.', '_' or '-' (1-128 chars)")
    return s


def base_run_id(tool: str, now_ns: int) -> str:
    """`YYYYMMDD-HHMMSS-<sanitized tool>` for a UTC wall-clock time in nanoseconds."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now_ns // 1_000_000_000))
    return f"{stamp}-{sanitize_tool(tool)}"


def run_id_start_ns(run_id: str) -> int:
    """Best-effort start time encoded in a run id (0 when the id does not start with a stamp)."""
    try:
        tm = time.strptime(run_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return 0
    return calendar.timegm(tm) * 1_000_000_000
