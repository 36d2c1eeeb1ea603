"""Pure facts about recorded file paths, shared by the pipeline and the readers."""

from __future__ import annotations

import errno as _errno

# Device and process pseudo-files: opening them for writing changes no file on disk.
_PSEUDO_EXACT = frozenset({
    "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/console",
    "/dev/ptmx", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/kmsg",
})  # fmt: skip
_PSEUDO_PREFIX = ("/dev/pts/", "/dev/tty", "/dev/fd/", "/proc/self/", "/proc/thread-self/")


def is_pseudo(path: str) -> bool:
    """True for a path that is not a change to a file: device nodes like /dev/null, ttys,
    a process's own /proc entries, and kernel-named objects (pipes, sockets, memfds:
    recorded as `pipefs:[ino]`, never starting with "/").

    /proc/sys and /sys are NOT pseudo here: writing them changes the system.
    """
    if not path.startswith("/"):
        return True
    if path in _PSEUDO_EXACT or path.startswith(_PSEUDO_PREFIX):
        return True
    if path.startswith("/proc/"):
        head = path[6:].partition("/")[0]
        return head.isdigit()  # /proc/<pid>/...: process state, not files
    return False


DENIED_ERRNOS = frozenset({_errno.EACCES, _errno.EPERM})


def result_of(errno: int) -> str:
    """ok | denied (EACCES, EPERM) | failed (any other error)."""
    if not errno:
        return "ok"
    return "denied" if errno in DENIED_ERRNOS else "failed"


def errno_name(errno: int) -> str:
    return _errno.errorcode.get(errno, f"errno {errno}")


def normalize(path: str) -> str:
    """Lexically normalise an absolute path: collapse `//`, drop `.`, resolve `..`.

    `..` at the root stays at the root (as the kernel does). Relative input is returned
    unchanged: it is a path that could not be resolved and must be shown as given.
    """
    if not path.startswith("/"):
        return path
    if "/." not in path and "//" not in path and (len(path) == 1 or not path.endswith("/")):
        return path  # the common case: already normal
    out: list[str] = []
    for part in path.split("/"):
        if not part or part == ".":
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/" + "/".join(out)
