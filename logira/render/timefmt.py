"""Time formats: relative to run start (default), absolute UTC, or both.

`rel` = `+2.5s` / `+1m02.5s` / `+1h02m03.5s`, `abs` = `15:04:05.123Z`, `both` =
`+2.5s (15:04:05.123Z)`. Durations and time specs given on the command line
(`--since +5s`, `--older-than 30d`) are parsed here too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from logira.errors import LogiraError

TS_MODES = ("rel", "abs", "both")
NS = 1_000_000_000

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": NS,
    "m": 60 * NS,
    "h": 3600 * NS,
    "d": 86400 * NS,
    "w": 7 * 86400 * NS,
}
_DUR_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d|w)")


def check_ts_mode(mode: str) -> str:
    """Validate a `--ts` value."""
    if mode not in TS_MODES:
        raise LogiraError(f"invalid --ts {mode!r} (expected abs|rel|both)", exit_code=2)
    return mode


def fmt_seconds(ns: int) -> str:
    """`2.5s`, `1m02.5s`, `1h02m03.5s` (millisecond precision, trailing zeros trimmed)."""
    sign = "-" if ns < 0 else ""
    ms = abs(ns) // 1_000_000
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, milli = divmod(rem, 1000)
    frac = f".{milli:03d}".rstrip("0").rstrip(".")
    if h:
        return f"{sign}{h}h{m:02d}m{s:02d}{frac}s"
    if m:
        return f"{sign}{m}m{s:02d}{frac}s"
    return f"{sign}{s}{frac}s"


def fmt_abs(ts: int) -> str:
    """`15:04:05.123Z` (UTC)."""
    dt = datetime.fromtimestamp(ts // NS, UTC)
    return f"{dt:%H:%M:%S}.{(ts % NS) // 1_000_000:03d}Z"


def fmt_date(ts: int) -> str:
    """`2026-01-02 15:04:05Z` (UTC), for run start times."""
    return f"{datetime.fromtimestamp(ts // NS, UTC):%Y-%m-%d %H:%M:%S}Z"


def fmt_iso(ts: int) -> str:
    """Full RFC 3339 UTC with nanoseconds."""
    dt = datetime.fromtimestamp(ts // NS, UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ts % NS:09d}Z"


class TimeFormatter:
    """Formats event timestamps according to `--ts` relative to the run start."""

    def __init__(self, start_ts: int, mode: str = "rel"):
        self.start_ts = start_ts
        self.mode = check_ts_mode(mode)

    def __call__(self, ts: int) -> str:
        if not ts:
            return "-"
        if self.mode == "abs" or not self.start_ts:
            return fmt_abs(ts)
        rel = (
            "+" + fmt_seconds(ts - self.start_ts) if ts >= self.start_ts else fmt_seconds(ts - self.start_ts)
        )
        if self.mode == "rel":
            return rel
        return f"{rel} ({fmt_abs(ts)})"


def parse_duration(text: str, flag: str) -> int:
    """`30d`, `1h30m`, `500ms`, `2.5s` → ns. Raises a one-line LogiraError naming the flag."""
    t = text.strip()
    pos, total = 0, 0
    for m in _DUR_PART.finditer(t):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _UNITS[m.group(2)])
        pos = m.end()
    if pos != len(t) or not t:
        raise LogiraError(
            f"invalid {flag} {text!r} (expected a duration like 30s, 5m, 2h, 30d, 1h30m)", exit_code=2
        )
    return total


def parse_time_spec(text: str, flag: str, start_ts: int, end_ts: int) -> int:
    """A point in time for --since/--until, as absolute ns.

    `+5s` or `5s`: that long after the run started; `-5s`: that long before the run
    ended (or now, for a running run); anything else is an ISO-8601 time (naive = UTC).
    """
    t = text.strip()
    if t[:1] == "-":
        return end_ts - parse_duration(t[1:], flag)
    if t[:1] == "+" or (t[:1].isdigit() and _DUR_PART.match(t) and not re.match(r"\d{4}-", t)):
        try:
            return start_ts + parse_duration(t.lstrip("+"), flag)
        except LogiraError:
            if t[:1] == "+":
                raise
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise LogiraError(
            f"invalid {flag} {text!r} (expected +5s / 30s after run start, -10s before its end, "
            "or an ISO time like 2026-01-02T15:04:05Z)",
            exit_code=2,
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * NS + dt.microsecond * 1000
