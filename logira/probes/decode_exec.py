"""Process-domain records (bpf/exec.bpf.c, bpf/nsmount.h) -> ProcFork / ProcExec /
ProcExecFailed / ProcExit / NsOp / BlindSpot. Layouts mirror the structs in bpf/exec.bpf.c
and bpf/nsmount.h."""

from __future__ import annotations

import os
import posixpath
import struct

from logira.model.kernel import BlindSpot, NsOp, ProcExec, ProcExecFailed, ProcExit, ProcFork
from logira.probes import layout

# struct exec_rec after the header: old_pid, err, fname_len, argv_len, cwd_len, flags, tail_len,
# script_len, interp_len, fdpath_len, env_len, nfds, argv_total, exe_uid, exe_gid, exe_mode,
# exe_nlink, exe_ino, exe_dev, env_total, env_scanned, argv0_len, pad; then NFDS struct fd_ent
EXEC_FIXED = struct.Struct("<IiHHHHHHHHHHIIIIIQIIIHH")
FD_ENT = struct.Struct("<iHHIIQ")
NFDS = 8
EXEC_OFF = layout.HDR_SIZE + EXEC_FIXED.size + NFDS * FD_ENT.size  # 328
assert EXEC_OFF == 328, EXEC_OFF
_u32 = struct.Struct("<I").unpack_from
_i64 = struct.Struct("<q").unpack_from

EXF_ARGV_TRUNC = 1
EXF_FNAME_TRUNC = 2
EXF_CWD_TRUNC = 4
EXF_FNAME_FALLBACK = 8
EXF_ARGV_FAULT = 16
EXF_RELATIVE_DFD = 32
EXF_SCRIPT = 64
EXF_ENV_TRUNC = 128
EXF_ENV_FAULT = 256
EXF_ENV_CUT = 512
EXF_FDPATH_DIR = 1024
EXF_FDPATH_TRUNC = 2048
EXF_SCRIPT_TRUNC = 4096
EXF_FDS_MORE = 8192
EXF_NO_INFLIGHT = 16384

_FD_KINDS = {1: "pipe", 2: "fifo", 3: "file", 4: "chr", 5: "socket", 6: "dir", 7: "blk", 8: "other"}
_RW = {0: "", 1: "r", 2: "w", 3: "rw"}

# struct ns_rec after the header: ret, flags, a0, _a1, nr, l1, l2, l3, lb, pad; then 4 x 256 bytes
NS_FIXED = struct.Struct("<qQqqIHHHHH")
NS_OFF = layout.HDR_SIZE + NS_FIXED.size  # 110
NS_STR = 256
NS_SYSCALLS = {
    272: "unshare", 56: "clone", 435: "clone3", 308: "setns", 165: "mount", 166: "umount",
    155: "pivot_root", 428: "open_tree", 467: "open_tree_attr", 429: "move_mount", 430: "fsopen",
    432: "fsmount", 442: "mount_setattr",
}  # fmt: skip
CLONE_NEW = (
    (0x00020000, "mnt"), (0x02000000, "cgroup"), (0x04000000, "uts"), (0x08000000, "ipc"),
    (0x10000000, "user"), (0x20000000, "pid"), (0x40000000, "net"), (0x00000080, "time"),
)  # fmt: skip
MS_BIND = 0x1000
MS_MOVE = 0x2000

KIND_NAMES = dict(layout.KIND_NAMES)


def _str(b: bytes) -> str:
    n = b.find(b"\0")
    if n >= 0:
        b = b[:n]
    return b.decode("utf-8", "surrogateescape")


def split_argv(raw: bytes) -> list[str]:
    """NUL-separated argv bytes -> list; a cut last argument is kept as its prefix."""
    if not raw:
        return []
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    return [a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0")]


def join_cwd(cwd: str, filename: str) -> str:
    """Make a relative exec filename absolute against the caller's cwd (lexically)."""
    if not filename or filename.startswith("/") or not cwd.startswith("/"):
        return filename
    while filename.startswith("./"):
        filename = filename[2:]
    return (cwd.rstrip("/") or "") + "/" + filename


def exit_status(raw: int) -> tuple[int, int, bool]:
    """(exit_code, signal, core_dumped) from a raw wait status (task->exit_code)."""
    sig = raw & 0x7F
    return (raw >> 8) & 0xFF, sig, bool(raw & 0x80) and sig != 0


def namespaces_of(flags: int) -> list[str]:
    return [name for bit, name in CLONE_NEW if flags & bit]


def st_dev(dev: int) -> int:
    """The kernel's internal dev_t (MAJOR << 20 | MINOR) as stat()'s st_dev (as file records carry it)."""
    return os.makedev(dev >> 20, dev & 0xFFFFF)


def _fd_ident(kind: int, fmode: int, dev: int, ino: int) -> str:
    name = _FD_KINDS.get(kind, "other")
    dev = st_dev(dev)
    if name == "pipe":
        return f"pipe:{ino}:{_RW[fmode & 3]}"
    if name == "socket":
        return f"socket:{ino}"
    if name == "fifo":
        return f"fifo:{dev}:{ino}:{_RW[fmode & 3]}"
    return f"{name}:{dev}:{ino}"


def _head_tail(head: bytes, tail: bytes, truncated: bool) -> tuple[list[str], int, bool, bool]:
    """argv list from the head and the tail regions: (argv, cut index, head partial, tail partial)."""
    argv = split_argv(head)
    if not tail:
        return argv, 0, False, False
    before, tail = tail[0], tail[1:]
    head_partial = truncated and not head.endswith(b"\0")
    cut = len(argv)
    return argv + split_argv(tail), cut, head_partial, before != 0


def _markers(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in raw.split(b"\0"):
        name, eq, value = entry.partition(b"=")
        if eq and name:
            out.setdefault(name.decode("ascii", "replace"), value.decode("utf-8", "surrogateescape"))
    return out


def decode_fork(buf: memoryview, hdr, base: dict) -> ProcFork:
    return ProcFork(child_pid=_u32(buf, layout.HDR_SIZE)[0], **base)


def decode_exec(buf: memoryview, hdr, base: dict) -> ProcExec:
    (old_pid, _err, fl, al, cl, flags, tl, sl, il, fpl, el, nfds, argv_total, exe_uid, exe_gid, exe_mode,
     exe_nlink, exe_ino, exe_dev, _env_total, _env_scanned, a0l, _pad) = EXEC_FIXED.unpack_from(buf, layout.HDR_SIZE)  # fmt: skip
    o = EXEC_OFF
    if o + fl + al + tl + cl + sl + il + fpl + a0l + el > len(buf):
        raise ValueError("exec record shorter than its lengths")
    raw = bytes(buf[o:])
    fname = _str(raw[:fl])
    p = fl
    head, tail = raw[p : p + al], raw[p + al : p + al + tl]
    p += al + tl
    cwd = _str(raw[p : p + cl]) if cl else ""
    p += cl
    requested = _str(raw[p : p + sl]) if sl else ""
    p += sl
    interp = _str(raw[p : p + il]) if il else ""
    p += il
    fd_path = _str(raw[p : p + fpl]) if fpl else ""
    p += fpl
    caller_argv0 = raw[p : p + a0l].split(b"\0", 1)[0].decode("utf-8", "surrogateescape") if a0l else ""
    p += a0l
    markers = _markers(raw[p : p + el]) if el else {}
    truncated = bool(flags & EXF_ARGV_TRUNC)
    argv, cut, hp, tp = _head_tail(head, tail, truncated)
    fds: dict[int, str] = {}
    for i in range(min(nfds, NFDS)):
        fd, kind, fmode, dev, _p, ino = FD_ENT.unpack_from(buf, layout.HDR_SIZE + EXEC_FIXED.size + i * FD_ENT.size)
        fds[fd] = _fd_ident(kind, fmode, dev, ino)
    if flags & EXF_FNAME_FALLBACK:
        fname = join_cwd(cwd, fname)  # bprm->filename as requested: may be relative
    return ProcExec(
        filename=fname,
        argv=argv,
        argv_truncated=bool(flags & (EXF_ARGV_TRUNC | EXF_ARGV_FAULT)),
        cwd=cwd,
        cwd_truncated=bool(flags & EXF_CWD_TRUNC),
        old_pid=old_pid if old_pid != hdr.pid else 0,
        argv_cut=cut,
        argv_omitted=max(0, argv_total - al - max(tl - 1, 0)) if cut else 0,
        argv_head_partial=hp,
        argv_tail_partial=tp,
        requested=requested,
        interp=interp if flags & EXF_SCRIPT else "",
        fd_path=fd_path,
        fd_path_is_dir=bool(flags & EXF_FDPATH_DIR),
        caller_argv0=caller_argv0,
        exe_uid=exe_uid if exe_mode else -1,
        exe_gid=exe_gid if exe_mode else -1,
        exe_mode=exe_mode if exe_mode else -1,
        exe_nlink=exe_nlink if exe_mode else -1,
        exe_dev=st_dev(exe_dev) if exe_mode else 0,
        exe_ino=exe_ino,
        fds=fds,
        fds_more=bool(flags & EXF_FDS_MORE),
        env_markers=markers,
        env_truncated=bool(flags & (EXF_ENV_TRUNC | EXF_ENV_CUT | EXF_ENV_FAULT)),
        **base,
    )


def decode_exec_failed(buf: memoryview, hdr, base: dict) -> ProcExecFailed:
    _old, err, fl, al, cl, flags = struct.unpack_from("<IiHHHH", buf, layout.HDR_SIZE)  # the head of EXEC_FIXED
    o = EXEC_OFF
    if o + fl + al + cl > len(buf):
        raise ValueError("exec record shorter than its lengths")
    fname = _str(bytes(buf[o : o + fl]))
    argv_raw = bytes(buf[o + fl : o + fl + al])
    cwd = _str(bytes(buf[o + fl + al : o + fl + al + cl])) if cl else ""
    return ProcExecFailed(
        filename=join_cwd(cwd, fname),
        argv=split_argv(argv_raw),
        argv_truncated=bool(flags & (EXF_ARGV_TRUNC | EXF_ARGV_FAULT)),
        errno=err,
        **base,
    )


def _join(base: str, path: str) -> str:
    if not base or path.startswith("/") or not base.startswith("/"):
        return path
    return posixpath.normpath(posixpath.join(base, path)) if path else base


def decode_nsop(buf: memoryview, hdr, base: dict) -> NsOp:
    ret, flags, a0, _a1, nr, l1, l2, l3, lb, _pad = NS_FIXED.unpack_from(buf, layout.HDR_SIZE)
    o = NS_OFF
    if o + 4 * NS_STR > len(buf):
        raise ValueError("namespace record too short")
    s = [_str(bytes(buf[o + i * NS_STR : o + (i + 1) * NS_STR])) if n else "" for i, n in enumerate((l1, l2, l3))]
    dirbase = _str(bytes(buf[o + 3 * NS_STR : o + 4 * NS_STR])) if lb else ""
    op = NS_SYSCALLS.get(nr, f"syscall_{nr}")
    source = target = fstype = ""
    if op == "mount":
        source, target, fstype = s
        if flags & (MS_BIND | MS_MOVE):
            source = _join(dirbase, source)
        target = _join(dirbase, target)
    elif op == "umount":
        target = _join(dirbase, s[1])
    elif op == "pivot_root":
        source, target = _join(dirbase, s[0]), _join(dirbase, s[1])
    elif op in ("open_tree", "open_tree_attr", "mount_setattr"):
        source = _join(dirbase, s[0])
    elif op == "move_mount":
        # the kernel resolved one base: for the source when it is relative (or an empty path
        # with a dirfd), else for the target
        if (s[0] and not s[0].startswith("/")) or (not s[0] and a0 != -100):
            source, target = _join(dirbase, s[0]), s[1]
        else:
            source, target = s[0], _join(dirbase, s[1])
    elif op == "fsopen":
        fstype = s[2]
    elif op == "setns":
        source = s[0]
    ns = namespaces_of(flags) if op in ("unshare", "clone", "clone3", "setns") else []
    return NsOp(op=op, flags=flags, namespaces=ns, source=source, target=target, fstype=fstype,
                fd=a0, ret=ret, **base)  # fmt: skip


def decode_exit(buf: memoryview, hdr, base: dict) -> ProcExit:
    code, sig, core = exit_status(_u32(buf, layout.HDR_SIZE)[0])
    return ProcExit(exit_code=code, signal=sig, core_dumped=core, **base)


def decode_io_uring(buf: memoryview, hdr, base: dict) -> BlindSpot:
    return BlindSpot(kind="io_uring_setup", syscall_nr=_i64(buf, layout.HDR_SIZE)[0], **base)


def decode_compat(buf: memoryview, hdr, base: dict) -> BlindSpot:
    return BlindSpot(kind="compat_syscall", syscall_nr=_i64(buf, layout.HDR_SIZE)[0], **base)


DECODERS = {
    layout.K_FORK: decode_fork,
    layout.K_EXEC: decode_exec,
    layout.K_EXEC_FAILED: decode_exec_failed,
    layout.K_EXIT: decode_exit,
    layout.K_BLIND_IO_URING: decode_io_uring,
    layout.K_BLIND_COMPAT: decode_compat,
    layout.K_NS: decode_nsop,
    layout.K_MOUNT: decode_nsop,
}
