"""Optional detection "new egress destination for this workspace" (`new_egress_detection`, off by default).

At finalize, the destinations the run sent to (sinks/egress.py) are compared with those of the
earlier runs of the same workspace (git root of the run's cwd, else the cwd) by the same uid. The
history is root's, not the user's: `$LOGIRA_STATE_DIR/egress/<uid>/<sha256(workspace)>.json`
(root-owned dirs, written atomically through a dirfd), so the audited agent cannot pre-seed it to
hide a new destination. The first run of a workspace only records the baseline (everything would
be new). Each new destination becomes one low detection appended to the run (after its events),
with the first record that reached it as the related event.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from logira.model.record import DetectionData, Record
from logira.read.workspace import workspace_of
from logira.storage.statedir import open_state_subdir

RULE_ID = "net-new-destination-for-workspace"
HISTORY_MAX = 20_000  # destinations remembered per workspace (oldest kept; beyond it nothing is "new")
NEW_MAX = 100  # detections per run (the rest is counted in the last one's message)


def _name(workspace: str) -> str:
    return hashlib.sha256(workspace.encode("utf-8", "surrogateescape")).hexdigest() + ".json"


def _load(dfd: int, name: str) -> list[str] | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as f:
        try:
            doc = json.loads(f.read(8 << 20))
            return [str(x) for x in doc.get("destinations", [])]
        except (ValueError, AttributeError):
            return []  # unreadable history: treated as empty but existing (the run still gets judged)


def _store(dfd: int, name: str, workspace: str, dests: list[str]) -> None:
    tmp = name + ".tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dfd)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
    with os.fdopen(fd, "wb") as f:
        f.write(json.dumps({"workspace": workspace, "destinations": dests}).encode("utf-8", "backslashreplace"))
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)


def judge(state_dir: Path, uid: int, cwd: str, collector: Any, run_id: str, tree: Any) -> list[Record]:
    """The detections for this run's new destinations (and the history updated with them)."""
    workspace = workspace_of(cwd)
    dfd = open_state_subdir(state_dir, "egress", str(uid), mode=0o700)
    try:
        name = _name(workspace)
        history = _load(dfd, name)
        seen = collector.seen
        out: list[Record] = []
        if history is not None:
            known = set(history)
            new = [k for k in seen if k not in known]
            for i, key in enumerate(new[:NEW_MAX]):
                seq, pid, ts = seen[key]
                names = sorted(collector.dns.get(key, ()))
                more = f" (+{len(new) - NEW_MAX} more new destinations)" if i == NEW_MAX - 1 and len(new) > NEW_MAX else ""
                msg = f"new egress destination for workspace {workspace}: {key}" + (
                    f" ({', '.join(names)})" if names else "") + more  # fmt: skip
                det = DetectionData(rule_id=RULE_ID, severity="low", message=msg, related_event_seq=seq,
                                    title="New egress destination for this workspace", category="network",
                                    tags=["baseline"], lineage=tree.lineage(pid))  # fmt: skip
                out.append(Record(run_id=run_id, seq=0, ts=ts, type="detection", pid=pid, summary=f"[low] {RULE_ID}: {msg}",
                                  data_json=det))  # fmt: skip
        merged = list(history or [])
        merged += [k for k in seen if k not in set(merged)]
        _store(dfd, name, workspace, merged[:HISTORY_MAX])
        return out
    finally:
        os.close(dfd)
