"""`logira doctor` against a real logirad, as an unprivileged user: the canary (exec, file create,
connect) is really recorded by the daemon's probes and recognised; failures name their fix."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

pytestmark = pytest.mark.bpf


def _checks(res: subprocess.CompletedProcess) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(res.stdout)["checks"]}


def test_doctor_passes_with_a_real_canary(logira, daemon):
    seals = daemon.state_dir / "seals"

    def seal_files() -> set[str]:  # the daemon is shared: other tests' runs have seals too
        return {str(p) for p in seals.rglob("*")} if seals.exists() else set()

    before = {c.name for c in daemon.cgroup_parent_path.iterdir() if c.is_dir()}
    sealed_before = seal_files()
    res = logira("doctor", "--json")
    checks = _checks(res)
    for name in (
        "kernel",
        "btf",
        "cgroup2",
        "daemon",
        "version",
        "socket",
        "bpf exec",
        "bpf file",
        "bpf net",
    ):
        assert checks[name]["status"] == "ok", checks[name]
    assert "recorded and recognised" in checks["bpf file"]["detail"]
    assert "any local user may start runs" in checks["socket"]["detail"]
    failed = [c for c in checks.values() if c["status"] == "fail"]
    assert res.returncode == (1 if failed else 0), failed
    # nothing is left behind: no run, no seal, no cgroup
    assert not logira.run_dirs()
    assert seal_files() == sealed_before
    assert {c.name for c in daemon.cgroup_parent_path.iterdir() if c.is_dir()} == before
    text = logira("doctor")
    assert b"ok    bpf net     canary connect to 127.0.0.1 recorded and recognised" in text.stdout, (
        text.stdout
    )


def test_doctor_names_the_fix_and_exits_1(logira, daemon):
    os.makedirs(logira.home / "runs", exist_ok=True)
    for d in (logira.home, logira.home / "runs"):
        os.chown(d, logira.user.uid, logira.user.gid)
    os.chmod(logira.home, 0o770)  # group-writable: the daemon would refuse to write runs there
    res = subprocess.run(
        logira.argv("doctor"),
        env={**logira.env(), "LOGIRA_SOCK": str(logira.workspace / "no-daemon.sock")},
        cwd=logira.workspace, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 1
    out = res.stdout.decode()
    assert "FAIL  daemon      logirad is not running" in out, out
    assert "fix: start it as root: sudo logirad &" in out
    assert f"FAIL  run home    {logira.home} is group/other-writable" in out
    assert f"fix: chmod go-w {logira.home}" in out
    assert "skip  bpf exec    logirad is not running" in out
    assert out.rstrip().endswith("check(s) failed")


def test_doctor_as_root_without_a_daemon_loads_the_probes_itself(require_bpf, tmp_path):
    from daemon_helpers import PY

    from logira.cgroup2 import find_cgroup2_mount

    env = {
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(tmp_path),
        "LOGIRA_SOCK": str(tmp_path / "none.sock"),
    }
    res = subprocess.run(
        [PY, "-m", "logira.cli.main", "doctor", "--json"],
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    checks = _checks(res)
    assert res.returncode == 1 and checks["daemon"]["status"] == "fail"  # no daemon is still a failure
    for name in ("bpf exec", "bpf file", "bpf net"):
        assert checks[name]["status"] == "ok", checks[name]
        assert checks[name]["detail"].endswith("(probes loaded by doctor: no daemon)")
    assert not [c for c in find_cgroup2_mount().iterdir() if c.name.startswith("logira-doctor-")]
