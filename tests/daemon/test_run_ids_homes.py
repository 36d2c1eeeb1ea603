"""Run ids are unique per uid across all of its homes (seals and staging are filed per uid)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logira.daemon.runfiles import open_run_files
from logira.format.meta import RunMeta
from logira.read.verify import seals_of_home, verify_missing_runs
from logira.storage.runids import base_run_id
from logira.storage.seal import list_seals, write_seal

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="run dirs are created as root")
T0 = 1_700_000_000_000_000_000


def _home(user, base: Path) -> Path:
    home = base / ".logira"
    for d in (base, home, home / "runs"):
        d.mkdir(mode=0o700)
        os.chown(d, user.uid, user.gid)
    return home


def test_two_homes_same_second_get_different_ids_and_own_seals(test_user, tmp_path: Path) -> None:
    state = tmp_path / "state"
    ha, hb = _home(test_user, tmp_path / "a"), _home(test_user, tmp_path / "b")
    uid, gid = test_user.uid, test_user.gid
    base = base_run_id("agent", T0)
    fa = open_run_files(str(ha), uid, gid, "agent", T0, state)
    fa.rundir.proc_path("index.sqlite")  # active: its staging dir exists (as after open_sqlite)
    fb = open_run_files(str(hb), uid, gid, "agent", T0, state)
    assert (fa.run_id, fb.run_id) == (base, f"{base}-2")  # B's home had no `base` dir, the uid had
    assert (fa.display_path, fb.display_path) == (f"{ha}/runs/{base}", f"{hb}/runs/{base}-2")
    for f in (fa, fb):
        write_seal(state, RunMeta(run_id=f.run_id, uid=uid, run_dir=f.display_path))
        f.rundir.close()
        os.close(f.chain.fd)
    # a sealed id is taken too, in any home
    fc = open_run_files(str(hb), uid, gid, "agent", T0, state)
    assert fc.run_id == f"{base}-3"
    fc.rundir.close()

    seals = list_seals(state, uid)
    assert [s.run_id for s in seals_of_home(ha, seals)] == [base]
    assert [s.run_id for s in seals_of_home(hb, seals)] == [f"{base}-2"]
    assert verify_missing_runs(ha, seals) == []
    legacy = RunMeta(run_id="20200101-000000-old", uid=uid)  # sealed before seals had run_dir
    write_seal(state, legacy)
    seals = list_seals(state, uid)
    assert [s.run_id for s in seals_of_home(ha, seals, legacy=False)] == [base]
    assert "20200101-000000-old" in [s.run_id for s in seals_of_home(ha, seals, legacy=True)]
