"""The workspace of a run: the git root above its cwd, else the cwd itself.

Runs are compared with earlier runs of the same workspace (`logira diff`), and SARIF results are
anchored to files of that repository. Only the local filesystem is consulted (no `git` process):
a directory holding `.git` (a directory, or a file for worktrees and submodules) is a git root.
"""

from __future__ import annotations

import os
import posixpath


def git_root(path: str) -> str | None:
    """The nearest ancestor of `path` (itself included) holding `.git`, or None."""
    if not path or not os.path.isabs(path):
        return None
    cur = posixpath.normpath(path)
    while True:
        try:
            os.lstat(posixpath.join(cur, ".git"))
            return cur
        except OSError:
            pass
        parent = posixpath.dirname(cur)
        if parent == cur:
            return None
        cur = parent


def workspace_of(cwd: str) -> str:
    """The run's workspace: git root of `cwd`, else `cwd` (normalised), else "/"."""
    if not cwd:
        return "/"
    return git_root(cwd) or posixpath.normpath(cwd)


def inside(path: str, root: str) -> bool:
    """True when `path` is `root` or below it (lexically)."""
    if not path or not root:
        return False
    root = root.rstrip("/") or "/"
    return root == "/" or path == root or path.startswith(root + "/")
