"""Ctrl-C on a real terminal: the agent gets SIGINT from the tty (logira ignores the first);
a second Ctrl-C kills the agent. Runs `logira run` as the session leader of a pty."""

from __future__ import annotations

import os
import pty
import select
import time

import pytest

pytestmark = pytest.mark.bpf

AGENT = r"""
import signal, sys, time
def on_int(sig, frame):
    open("got-sigint", "w").write("yes\n")
    sys.exit(42)
signal.signal(signal.SIGINT, on_int if sys.argv[1] == "handle" else signal.SIG_IGN)
print("agent-ready", flush=True)
time.sleep(30)
"""


def _run_in_pty(logira, mode: str, presses: int) -> tuple[int, bytes]:
    argv = logira.argv("run", "--tool", f"pty-{mode}", "--", "/usr/bin/python3", "-c", AGENT, mode)
    env = logira.env()
    pid, fd = pty.fork()  # child: new session, the pty slave is its controlling terminal
    if pid == 0:
        try:
            os.chdir(logira.workspace)
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(99)
    out = b""
    try:
        deadline = time.monotonic() + 30
        while b"agent-ready" not in out:
            assert time.monotonic() < deadline, f"agent never became ready: {out!r}"
            if select.select([fd], [], [], 0.5)[0]:
                out += os.read(fd, 4096)
        for _ in range(presses):
            os.write(fd, b"\x03")  # the tty sends SIGINT to the foreground process group
            time.sleep(0.5)
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, f"logira run did not exit: {out!r}"
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the slave side is closed
                    break
                if not chunk:
                    break
                out += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out


def test_ctrl_c_reaches_agent_handler(logira):
    status, out = _run_in_pty(logira, "handle", presses=1)
    assert status == 42, out  # the agent's own status, not logira's
    assert (logira.workspace / "got-sigint").read_text() == "yes\n"
    run = logira.only_run()
    assert run.meta["exit_code"] == 42 and run.meta["status"] == "complete"
    # What the handler did after the SIGINT is still recorded.
    assert ("create", str(logira.workspace / "got-sigint")) in [
        (r["data_json"]["op"], r["data_json"]["path"]) for r in run.files()
    ]
    assert b"logira: run " in out


def test_second_ctrl_c_kills_agent(logira):
    status, out = _run_in_pty(logira, "ignore", presses=2)
    assert status == 128 + 9, out
    run = logira.only_run()
    assert run.meta["exit_signal"] == 9
    assert not (logira.workspace / "got-sigint").exists()
