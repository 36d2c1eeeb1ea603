"""Output files of the read-side commands: all or nothing (a temp file beside the target, then rename).

A failed write (disk full, a renderer error, Ctrl-C) never leaves a partial report where a CI
step would pick it up: the temp file is removed and the target is untouched.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterable

from logira.cli.errors import CliError


def check_target(path: str) -> None:
    """Fail early (before any work) when `path` cannot be written."""
    if path in ("", "-"):
        return
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CliError(
            f"cannot write {path}: it is a directory (name a file, e.g. {path.rstrip('/')}/report.html)"
        )
    if not os.path.isdir(parent):
        raise CliError(f"cannot write {path}: directory {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CliError(f"cannot write {path}: directory {parent} is not writable (choose another -o)")


def write_output(path: str, chunks: Iterable[bytes]) -> None:
    """Write `chunks` to `path` atomically, or to stdout for `-`/empty."""
    if path in ("", "-"):
        out = sys.stdout.buffer
        for c in chunks:
            out.write(c)
        out.flush()
        return
    check_target(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):  # /dev/null, a FIFO: write into it, never replace it
        try:
            with open(path, "wb") as f:
                for c in chunks:
                    f.write(c)
        except OSError as exc:
            raise CliError(f"cannot write {path}: {exc.strerror} (choose another -o)") from None
        return
    parent = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror} (choose another -o)") from None
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise CliError(
            f"cannot write {path}: {exc.strerror} (nothing was written; free space or choose another -o)"
        ) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
