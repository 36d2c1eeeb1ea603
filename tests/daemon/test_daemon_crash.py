"""Instance exclusion, stale sockets, start-up failures, SIGTERM and crash recovery."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import stat
from pathlib import Path

import pytest
from daemon_helpers import EXEC_ONLY, DaemonHandle, HeldChild, start_run
from dtutil import execs, lines, meta, pid_alive, seal, wait_for

from logira.daemon import protocol as p

pytestmark = pytest.mark.bpf


def _run_and_get_error(d: DaemonHandle) -> tuple[int, str]:
    proc = d.spawn()
    rc = proc.wait(30)
    return rc, d.log_text()


def test_second_instance_is_refused(daemon: DaemonHandle) -> None:
    second = DaemonHandle(base=daemon.base, cgroup_parent=daemon.cgroup_parent)
    second.log_path = daemon.base / "second.log"
    rc, err = _run_and_get_error(second)
    assert daemon.proc is not None
    assert (rc, err) == (
        1,
        f"logirad: error: logirad already running (pid {daemon.proc.pid}) on {daemon.sock}\n",
    )
    assert daemon.status().pid == daemon.proc.pid  # the first one still serves


def test_second_instance_on_another_socket_is_refused_by_the_lock(daemon: DaemonHandle) -> None:
    second = DaemonHandle(base=daemon.base, cgroup_parent=daemon.cgroup_parent)
    second.log_path = daemon.base / "second2.log"
    second.args[second.args.index("--sock") + 1] = str(daemon.base / "other.sock")
    rc, err = _run_and_get_error(second)
    assert daemon.proc is not None
    assert (rc, err) == (
        1,
        f"logirad: error: logirad already running (pid {daemon.proc.pid}) with state dir "
        f"{daemon.state_dir}\n",
    )


def test_stale_socket_is_removed(require_bpf: None) -> None:
    d = DaemonHandle(probes=EXEC_ONLY)
    try:
        s = socket.socket(socket.AF_UNIX)
        s.bind(d.sock)
        s.close()  # leaves a socket file nobody listens on
        d.start()
        assert d.status().ready
        assert '"event": "stale_socket_removed"' in d.log_text()
        assert stat.S_IMODE(os.stat(d.sock).st_mode) == 0o666
    finally:
        d.cleanup()


def test_missing_bpf_object_is_one_clear_line(require_bpf: None) -> None:
    d = DaemonHandle(env={"LOGIRA_EXEC_BPF_OBJ": "/nonexistent/exec.bpf.o"}, probes=EXEC_ONLY)
    try:
        rc, err = _run_and_get_error(d)
        assert rc == 1
        assert err.count("\n") == 1 and err.startswith("logirad: error: ") and "make bpf" in err, err
        assert "Traceback" not in err
    finally:
        d.cleanup()


def test_sigterm_finalizes_active_runs_as_interrupted(require_bpf: None) -> None:
    from daemon_helpers import make_home

    d = DaemonHandle(probes=EXEC_ONLY).start()
    home = make_home()
    try:
        with d.client() as c:
            child = HeldChild(["/bin/sh", "-c", "/bin/true before; exec /bin/sleep 60"])
            started = start_run(c, child, home, ["sh"])
            child.release()
            wait_for(
                lambda: Path(f"/proc/{child.pid}/comm").read_text().strip() == "sleep", 5, "agent running"
            )
            assert d.proc is not None
            d.proc.send_signal(signal.SIGTERM)
            fin = c.recv(20)
            assert d.proc.wait(20) == 0
        assert isinstance(fin, p.RunFinished), fin
        assert (fin.status, fin.complete, fin.stragglers) == ("interrupted", False, [child.pid])
        run_dir = home / "runs" / started.run_id
        m = meta(run_dir)
        assert (m["status"], m["complete"], m["stragglers"]) == ("interrupted", False, [child.pid])
        assert m["incomplete_reasons"] == ["logirad was stopped during the run"]
        assert ["/bin/true", "before"] in execs(lines(run_dir))
        assert seal(d.state_dir, 0, started.run_id)["events"] == m["event_count"] == len(lines(run_dir))
        assert stat.S_IMODE(os.stat(run_dir).st_mode) == 0o700
        wait_for(lambda: not pid_alive(child.pid), 5, "agent killed")
        assert not [x for x in d.cgroup_parent_path.iterdir() if x.is_dir()]
        assert not list((d.state_dir / "active").iterdir())
    finally:
        child.kill()
        d.cleanup()
        shutil.rmtree(home.parent, ignore_errors=True)


def test_sigkill_then_restart_recovers_the_run(require_bpf: None) -> None:
    from daemon_helpers import make_home

    d = DaemonHandle(probes=EXEC_ONLY).start()
    home = make_home()
    child = HeldChild(["/bin/sh", "-c", "/bin/true before-crash; exec /bin/sleep 60"])
    try:
        with d.client() as c:
            started = start_run(c, child, home, ["sh"])
            child.release()
            run_dir = home / "runs" / started.run_id
            # JSONL is flushed at least every flush_interval (0.5 s): wait until the exec is on disk
            wait_for(lambda: "before-crash" in (run_dir / "events.jsonl").read_text(), 5, "events flushed")
            cg = next(x for x in d.cgroup_parent_path.iterdir() if x.is_dir())
            d.kill()
        assert (
            pid_alive(child.pid) and stat.S_IMODE(os.stat(run_dir).st_mode) == 0o750
        )  # left open by the crash
        d.start()  # same socket, state dir and cgroup parent
        m = meta(run_dir)
        recs = lines(run_dir)
        assert (m["status"], m["complete"]) == ("incomplete", False)
        assert m["incomplete_reasons"] == ["daemon crashed"]
        assert m["event_count"] == len(recs) == recs[-1]["seq"] and m["final_hash"] == recs[-1]["hash"]
        assert m["end_ts"] and m["end_ts"] > m["start_ts"]
        assert ["/bin/true", "before-crash"] in execs(recs)
        s = seal(d.state_dir, 0, started.run_id)
        assert (s["events"], s["final_hash"], s["complete"]) == (len(recs), recs[-1]["hash"], False)
        assert stat.S_IMODE(os.stat(run_dir).st_mode) == 0o700  # handed over
        db = sqlite3.connect(f"file:{run_dir}/index.sqlite?mode=ro", uri=True)
        try:  # the committed batches survived the crash and the runs row has the recovered meta
            (n,) = db.execute("SELECT count(*) FROM events").fetchone()
            (meta_json,) = db.execute("SELECT meta_json FROM runs").fetchone()
        finally:
            db.close()
        assert 1 <= n <= len(recs) and '"status":"incomplete"' in meta_json
        assert not cg.exists()
        wait_for(lambda: not pid_alive(child.pid), 5, "agent of the crashed run killed")
        assert not list((d.state_dir / "active").iterdir())
        assert '"event": "run_recovered"' in d.log_text()
        # the recovered daemon serves new runs
        with d.client() as c:
            child2 = HeldChild(["/bin/true"])
            start_run(c, child2, home, ["true"])
            child2.release()
            c.send(p.AgentExited(exit_code=child2.wait()))
            assert isinstance(c.recv(20), p.RunFinished)
    finally:
        child.kill()
        d.cleanup()
        shutil.rmtree(home.parent, ignore_errors=True)
