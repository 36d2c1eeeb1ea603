"""File domain, adversarial, end to end: the agent tries to make a file operation vanish
or be recorded as something else. Real BPF, real logirad, the throwaway user, the stored run."""

from __future__ import annotations

import os
import textwrap

import pytest
from e2e_support import PY, StoredRun

pytestmark = pytest.mark.bpf


def _drops(run: StoredRun, kind: str) -> int:
    return int(run.meta["drops"]["kernel"].get(kind, 0))


LEASE_STORM = textwrap.dedent(r"""
    import fcntl, os, signal, sys, threading, time
    target = os.path.expanduser("~/.bashrc")
    go_r, go_w = os.pipe()        # parent -> holder: release the lease
    ready_r, ready_w = os.pipe()  # holder -> parent: lease taken
    holder = os.fork()
    if holder == 0:
        signal.signal(signal.SIGIO, lambda *a: None)  # the lease-break notice
        fd = os.open(target, os.O_RDONLY)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        os.write(ready_w, b"1")
        os.read(go_r, 1)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        os._exit(0)
    assert os.read(ready_r, 1) == b"1"
    result = {}
    def opener():
        result["tid"] = threading.get_native_id()
        fd = os.open(target, os.O_WRONLY | os.O_APPEND)  # blocks until the lease is released
        os.write(fd, b"# lease-storm\n")
        os.close(fd)
        result["done"] = True
    t = threading.Thread(target=opener)
    t.start()
    def in_open():
        try:
            nr = open(f"/proc/self/task/{result['tid']}/syscall").read().split()[0]
        except (KeyError, OSError, IndexError):
            return False
        return nr in ("2", "257", "437")  # open, openat, openat2
    deadline = time.monotonic() + 30
    while not in_open():
        assert time.monotonic() < deadline, "the write-open never blocked on the lease"
        time.sleep(0.01)
    # the storm: thousands of short-lived threads entering file syscalls while the open is held
    def churn(i):
        try:
            os.close(os.open("/dev/null", os.O_WRONLY))
            os.mkdir(".")
        except OSError:
            pass
    started = 0
    for _ in range(30):
        batch = [threading.Thread(target=churn, args=(i,)) for i in range(100)]
        for b in batch:
            b.start()
        for b in batch:
            b.join()
        started += len(batch)
    still_blocked = in_open() and "done" not in result
    os.write(go_w, b"1")
    t.join(60)
    os.waitpid(holder, 0)
    print(started, still_blocked, result.get("done", False))
""")


def test_a_write_open_held_by_a_lease_through_a_thread_storm_is_never_lost(logira, test_user):
    bashrc = test_user.home / ".bashrc"
    original = bashrc.read_bytes() if bashrc.exists() else None
    if original is None:
        bashrc.write_text("# test\n")
        os.chown(bashrc, test_user.uid, test_user.gid)
    try:
        res = logira("run", "--tool", "leasestorm", "--", PY, "-c", LEASE_STORM, timeout=180)
    finally:
        if original is None:
            bashrc.unlink(missing_ok=True)
        else:
            bashrc.write_bytes(original)
    assert res.returncode == 0, res.stderr
    started, still_blocked, done = res.stdout.decode().split()
    # the attack really ran: 3000 threads while the open was blocked, then the open went through
    assert (started, still_blocked, done) == ("3000", "True", "True")
    run = logira.only_run()
    opens = [r for r in run.files("modify") if r["data_json"]["path"] == str(bashrc)]
    lost = _drops(run, "file_write_open")
    # never both absent: recorded, or the run says it lost a write-open
    assert opens or (lost and run.meta["status"] == "incomplete"), run.meta["drops"]
    # with per-task storage nothing can evict it: it is recorded, with its identity
    assert len(opens) == 1 and lost == 0
    d = opens[0]["data_json"]
    assert d["ret"] >= 0 and d["flags"] & os.O_APPEND and d["ino"] == bashrc.stat().st_ino
    assert d["dev"] == bashrc.stat().st_dev
    assert any(r["data_json"]["rule_id"] == "persist-shell-startup" for r in run.of_type("detection"))
