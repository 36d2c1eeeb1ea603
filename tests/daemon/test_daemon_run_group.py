"""run_group: only root and members of a group may use the daemon (socket 0660 root:group, and the
peer's groups are checked by the daemon too). Real daemon, real users, real group membership."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import EXEC_ONLY, running_daemon

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from e2e_support import logira_for

pytestmark = pytest.mark.bpf


@pytest.fixture
def run_group(test_user) -> Iterator[tuple[str, int]]:
    """A fresh group with test_user (only) as a member."""
    name = "lgg" + secrets.token_hex(3)
    subprocess.run(["groupadd", name], check=True)
    subprocess.run(["usermod", "-aG", name, test_user.name], check=True)
    import grp

    try:
        yield name, grp.getgrnam(name).gr_gid
    finally:
        subprocess.run(["gpasswd", "-d", test_user.name, name], check=False, capture_output=True)
        subprocess.run(["groupdel", name], check=False)


def test_run_group_limits_who_may_record(require_bpf, run_group, test_user, other_user):
    name, gid = run_group
    with running_daemon(probes=EXEC_ONLY, extra_args=["--run-group", name]) as daemon:
        st = os.stat(daemon.sock)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, gid, 0o660)
        member_gen, outsider_gen = logira_for(test_user, daemon), logira_for(other_user, daemon)
        member, outsider = next(member_gen), next(outsider_gen)  # generators kept: they own the dirs
        res = member("run", "--no-file", "--no-net", "--", "sh", "-c", "echo in > member-ran")
        assert res.returncode == 0, res.stderr
        assert (member.workspace / "member-ran").exists()

        res = outsider("run", "--no-file", "--no-net", "--", "sh", "-c", "echo in > outsider-ran")
        assert res.returncode != 0
        err = res.stderr.decode()
        assert err.count("\n") == 1 and f"logirad only serves members of group {name}" in err, err
        assert f"usermod -aG {name}" in err
        assert not (outsider.workspace / "outsider-ran").exists()  # never started unrecorded

        # defence in depth: even through a socket an admin chmod'ed back to 0666, a non-member is refused
        os.chmod(daemon.sock, 0o666)
        res = outsider("run", "--no-file", "--no-net", "--", "sh", "-c", "echo in > outsider-ran")
        assert res.returncode != 0
        err = res.stderr.decode()
        assert f"uid {other_user.uid} is not in group {name}" in err, err
        assert not (outsider.workspace / "outsider-ran").exists()
        assert not outsider.run_dirs()
        res = member("status")  # members (and the run) are unaffected
        assert b"Daemon:       running" in res.stdout, res.stdout + res.stderr
        member_gen.close()
        outsider_gen.close()


def test_an_unknown_run_group_is_one_line_at_start(require_bpf, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "logira.daemon.main", "--run-group", "no-such-group-lg", "--sock", str(tmp_path / "s")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == (
        "logirad: error: run_group 'no-such-group-lg' does not exist: create it (groupadd --system "
        "no-such-group-lg) and add the users who may run agents (usermod -aG no-such-group-lg USER)\n"
    )
