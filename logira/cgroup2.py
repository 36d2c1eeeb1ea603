"""cgroup v2 plumbing shared by the daemon and the capture tests.

The cgroup2 mount is found in /proc/self/mountinfo: `/sys/fs/cgroup` on unified hosts,
`/sys/fs/cgroup/unified` on hybrid ones. Run cgroups live at
`<mount>/<parent>/<run>`, i.e. always at level 2, which is what the in-kernel filter
checks (`bpf_get_current_ancestor_cgroup_id(2)`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from pathlib import Path

from logira.errors import LogiraError

RUN_CGROUP_LEVEL = 2


class CgroupError(LogiraError):
    """A one-line, user-facing cgroup problem."""


def find_cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> Path:
    try:
        text = Path(mountinfo).read_text()
    except OSError as exc:
        raise CgroupError(f"cannot read {mountinfo}: {exc.strerror}") from None
    for line in text.splitlines():
        # id parent maj:min root mountpoint opts [optional...] - fstype source superopts
        left, _, right = line.partition(" - ")
        fields = left.split()
        if right.split()[:1] == ["cgroup2"] and len(fields) >= 5 and fields[3] == "/":
            return Path(fields[4].replace("\\040", " "))
    raise CgroupError("no cgroup2 filesystem is mounted; mount one (mount -t cgroup2 none /sys/fs/cgroup/unified)")


def cgroup_id(path: Path) -> int:
    """The v2 cgroup id, as bpf_get_current_cgroup_id() reports it: the directory's inode."""
    return os.stat(path).st_ino


def ensure_parent(mount: Path, name: str) -> Path:
    """Create (or check) the root-owned parent of all run cgroups. Not delegated to anyone."""
    parent = mount / name
    with contextlib.suppress(FileExistsError):
        os.mkdir(parent, 0o755)
    st = os.lstat(parent)
    if st.st_uid != 0 or (st.st_mode & 0o022):
        os.chown(parent, 0, 0, follow_symlinks=False)
        os.chmod(parent, 0o755)
    return parent


def create(parent: Path, name: str) -> Path:
    path = parent / name
    os.mkdir(path, 0o755)
    return path


def move_pid(cg: Path, pid: int) -> None:
    with open(cg / "cgroup.procs", "w") as f:
        f.write(f"{pid}\n")


def procs(cg: Path) -> list[int]:
    """Every process in `cg` and its descendant cgroups."""
    out: list[int] = []
    for dirpath, _dirs, _files in os.walk(cg):
        with contextlib.suppress(FileNotFoundError):
            out.extend(int(x) for x in Path(dirpath, "cgroup.procs").read_text().split())
    return out


def populated(cg: Path) -> bool:
    try:
        for line in (cg / "cgroup.events").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "populated":
                return value.strip() == "1"
    except FileNotFoundError:
        return False
    return bool(procs(cg))


def kill_all(cg: Path, sig: int = signal.SIGKILL) -> None:
    """Kill everything in the cgroup tree (cgroup.kill when the kernel has it)."""
    try:
        (cg / "cgroup.kill").write_text("1")
        return
    except OSError:
        pass
    for pid in procs(cg):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def remove(cg: Path, timeout: float = 2.0) -> bool:
    """rmdir the cgroup and any child cgroups, deepest first. Returns False if still busy."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            for dirpath, _dirs, _files in sorted(os.walk(cg), key=lambda t: -t[0].count("/")):
                with contextlib.suppress(FileNotFoundError):
                    os.rmdir(dirpath)
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                return False
            time.sleep(0.02)
