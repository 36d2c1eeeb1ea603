"""`logira run` / `logira status` against a stand-in daemon speaking the real protocol.

No BPF here: these pin the client's side of the contract (the agent is held until
`run_started`, never runs when the daemon is absent or refuses, exit status and summary
line), so they run on any machine. The real-daemon tests are in the other files.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from e2e_support import PY

from logira.daemon import protocol


class FakeDaemon:
    """Answers one start_run on a real unix socket, as scripted by the test."""

    def __init__(self, path: Path, refuse: str = ""):
        self.path = path
        self.refuse = refuse
        self.start: protocol.StartRun | None = None
        self.held_cmdline = b""  # /proc/<pid>/cmdline of the held child when start_run arrived
        self.marker_existed_at_start: bool | None = None
        self.marker: Path | None = None
        self.exited: protocol.AgentExited | None = None
        self.error: Exception | None = None
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(str(path))
        self.srv.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self._serve_one()
        except (OSError, EOFError, protocol.FrameError) as exc:  # client went away / socket closed
            self.error = exc

    def _serve_one(self) -> None:
        conn, _ = self.srv.accept()
        with conn:
            msg = protocol.decode_client(protocol.recv_body(conn))
            assert isinstance(msg, protocol.StartRun)
            self.start = msg
            self.held_cmdline = Path(f"/proc/{msg.pid}/cmdline").read_bytes()
            if self.marker is not None:
                self.marker_existed_at_start = self.marker.exists()
            if self.refuse:
                protocol.send_msg(conn, protocol.Error(message=self.refuse))
                return
            protocol.send_msg(
                conn, protocol.RunStarted(run_id="20260101-000000-fake", run_dir="/nonexistent/run")
            )
            msg = protocol.decode_client(protocol.recv_body(conn))
            assert isinstance(msg, protocol.AgentExited)
            self.exited = msg
            protocol.send_msg(
                conn,
                protocol.RunFinished(
                    run_id="20260101-000000-fake",
                    run_dir="/nonexistent/run",
                    events=12,
                    detections=0,
                    dropped=3,
                    complete=False,
                ),
            )

    def close(self) -> None:
        self.srv.close()


def _logira(
    tmp_path: Path, sock: Path, *args: str, input: bytes | None = None
) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LOGIRA_HOME": str(tmp_path / "lh"),
        "LOGIRA_SOCK": str(sock),
        "LANG": "C.UTF-8",
    }
    return subprocess.run(
        [PY, "-m", "logira.cli.main", *args],
        env=env,
        cwd=tmp_path,
        input=input,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_daemon_absent_command_never_runs(tmp_path):
    marker = tmp_path / "ran"
    res = _logira(tmp_path, tmp_path / "no.sock", "run", "--", "touch", str(marker))
    assert res.returncode == 1
    assert not marker.exists(), "the command ran without a daemon recording it"
    err = res.stderr.decode()
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        f"error: logirad is not running (no socket at {tmp_path / 'no.sock'}); start it as root"
    )


def test_daemon_refuses_command_never_runs(tmp_path):
    sock = tmp_path / "d.sock"
    fake = FakeDaemon(sock, refuse="too many active runs for uid 1000 (limit 8)")
    marker = tmp_path / "ran"
    fake.marker = marker
    try:
        res = _logira(tmp_path, sock, "run", "--tool", "t1", "--", "touch", str(marker))
    finally:
        fake.close()
    assert res.returncode == 1
    assert not marker.exists(), "the command ran although the daemon refused the run"
    assert fake.start is not None and b"logira.cli.main" in fake.held_cmdline, (
        "the agent was not held at start_run"
    )
    assert fake.marker_existed_at_start is False
    with pytest.raises(ProcessLookupError):  # the held child was killed and reaped
        os.kill(fake.start.pid, 0)
    assert res.stderr.decode() == (
        "error: logirad: too many active runs for uid 1000 (limit 8); the command was not run\n"
    )


def test_held_until_started_then_status_and_summary(tmp_path):
    sock = tmp_path / "d.sock"
    fake = FakeDaemon(sock)
    marker = tmp_path / "ran"
    fake.marker = marker
    try:
        res = _logira(tmp_path, sock, "run", "--no-net", "--", "sh", "-c", f"touch {marker}; exit 7")
    finally:
        fake.close()
    start = fake.start
    assert start is not None
    assert start.argv == ["sh", "-c", f"touch {marker}; exit 7"]
    assert start.tool == "sh" and start.cwd == str(tmp_path) and start.home == str(tmp_path / "lh")
    assert (start.exec, start.file, start.net) == (True, True, False)
    # At start_run the child is still logira (not yet exec'd) and the command has not run.
    assert b"logira.cli.main" in fake.held_cmdline and fake.marker_existed_at_start is False
    assert marker.exists()
    assert res.returncode == 7
    assert fake.exited is not None and (fake.exited.exit_code, fake.exited.signal) == (7, 0)
    assert res.stderr.decode() == (
        "logira: run 20260101-000000-fake  dir=/nonexistent/run  events=12  detections=0  INCOMPLETE (3 dropped)\n"
    )


def test_signal_exit_status_and_not_found(tmp_path):
    sock = tmp_path / "d.sock"
    fake = FakeDaemon(sock)
    try:
        res = _logira(tmp_path, sock, "run", "--", "sh", "-c", "kill -KILL $$")
    finally:
        fake.close()
    assert res.returncode == 128 + 9
    assert fake.exited is not None and (fake.exited.exit_code, fake.exited.signal) == (0, 9)

    fake = FakeDaemon(sock2 := tmp_path / "d2.sock")
    try:
        res = _logira(tmp_path, sock2, "run", "--", "no-such-command-xyz", "a")
    finally:
        fake.close()
    assert res.returncode == 127
    assert res.stderr.decode().splitlines()[0] == "logira: no-such-command-xyz: command not found"
    assert fake.exited is not None and fake.exited.exit_code == 127


def test_stdin_passes_through(tmp_path):
    fake = FakeDaemon(sock := tmp_path / "d.sock")
    try:
        res = _logira(tmp_path, sock, "run", "--", "cat", input=b"hi\n")
    finally:
        fake.close()
    assert res.returncode == 0 and res.stdout == b"hi\n"


def test_run_without_command_is_usage_error(tmp_path):
    res = _logira(tmp_path, tmp_path / "no.sock", "run", "--")
    assert res.returncode == 2
    assert res.stderr.decode() == "error: no command given; usage: logira run [flags] -- <command...>\n"


def test_status_daemon_down_says_why(tmp_path):
    res = _logira(tmp_path, tmp_path / "no.sock", "status")
    assert res.returncode == 1
    out = res.stdout.decode()
    assert re.search(r"^Daemon:\s+not running$", out, re.M)
    assert re.search(r"^Ready:\s+NO$", out, re.M)
    assert f"  - logirad is not running (no socket at {tmp_path / 'no.sock'})" in out
    res = _logira(tmp_path, tmp_path / "no.sock", "status", "--json")
    assert res.returncode == 1
    import json

    doc = json.loads(res.stdout)
    assert doc["ready"] is False and doc["daemon"] is None and doc["daemon_running"] is False
    assert doc["local"]["kernel_release"] == os.uname().release


def test_sigterm_to_logira_is_forwarded_to_agent(tmp_path):
    fake = FakeDaemon(sock := tmp_path / "d.sock")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LOGIRA_HOME": str(tmp_path / "lh"),
        "LOGIRA_SOCK": str(sock),
    }
    agent = 'trap "echo got-term; exit 9" TERM; echo ready; while :; do sleep 0.05; done'
    proc = subprocess.Popen(
        [PY, "-m", "logira.cli.main", "run", "--", "sh", "-c", agent],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        fake.close()
    assert out == b"got-term\n"
    assert proc.returncode == 9  # the agent handled it; logira exits with the agent's status
    assert fake.exited is not None and fake.exited.exit_code == 9


def test_invalid_rules_refused_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    severity: apocalyptic\n")
    marker = tmp_path / "ran"
    fake = FakeDaemon(sock := tmp_path / "d.sock")
    try:
        res = _logira(tmp_path, sock, "run", "--rules", str(bad), "--", "touch", str(marker))
    finally:
        fake.close()
    assert res.returncode == 1 and not marker.exists()
    assert fake.start is None, "the client contacted the daemon with invalid rules"
    err = res.stderr.decode()
    assert err.startswith(f"error: invalid --rules file: {bad}:") and err.count("\n") == 1, err
    res = _logira(tmp_path, sock, "run", "--rules", str(tmp_path / "missing.yaml"), "--", "true")
    assert res.returncode == 1
    assert (
        res.stderr.decode()
        == f"error: cannot read --rules file {tmp_path / 'missing.yaml'}: No such file or directory\n"
    )


def test_stale_and_forbidden_sockets_named_with_fix(tmp_path, test_user):
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))  # bound, never listening: what a crashed daemon leaves behind
    s.close()
    res = _logira(tmp_path, stale, "run", "--", "true")
    assert res.returncode == 1
    assert res.stderr.decode().startswith(
        f"error: logirad is not running (stale socket at {stale}, connection refused)"
    )

    base = test_user.home / f"sock-{os.getpid()}"
    base.mkdir()
    try:
        fake = FakeDaemon(sock := base / "root-only.sock")
        os.chmod(sock, 0o600)  # root's socket, not 0666
        env = test_user.env(LOGIRA_SOCK=str(sock), LOGIRA_HOME=str(base / "lh"))
        res = subprocess.run(
            test_user.cmd(PY, "-m", "logira.cli.main", "status"),
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        fake.close()
        assert res.returncode == 1
        assert (
            f"  - permission denied on the logirad socket {sock}; it must be mode 0666" in res.stdout.decode()
        )
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)
