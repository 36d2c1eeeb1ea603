"""Root-side checks on a `start_run` request: who the held pid really is, and how big the request is.

The daemon is about to move a process into a run cgroup (where it is recorded and, at the end,
killed if it lingers) and to write the request's strings into root-owned files (meta.json, the seal
in root's state dir). Both are attack surface for any local user:

- A pid is only a number. Between reading `/proc/<pid>` and writing the pid to `cgroup.procs`,
  the held child could exit, be reaped by the client and the number be given to someone else's
  process, which root would then record into the attacker's run and kill at its end. `HeldPid`
  pins the process with a pidfd: while the pidfd's process is alive (or an unreaped zombie) its
  number cannot be reused, so checking `alive()` after reading /proc and after the move proves
  both touched the same process.
- Only the client's own fork, running with exactly the client's uid, may be recorded: a child
  that exec'd a set-uid program has the user's real uid but root's effective uid.
- Sizes are capped so one request cannot make root store megabytes per run (meta.json and the
  seal both hold argv) or parse a huge rules file on the event loop.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from pathlib import Path

from logira import cgroup2
from logira.errors import LogiraError

MAX_ARGV_BYTES = 128 << 10  # argv is stored twice in meta.json and again in the root-owned seal
MAX_PATH_BYTES = 4096  # cwd, home, rules_path: PATH_MAX
MAX_TOOL_BYTES = 256
MAX_RULES_BYTES = 256 << 10  # the built-in rules are ~40 KiB; parsing 256 KiB takes ~0.6 s


class GuardError(LogiraError):
    """The request is refused (one line, sent back to the client)."""


def check_sizes(*, argv: list[str], cwd: str, home: str, rules_path: str, tool: str, rules_yaml: str) -> None:
    """Refuse a start_run whose strings are larger than anything a real `logira run` sends."""
    n = sum(len(a.encode("utf-8", "surrogateescape")) + 1 for a in argv)
    if n > MAX_ARGV_BYTES:
        raise GuardError(
            f"argv is too large to record ({n} > {MAX_ARGV_BYTES} bytes); pass long input through a file or stdin"
        )
    for name, value, cap in (
        ("cwd", cwd, MAX_PATH_BYTES),
        ("home", home, MAX_PATH_BYTES),
        ("rules_path", rules_path, MAX_PATH_BYTES),
        ("tool", tool, MAX_TOOL_BYTES),
    ):
        if len(value.encode("utf-8", "surrogateescape")) > cap or "\0" in value:
            raise GuardError(f"{name} is not a valid path/name (longer than {cap} bytes or contains NUL)")
    size = len(rules_yaml.encode("utf-8", "surrogateescape"))
    if size > MAX_RULES_BYTES:
        raise GuardError(f"custom rules are too large ({size} > {MAX_RULES_BYTES} bytes); split or trim the file")


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _ids(pid: int, key: str) -> list[int]:
    """All four ids of the `Uid:`/`Gid:` line: real, effective, saved, filesystem."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return [int(x) for x in line.split()[1:5]]
    raise GuardError(f"cannot read the credentials of pid {pid}")


def cgroup_of(pid: int) -> str:
    """The cgroup v2 path of pid (relative to the cgroup2 root), "" if none."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return ""


class HeldPid:
    """The held child of a start_run, pinned by a pidfd (see the module docstring)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self.fd = os.pidfd_open(pid)
        except ProcessLookupError:
            raise GuardError(f"pid {pid} does not exist") from None
        except OSError as exc:
            raise GuardError(f"pid {pid} cannot be pinned: {exc.strerror}") from None

    def alive(self) -> bool:
        """True while the pinned process exists (a zombie counts: its pid is still taken)."""
        try:
            signal.pidfd_send_signal(self.fd, 0)
            return True
        except ProcessLookupError:
            return False
        except OSError as exc:
            return exc.errno != errno.ESRCH

    def verify(self, peer_pid: int, peer_uid: int, run_prefix: str) -> None:
        """The pid is the peer's child, runs with exactly the peer's uid, and is not in a run yet.

        /proc is read first and the pidfd checked after: if the process is still alive then,
        what was read belongs to it and not to a recycled pid.
        """
        try:
            ppid = _ppid(self.pid)
            uids = _ids(self.pid, "Uid:")
            peer_cg, cg = cgroup_of(peer_pid), cgroup_of(self.pid)
        except (OSError, ValueError, IndexError):
            raise GuardError(f"pid {self.pid} does not exist") from None
        if not self.alive():
            raise GuardError(f"pid {self.pid} exited before the run could start")
        if ppid != peer_pid:
            raise GuardError(f"pid {self.pid} is not a child of the connecting process (pid {peer_pid})")
        if uids[0] != peer_uid:
            raise GuardError(f"pid {self.pid} does not belong to uid {peer_uid}")
        if any(u != peer_uid for u in uids):
            # e.g. the child exec'd a set-uid program: its real uid is the user's, not its power
            raise GuardError(
                f"pid {self.pid} runs with other credentials than uid {peer_uid} (a set-uid program?); "
                "logira run's own held child must be given"
            )
        if peer_cg.startswith(run_prefix) or cg.startswith(run_prefix):
            raise GuardError("cannot start a run from inside a recorded run")

    def move_into(self, cg: Path, peer_pid: int, peer_uid: int, run_prefix: str) -> None:
        """Re-verify, move the process into `cg`, and prove the move hit the pinned process.

        Everything between the last check and the write is synchronous, and the pidfd is checked
        after the write: if the process is gone by then, the number may have been recycled, so
        whatever got moved is put back into the root cgroup (not killed: it is not ours) and the
        start is refused.
        """
        self.verify(peer_pid, peer_uid, run_prefix)
        cgroup2.move_pid(cg, self.pid)
        if not self.alive():
            evict_all(cg)
            raise GuardError(f"pid {self.pid} exited while it was being moved into the run cgroup")

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def evict_all(cg: Path) -> None:
    """Move every process of `cg` back to the cgroup2 root (for processes that are not the run's)."""
    root = cgroup2.find_cgroup2_mount()
    for pid in cgroup2.procs(cg):
        with contextlib.suppress(OSError):
            cgroup2.move_pid(root, pid)
