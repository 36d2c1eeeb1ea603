"""Where a user's runs live: `$LOGIRA_HOME` (client side) or `<passwd home>/.logira`."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from logira.errors import LogiraError

HOME_DIRNAME = ".logira"


class HomeError(LogiraError):
    """The logira home cannot be used (one-line message naming the fix)."""


def default_home(uid: int) -> str:
    """`<passwd home of uid>/.logira` (the daemon's default when the client sends no home)."""
    try:
        home = pwd.getpwuid(uid).pw_dir
    except KeyError:
        raise HomeError(f"uid {uid} has no passwd entry; set LOGIRA_HOME to an absolute directory") from None
    return os.path.join(home, HOME_DIRNAME)


def client_home() -> Path:
    """The home the client uses and sends to the daemon: $LOGIRA_HOME (made absolute) or default_home()."""
    env = os.environ.get("LOGIRA_HOME")
    if env:
        return Path(os.path.abspath(env))
    try:
        return Path(default_home(os.getuid()))
    except HomeError:
        return Path(os.path.expanduser("~")) / HOME_DIRNAME


def _ensure_private_dir(path: Path) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise HomeError(f"cannot create {path}: {exc.strerror}") from None
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise HomeError(f"{path} is a symlink; logira needs a real directory there (remove the symlink)")
    if not stat.S_ISDIR(st.st_mode):
        raise HomeError(f"{path} is not a directory")
    if st.st_uid != os.getuid():
        raise HomeError(f"{path} is not owned by you (uid {os.getuid()}); chown it or set LOGIRA_HOME")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise HomeError(f"{path} is writable by group/others; run `chmod go-w {path}`")


def ensure_home_as_user() -> Path:
    """CLIENT side, as the user: create $LOGIRA_HOME and runs/ (0700) if missing; return the home.

    Refuses symlinks and directories not owned by the user, with a message naming the fix. The
    daemon re-checks everything itself through dirfds; this is for a clear error before starting.
    """
    home = client_home()
    _ensure_private_dir(home)
    _ensure_private_dir(home / "runs")
    return home
