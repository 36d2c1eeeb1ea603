"""logirad is SIGKILLed in the middle of a `logira run`: the client fails closed (the agent,
no longer recorded, is stopped) and after a restart the run is readable, incomplete, sealed."""

from __future__ import annotations

import select
import time

import pytest
from daemon_helpers import DaemonHandle
from e2e_support import StoredRun, logira_for

from logira.storage.seal import read_seal

pytestmark = pytest.mark.bpf


@pytest.fixture
def crash_logira(logirad, test_user):
    yield from logira_for(test_user, logirad)


def test_daemon_sigkill_mid_run_then_restart(logirad, crash_logira):
    lg = crash_logira
    proc = lg.popen(
        "run", "--tool", "crash", "--", "sh", "-c", "echo a > before; echo started; sleep 30; echo b > after"
    )
    restarted = None
    try:
        assert select.select([proc.stdout], [], [], 30)[0]
        assert proc.stdout.readline() == b"started\n"
        (run_dir,) = lg.run_dirs()
        # Wait until the write before the crash has reached events.jsonl (flushed <= 1 s).
        target = str(lg.workspace / "before")
        deadline = time.monotonic() + 10
        while target not in (run_dir / "events.jsonl").read_text():
            assert time.monotonic() < deadline, "the write before the crash never reached events.jsonl"
            time.sleep(0.1)
        logirad.kill()

        # The client notices, stops the now unrecorded agent and says why.
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 128 + 15, err
        assert b"lost the connection to logirad mid-run" in err
        assert not (lg.workspace / "after").exists()

        restarted = DaemonHandle(base=logirad.base, cgroup_parent=logirad.cgroup_parent).start()
        deadline = time.monotonic() + 20
        while True:  # reconciliation happens at start; the hand-over makes the dir the user's
            run = StoredRun(run_dir)
            if run.meta["status"] != "running" and run_dir.stat().st_uid == lg.user.uid:
                break
            assert time.monotonic() < deadline, f"run never reconciled: {run.meta['status']}"
            time.sleep(0.2)
        assert run.meta["status"] == "incomplete" and run.meta["complete"] is False
        assert any("crash" in r for r in run.meta["incomplete_reasons"]), run.meta["incomplete_reasons"]
        assert ("create", target) in [(r["data_json"]["op"], r["data_json"]["path"]) for r in run.files()]
        seal = read_seal(logirad.state_dir, lg.user.uid, run.id)
        assert seal is not None and seal.complete is False and seal.events == len(run.records)
        res = lg("verify", run.id)
        assert res.returncode == 0 and res.stdout.decode().startswith(f"{run.id}: intact ("), res.stdout
        res = lg("view", run.id)
        assert res.returncode == 0 and run.id in res.stdout.decode()
        parent = logirad.cgroup_parent_path
        leftovers = [c.name for c in parent.iterdir() if c.is_dir()] if parent.exists() else []
        assert leftovers == [], "the crashed run's cgroup was not removed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if restarted is not None:
            restarted.stop()


def test_daemon_sigterm_mid_run_interrupts_and_seals(logirad, crash_logira):
    lg = crash_logira
    proc = lg.popen("run", "--tool", "stop", "--", "sh", "-c", "echo started; sleep 30; echo b > after")
    try:
        assert select.select([proc.stdout], [], [], 30)[0]
        assert proc.stdout.readline() == b"started\n"
        assert logirad.stop() == 0
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (128 + 9, 128 + 15), err  # the agent is gone either way
    # Depending on who is first (the daemon kills the run's processes while finalizing), the
    # client reports the interruption through the summary line or the mid-run message.
    assert b"INCOMPLETE (interrupted)" in err or b"logirad ended the run mid-run (interrupted)" in err, err
    assert not (lg.workspace / "after").exists()
    run = lg.only_run()
    assert run.meta["status"] == "interrupted" and run.meta["complete"] is False
    assert run.dir.stat().st_uid == lg.user.uid
    seal = read_seal(logirad.state_dir, lg.user.uid, run.id)
    assert seal is not None and seal.events == len(run.records)
