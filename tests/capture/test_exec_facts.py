"""Exec facts read in the kernel, real BPF: in-flight state that cannot be evicted, the
script asked for vs the interpreter that ran, the exe's inode, exec through fds and memfds,
pipes on the fds, agent markers from the environment, namespace and mount changes."""

from __future__ import annotations

import os
import shutil
import textwrap

import pytest

from logira.model import execinfo
from logira.model.kernel import NsOp, ProcExec, ProcExecFailed

pytestmark = pytest.mark.bpf
PY = "/usr/bin/python3"


def _execs(evs):
    return [e for e in evs if isinstance(e, ProcExec)]


def test_thousands_of_threads_in_failing_execs_are_all_recorded_or_counted(tracked, cc, probes):
    """An agent cannot make its own exec attempts vanish by flooding the in-flight state:
    every failed exec of 2000 concurrent threads is recorded, or counted as a drop."""
    wl = cc("exec_storm", "-pthread")
    before = probes.drop_counts().get("exec_failed", 0)
    done = tracked.run([str(wl), "2000", "3"], timeout=120)
    assert done.returncode == 0, done.stderr
    attempts = int(done.stdout)
    assert attempts == 6000
    failed = [e for e in tracked.events() if isinstance(e, ProcExecFailed)]
    storm = [f for f in failed if f.filename.startswith("/nonexistent/logira-storm-")]
    dropped = probes.drop_counts().get("exec_failed", 0) - before
    assert len(storm) + dropped == attempts, (len(storm), dropped)
    assert len(storm) >= attempts * 0.9  # drops only from a full ring, not from evictions
    assert {f.errno for f in storm} == {2}


def test_script_names_the_script_the_interpreter_and_the_callers_args(tracked, world_tmp):
    script = world_tmp / "hello.sh"
    script.write_text("#!/bin/sh\necho hi \"$@\"\n")
    os.chmod(script, 0o755)
    done = tracked.run(["./hello.sh", "a1"], cwd=world_tmp)
    assert done.stdout == b"hi a1\n"
    (ex,) = _execs(tracked.events())
    assert (ex.filename, ex.requested, ex.interp) == ("/usr/bin/dash", "./hello.sh", "/bin/sh")
    assert ex.argv == ["/bin/sh", "./hello.sh", "a1"]
    assert execinfo.script_of(ex) == str(script)
    assert execinfo.caller_argv(ex) == ["./hello.sh", "a1"]  # what the caller passed
    assert (ex.exe_uid, ex.exe_mode & 0o777, ex.exe_nlink) == (0, 0o755, 1)
    st = os.stat("/usr/bin/dash")
    assert (ex.exe_dev, ex.exe_ino) == (st.st_dev, st.st_ino)  # the same identity file records carry


def test_plain_exec_has_no_script(tracked):
    tracked.run(["/bin/true"])
    (ex,) = _execs(tracked.events())
    assert (ex.requested, ex.interp, execinfo.script_of(ex)) == ("/bin/true", "", "")
    assert execinfo.exe_kind(ex, "") == "file"


def test_script_exec_through_proc_self_fd_names_the_real_file(tracked, world_tmp):
    script = world_tmp / "viafd.sh"
    script.write_text("#!/bin/sh\necho via-fd\n")
    os.chmod(script, 0o755)
    code = textwrap.dedent(f"""
        import os
        fd = os.open({str(script)!r}, os.O_RDONLY)
        os.set_inheritable(fd, True)
        os.execv(f"/proc/self/fd/{{fd}}", ["viafd"])
    """)
    done = tracked.run([PY, "-c", code])
    assert done.stdout == b"via-fd\n", done.stderr
    ex = _execs(tracked.events())[-1]
    assert ex.caller_argv0 == "viafd"  # exec -a style names are kept, labelled as the caller's
    assert ex.requested.startswith("/proc/self/fd/") and ex.fd_path == str(script)
    script_path = execinfo.script_of(ex)
    assert script_path == str(script)
    assert execinfo.exe_kind(ex, script_path) == "fd"


def test_memfd_exec_named_like_a_system_binary_is_fileless(tracked, test_user):
    code = textwrap.dedent("""
        import os
        fd = os.memfd_create("/usr/bin/ssh", 0)
        os.write(fd, open("/usr/bin/true", "rb").read())
        os.execve(fd, ["ssh"], {})
    """)
    done = tracked.run([PY, "-c", code], user=test_user)
    assert done.returncode == 0, done.stderr
    ex = _execs(tracked.events())[-1]
    assert ex.argv == ["ssh"]
    assert not ex.filename.startswith("/") and "memfd:/usr/bin/ssh" in ex.filename
    kind = execinfo.exe_kind(ex, "")
    assert kind == "memfd" and execinfo.is_fileless(kind, "")
    assert ex.exe_nlink == 0


def test_deleted_and_user_owned_binaries_are_marked(tracked, test_user, world_tmp):
    own = world_tmp / "mytrue"
    shutil.copy("/usr/bin/true", own)
    os.chown(own, test_user.uid, test_user.gid)
    done = tracked.run([str(own)], user=test_user)
    assert done.returncode == 0
    (ex,) = _execs(tracked.events())
    assert ex.exe_uid == test_user.uid and execinfo.exe_writable(ex)
    # a binary deleted while it is being exec'd: exec from an fd of an unlinked file
    code = textwrap.dedent(f"""
        import os
        fd = os.open({str(own)!r}, os.O_RDONLY)
        os.unlink({str(own)!r})
        os.execve(fd, ["gone"], {{}})
    """)
    done = tracked.run([PY, "-c", code], user=test_user)
    assert done.returncode == 0, done.stderr
    ex = _execs(tracked.events())[-1]
    assert ex.exe_nlink == 0 and ex.filename.endswith(" (deleted)")
    assert execinfo.exe_kind(ex, "") == "deleted"


def test_dynamic_loader_exec_names_the_program(tracked, world_tmp):
    prog = world_tmp / "prog"
    shutil.copy("/usr/bin/true", prog)
    tracked.run(["/lib64/ld-linux-x86-64.so.2", str(prog)])
    (ex,) = _execs(tracked.events())
    script = execinfo.script_of(ex)
    assert script == str(prog) and execinfo.exe_kind(ex, script) == "loader"


def test_pipe_identity_links_writer_and_reader(tracked):
    done = tracked.run(["/bin/sh", "-c", "/bin/echo x | /bin/cat"])
    assert done.stdout == b"x\n"
    execs = {e.filename: e for e in _execs(tracked.events())}
    w, r = execs["/usr/bin/echo"].fds[1], execs["/usr/bin/cat"].fds[0]
    assert w.startswith("pipe:") and w.endswith(":w") and r.endswith(":r")
    assert w.rsplit(":", 1)[0] == r.rsplit(":", 1)[0]


def test_process_substitution_pipe_is_on_the_readers_fds(tracked):
    done = tracked.run(["/bin/bash", "-c", "/bin/cat <(/bin/echo sub)"])
    assert done.stdout == b"sub\n"
    execs = {e.filename: e for e in _execs(tracked.events())}
    cat = execs["/usr/bin/cat"]
    (path,) = cat.argv[1:]
    fd = int(path.rsplit("/", 1)[1])
    assert cat.fds[fd].startswith("pipe:") and cat.fds[fd].endswith(":r")
    w = execs["/usr/bin/echo"].fds[1]
    assert w.rsplit(":", 1)[0] == cat.fds[fd].rsplit(":", 1)[0]


MARKERS = {
    "CLAUDECODE": "1",
    "CLAUDE_CODE_SESSION_ID": "8f3c2a1e-0000-4000-8000-000000000001",
    "CLAUDE_CODE_CHILD_SESSION": "1",
    "CLAUDE_PID": "4242",
    "TRACEPARENT": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "CODEX_THREAD_ID": "thread-7",
    "GEMINI_CLI": "1",
}


def test_agent_markers_are_read_from_the_new_environment(tracked):
    env = {"PATH": "/usr/bin:/bin", "CLAUDECODEX": "not-a-marker", "XCLAUDECODE": "no", **MARKERS}
    tracked.run(["/bin/true"], env=env)
    (ex,) = _execs(tracked.events())
    assert ex.env_markers == MARKERS and not ex.env_truncated


def test_cleared_environment_has_no_markers(tracked):
    tracked.run(["/usr/bin/env", "-i", "/bin/true"], env={"CLAUDECODE": "1", "PATH": "/usr/bin"})
    envx, true = _execs(tracked.events())
    assert envx.env_markers == {"CLAUDECODE": "1"}
    assert true.env_markers == {} and not true.env_truncated


def test_marker_scan_is_bounded_and_says_so(tracked):
    pad = {f"PAD{i:04d}": "x" * 200 for i in range(600)}  # ~125 KiB before the marker
    env = {**pad, "CLAUDECODE": "1", "CLAUDE_PID": "y" * 400}
    tracked.run(["/bin/true"], env=env)
    (ex,) = _execs(tracked.events())
    assert ex.env_truncated and "CLAUDECODE" not in ex.env_markers
    tracked_short = {"CLAUDE_PID": "y" * 400, "CLAUDECODE": "1"}
    tracked.run(["/bin/true"], env=tracked_short)
    ex = _execs(tracked.events())[-1]
    assert ex.env_truncated  # the value was cut
    assert ex.env_markers["CLAUDECODE"] == "1" and ex.env_markers["CLAUDE_PID"] == "y" * (254 - len("CLAUDE_PID="))


def _ns(evs):
    return [e for e in evs if isinstance(e, NsOp)]


def test_unshare_and_bind_mount_of_ssh_dir_are_recorded(tracked, test_user, world_tmp):
    ssh = test_user.home / ".ssh"
    ssh.mkdir(exist_ok=True)
    os.chown(ssh, test_user.uid, test_user.gid)
    done = tracked.run(
        ["unshare", "-Urm", "sh", "-c", f"mkdir -p alias && mount --bind {ssh} alias && echo ok"],
        user=test_user, cwd=world_tmp,
    )
    assert done.stdout == b"ok\n", done.stderr
    ops = _ns(tracked.events())
    un = [e for e in ops if e.op == "unshare"]
    assert un and set(un[0].namespaces) >= {"user", "mnt"} and un[0].ret == 0
    (m,) = [e for e in ops if e.op == "mount" and e.flags & 0x1000]
    assert (m.source, m.target, m.ret) == (str(ssh), f"{world_tmp}/alias", 0)


def test_new_mount_api_setns_and_clone_flags_are_recorded(tracked, test_user, world_tmp):
    (world_tmp / "alias").mkdir()
    os.chmod(world_tmp / "alias", 0o777)
    code = textwrap.dedent(f"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        def sc(*a):
            r = libc.syscall(*a)
            return r if r >= 0 else -ctypes.get_errno()
        AT_FDCWD = -100
        print("unshare", libc.unshare(0x10000000 | 0x00020000))  # CLONE_NEWUSER | CLONE_NEWNS
        tree = sc(428, AT_FDCWD, b"/usr", 1 | 0x80000)  # open_tree(OPEN_TREE_CLONE|O_CLOEXEC)
        print("move", sc(429, tree, b"", AT_FDCWD, b"{world_tmp}/alias", 4))  # MOVE_MOUNT_F_EMPTY_PATH
        fs = sc(430, b"tmpfs", 0)  # fsopen
        print("fsconfig", sc(431, fs, 6, None, None, 0))  # FSCONFIG_CMD_CREATE
        print("fsmount", sc(432, fs, 0, 0) >= 0)
        print("umount", libc.umount2(b"{world_tmp}/alias", 2))  # MNT_DETACH
        ns = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        print("setns", libc.setns(ns, 0x00020000))
        pid = sc(56, 0x04000000 | 17, 0, 0, 0, 0)  # clone(CLONE_NEWUTS | SIGCHLD): EPERM is fine
        if pid == 0:
            os._exit(0)
        print("clone", pid)
    """)
    done = tracked.run([PY, "-c", code], user=test_user)
    assert done.returncode == 0, done.stderr
    ops = {e.op: e for e in _ns(tracked.events())}
    assert {"unshare", "open_tree", "move_mount", "fsopen", "fsmount", "umount", "setns", "clone"} <= set(ops)
    assert ops["open_tree"].source == "/usr" and ops["open_tree"].ret >= 0
    assert ops["move_mount"].target == f"{world_tmp}/alias" and ops["move_mount"].ret == 0
    assert ops["fsopen"].fstype == "tmpfs"
    assert ops["setns"].source.startswith("nsfs:") and ops["setns"].namespaces == ["mnt"]
    assert ops["clone"].namespaces == ["uts"]


def test_ordinary_forks_are_not_namespace_events(tracked):
    tracked.run(["/bin/sh", "-c", "/bin/true; /bin/true"])
    assert _ns(tracked.events()) == []
