"""Root-owned registry of active runs, so a restarted daemon can close what a crash left open.

One small JSON file per active run under `<state_dir>/active/`, written atomically when the
run starts and removed when it is finalized. Everything here is under the root-owned state
dir, so plain paths are fine; the user's home is only ever touched through logira.storage.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

from logira.storage.statedir import StateDirError, open_state_subdir


class RegistryEntry(msgspec.Struct, kw_only=True):
    uid: int
    gid: int
    home: str  # $LOGIRA_HOME of the run (absolute)
    run_id: str
    cgroup: str  # absolute path of the run cgroup
    root_pid: int
    start_ts: int


def ensure_state_dir(path: Path) -> Path:
    """Create (or check) the root-owned state dir and its `active/` registry (never via a symlink)."""
    try:
        os.close(open_state_subdir(path, "active", mode=0o700))
    except StateDirError as exc:
        raise OSError(f"state dir: {exc}") from None
    return path


class Registry:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "active"

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def add(self, key: str, entry: RegistryEntry) -> None:
        tmp = self.dir / f".{key}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, msgspec.json.encode(entry))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path(key))

    def remove(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(key))

    def entries(self) -> list[tuple[str, RegistryEntry | None]]:
        """Every registered run; None for an unreadable entry (still returned so it can be removed)."""
        out: list[tuple[str, RegistryEntry | None]] = []
        for p in sorted(self.dir.glob("*.json")):
            try:
                out.append((p.stem, msgspec.json.decode(p.read_bytes(), type=RegistryEntry)))
            except (OSError, msgspec.DecodeError):
                out.append((p.stem, None))
        return out
