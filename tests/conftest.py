"""Shared fixtures.

Real-BPF tests use the `bpf` marker and the `require_bpf` fixture. They skip with a
clear reason when the machine cannot load BPF; with LOGIRA_REQUIRE_BPF=1 (set by
.ci/run and `make test`) a skip becomes a failure, so CI cannot go green without them.
"""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _bpf_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to load BPF"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "kernel has no BTF (/sys/kernel/btf/vmlinux)"
    objdir = REPO / "logira" / "bpf"
    if not list(objdir.glob("*.bpf.o")):
        return f"BPF objects not built under {objdir} (run `make bpf`)"
    return None


@pytest.fixture(scope="session")
def require_bpf() -> None:
    reason = _bpf_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("LOGIRA_REQUIRE_BPF") == "1":
        pytest.fail(f"real-BPF tests are mandatory here but cannot run: {reason}")
    pytest.skip(reason)


class TestUser:
    def __init__(self, name: str):
        pw = pwd.getpwnam(name)
        self.name = name
        self.uid = pw.pw_uid
        self.gid = pw.pw_gid
        self.home = Path(pw.pw_dir)

    def cmd(self, *argv: str) -> list[str]:
        """argv prefixed so it runs as this user (setpriv keeps the environment as given)."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--", *argv]

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
        }
        env.update(extra)
        return env


def _make_user() -> TestUser:
    name = "lgt" + secrets.token_hex(4)
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
    return TestUser(name)


def _drop_user(user: TestUser) -> None:
    subprocess.run(["pkill", "-KILL", "-u", user.name], check=False)
    subprocess.run(["userdel", "--remove", "--force", user.name], check=False, capture_output=True)


@pytest.fixture(scope="session")
def test_user() -> Iterator[TestUser]:
    """A throwaway unprivileged user (the 'agent' user) for the whole session."""
    if os.geteuid() != 0:
        pytest.skip("creating a throwaway user needs root")
    user = _make_user()
    yield user
    _drop_user(user)


@pytest.fixture
def fresh_user() -> Iterator[TestUser]:
    """A throwaway user for ONE test: its home (the passwd entry, which rules' $HOME means) is new."""
    if os.geteuid() != 0:
        pytest.skip("creating a throwaway user needs root")
    user = _make_user()
    yield user
    _drop_user(user)


@pytest.fixture(scope="session")
def other_user() -> Iterator[TestUser]:
    """A second throwaway user, for isolation tests."""
    if os.geteuid() != 0:
        pytest.skip("creating a throwaway user needs root")
    user = _make_user()
    yield user
    _drop_user(user)


@pytest.fixture
def logirad(require_bpf: None) -> Iterator[object]:
    """A REAL logirad subprocess on a private socket/state dir/cgroup parent (tests/daemon_helpers.py).

    Loads all probe domains (including file); yields a DaemonHandle (.sock, .state_dir,
    .cgroup_parent, .proc, .stop(), .kill()); stops it and removes its cgroups afterwards.
    """
    from daemon_helpers import running_daemon  # tests/ is on sys.path (conftest dir)

    with running_daemon() as handle:
        yield handle


@pytest.fixture(scope="session")
def daemon(require_bpf: None) -> Iterator[object]:
    """One real logirad for all end-to-end tests (tests/e2e, tests/agents): BPF load takes seconds.

    Private socket/state dir/cgroup parent, like `logirad`, but shared by the whole session."""
    from daemon_helpers import running_daemon

    with running_daemon() as handle:
        yield handle
