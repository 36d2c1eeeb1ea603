"""A run through the real daemon: recorded exactly, finalized, sealed, handed over, followed live."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_helpers import EXEC_ONLY, Client, DaemonHandle, HeldChild, make_home, start_run
from dtutil import execs, lines, meta, pid_alive, seal, wait_for

from logira.daemon import protocol as p

pytestmark = pytest.mark.bpf


def _finish(c: Client, child: HeldChild, timeout: float = 20) -> p.RunFinished:
    rc = child.wait()
    c.send(p.AgentExited(exit_code=rc if rc >= 0 else 0, signal=-rc if rc < 0 else 0))
    reply = c.recv(timeout)
    assert isinstance(reply, p.RunFinished), reply
    return reply


def test_run_recorded_sealed_and_handed_over(daemon: DaemonHandle, home: Path) -> None:
    with daemon.client() as c:
        child = HeldChild(["/bin/sh", "-c", "/bin/true lgd one; /bin/echo two >/dev/null; exit 3"])
        started = start_run(c, child, home, ["agent", "--flag"], tool="My Tool!")
        run_dir = home / "runs" / started.run_id
        assert started.run_id.endswith("-my-tool")
        st = os.stat(run_dir)
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o750, 0)  # root-owned while active
        assert json.loads((run_dir / "meta.json").read_text())["status"] == "running"
        child.release()
        fin = _finish(c, child)
    recs = lines(run_dir)
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    assert execs(recs) == [
        ["/bin/sh", "-c", "/bin/true lgd one; /bin/echo two >/dev/null; exit 3"],
        ["/bin/true", "lgd", "one"],
        ["/bin/echo", "two"],
    ]
    root_exit = [
        r for r in recs if r["type"] == "proc" and r["pid"] == child.pid and r["data_json"]["op"] == "exit"
    ]
    assert [r["summary"] for r in root_exit] == ["exit code=3"]
    assert recs[0]["summary"] == "exec /bin/sh -c /bin/true lgd one; /bin/echo two >/dev/null; exit 3"
    m = meta(run_dir)
    assert m["status"] == "complete" and m["complete"] is True
    assert (m["exit_code"], m["exit_signal"], m["root_pid"]) == (3, 0, child.pid)
    assert m["command_argv"] == ["agent", "--flag"] and m["probes"] == {
        "exec": True,
        "file": False,
        "net": False,
    }
    assert m["event_count"] == len(recs) == fin.events
    assert m["final_hash"] == recs[-1]["hash"]
    assert m["counts"] == {"exec": 3, "proc": len(recs) - 3}
    assert m["drops"]["total"] == 0 and m["incomplete_reasons"] == [] and m["end_ts"] > m["start_ts"]
    s = seal(daemon.state_dir, 0, started.run_id)
    assert (s["events"], s["final_hash"], s["complete"]) == (len(recs), recs[-1]["hash"], True)
    assert stat.S_IMODE(os.stat(run_dir).st_mode) == 0o700  # handed over
    assert (fin.status, fin.complete, fin.dropped, fin.stragglers) == ("complete", True, 0, [])
    assert not [d for d in daemon.cgroup_parent_path.iterdir() if d.is_dir()]  # run cgroup removed


def test_stragglers_recorded_then_killed(daemon: DaemonHandle, home: Path) -> None:
    with daemon.client() as c:
        child = HeldChild(["/bin/sh", "-c", "/bin/sleep 30 & echo $! >&2; exit 0"])
        started = start_run(c, child, home, ["sh"])
        child.release()
        fin = _finish(c, child)
    recs = lines(home / "runs" / started.run_id)
    sleep_pid = next(
        r["pid"] for r in recs if r["type"] == "exec" and r["data_json"]["argv"][0] == "/bin/sleep"
    )
    assert fin.stragglers == [sleep_pid]
    assert meta(home / "runs" / started.run_id)["stragglers"] == [sleep_pid]
    wait_for(lambda: not pid_alive(sleep_pid), 5, "straggler killed")
    # the kill itself is recorded: the straggler's exit by SIGKILL, and only after the straggler
    # wait (1 s in tests) counted from the root's exit, in the kernel's own timestamps
    killed = next(r for r in recs if r["pid"] == sleep_pid and r["summary"] == "exit signal=9")
    root_exit = next(r for r in recs if r["pid"] == child.pid and r["summary"].startswith("exit "))
    assert killed["ts"] - root_exit["ts"] >= 0.9e9, (root_exit["ts"], killed["ts"])


def test_follow_streams_the_same_lines_as_the_file(daemon: DaemonHandle, home: Path) -> None:
    with daemon.client() as c, daemon.client() as f:
        child = HeldChild(["/bin/sh", "-c", "for i in 1 2 3 4 5; do /bin/true follow $i; done"])
        started = start_run(c, child, home, ["sh"])
        following = f.request(p.Follow(run_id="last"))
        assert following == p.Following(run_id=started.run_id, next_seq=1)
        child.release()
        rc = child.wait()
        c.send(p.AgentExited(exit_code=rc))
        got: list[str] = []
        while True:
            msg = f.recv(15)
            if isinstance(msg, p.RunEnded):
                break
            assert isinstance(msg, p.Records), msg
            got.extend(msg.lines)
        assert msg.run_id == started.run_id
        assert isinstance(c.recv(15), p.RunFinished)
    assert got == (home / "runs" / started.run_id / "events.jsonl").read_text().splitlines()
    assert [a for a in execs([json.loads(x) for x in got]) if a[0] == "/bin/true"] == [
        ["/bin/true", "follow", str(i)] for i in range(1, 6)
    ]


def test_follow_of_unknown_run_is_an_error(daemon: DaemonHandle) -> None:
    with daemon.client() as c:
        assert c.request(p.Follow(run_id="20000101-000000-none")) == p.Error(
            message="run 20000101-000000-none is not active"
        )


def test_status_shape(daemon: DaemonHandle, home: Path) -> None:
    with daemon.client() as c:
        child = HeldChild(["/bin/true"])
        try:
            started = start_run(c, child, home, ["true"])
            st = daemon.status()
        finally:
            child.release()
        _finish(c, child)
    assert daemon.proc is not None and st.pid == daemon.proc.pid and st.uid == 0
    assert st.btf is True and st.kernel_release == os.uname().release
    assert st.cgroup_parent == str(daemon.cgroup_parent_path)
    assert st.probes_loaded is True and st.probes_attached is True
    assert {k: (v.enabled, v.loaded) for k, v in st.probes.items()} == {
        "exec": (True, True),
        "file": (False, False),
        "net": (False, False),
    }
    assert {"kernel_total", "reader", "unrouted", "queue"} <= set(st.drops)
    assert [(r.run_id, r.root_pid) for r in st.runs] == [(started.run_id, child.pid)] and st.runs_total == 1
    assert st.ready is True and st.reasons == []
    assert daemon.status().runs == []
    # detached when idle (in the background, after the linger)
    wait_for(lambda: daemon.status().probes_attached is False, timeout=30, what="probes detached")


def test_unprivileged_user_run_lands_in_their_home_and_is_theirs(daemon: DaemonHandle, test_user) -> None:
    script = Path(__file__).with_name("agent_client.py")
    out = subprocess.run(
        test_user.cmd(
            sys.executable, str(script), daemon.sock, "--", "/bin/sh", "-c", "/bin/true as-user; id -u"
        ),
        env=test_user.env(),
        cwd=str(test_user.home),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    started, fin = (json.loads(x) for x in out.stdout.splitlines() if x.startswith("{"))
    assert started["type"] == "run_started" and fin["type"] == "run_finished" and fin["status"] == "complete"
    run_dir = test_user.home / ".logira" / "runs" / started["run_id"]
    assert started["run_dir"] == str(run_dir)
    st = os.stat(run_dir)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (test_user.uid, test_user.gid, 0o700)
    for name in ("events.jsonl", "index.sqlite", "meta.json"):
        fst = os.stat(run_dir / name)
        assert (fst.st_uid, stat.S_IMODE(fst.st_mode)) == (test_user.uid, 0o600), name
    m = meta(run_dir)
    assert (m["uid"], m["gid"], m["user"], m["cwd"]) == (
        test_user.uid,
        test_user.gid,
        test_user.name,
        str(test_user.home),
    )
    recs = lines(run_dir)
    assert ["/bin/true", "as-user"] in execs(recs) and {r["uid"] for r in recs} == {test_user.uid}
    assert seal(daemon.state_dir, test_user.uid, started["run_id"])["events"] == len(recs)


def test_a_follower_that_does_not_read_is_cut_off_and_the_run_is_unaffected(require_bpf: None) -> None:
    d = DaemonHandle(probes=EXEC_ONLY, config_text="follower_buffer = 16\n").start()
    home = make_home()
    n = 200
    try:
        with d.client() as c, d.client() as f:
            f.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            child = HeldChild(
                ["/bin/sh", "-c", f"i=0; while [ $i -lt {n} ]; do /bin/true $i; i=$((i+1)); done"]
            )
            started = start_run(c, child, home, ["burst"])
            assert isinstance(f.request(p.Follow(run_id=started.run_id)), p.Following)
            child.release()  # the follower reads nothing from here on
            c.send(p.AgentExited(exit_code=child.wait(60)))
            fin = c.recv(30)
            assert isinstance(fin, p.RunFinished) and (fin.complete, fin.dropped) == (True, 0), fin
            # whatever it had buffered, the follower ends with the error (or a reset), never run_ended
            tail: list[object] = []
            with contextlib.suppress(OSError, EOFError):
                while True:
                    tail.append(f.recv(5))
            assert not any(isinstance(m, p.RunEnded) for m in tail)
            assert (
                not tail
                or tail[-1]
                == p.Error(
                    message=(
                        f"follower too slow: disconnected from run {started.run_id} (the stored run is complete; "
                        "read it with logira view)"
                    )
                )
                or isinstance(tail[-1], p.Records)
            )
        recs = lines(home / "runs" / started.run_id)
        assert [a[1] for a in execs(recs) if a[0] == "/bin/true"] == [str(i) for i in range(n)]
        assert '"event": "follower_cut_off"' in d.log_text()
    finally:
        d.cleanup()
        shutil.rmtree(home.parent, ignore_errors=True)
