"""Which run a hook sender belongs to: its SO_PEERCRED pid, pinned by a pidfd, and its cgroup.

Nothing the message says is used: a hook inside a run cannot name another run, and a process
outside every run cannot get its claims into one. The pid is pinned with a pidfd before
/proc/<pid>/cgroup is read and checked alive after, so the cgroup read belongs to the process
that is still connected, not to a recycled pid (docs/agents.md, "What each source proves").
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal

from logira.agents.hookmsg import hook_summary, parse_hook
from logira.daemon.guard import cgroup_of
from logira.model.record import Record


def run_key_of(pid: int, run_prefix: str) -> str | None:
    """The run key (cgroup dir name under the parent) of live `pid`, or None (not in a run / gone)."""
    if pid <= 0:
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        try:
            cg = cgroup_of(pid)
        except (OSError, ValueError):
            return None
        try:
            signal.pidfd_send_signal(fd, 0)
        except OSError as exc:
            if exc.errno == errno.ESRCH or isinstance(exc, ProcessLookupError):
                return None
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    if not cg.startswith(run_prefix):
        return None
    key = cg[len(run_prefix) :].split("/", 1)[0]
    return key or None


MAX_HOOKS_PER_RUN = 50_000  # a hook per tool call: far above any real session; more are counted


class HookCounters:
    """Per-run hook bookkeeping, reported in meta.json `agents` (nothing is lost silently)."""

    def __init__(self) -> None:
        self.received = 0  # recorded as agent records
        self.errors = 0  # recorded, but the payload could not be parsed (oversized, not JSON, ...)
        self.refused = 0  # not recorded: over MAX_HOOKS_PER_RUN or the run was already closing

    def as_dict(self) -> dict[str, int]:
        return {"hooks": self.received, "hook_errors": self.errors, "hooks_refused": self.refused}


def hook_record(msg_agent: str, payload: str, payload_bytes: int, pid: int, uid: int, now_ns: int) -> Record:
    """The `agent` record of one hook message (seq and run_id are set by the pipeline)."""
    raw = payload.encode("utf-8", "surrogateescape")
    data = parse_hook(raw, msg_agent, pid, payload_bytes)
    return Record(run_id="", seq=0, ts=now_ns, type="agent", pid=pid, ppid=0, uid=uid,
                  summary=hook_summary(data), data_json=data)  # fmt: skip
