"""Seals: root-owned, atomic, never written through a symlink."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from logira.format.meta import RunMeta
from logira.storage.seal import list_seals, read_seal, write_seal
from logira.storage.statedir import StateDirError


def _meta(run_id: str, uid: int = 4242) -> RunMeta:
    return RunMeta(run_id=run_id, uid=uid, event_count=7, final_hash="ab" * 32, complete=True,
                   status="complete", suspicious_count=2)


def test_write_read_list(tmp_path: Path) -> None:
    state = tmp_path / "state"
    s1 = write_seal(state, _meta("20261126-030000-a"))
    s2 = write_seal(state, _meta("20261126-030001-b"))
    assert (s1.run_id, s1.uid, s1.events, s1.final_hash, s1.complete) == ("20261126-030000-a", 4242, 7,
                                                                          "ab" * 32, True)
    assert s1.meta == _meta("20261126-030000-a") and s1.sealed_at > 0
    assert read_seal(state, 4242, "20261126-030000-a") == s1
    assert read_seal(state, 4242, "nope") is None and read_seal(state, 1, "20261126-030000-a") is None
    assert list_seals(state, 4242) == [s1, s2]
    assert list_seals(state, 999) == []
    f = state / "seals" / "4242" / "20261126-030000-a.json"
    assert sorted(os.listdir(f.parent)) == ["20261126-030000-a.json", "20261126-030001-b.json"]  # no temp left
    # seals hold argv/cwd: readable by the uid's group only (4242 has no passwd entry: meta.gid, else 0)
    for p, mode in ((f, 0o640), (f.parent, 0o750), (f.parent.parent, 0o755)):
        st = os.stat(p)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (os.geteuid(), mode), p


def test_refuses_symlinked_seal_dirs(tmp_path: Path) -> None:
    state, target = tmp_path / "state", tmp_path / "target"
    target.mkdir()
    (state / "seals").mkdir(parents=True)
    (state / "seals" / "4242").symlink_to(target)
    with pytest.raises(StateDirError, match=r"/seals/4242 is not a real directory"):
        write_seal(state, _meta("20261126-030000-a"))
    assert os.listdir(target) == []


def test_refuses_unsafe_run_ids(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid run id"):
        write_seal(tmp_path, _meta("../../etc/x"))
    with pytest.raises(ValueError, match="invalid run id"):
        read_seal(tmp_path, 1, "../x")
