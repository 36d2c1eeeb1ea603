"""Receipt-time checks of file records: what logirad can still establish about a path.

The kernel gives exact names for opens (the fd's path) and fd operations; for path
operations (unlink, rename, mkdir, symlink, ...) and failed opens it gives the string the
caller passed, joined to a kernel-resolved base. Here, at receipt (so it can race, and is
marked so), logirad:

- resolves what the kernel could not: symlinked directory components, `/proc/<pid>/fd/N`
  of another process, `/proc/self` reached through a dirfd. The real path becomes `path`,
  the string as written `path_literal`, `resolved = "receipt"`. A symlink's target is made
  absolute against the link's directory (the literal target is kept).
- verifies successful path operations: a created name must exist, a removed one must be
  gone, a renamed source must be gone, a chmod'ed file must have the mode. A failure that
  no later record of the same batch explains sets `path_unverified` with the reason.
- matches the file's identity (dev, ino) against the run user's sensitive files
  (`same_file_as`).

Paths of a process in another mount namespace are looked up through `/proc/<pid>/root`
(absolute symlink targets are re-rooted there); when that process is gone they cannot be
checked and say so. Nothing here opens, creates or writes anything: lstat and readlink only.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Sequence

from logira.model.kernel import FileOp
from logira.model.paths import normalize
from logira.model.record import FileData, Record
from logira.pipeline.convert import CHANGED, file_summary

MAX_LINKS = 40  # like the kernel's MAXSYMLINKS
CACHE_TTL = 1.0  # seconds a resolved directory is reused (Bun touches the same dirs constantly)
CACHE_MAX = 4096
AT_SYMLINK_NOFOLLOW = 0x100
RENAME_EXCHANGE = 2

# ops whose last component is acted on itself, not followed
_NOFOLLOW_LAST = frozenset({"delete", "rmdir", "rename", "link", "symlink", "mkdir", "create"})
_CREATES = frozenset({"create", "mkdir", "symlink", "link"})  # the (new) name must exist after
_REMOVES = frozenset({"delete", "rmdir"})


def _own_mnt_ns() -> int:
    try:
        return os.stat("/proc/self/ns/mnt").st_ino
    except OSError:
        return 0


class Resolver:
    """Symlink resolution by lstat/readlink, optionally under another root (`/proc/<pid>/root`)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[float, str | None]] = {}

    def realpath(self, path: str, root: str, *, follow_last: bool) -> str | None:
        """The path with every symlink resolved (the last one only if follow_last); None when a
        lookup failed for another reason than a missing name (then nothing can be said)."""
        head, _, last = path.rpartition("/")
        d = self._dir(head or "/", root)
        if d is None:
            return None
        full = (d.rstrip("/") + "/" + last) if last else d
        if not follow_last or not last:
            return full
        return self._walk(full, root, follow_last=True)

    def _dir(self, d: str, root: str) -> str | None:
        key = (root, d)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < CACHE_TTL:
            return hit[1]
        out = self._walk(d, root, follow_last=True)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (now, out)
        return out

    @staticmethod
    def _walk(path: str, root: str, *, follow_last: bool) -> str | None:
        todo = [p for p in reversed(path.split("/")) if p]
        out: list[str] = []
        links = 0
        while todo:
            name = todo.pop()
            if name == ".":
                continue
            if name == "..":
                if out:
                    out.pop()
                continue
            if not todo and not follow_last:
                out.append(name)
                break
            cur = "/" + "/".join([*out, name])
            try:
                st = os.lstat(root + cur)
            except (FileNotFoundError, NotADirectoryError):
                out.append(name)  # does not exist (any more): the rest stays as written
                out.extend(reversed(todo))
                break
            except OSError:
                return None
            if not stat.S_ISLNK(st.st_mode):
                out.append(name)
                continue
            links += 1
            if links > MAX_LINKS:
                return None
            try:
                target = os.readlink(root + cur)
            except OSError:
                return None
            if target.startswith("/"):
                out = []
            elif ":" in target.partition("/")[0]:
                # a magic link to a pipe/socket/anon inode ("pipe:[12]"): not a path
                return None
            todo.extend(reversed([p for p in target.split("/") if p]))
        return "/" + "/".join(out)


def _self_alias(path: str, pid: int, tid: int) -> str:
    """/proc/self and /proc/thread-self as the recorded process saw them."""
    if path.startswith("/proc/self/") or path == "/proc/self":
        return f"/proc/{pid}" + path[10:]
    if path.startswith("/proc/thread-self/") or path == "/proc/thread-self":
        return f"/proc/{pid}/task/{tid}" + path[17:]
    return path


def _take_real(d: FileData, field: str, real: str | None) -> bool:
    """d.<field> (path or path2) becomes its real path when that differs; True if it did.

    The string the process passed is kept in <field>_literal (the first one, if resolved before),
    and `resolved` says the path was checked at receipt.
    """
    have = getattr(d, field)
    if real is None or real == have:
        return False
    literal = f"{field}_literal"
    setattr(d, literal, getattr(d, literal) or have)
    setattr(d, field, real)
    d.resolved = "receipt"
    return True


class FileChecker:
    """Resolves, verifies and identifies the file records of one run (see the module doc)."""

    def __init__(self, sensitive: dict[tuple[int, int], str] | None = None) -> None:
        self.sensitive = sensitive or {}
        self.own_ns = _own_mnt_ns()
        self.resolver = Resolver()
        self._later: dict[str, list[tuple[int, str]]] = {}

    def begin_batch(self, batch: Sequence[object]) -> None:
        """Index the names later records of this batch touch (they explain a failed check)."""
        later: dict[str, list[tuple[int, str]]] = {}
        for i, ev in enumerate(batch):
            if type(ev) is FileOp and ev.op != "read":
                later.setdefault(ev.path, []).append((i, ev.op if not ev.path2 else ev.op + ":from"))
                if ev.path2:
                    later.setdefault(ev.path2, []).append((i, ev.op + ":to"))
        self._later = later

    def _explained(self, name: str, after: int, want: frozenset[str]) -> bool:
        return any(i > after and op in want for i, op in self._later.get(name, ()))

    def _root_of(self, rec: Record, ev_ns: int) -> str | None:
        if not ev_ns or not self.own_ns or ev_ns == self.own_ns:
            return ""
        root = f"/proc/{rec.pid}/root"
        try:
            if os.stat(f"/proc/{rec.pid}/ns/mnt").st_ino != ev_ns:
                return None  # gone, or the pid is someone else's now
        except OSError:
            return None
        return root

    def check(self, rec: Record, ev: FileOp, index: int) -> None:
        d = rec.data_json
        if not isinstance(d, FileData):
            return
        ident = (d.dev, d.ino)
        if d.ino:
            same = self.sensitive.get(ident)
            if same is not None and same != d.path:
                d.same_file_as = same
        if (d.ino and d.op in ("create", "modify", "read")) or d.syscall in ("fchmod", "ftruncate"):
            return  # the path of the kernel's struct file: exact already
        root = self._root_of(rec, ev.mnt_ns)
        if root is None:
            if not d.path_unverified:
                d.path_unverified = "private mount namespace, process gone: not checked"
            return
        changed = self._resolve(rec, d, root)
        if d.ret >= 0 and d.path_unverified != CHANGED:
            # a string read only after the syscall stays marked so unless the filesystem now
            # contradicts it, which is the stronger finding
            why = self._verify(d, root, index)
            if why:
                d.path_unverified = why
        if changed:
            rec.summary = file_summary(d.op, d.path, d.path2, d.errno)

    def _resolve(self, rec: Record, d: FileData, root: str) -> bool:
        """Replace path/path2 by their real paths; True if anything changed."""
        changed = False
        if d.op == "symlink":
            # the link's content is relative to the link's directory: make it absolute
            target = d.path_literal or d.path
            if d.path2.startswith("/") and target:
                base = d.path2.rpartition("/")[0] or "/"
                absolute = target if target.startswith("/") else f"{base}/{target}"
                real = self.resolver.realpath(normalize(absolute), root, follow_last=True)
                changed = _take_real(d, "path", real)
            return _take_real(d, "path2", self._real(rec, d.path2, root, follow_last=False)) or changed
        # chmod/truncate and (failed) opens follow a final symlink; the others act on the name
        follow = d.op not in _NOFOLLOW_LAST and not (d.flags & AT_SYMLINK_NOFOLLOW and d.op == "chmod")
        changed = _take_real(d, "path", self._real(rec, d.path, root, follow_last=follow))
        if d.path2:
            changed = _take_real(d, "path2", self._real(rec, d.path2, root, follow_last=False)) or changed
        return changed

    def _real(self, rec: Record, path: str, root: str, *, follow_last: bool) -> str | None:
        if not path.startswith("/"):
            return None
        return self.resolver.realpath(_self_alias(path, rec.pid, d_tid(rec)), root, follow_last=follow_last)

    def _verify(self, d: FileData, root: str, index: int) -> str:
        op = d.op

        def exists(p: str) -> bool | None:
            try:
                os.lstat(root + p)
                return True
            except (FileNotFoundError, NotADirectoryError):
                return False
            except OSError:
                return None

        gone = frozenset({"delete", "rmdir", "rename:from"})
        made = frozenset({"create", "mkdir", "symlink:to", "link:to", "rename:to", "modify"})
        if op == "rename":
            if exists(d.path2) is False and not self._explained(d.path2, index, gone):
                return "destination missing at receipt"
            if (not d.flags & RENAME_EXCHANGE and exists(d.path) is True
                    and not self._explained(d.path, index, made) and not _same(root, d.path, d.path2)):  # fmt: skip
                return "source still exists at receipt"
            return ""
        if op in ("link", "symlink"):
            if exists(d.path2) is False and not self._explained(d.path2, index, gone):
                return "created name missing at receipt"
            return ""
        if op in _CREATES:
            if exists(d.path) is False and not self._explained(d.path, index, gone):
                return "created name missing at receipt"
            return ""
        if op in _REMOVES:
            if exists(d.path) is True and not self._explained(d.path, index, made):
                return "removed name exists at receipt"
            return ""
        if op in ("chmod", "truncate"):
            if exists(d.path) is False and not self._explained(d.path, index, gone):
                return "file missing at receipt"
            if op == "chmod" and d.mode >= 0:
                try:
                    st = os.stat(root + d.path)
                except OSError:
                    return ""
                if stat.S_IMODE(st.st_mode) != d.mode and not self._explained(d.path, index, frozenset({"chmod"})):
                    return "mode differs at receipt"
        return ""


def d_tid(rec: Record) -> int:
    return getattr(rec.data_json, "tid", 0) or rec.pid


def _same(root: str, a: str, b: str) -> bool:
    try:
        sa, sb = os.lstat(root + a), os.lstat(root + b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)
