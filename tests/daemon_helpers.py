"""Start and stop a REAL logirad subprocess for tests, plus a tiny blocking protocol client.

Each DaemonHandle gets its own socket, state dir and cgroup parent
(`<cg2>/logira-test-<random>`), so tests and teammates never collide, and never touches
/run/logira.sock or the plain `logira` cgroup parent.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from logira import cgroup2
from logira.daemon import protocol as p

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
EXEC_ONLY = ("exec",)  # loads in ~0.2 s; the file object takes seconds to verify


class DaemonStartError(Exception):
    pass


class Client:
    """A blocking protocol client that can also send raw bytes (for malformed-frame tests)."""

    def __init__(self, sock_path: str, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.settimeout(timeout)
        self.sock.connect(sock_path)

    def send(self, msg: p.Msg) -> None:
        p.send_msg(self.sock, msg)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, timeout: float | None = 10.0) -> p.DaemonMsg:
        self.sock.settimeout(timeout)
        return p.recv_msg(self.sock)

    def request(self, msg: p.Msg, timeout: float = 10.0) -> p.DaemonMsg:
        self.send(msg)
        return self.recv(timeout)

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DaemonHandle:
    """A running logirad with private socket/state dir/cgroup parent."""

    def __init__(
        self,
        *,
        extra_args: list[str] | None = None,
        journald: str = "off",
        probes: tuple[str, ...] = ("exec", "file", "net"),
        base: Path | None = None,
        cgroup_parent: str | None = None,
        env: dict[str, str] | None = None,
        config_text: str = "",
        command: list[str] | None = None,
        cwd: Path | None = None,
    ):
        self.base = base or Path(tempfile.mkdtemp(prefix="lgd-", dir="/tmp"))
        os.chmod(self.base, 0o755)  # test users must reach the socket
        self.sock = str(self.base / "logirad.sock")
        self.state_dir = self.base / "state"
        self.cgroup_parent = cgroup_parent or f"logira-test-{secrets.token_hex(4)}"
        self.config = self.base / "logirad.toml"
        if config_text or not self.config.exists():
            self.config.write_text(config_text or "# empty: tests pass everything as flags\n")
        self.log_path = self.base / "logirad.log"
        self.args = [
            "--config",
            str(self.config),
            "--sock",
            self.sock,
            "--state-dir",
            str(self.state_dir),
            "--cgroup-parent",
            self.cgroup_parent,
            "--journald",
            journald,
            "--straggler-wait",
            "1",
            *[f"--no-{d}" for d in ("exec", "file", "net") if d not in probes],
            *(extra_args or []),
        ]
        self.env = {**os.environ, "LOGIRA_STATE_DIR": str(self.state_dir), **(env or {})}
        self.env.pop("LOGIRA_SOCK", None)
        self.proc: subprocess.Popen[bytes] | None = None
        # another logirad than this tree's (an installed one); cwd then stays out of the repo so that
        # `python -m` cannot pick up the tree's package instead of the installed one
        self.command = command or [PY, "-m", "logira.daemon.main"]
        self.cwd = cwd or REPO

    @property
    def cgroup_parent_path(self) -> Path:
        return cgroup2.find_cgroup2_mount() / self.cgroup_parent

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for readiness."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [*self.command, *self.args],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        return self.proc

    def start(self, timeout: float = 60.0) -> DaemonHandle:
        """Spawn and wait until `status` answers; raises DaemonStartError with the daemon's log."""
        proc = self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log = self.log_text()[-2000:]
                self.cleanup()
                raise DaemonStartError(f"logirad exited {proc.returncode}: {log}")
            with contextlib.suppress(OSError, p.FrameError, EOFError), Client(self.sock, 2) as c:
                if isinstance(c.request(p.Status()), p.StatusReply):
                    return self
            time.sleep(0.05)
        self.kill()
        log = self.log_text()[-2000:]
        self.cleanup()
        raise DaemonStartError(f"logirad not ready after {timeout}s: {log}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def client(self) -> Client:
        return Client(self.sock)

    def status(self) -> p.StatusReply:
        with self.client() as c:
            reply = c.request(p.Status())
        assert isinstance(reply, p.StatusReply), reply
        return reply

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL (simulates a crash) and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self) -> None:
        """Stop the daemon, kill what is left in its cgroups, remove them and the temp dir."""
        self.stop()
        parent = self.cgroup_parent_path
        if parent.is_dir():
            for child in sorted(parent.iterdir()):
                if child.is_dir():
                    cgroup2.kill_all(child)
                    cgroup2.remove(child)
            cgroup2.remove(parent)
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def running_daemon(**kw: object) -> Iterator[DaemonHandle]:
    """A started DaemonHandle(**kw), always cleaned up: the body of every daemon fixture."""
    handle = DaemonHandle(**kw)  # type: ignore[arg-type]
    try:
        handle.start()
        yield handle
    finally:
        handle.cleanup()


@contextlib.contextmanager
def private_home(uid: int = 0, gid: int = 0) -> Iterator[Path]:
    """make_home(), removed (with its temp dir) afterwards."""
    home = make_home(uid, gid)
    try:
        yield home
    finally:
        shutil.rmtree(home.parent, ignore_errors=True)


def make_home(uid: int = 0, gid: int = 0) -> Path:
    """A private $LOGIRA_HOME (with runs/) owned by uid, in a temp dir reachable by that uid."""
    base = Path(tempfile.mkdtemp(prefix="lgh-", dir="/tmp"))
    os.chmod(base, 0o755)
    home = base / "logira"
    (home / "runs").mkdir(parents=True, mode=0o700)
    for d in (home, home / "runs"):
        os.chown(d, uid, gid)
        os.chmod(d, 0o700)
    return home


class HeldChild:
    """A child of this process blocked before exec; release() lets it exec `argv`."""

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        user_cmd: list[str] | None = None,
    ):
        # `read` blocks on the pipe; after release the shell execs argv in place (same pid).
        prefix = user_cmd or []
        self.proc = subprocess.Popen(
            [*prefix, "/bin/sh", "-c", 'read _x; exec "$@"', "held", *argv],
            stdin=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
        self.pid = self.proc.pid

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(5)


def start_run(client: Client, child: HeldChild, home: Path, argv: list[str], **kw: object) -> p.RunStarted:
    """Send start_run for a held child (exec probes only unless asked: the daemon tests load only exec)."""
    fields: dict[str, object] = {
        "tool": "test",
        "argv": argv,
        "cwd": "/",
        "pid": child.pid,
        "home": str(home),
        "file": False,
        "net": False,
    }
    fields.update(kw)
    reply = client.request(p.StartRun(**fields))  # type: ignore[arg-type]
    assert isinstance(reply, p.RunStarted), reply
    return reply


def finish_run(client: Client, child: HeldChild, timeout: float = 20) -> p.DaemonMsg:
    """Let a started held child run to its end, report its exit, and return the daemon's answer
    (a RunFinished once the run is finalized; the caller asserts on it)."""
    child.release()
    client.send(p.AgentExited(exit_code=child.wait()))
    return client.recv(timeout)
