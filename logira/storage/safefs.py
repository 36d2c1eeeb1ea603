"""Root-side file handling inside users' directories, without ever following their symlinks.

The daemon (root) writes runs into `$LOGIRA_HOME/runs/`, a directory the audited user owns and
can change at any moment. So nothing here opens or chowns a path string under it: `/` is opened,
then each component with `openat(O_NOFOLLOW|O_DIRECTORY)`, and every later operation is relative
to a directory fd (`mkdirat`, `openat(O_CREAT|O_EXCL|O_NOFOLLOW)`, `fchown`, `renameat`).

SQLite is the one exception it cannot express: it re-resolves `/proc/self/fd/N/…` to a path string
and opens its files (and its -wal/-shm/-journal) by that string, through the user's directories.
So the database of an active run lives in root's own staging dir
(`$LOGIRA_STATE_DIR/staging/<uid>-<run-id>/`) and is copied into the run dir through the dirfd at
`hand_over()`. See docs/storage.md.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

from logira.errors import LogiraError
from logira.storage.runids import base_run_id, validate_run_id
from logira.storage.statedir import StateDirError, default_state_dir, open_state_subdir

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
ACTIVE_DIR_MODE = 0o750  # root:<gid>: the user can read the run but plant nothing in it
ACTIVE_FILE_MODE = 0o640
FINAL_DIR_MODE = 0o700
FINAL_FILE_MODE = 0o600
MAX_SUFFIX = 999
_SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


class UnsafePathError(LogiraError):
    """A user directory the daemon was asked to write into is not safe (one-line message)."""


class RunDirError(LogiraError):
    """A run directory could not be created or reopened (one-line message)."""


def _missing(shown: str) -> UnsafePathError:
    return UnsafePathError(f"{shown} does not exist; run `logira run` as the user once or create it")


def _open_component(parent_fd: int, name: str, shown: str) -> int:
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        raise _missing(shown) from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            try:
                st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            except OSError:
                raise _missing(shown) from None
            if stat.S_ISLNK(st.st_mode):
                raise UnsafePathError(f"{shown} is a symlink; logira refuses to write through symlinks") from None
            raise UnsafePathError(f"{shown} is not a directory") from None
        raise UnsafePathError(f"{shown} cannot be opened: {exc.strerror}") from None


def _check_private(fd: int, uid: int, shown: str) -> None:
    st = os.fstat(fd)
    if st.st_uid != uid:
        raise UnsafePathError(f"{shown} is not owned by uid {uid}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafePathError(f"{shown} is writable by group/others; chmod go-w it")


def open_user_dir(path: str, uid: int) -> int:
    """Open `path` (absolute) as a dirfd without following any symlink; the last dir must be uid's, not g/o-writable.

    Intermediate components may be owned by anyone but must not be symlinks. The checks are made on
    the opened fd (fstat), so they describe exactly the directory that later writes go into.
    """
    if not path.startswith("/"):
        raise UnsafePathError(f"{path!r} is not an absolute path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(f"{path} contains '..'; give the path without it")
    fd = os.open("/", DIR_FLAGS)
    shown = ""
    try:
        for part in parts:
            shown = f"{shown}/{part}"
            nfd = _open_component(fd, part, shown)
            os.close(fd)
            fd = nfd
        _check_private(fd, uid, shown or "/")
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_runs_dir(home: str, uid: int) -> int:
    """Open `<home>/runs` for a run of `uid`: both `home` and `runs` must be uid's and private."""
    home_fd = open_user_dir(home, uid)
    try:
        shown = f"{home.rstrip('/')}/runs"
        runs_fd = _open_component(home_fd, "runs", shown)
        try:
            _check_private(runs_fd, uid, shown)
        except BaseException:
            os.close(runs_fd)
            raise
        return runs_fd
    finally:
        os.close(home_fd)


def _check_name(name: str) -> str:
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise ValueError(f"invalid file name {name!r} inside a run dir")
    return name


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"/proc/self/fd/{fd}"


def _copy_fd(src: int, dst: int) -> None:
    size = os.fstat(src).st_size
    offset = 0
    while offset < size:
        n = os.sendfile(dst, src, offset, size - offset)
        if n == 0:
            break
        offset += n


class RunDir:
    """One run directory, addressed only through its dirfd. Root-owned (0750, group gid) until hand_over()."""

    def __init__(self, run_id: str, fd: int, uid: int, gid: int, state_dir: Path | None = None):
        self.run_id = run_id
        self.fd = fd
        self.uid = uid
        self.gid = gid
        self.display_path = _fd_path(fd)  # informational only: never opened by name
        self.handed_over = False
        self._state_dir = state_dir or default_state_dir()
        self._staging_fd: int | None = None

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def create(cls, runs_fd: int, tool: str, uid: int, gid: int, now_ns: int,
               state_dir: Path | None = None, taken: Callable[[str], bool] | None = None) -> RunDir:
        """mkdirat a fresh run dir `<YYYYMMDD-HHMMSS-tool>[-N]` in `runs_fd` (from open_runs_dir).

        `taken(name)` rejects ids already used outside this home (seals and staging are per uid,
        not per home, so two homes of one user must not reuse an id).
        """
        base = base_run_id(tool, now_ns)
        for n in range(1, MAX_SUFFIX + 1):
            name = base if n == 1 else f"{base}-{n}"
            if taken is not None and taken(name):
                continue
            try:
                # 0700 first: nobody may look in before it has its final owner and mode.
                os.mkdir(name, 0o700, dir_fd=runs_fd)
            except FileExistsError:
                continue
            break
        else:
            raise RunDirError(f"more than {MAX_SUFFIX} runs named {base} already exist; remove old runs")
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=runs_fd)
        except OSError as exc:
            raise RunDirError(f"run dir {name} was replaced while it was being created ({exc.strerror})") from None
        try:
            st = os.fstat(fd)
            # The user owns runs/ and could swap our fresh dir for one of theirs between mkdirat and
            # openat; ours is the only one that is root-owned and empty.
            if st.st_uid != os.geteuid() or os.listdir(fd):
                raise RunDirError(f"run dir {name} was replaced while it was being created")
            os.fchown(fd, os.geteuid(), gid)
            os.fchmod(fd, ACTIVE_DIR_MODE)
        except BaseException:
            os.close(fd)
            raise
        return cls(name, fd, uid, gid, state_dir)

    @classmethod
    def open_existing(cls, runs_fd: int, run_id: str, uid: int, gid: int,
                      state_dir: Path | None = None) -> RunDir:
        """Reopen an unfinished run (root-owned, after a daemon crash) to mark it incomplete and seal it."""
        validate_run_id(run_id)
        try:
            fd = os.open(run_id, DIR_FLAGS, dir_fd=runs_fd)
        except FileNotFoundError:
            raise RunDirError(f"run dir {run_id} does not exist") from None
        except OSError as exc:
            raise RunDirError(f"run dir {run_id} cannot be opened safely ({exc.strerror})") from None
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            os.close(fd)
            raise RunDirError(f"run dir {run_id} is not an active run (not root-owned); nothing to recover")
        rd = cls(run_id, fd, uid, gid, state_dir)
        with contextlib.suppress(OSError, StateDirError):  # no staged database: nothing to publish
            rd._staging_fd = rd._open_staging(create=False)
        return rd

    # -- files ------------------------------------------------------------------------------
    def _owner(self) -> int:
        return self.uid if self.handed_over else os.geteuid()

    def create_file(self, name: str, mode: int = ACTIVE_FILE_MODE) -> int:
        """Create `name` exclusively (never through a symlink) and return a write fd.

        While the run is active the file is root:<gid> so the audited user can read but not alter
        it; hand_over() gives it to the user.
        """
        fd = os.open(_check_name(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=self.fd)
        try:
            os.fchown(fd, self._owner(), self.gid)
            os.fchmod(fd, mode)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_read(self, name: str) -> int:
        """Open an existing regular file of the run for reading (O_NOFOLLOW)."""
        fd = os.open(_check_name(name), _FILE_READ, dir_fd=self.fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RunDirError(f"{name} in run {self.run_id} is not a regular file")
        return fd

    def write_atomic(self, name: str, data: bytes, mode: int = ACTIVE_FILE_MODE, durable: bool = True) -> None:
        """Replace `name` atomically: temp file in the same dir, fsync, renameat.

        `durable=False` skips the two fsyncs (the rename stays atomic): for the meta.json of a run
        that has just started, which crash recovery rewrites anyway."""
        tmp = f".{_check_name(name)}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=self.fd)
        fd = self.create_file(tmp, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        if durable:
            os.fsync(self.fd)

    # -- SQLite staging ---------------------------------------------------------------------
    def _staging_name(self) -> str:
        return f"{self.uid}-{self.run_id}"

    def _open_staging(self, create: bool) -> int:
        root_fd = open_state_subdir(self._state_dir, "staging", mode=0o700)
        try:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(self._staging_name(), 0o700, dir_fd=root_fd)
            fd = os.open(self._staging_name(), DIR_FLAGS, dir_fd=root_fd)
        finally:
            os.close(root_fd)
        return fd

    def proc_path(self, name: str) -> str:
        """Path to give SQLite for `name`: inside root's staging dir for this run (see module doc)."""
        if self._staging_fd is None:
            self._staging_fd = self._open_staging(create=True)
        return f"/proc/self/fd/{self._staging_fd}/{_check_name(name)}"

    def chown_sqlite_sidecars(self) -> None:
        """Kept for API stability: sidecars live in root's staging dir and never reach the run dir."""

    def _publish_staged(self) -> None:
        if self._staging_fd is None:
            return
        sfd = self._staging_fd
        for name in sorted(os.listdir(sfd)):
            if name.endswith(_SQLITE_SIDECARS):
                continue
            if name.endswith(".sqlite"):
                self._finish_sqlite(f"/proc/self/fd/{sfd}/{name}", name == "index.sqlite")
            src = os.open(name, _FILE_READ, dir_fd=sfd)
            try:
                if not stat.S_ISREG(os.fstat(src).st_mode):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=self.fd)  # only ours can be here: the dir is root-owned
                if self._move_staged(name, sfd):
                    continue
                dst = self.create_file(name)
                try:
                    _copy_fd(src, dst)
                    os.fsync(dst)
                finally:
                    os.close(dst)
            finally:
                os.close(src)
        self._remove_staging()

    def _move_staged(self, name: str, sfd: int) -> bool:
        """Move a staged file into the run dir when both are on one filesystem (no copy: a large
        index would cost its size in reads, writes and an fsync at every run end). Both dirs are
        root-owned and reached through dirfds, so the rename cannot be redirected."""
        try:
            os.rename(name, name, src_dir_fd=sfd, dst_dir_fd=self.fd)
        except OSError as exc:
            if exc.errno in (errno.EXDEV, errno.EPERM, errno.EACCES):
                return False  # another filesystem: copied instead
            raise
        os.fsync(self.fd)  # the new directory entry is durable, like the copy's fsync
        return True

    def _finish_sqlite(self, path: str, backfill: bool) -> None:
        from logira.format.index import backfill_from_jsonl

        # A crashed daemon leaves its last transactions in -wal: fold them in, drop WAL mode.
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            conn.execute("PRAGMA journal_mode=DELETE").fetchall()
            if backfill:
                with contextlib.suppress(FileNotFoundError):
                    fd = self.open_read("events.jsonl")
                    try:
                        backfill_from_jsonl(conn, fd)
                    finally:
                        os.close(fd)
        finally:
            conn.close()

    def _remove_staging(self) -> None:
        if self._staging_fd is None:
            return
        for name in os.listdir(self._staging_fd):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=self._staging_fd)
        os.close(self._staging_fd)
        self._staging_fd = None
        root_fd = open_state_subdir(self._state_dir, "staging", mode=0o700)
        try:
            with contextlib.suppress(OSError):
                os.rmdir(self._staging_name(), dir_fd=root_fd)
        finally:
            os.close(root_fd)

    # -- finalize ---------------------------------------------------------------------------
    def hand_over(self) -> None:
        """At finalize: publish the staged SQLite, give every file and the dir to uid:gid (dir 0700).

        Call after the sinks are closed and meta.json is final. Files are chowned through fds
        opened with O_NOFOLLOW; the dir was root-owned until now, so nothing foreign is in it.
        The user gets the run even if publishing the database fails (raised afterwards).
        """
        publish_error: Exception | None = None
        try:
            self._publish_staged()
        except (OSError, sqlite3.Error, StateDirError) as exc:
            publish_error = exc
        for name in os.listdir(self.fd):
            try:
                fd = os.open(name, _FILE_READ, dir_fd=self.fd)
            except OSError:
                continue  # not a regular file we created (e.g. a symlink): leave it alone
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    os.fchown(fd, self.uid, self.gid)
                    os.fchmod(fd, FINAL_FILE_MODE)
            finally:
                os.close(fd)
        os.fchown(self.fd, self.uid, self.gid)
        os.fchmod(self.fd, FINAL_DIR_MODE)
        self.handed_over = True
        if publish_error is not None:
            raise RunDirError(f"index.sqlite of {self.run_id} could not be published: {publish_error}")

    def close(self) -> None:
        """Close the dirfds (idempotent)."""
        if self._staging_fd is not None:
            os.close(self._staging_fd)
            self._staging_fd = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
