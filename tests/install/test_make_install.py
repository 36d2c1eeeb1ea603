"""`make install` from a fresh clone into a private PREFIX, as a user would, then `make uninstall`.

A normal user with PATH=$PREFIX/bin:... records and reads a run with the installed binaries; an
upgrade while a run is active leaves the old daemon's venv in place, the restart seals that run as
interrupted (readable and intact with the new version); uninstall leaves no installed file behind and
keeps the runs and the state dir. Nothing outside the temp dir is written (PREFIX, SYSCONFDIR and the
unit dir are all under it; systemd is not PID 1 here, so the service path prints how to start logirad).
"""

from __future__ import annotations

import json
import os
import select
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import REPO, DaemonHandle

pytestmark = [pytest.mark.bpf, pytest.mark.slow]


class Installed:
    def __init__(self, base: Path):
        self.base = base
        self.clone = base / "src"
        self.prefix = base / "prefix"
        self.etc = base / "etc"

    def make(self, *targets: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "-s", "-C", str(self.clone), *targets, f"PREFIX={self.prefix}", f"SYSCONFDIR={self.etc}"],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip

    def daemon(self, handle_base: Path, cgroup_parent: str | None = None) -> DaemonHandle:
        return DaemonHandle(
            command=[str(self.prefix / "bin" / "logirad")],
            cwd=Path("/"),
            base=handle_base,
            cgroup_parent=cgroup_parent,
            env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
        )

    def installed_files(self) -> list[str]:
        out = []
        for root in (self.prefix, self.etc):
            for dirpath, _dirs, files in os.walk(root):
                out += [os.path.join(dirpath, f) for f in files]
        return sorted(out)


@pytest.fixture
def installed(require_bpf) -> Iterator[Installed]:
    base = Path(tempfile.mkdtemp(prefix="lgmi-", dir="/tmp"))
    os.chmod(base, 0o755)
    inst = Installed(base)
    subprocess.run(["git", "clone", "-q", str(REPO), str(inst.clone)], check=True)
    try:
        yield inst
    finally:
        inst.make("uninstall")  # no-op when the test got there itself
        shutil.rmtree(base, ignore_errors=True)


def _as_user(user, inst: Installed, daemon: DaemonHandle, home: Path, *args: str, **kw):
    env = user.env(
        PATH=f"{inst.prefix / 'bin'}:/usr/bin:/bin", LOGIRA_SOCK=daemon.sock, LOGIRA_HOME=str(home),
        LOGIRA_STATE_DIR=str(daemon.state_dir),
    )  # fmt: skip
    return user.cmd("logira", *args), env


def test_make_install_record_upgrade_uninstall(installed, test_user):
    inst = installed
    res = inst.make("install")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "systemd is not PID 1 here" in res.stdout and f"sudo {inst.prefix}/bin/logirad &" in res.stdout
    for rel in (
        "bin/logira", "bin/logirad", "share/man/man1/logira.1", "share/man/man1/logira-run.1",
        "share/man/man8/logirad.8", "share/bash-completion/completions/logira",
        "share/zsh/site-functions/_logira", "share/doc/logira/daemon.md", "share/logira/rules/10-credentials.yaml",
        "lib/systemd/system/logirad.service",
    ):  # fmt: skip
        assert (inst.prefix / rel).exists(), rel
    unit = (inst.prefix / "lib/systemd/system/logirad.service").read_text()
    assert f"ExecStart={inst.prefix}/bin/logirad\n" in unit
    assert (inst.etc / "logira" / "logirad.toml").read_bytes() == (REPO / "config" / "logirad.toml").read_bytes()
    man = subprocess.run(["man", "-l", str(inst.prefix / "share/man/man1/logira-run.1")],
                         capture_output=True, text=True, env={"MANPAGER": "cat", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert man.returncode == 0 and "--tool" in man.stdout, man.stderr
    (old_venv,) = (inst.prefix / "lib" / "logira").glob("venv-*")

    dbase = inst.base / "daemon"
    dbase.mkdir()
    os.chmod(dbase, 0o755)
    daemon = inst.daemon(dbase).start()
    home = test_user.home / f"lmi-{os.getpid()}"
    ws = test_user.home / f"wsmi-{os.getpid()}"
    ws.mkdir()
    os.chown(ws, test_user.uid, test_user.gid)
    restarted = None
    active = None
    try:
        argv, env = _as_user(test_user, inst, daemon, home, "run", "--", "sh", "-c", "echo x > installed-out")
        done = subprocess.run(argv, env=env, cwd=ws, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 and "INCOMPLETE" not in done.stderr, done.stderr
        argv, env = _as_user(test_user, inst, daemon, home, "query", "last", "--type", "file", "--json")
        done = subprocess.run(argv, env=env, cwd=ws, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 and str(ws / "installed-out") in done.stdout, done.stderr
        (first_run,) = (home / "runs").iterdir()

        # agent hooks name the install through `current`, so they keep working across the upgrade below
        argv, env = _as_user(test_user, inst, daemon, home, "agent", "hooks", "install", "claude", "--project")
        done = subprocess.run(argv, env=env, cwd=ws, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        settings = json.loads((ws / ".claude" / "settings.json").read_text())
        (hook_cmd,) = {h["command"] for gs in settings["hooks"].values() for g in gs for h in g["hooks"]}
        assert f"{inst.prefix}/lib/logira/current/" in hook_cmd and " -I -S " in hook_cmd, hook_cmd

        # an upgrade while a run is active: the running daemon keeps its venv
        argv, env = _as_user(test_user, inst, daemon, home, "run", "--tool", "long", "--", "sh", "-c",
                             "echo started; sleep 900")  # fmt: skip  (outlives a slow upgrade)
        active = subprocess.Popen(argv, env=env, cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert select.select([active.stdout], [], [], 30)[0] and active.stdout.readline() == b"started\n"
        with open(inst.clone / "logira" / "__init__.py", "a") as f:
            f.write("# a newer build\n")
        subprocess.run(["git", "-C", str(inst.clone), "commit", "-qam", "newer", "--author", "t <t@t>"],
                       check=True, env={**os.environ, "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})  # fmt: skip
        res = inst.make("install")
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"kept {old_venv}: still used by pid {daemon.proc.pid}" in res.stdout, res.stdout
        assert old_venv.is_dir()
        new_venvs = sorted(v for v in (inst.prefix / "lib" / "logira").glob("venv-*") if v != old_venv)
        assert len(new_venvs) == 1 and os.readlink(inst.prefix / "lib/logira/current") == new_venvs[0].name

        # restart onto the new version: the active run is sealed as interrupted, never lost
        assert daemon.stop() == 0
        active.communicate(timeout=30)
        restarted = inst.daemon(dbase, daemon.cgroup_parent).start()
        assert restarted.status().pid != daemon.proc.pid
        long_run = next(d for d in (home / "runs").iterdir() if d != first_run)
        meta = json.loads((long_run / "meta.json").read_text())
        assert meta.get("exit_signal") or meta["status"] != "complete", "the run ended before the restart"
        assert meta["status"] == "interrupted" and meta["complete"] is False, meta["status"]
        assert long_run.stat().st_uid == test_user.uid
        argv, env = _as_user(test_user, inst, restarted, home, "verify", long_run.name)
        done = subprocess.run(argv, env=env, cwd=ws, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 and done.stdout.startswith(f"{long_run.name}: intact ("), done.stdout + done.stderr
        argv, env = _as_user(test_user, inst, restarted, home, "view", long_run.name)
        done = subprocess.run(argv, env=env, cwd=ws, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 and long_run.name in done.stdout, done.stderr

        # the hook installed before the upgrade runs from the new venv and is recorded
        payload = json.dumps({"session_id": "s-inst", "hook_event_name": "PreToolUse", "tool_name": "Bash",
                              "tool_use_id": "toolu_inst", "tool_input": {"command": "true"}})  # fmt: skip
        argv, env = _as_user(test_user, inst, restarted, home, "run", "--tool", "hooked", "--", "sh", "-c",
                             f"echo {shlex.quote(payload)} | {hook_cmd}")  # fmt: skip
        done = subprocess.run(argv, env=env, cwd=ws, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 and not done.stdout, done.stdout + done.stderr
        argv, env = _as_user(test_user, inst, restarted, home, "query", "last", "--type", "agent", "--json")
        done = subprocess.run(argv, env=env, cwd=ws, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 and "toolu_inst" in done.stdout, done.stdout + done.stderr
        hooked_run = next(d for d in (home / "runs").iterdir() if d not in (first_run, long_run))

        # uninstall stops the daemon that runs from the install, removes every installed file
        res = inst.make("uninstall")
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"stopping logirad (pid {restarted.proc.pid})" in res.stdout, res.stdout
        assert restarted.proc.wait(30) == 0
        assert inst.installed_files() == []
        assert not inst.prefix.exists() or not any(inst.prefix.iterdir())
        assert sorted(p.name for p in (home / "runs").iterdir()) == sorted([first_run.name, long_run.name, hooked_run.name])
        assert (daemon.state_dir / "seals").is_dir()  # the state dir is kept without PURGE=1
    finally:
        if active is not None and active.poll() is None:
            active.kill()
            active.wait()
        for h in (restarted, daemon):
            if h is not None:
                h.stop()
        daemon.cleanup()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(ws, ignore_errors=True)


def test_config_edits_survive_and_purge_removes_state(installed, tmp_path):
    """DESTDIR staging (packagers), an edited config kept over an upgrade, PURGE=1 removes /etc + state."""
    inst = installed
    dest = inst.base / "stage"
    run = lambda *t: subprocess.run(  # noqa: E731
        ["make", "-s", "-C", str(inst.clone), *t, "PREFIX=/usr", f"DESTDIR={dest}"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    res = run("install")
    assert res.returncode == 0, res.stderr
    assert "staged 0.2.0 under DESTDIR" in res.stdout
    venv = next((dest / "usr/lib/logira").glob("venv-*"))
    shebang = (venv / "bin" / "logirad").read_text().splitlines()[0]
    assert shebang == f"#!/usr/lib/logira/{venv.name}/bin/python", shebang  # the final path, not the stage
    config = dest / "etc/logira/logirad.toml"
    edited = config.read_text().replace('state_dir = "/var/lib/logira"', 'state_dir = "/var/lib/logira-purge-test"')
    assert edited != config.read_text()
    config.write_text(edited)
    res = run("install")
    assert res.returncode == 0 and "kept your edited /etc/logira/logirad.toml" in res.stdout, res.stdout
    assert "logira-purge-test" in config.read_text()
    state = dest / "var/lib/logira-purge-test"
    state.mkdir(parents=True)
    (state / "seals").mkdir()
    res = subprocess.run(
        ["make", "-s", "-C", str(inst.clone), "uninstall", "PREFIX=/usr", f"DESTDIR={dest}", "PURGE=1"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    left = [os.path.join(d, f) for d, _s, fs in os.walk(dest) for f in fs]
    assert left == [] and not state.exists() and not (dest / "etc/logira").exists(), left
