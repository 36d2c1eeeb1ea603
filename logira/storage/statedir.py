"""Root's own state directory (`$LOGIRA_STATE_DIR`, default /var/lib/logira): seals and SQLite staging.

Everything under it is root-owned and not writable by anyone else, which is what makes plain
path strings safe there (unlike anything under a user's home).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from logira.errors import LogiraError

DEFAULT_STATE_DIR = "/var/lib/logira"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class StateDirError(LogiraError):
    """The state dir is not a safe root-owned directory (one-line message)."""


def default_state_dir() -> Path:
    """$LOGIRA_STATE_DIR or /var/lib/logira."""
    return Path(os.environ.get("LOGIRA_STATE_DIR") or DEFAULT_STATE_DIR)


def _check_root_dir(fd: int, shown: str) -> None:
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        raise StateDirError(f"{shown} is not owned by uid {os.geteuid()}; fix its ownership")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StateDirError(f"{shown} is writable by group/others; chmod go-w it")


def open_state_subdir(state_dir: Path, *parts: str, mode: int = 0o755) -> int:
    """Open (creating if needed) `state_dir/<parts...>` as a dirfd, each level root-owned, no symlinks.

    `state_dir` itself is created with its parents if missing; the levels below it are created
    one at a time with mkdirat and opened with O_NOFOLLOW.
    """
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    try:
        fd = os.open(state_dir, _DIR_FLAGS)
    except OSError as exc:
        raise StateDirError(f"{state_dir} cannot be opened as a directory ({exc.strerror}); "
                            "it must be a real directory, not a symlink") from None
    try:
        _check_root_dir(fd, str(state_dir))
        shown = str(state_dir)
        for part in parts:
            if part in ("", ".", "..") or "/" in part:
                raise StateDirError(f"invalid state dir component {part!r}")
            shown = f"{shown}/{part}"
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, mode, dir_fd=fd)
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise StateDirError(f"{shown} is not a real directory ({exc.strerror})") from None
            os.close(fd)
            fd = nfd
            _check_root_dir(fd, shown)
        return fd
    except BaseException:
        os.close(fd)
        raise
