"""Malformed frames and foreign connections never disturb the daemon or a run in progress."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

import pytest
from daemon_helpers import EXEC_ONLY, DaemonHandle, HeldChild, start_run
from dtutil import execs, lines, wait_for

from logira.daemon import protocol as p

pytestmark = pytest.mark.bpf


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def _error(msg: p.DaemonMsg) -> str:
    assert isinstance(msg, p.Error), msg
    return msg.message


TICKS = 15
TICKER = f"i=0; while [ $i -lt {TICKS} ]; do /bin/true tick $i; i=$((i+1)); sleep 0.05; done"


def test_malformed_frames_get_errors_and_a_concurrent_run_is_unaffected(
    daemon: DaemonHandle, home: Path
) -> None:
    with daemon.client() as owner:
        child = HeldChild(["/bin/sh", "-c", TICKER])
        started = start_run(owner, child, home, ["ticker"])
        child.release()
        before = daemon.status().drops["bad_frames"]
        with daemon.client() as c:
            # well-framed garbage: error, and the same connection keeps working
            c.send_raw(_frame(b"{not json"))
            assert _error(c.recv()).startswith("bad message: ")
            c.send_raw(_frame(b'{"type":"stop_run","session_id":"x"}'))
            assert _error(c.recv()) == "bad message: Invalid value 'stop_run' - at `$.type`"
            c.send_raw(_frame(b'{"type":"start_run","tool":"x","argv":["a"],"cwd":"/","pid":"12"}'))
            assert _error(c.recv()) == "bad message: Expected `int`, got `str` - at `$.pid`"
            c.send_raw(_frame(b'{"type":"status","v":99}'))
            assert "unsupported protocol version 99" in _error(c.recv())
            c.send_raw(_frame(b"[]"))
            assert _error(c.recv()).startswith("bad message: ")
            assert isinstance(c.request(p.Status()), p.StatusReply)
        for head in (struct.pack(">I", p.MAX_FRAME + 1), b"\xff\xff\xff\xff"):
            with daemon.client() as c:
                c.send_raw(head + b"x" * 64)
                assert (
                    _error(c.recv()) == f"message too large ({struct.unpack('>I', head)[0]} > 1048576 bytes)"
                )
                assert c.closed_by_peer()
        with daemon.client() as c:  # truncated frame, then hang up
            c.send_raw(struct.pack(">I", 100) + b"{")
        rc = child.wait()
        owner.send(p.AgentExited(exit_code=rc))
        fin = owner.recv(20)
    assert isinstance(fin, p.RunFinished) and fin.complete, fin
    ticks = [a for a in execs(lines(home / "runs" / started.run_id)) if a[0] == "/bin/true"]
    assert ticks == [["/bin/true", "tick", str(i)] for i in range(TICKS)]
    assert daemon.status().drops["bad_frames"] - before == 7  # 4 undecodable, 2 oversized, 1 truncated


def test_start_run_refuses_a_pid_that_is_not_the_peers_child(daemon: DaemonHandle, home: Path) -> None:
    with daemon.client() as c:
        reply = c.request(
            p.StartRun(tool="t", argv=["x"], cwd="/", pid=os.getppid(), home=str(home), file=False, net=False)
        )
        assert (
            _error(reply)
            == f"pid {os.getppid()} is not a child of the connecting process (pid {os.getpid()})"
        )
        reply = c.request(
            p.StartRun(tool="t", argv=["x"], cwd="/", pid=4194303, home=str(home), file=False, net=False)
        )
        assert _error(reply) == "pid 4194303 does not exist"
    assert list((home / "runs").iterdir()) == []  # nothing was created


def test_start_run_refuses_a_child_running_as_another_uid(
    daemon: DaemonHandle, home: Path, test_user
) -> None:
    child = HeldChild(["/bin/true"], user_cmd=test_user.cmd())
    try:
        # setpriv switches uid before it execs the held shell; check only once it has
        wait_for(
            lambda: Path(f"/proc/{child.pid}/status").read_text().count(f"\t{test_user.uid}\t") >= 1,
            5,
            "child running as the test user",
        )
        with daemon.client() as c:
            reply = c.request(
                p.StartRun(
                    tool="t", argv=["x"], cwd="/", pid=child.pid, home=str(home), file=False, net=False
                )
            )
            assert _error(reply) == f"pid {child.pid} does not belong to uid 0"
    finally:
        child.kill()


def test_start_run_refuses_probes_the_daemon_does_not_have(daemon: DaemonHandle, home: Path) -> None:
    child = HeldChild(["/bin/true"])
    try:
        with daemon.client() as c:
            reply = c.request(
                p.StartRun(tool="t", argv=["x"], cwd="/", pid=child.pid, home=str(home), net=False)
            )
            assert _error(reply) == (
                "logirad runs without the file probes; pass --no-file or enable file in logirad.toml"
            )
    finally:
        child.kill()


def test_only_the_owning_connection_can_end_a_run(daemon: DaemonHandle, home: Path) -> None:
    with daemon.client() as owner:
        child = HeldChild(["/bin/sh", "-c", "/bin/sleep 0.6; /bin/true after-attempt"])
        started = start_run(owner, child, home, ["sh"])
        child.release()
        with daemon.client() as other:
            assert _error(other.request(p.AgentExited(exit_code=0))) == (
                "no active run was started on this connection"
            )
            assert (
                _error(
                    other.request(
                        p.StartRun(
                            tool="t",
                            argv=["x"],
                            cwd="/",
                            pid=child.pid,
                            home=str(home),
                            file=False,
                            net=False,
                        )
                    )
                )
                == f"pid {child.pid} is already in a run"
            )
        assert [r.run_id for r in daemon.status().runs] == [started.run_id]  # still recording
        # a second run on the owner's connection is refused too
        assert (
            _error(
                owner.request(
                    p.StartRun(
                        tool="t", argv=["x"], cwd="/", pid=child.pid, home=str(home), file=False, net=False
                    )
                )
            )
            == "this connection already has a run"
        )
        rc = child.wait()
        owner.send(p.AgentExited(exit_code=rc))
        fin = owner.recv(20)
    assert isinstance(fin, p.RunFinished) and fin.status == "complete"
    assert ["/bin/true", "after-attempt"] in execs(lines(home / "runs" / started.run_id))


def test_owner_disconnect_keeps_recording_until_the_tree_is_gone(daemon: DaemonHandle, home: Path) -> None:
    child = HeldChild(["/bin/sh", "-c", "/bin/sleep 0.5; /bin/true late; exit 4"])
    with daemon.client() as owner:
        started = start_run(owner, child, home, ["sh"])
        child.release()
    # the owner is gone; the run must go on until its last process exits, then finalize by itself
    run_dir = home / "runs" / started.run_id
    child.wait()
    wait_for(lambda: json.loads((run_dir / "meta.json").read_text())["status"] != "running", 10, "finalized")
    m = json.loads((run_dir / "meta.json").read_text())
    assert (m["status"], m["exit_code"]) == ("complete", 4)  # exit code observed by the kernel
    assert ["/bin/true", "late"] in execs(lines(run_dir))


def test_a_run_cannot_be_started_from_inside_a_run(daemon: DaemonHandle, home: Path, tmp_path: Path) -> None:
    script = Path(__file__).with_name("agent_client.py")
    out = tmp_path / "inner.out"
    # the audited process itself asks for a new run for its own child (to move it out of its cgroup)
    inner = f"{sys.executable} {script} {daemon.sock} -- /bin/true inner > {out}; /bin/true done"
    child = HeldChild(["/bin/sh", "-c", inner], env={**os.environ, "HOME": str(tmp_path)})
    with daemon.client() as owner:
        started = start_run(owner, child, home, ["sh"])
        child.release()
        owner.send(p.AgentExited(exit_code=child.wait(30)))
        assert isinstance(owner.recv(20), p.RunFinished)
    assert json.loads(out.read_text().splitlines()[0]) == {
        "type": "error",
        "v": 1,
        "message": "cannot start a run from inside a recorded run",
    }
    assert ["/bin/true", "done"] in execs(lines(home / "runs" / started.run_id))


def test_per_uid_limit(require_bpf: None, home: Path) -> None:
    d = DaemonHandle(probes=EXEC_ONLY, extra_args=["--max-runs-per-uid", "1"]).start()
    first, second = HeldChild(["/bin/true"]), HeldChild(["/bin/true"])
    try:
        with d.client() as a, d.client() as b:
            start_run(a, first, home, ["one"])
            reply = b.request(
                p.StartRun(
                    tool="t", argv=["x"], cwd="/", pid=second.pid, home=str(home), file=False, net=False
                )
            )
            assert _error(reply) == "too many concurrent runs for uid 0 (limit=1)"
            first.release()
            a.send(p.AgentExited(exit_code=first.wait()))
            assert isinstance(a.recv(20), p.RunFinished)
            start_run(b, second, home, ["two"])  # the slot is free again
            second.release()
            b.send(p.AgentExited(exit_code=second.wait()))
            assert isinstance(b.recv(20), p.RunFinished)
    finally:
        first.kill()
        second.kill()
        d.cleanup()
