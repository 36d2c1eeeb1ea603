"""Process domain, real BPF: fork, exec, failed exec, exit, blind spots, filtering."""

from __future__ import annotations

import os
import time

import pytest

from logira import cgroup2
from logira.model.kernel import BlindSpot, ProcExec, ProcExecFailed, ProcExit, ProcFork
from logira.probes.loader import ProbeConfig, Probes

pytestmark = pytest.mark.bpf


def _execs(evs):
    return [e for e in evs if isinstance(e, ProcExec)]


def test_fork_exec_literal_argv(tracked, cc):
    """argv of a fork+exec of .rodata literals is complete (read from the new mm)."""
    wl = cc("fork_exec")
    done = tracked.run([str(wl), "1"])
    assert done.returncode == 0
    evs = tracked.events()
    execs = _execs(evs)
    assert [(e.pid, e.filename, e.argv) for e in execs[:1]] == [(done.pid, str(wl), [str(wl), "1"])]
    assert execs[0].ppid == os.getpid()
    child = [e for e in execs if e.filename == "/usr/bin/true"]
    assert len(child) == 1
    assert child[0].argv == ["/bin/true", "--some-arg", "value with spaces"]
    assert child[0].argv_truncated is False
    assert child[0].ppid == done.pid
    assert child[0].cwd == os.getcwd()
    assert child[0].comm == "true"
    forks = [e for e in evs if isinstance(e, ProcFork)]
    assert [(f.pid, f.child_pid) for f in forks] == [(done.pid, child[0].pid)]
    exits = [(e.pid, e.exit_code, e.signal) for e in evs if isinstance(e, ProcExit)]
    assert exits == [(child[0].pid, 0, 0), (done.pid, 0, 0)]


def test_exec_as_user_cwd_and_ids(tracked, test_user, world_tmp):
    done = tracked.run(["/bin/echo", "hi"], user=test_user, cwd=world_tmp)
    assert done.stdout == b"hi\n"
    (ex,) = _execs(tracked.events())
    assert (ex.uid, ex.gid, ex.cwd, ex.filename) == (
        test_user.uid,
        test_user.gid,
        str(world_tmp),
        "/usr/bin/echo",
    )


def test_exec_from_non_leader_thread(tracked, cc):
    wl = cc("mt_exec", "-pthread")
    done = tracked.run([str(wl)])
    tid = int(done.stdout.split()[0])
    assert done.stdout.split()[1] == b"from-thread"
    execs = _execs(tracked.events())
    assert len(execs) == 2
    ex = execs[1]
    assert (ex.pid, ex.tid, ex.old_pid, ex.filename, ex.argv) == (
        done.pid,
        done.pid,
        tid,
        "/usr/bin/echo",
        ["echo", "from-thread"],
    )
    assert tid != done.pid


def test_shell_pipeline_ppid_chain(tracked):
    done = tracked.run(["/bin/sh", "-c", "echo a | tr a b | cat"])
    assert done.stdout == b"b\n"
    execs = _execs(tracked.events())
    assert [e.filename for e in execs] == ["/usr/bin/dash", "/usr/bin/tr", "/usr/bin/cat"] or [
        e.filename for e in execs
    ] == ["/usr/bin/dash", "/usr/bin/cat", "/usr/bin/tr"]
    sh = execs[0]
    assert sh.ppid == os.getpid() and sh.pid == done.pid
    by_name = {e.filename: e for e in execs[1:]}
    assert by_name["/usr/bin/tr"].argv == ["tr", "a", "b"]
    assert by_name["/usr/bin/cat"].argv == ["cat"]
    assert {e.ppid for e in execs[1:]} == {sh.pid}
    forks = {e.child_pid for e in tracked.events() if isinstance(e, ProcFork)}
    assert {e.pid for e in execs[1:]} <= forks and len(forks) == 3  # echo runs in a forked subshell


def test_long_argv_keeps_exact_head_and_tail(tracked):
    """Past argv_max (4096) the first 3072 and the last 1024 bytes are kept, the cut marked."""
    args = [f"arg{i:04d}-" + "x" * 90 for i in range(60)]  # ~6 KiB
    argv = ["/bin/true", *args]
    tracked.run(argv)
    (ex,) = _execs(tracked.events())
    assert ex.argv_truncated is True
    full = b"\0".join(a.encode() for a in argv) + b"\0"
    head = "\0".join(ex.argv[: ex.argv_cut]).encode()
    tail = "\0".join(ex.argv[ex.argv_cut :]).encode() + b"\0"
    assert (len(head), len(tail)) == (3072, 1024)
    assert full[:3072] == head and full[-1024:] == tail
    assert ex.argv_omitted == len(full) - 4096
    assert ex.argv[-1] == args[-1]  # the last argument is whole
    assert ex.argv_head_partial and ex.argv_tail_partial  # both cuts fell inside an argument


def test_padding_cannot_hide_the_end_of_a_command_line(tracked):
    pad = "A" * 20000
    script = f": '{pad}'; echo end-of-script"
    done = tracked.run(["/bin/sh", "-c", script])
    assert done.stdout == b"end-of-script\n"
    sh = next(e for e in _execs(tracked.events()) if e.pid == done.pid)
    assert sh.argv_truncated and sh.argv[-1].endswith("'; echo end-of-script")
    assert sh.argv[: sh.argv_cut][:2] == ["/bin/sh", "-c"]


def test_exec_failed_enoent_relative_is_made_absolute(tracked, cc, world_tmp):
    wl = cc("exec_fail")
    done = tracked.run([str(wl), "./no-such-binary", "--flag"], cwd=world_tmp)
    assert done.stdout == b"2\n"
    (f,) = [e for e in tracked.events() if isinstance(e, ProcExecFailed)]
    assert (f.filename, f.errno, f.argv, f.pid) == (
        f"{world_tmp}/no-such-binary",
        2,
        ["./no-such-binary", "--flag"],
        done.pid,
    )


def test_exec_failed_eacces(tracked, cc, world_tmp, test_user):
    wl = cc("exec_fail")
    target = world_tmp / "not-executable"
    target.write_text("#!/bin/sh\n")
    os.chmod(target, 0o644)
    done = tracked.run([str(wl), str(target), "a1", "a2"], user=test_user)
    assert done.stdout == b"13\n"
    (f,) = [e for e in tracked.events() if isinstance(e, ProcExecFailed)]
    assert (f.filename, f.errno, f.argv, f.uid) == (str(target), 13, [str(target), "a1", "a2"], test_user.uid)


@pytest.mark.parametrize(
    ("script", "code", "sig"), [("exit 0", 0, 0), ("exit 3", 3, 0), ("kill -9 $$", 0, 9)]
)
def test_exit_code_and_signal(tracked, script, code, sig):
    done = tracked.run(["/bin/sh", "-c", script])
    (ex,) = [e for e in tracked.events() if isinstance(e, ProcExit)]
    assert (ex.pid, ex.exit_code, ex.signal, ex.core_dumped) == (done.pid, code, sig, False)


def test_exit_only_when_whole_thread_group_is_done(tracked, cc):
    src = r"""
#include <pthread.h>
#include <unistd.h>
static void *t(void *a) { (void)a; return 0; }
int main(void) { pthread_t x[4]; for (int i = 0; i < 4; i++) pthread_create(&x[i], 0, t, 0);
  for (int i = 0; i < 4; i++) pthread_join(x[i], 0); return 5; }
"""
    wl = cc.source(src, "threads", "-pthread")
    done = tracked.run([str(wl)])
    evs = tracked.events()
    assert [(e.pid, e.exit_code) for e in evs if isinstance(e, ProcExit)] == [(done.pid, 5)]
    assert [e for e in evs if isinstance(e, ProcFork)] == []  # threads are not processes


def test_nested_cgroup_is_traced(tracked):
    inner = tracked.subgroup("inner")
    done = tracked.run(["/bin/true", "nested"], cgroup=inner)
    (ex,) = _execs(tracked.events())
    assert (ex.pid, ex.argv, ex.cgroup_id, ex.run_cgroup_id) == (
        done.pid,
        ["/bin/true", "nested"],
        cgroup2.cgroup_id(inner),
        tracked.id,
    )


def test_untracked_cgroup_yields_nothing(tracked, untracked, probes):
    before = probes.reader.received
    done = untracked.run(["/bin/sh", "-c", "/bin/true; exit 4"])
    assert done.returncode == 4
    # The ring is ordered: once a later tracked run's exit arrived, anything the untracked
    # run emitted would have been read too.
    tracked.run(["/bin/true"])
    assert len([e for e in tracked.events() if isinstance(e, ProcExec | ProcExit)]) == 2
    assert untracked.events() == []
    assert probes.reader.received >= before + 2


def test_io_uring_setup_blind_spot(tracked, cc):
    wl = cc("uring_setup")
    done = tracked.run([str(wl)])
    bl = [e for e in tracked.events() if isinstance(e, BlindSpot)]
    assert [(b.kind, b.syscall_nr, b.pid) for b in bl] == [("io_uring_setup", 425, done.pid)]


def test_compat_syscall_blind_spot_once_per_process(tracked, cc):
    wl = cc("compat_int80", "-no-pie")
    done = tracked.run([str(wl)])
    a, b = (int(x) for x in done.stdout.split())
    assert a == b == done.pid  # the ia32 getpid really ran
    bl = [e for e in tracked.events() if isinstance(e, BlindSpot)]
    assert [(x.kind, x.syscall_nr, x.pid) for x in bl] == [("compat_syscall", 20, done.pid)]


def _bpf_link_fds() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:bpf_link":
                n += 1
        except OSError:
            pass
    return n


def test_attach_on_demand(require_bpf):
    base = _bpf_link_fds()
    p = Probes(ProbeConfig(file=False, net=False))
    try:
        p.load()
        assert (p.attached, p.link_count(), _bpf_link_fds() - base) == (False, 0, 0)
        p.track(424242)
        assert p.attached and p.link_count() >= 8
        assert _bpf_link_fds() - base == p.link_count()
        p.track(424243)
        p.untrack(424242)
        assert p.attached  # one run still tracked
        n = p.link_count()
        p.untrack(424243)
        assert p.attached  # detaching is deferred to a background thread (linger)
        p.track(424244)  # a run starting during the linger keeps the same links: no duplicates
        assert p.link_count() == n and _bpf_link_fds() - base == n
        p.detach_linger = 0.0
        p.untrack(424244)
        time.sleep(0.1)  # let the detacher start, then re-track mid-detach
        p.track(424245)
        assert p.link_count() == n and _bpf_link_fds() - base == n
        p.untrack(424245)
        assert p.wait_idle(30)
        assert (p.attached, p.link_count(), _bpf_link_fds() - base) == (False, 0, 0)
    finally:
        p.close()
    assert _bpf_link_fds() == base


def test_timestamps_are_wall_clock_and_ordered(tracked):
    t0 = time.time_ns()
    tracked.run(["/bin/sh", "-c", "/bin/true"])
    evs = tracked.events()
    t1 = time.time_ns()
    assert all(t0 - 50_000_000 <= e.ts <= t1 + 50_000_000 for e in evs)
    assert [e.mono_ns for e in evs] == sorted(e.mono_ns for e in evs)


def test_non_utf8_argv_bytes_are_recoverable(tracked):
    tracked.run([b"/bin/true", b"caf\xe9", b"\xff\xfe"])
    (ex,) = _execs(tracked.events())
    assert [a.encode("utf-8", "surrogateescape") for a in ex.argv] == [b"/bin/true", b"caf\xe9", b"\xff\xfe"]


def test_exec_failed_after_fork_of_literals(tracked, cc):
    """The filename/argv of a failed exec of .rodata literals right after fork are recovered."""
    wl = cc("fork_exec_fail")
    done = tracked.run([str(wl)])
    assert done.returncode == 0
    (f,) = [e for e in tracked.events() if isinstance(e, ProcExecFailed)]
    assert (f.filename, f.errno, f.argv, f.argv_truncated) == (
        "/nonexistent/logira-literal",
        2,
        ["lit-argv0", "lit-arg1"],
        False,
    )
    assert f.ppid == done.pid


def test_only_the_exit_that_may_end_a_run_wakes_the_reader(require_bpf, cgroup_parent):
    """Exit records of processes whose parent is in the run do not force a wake-up (they
    wait for the batch threshold / drain timer); the run's first process (parent outside)
    does, so a blocked reader sees the run end at once."""
    import secrets
    import subprocess
    import threading

    from logira.probes import libbpf

    p = Probes(ProbeConfig(file=False, net=False, wake_bytes=1 << 20))
    cg = cgroup2.create(cgroup_parent, f"wake-{secrets.token_hex(3)}")
    procs = os.fsencode(cg / "cgroup.procs")

    def enter() -> None:
        fd = os.open(procs, os.O_WRONLY)
        os.write(fd, b"0\n")
        os.close(fd)

    got: list[int] = []
    rb = None
    proc = None
    try:
        p.load()
        p.track(cgroup2.cgroup_id(cg))
        rb = libbpf.RingBuffer(p.events_fd, lambda _c, _d, size: got.append(size) or 0)
        proc = subprocess.Popen(
            ["/bin/sh", "-c", "read a; /bin/true; read b"], stdin=subprocess.PIPE, preexec_fn=enter
        )
        time.sleep(0.3)
        rb.consume()  # the shell's exec record
        assert got, "the tracked shell's exec was not recorded"
        got.clear()
        # the child /bin/true forks, execs and exits inside the run: no forced wake-up
        proc.stdin.write(b"1\n")
        proc.stdin.flush()
        assert rb.poll(700) == 0  # nothing woke the reader: the records wait in the ring
        # the shell (parent outside the run) exits: its exit forces a wake-up, so the blocked
        # poll returns with records (without the wake-up it would time out with 0; far fewer
        # than wake_bytes are pending)
        threading.Timer(0.2, lambda: (proc.stdin.write(b"2\n"), proc.stdin.flush())).start()
        n = rb.poll(30000)
        assert n > 0
        assert proc.wait(5) == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if rb is not None:
            rb.free()
        p.close()
        cgroup2.kill_all(cg)
        cgroup2.remove(cg)
