"""logirad dies in the middle of an agent session; the session continues in a new run."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from agent_support import FAKE, HOOK_CMD
from daemon_helpers import DaemonHandle, running_daemon
from e2e_support import PY, StoredRun, logira_for

pytestmark = pytest.mark.bpf


@pytest.fixture
def private(require_bpf, test_user):
    with running_daemon() as handle:
        gen = logira_for(test_user, handle)
        lg = next(gen)
        yield handle, lg
        gen.close()


def _start(lg, steps):
    return subprocess.Popen(lg.argv("run", "--tool", "fake", "--", PY, str(FAKE), json.dumps(steps)),
                            env=lg.env(FAKE_HOOK_CMD=HOOK_CMD), cwd=lg.workspace,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def test_daemon_crash_mid_session_then_the_session_continues(private):
    daemon, lg = private
    ws = lg.workspace
    first = _start(lg, [
        {"do": "hook", "payload": {"hook_event_name": "SessionStart"}, "session": "S-long"},
        {"do": "bash", "id": "toolu_before", "command": f"echo a > {ws}/a.txt", "session": "S-long"},
        {"do": "sleep", "s": 60},
    ])  # fmt: skip
    (run_dir,) = _wait_dirs(lg, 1)
    deadline = time.monotonic() + 30
    while "toolu_before" not in (run_dir / "events.jsonl").read_text() or "PostToolUse" not in (
        run_dir / "events.jsonl"
    ).read_text():
        assert time.monotonic() < deadline, "the hooks never reached events.jsonl"
        time.sleep(0.1)
    daemon.kill()
    _out, err = first.communicate(timeout=30)
    assert first.returncode == 128 + 15, err
    restarted = DaemonHandle(base=daemon.base, cgroup_parent=daemon.cgroup_parent).start()
    deadline = time.monotonic() + 30
    while StoredRun(run_dir).meta["status"] == "running" or run_dir.stat().st_uid != lg.user.uid:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    crashed = StoredRun(run_dir)
    assert crashed.meta["status"] == "incomplete"
    # the crashed run has its hooks but no join: `logira calls` joins them on the read side
    doc = json.loads(lg("calls", crashed.id, "--json").stdout)
    assert [c["call_id"] for c in doc["calls"]] == ["toolu_before"] and doc["calls"][0]["files"] == 1
    second = _start(lg, [{"do": "bash", "id": "toolu_after", "command": f"echo b > {ws}/b.txt", "session": "S-long"}])
    _out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    later = StoredRun(next(d for d in lg.run_dirs() if d != run_dir))
    assert later.meta["agents"]["sessions"] == ["S-long"]
    doc = json.loads(lg("calls", later.id, "--json").stdout)
    assert [c["call_id"] for c in doc["calls"]] == ["toolu_after"]
    assert doc["sessions"][0]["other_runs"] == [crashed.id]  # one session over two runs, shown as such
    view = lg("view", later.id, "--no-color").stdout.decode()
    assert f"also in runs: {crashed.id}" in view
    restarted.stop()


def _wait_dirs(lg, n):
    deadline = time.monotonic() + 30
    while len(lg.run_dirs()) < n:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return lg.run_dirs()
