"""Seals: root's own record of how each run ended, out of the audited user's reach.

`$LOGIRA_STATE_DIR/seals/<uid>/<run-id>.json` (root:<user group> 0640 in a root:<user group> 0750 dir:
a seal holds the run's argv and cwd, which other local users must not read) holds the
record count and the final hash of the JSONL chain. The user owns the run dir after the run and
can rewrite it (even recompute the whole chain), but cannot touch the seal, so `logira verify`
can tell an intact run from an edited, truncated or deleted one.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import time
from pathlib import Path

import msgspec

from logira.format.meta import RunMeta
from logira.format.textsafe import encode_display
from logira.storage.runids import validate_run_id
from logira.storage.statedir import StateDirError, default_state_dir, open_state_subdir

SEAL_MAX_BYTES = 8 << 20
SEAL_DIR_MODE = 0o750  # root:<user's group>
SEAL_FILE_MODE = 0o640

__all__ = ["Seal", "default_state_dir", "list_seals", "read_seal", "write_seal"]


class Seal(msgspec.Struct, kw_only=True):
    run_id: str
    uid: int
    events: int  # records in events.jsonl (= last seq)
    final_hash: str
    sealed_at: int  # wall-clock UTC ns
    complete: bool
    run_dir: str = ""  # absolute run directory (seals are per uid, a uid can have several homes)
    # Addition to the contract: the final meta itself, so verify can name any meta.json field
    # changed after the run (exit code, detections...), not just the count and hash.
    meta: RunMeta | None = None


def seal_of(meta: RunMeta, sealed_at: int | None = None) -> Seal:
    """The seal for a final meta (event_count/final_hash must already be set)."""
    return Seal(run_id=meta.run_id, uid=meta.uid, events=meta.event_count, final_hash=meta.final_hash,
                sealed_at=time.time_ns() if sealed_at is None else sealed_at, complete=meta.complete,
                run_dir=meta.run_dir, meta=meta)


def write_seal(state_dir: Path, meta: RunMeta) -> Seal:
    """Root: write the seal of `meta` atomically (temp file + fsync + rename, never through a symlink)."""
    validate_run_id(meta.run_id)
    if meta.uid < 0:
        raise ValueError(f"meta of {meta.run_id} has no uid; cannot seal")
    seal = seal_of(meta)
    data = encode_display(seal) + b"\n"
    gid = _seal_gid(meta)
    dfd = _open_uid_dir(state_dir, meta.uid, gid)
    try:
        name = f"{meta.run_id}.json"
        tmp = f".{name}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dfd)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            os.fchown(fd, os.geteuid(), gid)
            os.fchmod(fd, SEAL_FILE_MODE)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return seal


def _seal_gid(meta: RunMeta) -> int:
    """The group that may read the uid's seals: its passwd primary group (else the run's gid, else root)."""
    try:
        return pwd.getpwuid(meta.uid).pw_gid
    except KeyError:
        return meta.gid if meta.gid >= 0 else 0


def _open_uid_dir(state_dir: Path, uid: int, gid: int) -> int:
    """`seals/<uid>`, root:<gid> 0750: a seal holds the run's meta (argv, cwd, user), which other
    local users must not read; the user reads its own through the group."""
    sfd = open_state_subdir(state_dir, "seals", mode=0o755)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(str(uid), 0o700, dir_fd=sfd)  # 0700 until it has its group: no window for others
        try:
            dfd = os.open(str(uid), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=sfd)
        except OSError as exc:
            raise StateDirError(f"{state_dir}/seals/{uid} is not a real directory ({exc.strerror})") from None
    finally:
        os.close(sfd)
    try:
        if os.fstat(dfd).st_uid != os.geteuid():
            raise StateDirError(f"{state_dir}/seals/{uid} is not owned by uid {os.geteuid()}; fix its ownership")
        os.fchown(dfd, os.geteuid(), gid)
        os.fchmod(dfd, SEAL_DIR_MODE)  # also tightens dirs made 0755 by older versions
    except BaseException:
        os.close(dfd)
        raise
    return dfd


def _read(path: Path) -> Seal | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        # Only root writes seals. The reader runs as the user, whose environment (LOGIRA_STATE_DIR)
        # the agent may have changed: a seal the user could have written proves nothing.
        if st.st_uid != 0 or st.st_mode & 0o022:
            return None
        try:
            return msgspec.json.decode(f.read(SEAL_MAX_BYTES), type=Seal)
        except msgspec.DecodeError:
            return None


def read_seal(state_dir: Path, uid: int, run_id: str) -> Seal | None:
    """The seal of one run, or None if there is none (or it is unreadable). Never creates anything."""
    validate_run_id(run_id)
    seal = _read(state_dir / "seals" / str(uid) / f"{run_id}.json")
    return seal if seal is not None and seal.run_id == run_id and seal.uid == uid else None


def list_seals(state_dir: Path, uid: int) -> list[Seal]:
    """All readable seals of `uid`, sorted by run id."""
    d = state_dir / "seals" / str(uid)
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return []
    seals = []
    for name in names:
        if name.endswith(".json") and not name.startswith("."):
            seal = _read(d / name)
            if seal is not None and f"{seal.run_id}.json" == name:
                seals.append(seal)
    return seals
