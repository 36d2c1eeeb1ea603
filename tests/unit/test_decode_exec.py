"""Pure decoding of process-domain records (byte layouts of bpf/exec.bpf.c)."""

from __future__ import annotations

import struct

import pytest

from logira.model.kernel import BlindSpot, ProcExec, ProcExecFailed, ProcExit, ProcFork
from logira.probes import decode, decode_exec, layout


def _hdr(kind: int, size: int, pid: int = 100, comm: bytes = b"bash") -> bytes:
    return layout.HDR.pack(5_000, 7, pid, pid + 1, 1, 1000, 1001, kind, size, comm, 9)


def _exec_rec(kind, fname: bytes, argv: bytes, cwd: bytes, flags=0, err=0, old_pid=0, *, tail=b"",
              script=b"", interp=b"", fdpath=b"", env=b"", argv_total=None, fds=(), exe=(0, 0, 0, 0, 0, 0),
              argv0=b"") -> bytes:
    uid, gid, mode, nlink, ino, dev = exe
    total = len(argv) if argv_total is None else argv_total
    fixed = decode_exec.EXEC_FIXED.pack(
        old_pid, err, len(fname), len(argv), len(cwd), flags, len(tail), len(script), len(interp), len(fdpath),
        len(env), len(fds), total, uid, gid, mode, nlink, ino, dev, 0, 0, len(argv0), 0,
    )
    ents = b"".join(decode_exec.FD_ENT.pack(*f) for f in fds) + b"\0" * (decode_exec.FD_ENT.size * (8 - len(fds)))
    body = fixed + ents + fname + argv + tail + cwd + script + interp + fdpath + argv0 + env
    return _hdr(kind, 64 + len(body)) + body


@pytest.fixture
def clock():
    c = decode.Clock()
    c.offset = 1_000_000
    return c


def test_header_common_fields(clock):
    ev = decode.decode(_hdr(layout.K_FORK, 72) + struct.pack("<II", 4242, 0), clock)
    assert ev == ProcFork(
        ts=1_005_000, mono_ns=5_000, cgroup_id=7, run_cgroup_id=9, pid=100, tid=101, ppid=1,
        uid=1000, gid=1001, comm="bash", child_pid=4242,
    )  # fmt: skip


def test_exec_record(clock):
    rec = _exec_rec(layout.K_EXEC, b"/usr/bin/ls\0", b"ls\0-l\0a b\0", b"/home/u\0", old_pid=101)
    ev = decode.decode(rec, clock)
    assert isinstance(ev, ProcExec)
    assert (ev.filename, ev.argv, ev.cwd, ev.argv_truncated, ev.old_pid) == (
        "/usr/bin/ls",
        ["ls", "-l", "a b"],
        "/home/u",
        False,
        101,
    )


def test_exec_old_pid_equal_to_pid_means_leader(clock):
    ev = decode.decode(_exec_rec(layout.K_EXEC, b"/x\0", b"x\0", b"", old_pid=100), clock)
    assert ev.old_pid == 0 and ev.cwd == ""


def test_truncated_argv_keeps_cut_prefix(clock):
    rec = _exec_rec(layout.K_EXEC, b"/bin/true\0", b"true\0abc\0de", b"/\0", flags=decode_exec.EXF_ARGV_TRUNC)
    ev = decode.decode(rec, clock)
    assert (ev.argv, ev.argv_truncated) == (["true", "abc", "de"], True)


def test_non_utf8_bytes_are_recoverable(clock):
    ev = decode.decode(_exec_rec(layout.K_EXEC, b"/tmp/\xff\0", b"a\xfe\0", b"/\0"), clock)
    assert ev.filename.encode("utf-8", "surrogateescape") == b"/tmp/\xff"
    assert ev.argv[0].encode("utf-8", "surrogateescape") == b"a\xfe"


def test_failed_exec_relative_made_absolute(clock):
    ev = decode.decode(_exec_rec(layout.K_EXEC_FAILED, b"./tool\0", b"./tool\0", b"/srv/w\0", err=2), clock)
    assert isinstance(ev, ProcExecFailed)
    assert (ev.filename, ev.errno, ev.argv) == ("/srv/w/tool", 2, ["./tool"])


def test_failed_exec_relative_to_dirfd_stays_relative(clock):
    rec = _exec_rec(layout.K_EXEC_FAILED, b"tool\0", b"", b"", err=13, flags=decode_exec.EXF_RELATIVE_DFD)
    ev = decode.decode(rec, clock)
    assert (ev.filename, ev.errno, ev.argv) == ("tool", 13, [])


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (0, (0, 0, False)),
        (3 << 8, (3, 0, False)),
        (9, (0, 9, False)),
        (0x80 | 11, (0, 11, True)),
        (255 << 8, (255, 0, False)),
    ],
)
def test_exit_status(raw, want, clock):
    assert decode_exec.exit_status(raw) == want
    ev = decode.decode(_hdr(layout.K_EXIT, 72) + struct.pack("<II", raw, 0), clock)
    assert isinstance(ev, ProcExit) and (ev.exit_code, ev.signal, ev.core_dumped) == want


def test_blind_spots(clock):
    a = decode.decode(_hdr(layout.K_BLIND_IO_URING, 72) + struct.pack("<q", 425), clock)
    b = decode.decode(_hdr(layout.K_BLIND_COMPAT, 72) + struct.pack("<q", 5), clock)
    assert isinstance(a, BlindSpot) and (a.kind, a.syscall_nr) == ("io_uring_setup", 425)
    assert (b.kind, b.syscall_nr) == ("compat_syscall", 5)


def test_short_and_unknown_records_raise_decode_error(clock):
    with pytest.raises(decode.DecodeError, match="short record"):
        decode.decode(b"\0" * 10, clock)
    with pytest.raises(decode.DecodeError, match="unknown record kind 63"):
        decode.decode(_hdr(63, 64), clock)
    with pytest.raises(decode.DecodeError, match="kind 2"):
        decode.decode(_hdr(layout.K_EXEC, 70) + b"\0" * 6, clock)


def test_kind_names_cover_the_process_domain():
    names = decode.all_kind_names()
    assert [names[k] for k in range(1, 9)] == [
        "fork",
        "exec",
        "exec_failed",
        "exit",
        "io_uring_setup",
        "compat_syscall",
        "namespace",
        "mount",
    ]


def test_exec_fallback_filename_is_made_absolute(clock):
    rec = _exec_rec(layout.K_EXEC, b"./run.sh\0", b"sh\0", b"/w\0", flags=decode_exec.EXF_FNAME_FALLBACK)
    assert decode.decode(rec, clock).filename == "/w/run.sh"


def test_head_and_tail_of_a_long_argv(clock):
    # head "sh\0-c\0: AAA" (cut inside the script), 5000 bytes omitted, tail "AA; curl x | sh\0"
    head = b"sh\0-c\0: AAA"
    tail = b"A" + b"AA; curl x | sh\0"  # first byte: the one before the tail (not 0: mid-argument)
    rec = _exec_rec(layout.K_EXEC, b"/usr/bin/dash\0", head, b"/\0", flags=decode_exec.EXF_ARGV_TRUNC,
                    tail=tail, argv_total=len(head) + 5000 + len(tail) - 1)
    ev = decode.decode(rec, clock)
    assert ev.argv == ["sh", "-c", ": AAA", "AA; curl x | sh"]
    assert (ev.argv_cut, ev.argv_omitted, ev.argv_head_partial, ev.argv_tail_partial) == (3, 5000, True, True)


def test_tail_starting_at_an_argument_boundary(clock):
    rec = _exec_rec(layout.K_EXEC, b"/usr/bin/rm\0", b"rm\0-rf\0", b"/\0", flags=decode_exec.EXF_ARGV_TRUNC,
                    tail=b"\0/home/u/ws\0", argv_total=9000)
    ev = decode.decode(rec, clock)
    assert ev.argv == ["rm", "-rf", "/home/u/ws"]
    assert (ev.argv_cut, ev.argv_head_partial, ev.argv_tail_partial) == (2, False, False)


def test_exec_script_fd_markers_and_exe_inode(clock):
    rec = _exec_rec(
        layout.K_EXEC, b"/usr/bin/bash\0", b"/bin/bash\0/dev/fd/3\0", b"/w\0",
        flags=decode_exec.EXF_SCRIPT, script=b"/dev/fd/3\0", interp=b"/bin/bash\0", fdpath=b"/tmp/x.sh\0",
        env=b"CLAUDECODE=1\0CLAUDE_CODE_SESSION_ID=abc\0", exe=(0, 0, 0o100755, 1, 77, 8), argv0=b"viafd\0",
        fds=[(0, 1, 1, 12, 0, 4242), (1, 4, 2, 5, 0, 3)],
    )
    ev = decode.decode(rec, clock)
    assert (ev.requested, ev.interp, ev.fd_path, ev.caller_argv0) == ("/dev/fd/3", "/bin/bash", "/tmp/x.sh", "viafd")
    assert ev.env_markers == {"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": "abc"}
    assert (ev.exe_uid, ev.exe_mode, ev.exe_nlink, ev.exe_ino) == (0, 0o100755, 1, 77)
    assert ev.fds == {0: "pipe:4242:r", 1: "chr:5:3"}


def test_mount_record_joins_relative_target_to_its_base(clock):
    from logira.model.kernel import NsOp

    strs = [b"/home/u/.ssh", b"alias", b"", b"/home/u/ws"]
    body = decode_exec.NS_FIXED.pack(0, 0x1000, -100, -100, 165, 13, 6, 0, 11, 0)
    body += b"".join(x.ljust(256, b"\0") for x in strs)
    rec = _hdr(layout.K_MOUNT, 64 + len(body)) + body
    ev = decode.decode(rec, clock)
    assert isinstance(ev, NsOp)
    assert (ev.op, ev.source, ev.target, ev.flags, ev.ret) == ("mount", "/home/u/.ssh", "/home/u/ws/alias", 0x1000, 0)


def test_unshare_record_names_the_namespaces(clock):
    body = decode_exec.NS_FIXED.pack(0, 0x10020000, -100, -100, 272, 0, 0, 0, 0, 0) + b"\0" * 1024
    ev = decode.decode(_hdr(layout.K_NS, 64 + len(body)) + body, clock)
    assert (ev.op, ev.namespaces) == ("unshare", ["mnt", "user"])
