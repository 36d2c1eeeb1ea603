"""Identities (st_dev, st_ino) of the run user's sensitive files, taken at run start.

A credential file reached through another name (a bind mount in a private mount namespace,
a hard link, `/proc/<pid>/root/...`) is recorded under that other name, so name-based rules
miss it. The kernel gives dev/ino of every opened file; matching them against this table
recovers the real name (`FileData.same_file_as`), and the rules match it like the path.

Root reads the user's directories here: every component is opened with O_NOFOLLOW (a
symlinked component is skipped, never followed), nothing is written, and the work is bounded
(MAX_ENTRIES per directory).
"""

from __future__ import annotations

import os
import stat

# home-relative directories whose regular files are all sensitive, and single files
SENSITIVE_DIRS = (".ssh", ".aws", ".azure", ".oci", ".kube", ".docker", ".config/gcloud", ".config/gh",
                  ".gnupg", ".gnupg/private-keys-v1.d", ".password-store", ".local/share/keyrings")  # fmt: skip
SENSITIVE_FILES = (".netrc", ".git-credentials", ".npmrc", ".pypirc", ".cargo/credentials",
                   ".cargo/credentials.toml", ".gem/credentials", ".config/git/credentials",
                   ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc",
                   ".zprofile", ".zshenv", ".zlogin", ".config/fish/config.fish")  # fmt: skip
MAX_ENTRIES = 256
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir(parent: int, rel: str) -> int | None:
    fd = os.dup(parent)
    try:
        for part in [p for p in rel.split("/") if p]:
            if part == "..":
                return None
            nfd = os.open(part, _DIR, dir_fd=fd)
            os.close(fd)
            fd = nfd
        out, fd = fd, -1
        return out
    except OSError:
        return None
    finally:
        if fd >= 0:
            os.close(fd)


def _stat_regular(dir_fd: int, name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def sensitive_identities(home: str) -> dict[tuple[int, int], str]:
    """(st_dev, st_ino) -> absolute path, for the sensitive files under `home` ({} if unreadable)."""
    out: dict[tuple[int, int], str] = {}
    if not home.startswith("/") or home == "/":
        return out
    root = os.open("/", _DIR)
    try:
        home_fd = _open_dir(root, home.lstrip("/"))
    finally:
        os.close(root)
    if home_fd is None:
        return out
    try:
        for rel in SENSITIVE_DIRS:
            fd = _open_dir(home_fd, rel)
            if fd is None:
                continue
            try:
                with os.scandir(fd) as it:
                    for n, entry in enumerate(it):
                        if n >= MAX_ENTRIES:
                            break
                        ident = _stat_regular(fd, entry.name)
                        if ident is not None:
                            out.setdefault(ident, f"{home}/{rel}/{entry.name}")
            except OSError:
                pass
            finally:
                os.close(fd)
        for rel in SENSITIVE_FILES:
            parent, _, name = rel.rpartition("/")
            fd = _open_dir(home_fd, parent) if parent else os.dup(home_fd)
            if fd is None:
                continue
            try:
                ident = _stat_regular(fd, name)
                if ident is not None:
                    out.setdefault(ident, f"{home}/{rel}")
            finally:
                os.close(fd)
    finally:
        os.close(home_fd)
    return out
