"""Process-domain records (bpf/exec.bpf.c) -> ProcFork / ProcExec / ProcExecFailed /
ProcExit / BlindSpot. Layouts mirror the structs in bpf/exec.bpf.c."""

from __future__ import annotations

import struct

from logira.model.kernel import BlindSpot, ProcExec, ProcExecFailed, ProcExit, ProcFork
from logira.probes import layout

# struct exec_rec tail after the header: old_pid, err, fname_len, argv_len, cwd_len, flags
EXEC_FIXED = struct.Struct("<IiHHHH")
EXEC_OFF = layout.HDR_SIZE + EXEC_FIXED.size  # 80
_u32 = struct.Struct("<I").unpack_from
_i64 = struct.Struct("<q").unpack_from

EXF_ARGV_TRUNC = 1
EXF_FNAME_TRUNC = 2
EXF_CWD_TRUNC = 4
EXF_FNAME_FALLBACK = 8
EXF_ARGV_FAULT = 16
EXF_RELATIVE_DFD = 32

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


def _exec_parts(buf: memoryview) -> tuple[int, int, int, str, bytes, str, int]:
    old_pid, err, fl, al, cl, flags = EXEC_FIXED.unpack_from(buf, layout.HDR_SIZE)
    o = EXEC_OFF
    fname = _str(bytes(buf[o : o + fl]))
    argv_raw = bytes(buf[o + fl : o + fl + al])
    cwd = _str(bytes(buf[o + fl + al : o + fl + al + cl])) if cl else ""
    if o + fl + al + cl > len(buf):
        raise ValueError("exec record shorter than its lengths")
    return old_pid, err, flags, fname, argv_raw, cwd, cl


def decode_fork(buf: memoryview, hdr, base: dict) -> ProcFork:
    return ProcFork(child_pid=_u32(buf, layout.HDR_SIZE)[0], **base)


def decode_exec(buf: memoryview, hdr, base: dict) -> ProcExec:
    old_pid, _err, flags, fname, argv_raw, cwd, _cl = _exec_parts(buf)
    if flags & EXF_FNAME_FALLBACK:
        fname = join_cwd(cwd, fname)  # bprm->filename as requested: may be relative
    return ProcExec(
        filename=fname,
        argv=split_argv(argv_raw),
        argv_truncated=bool(flags & (EXF_ARGV_TRUNC | EXF_ARGV_FAULT)),
        cwd=cwd,
        cwd_truncated=bool(flags & EXF_CWD_TRUNC),
        old_pid=old_pid if old_pid != hdr.pid else 0,
        **base,
    )


def decode_exec_failed(buf: memoryview, hdr, base: dict) -> ProcExecFailed:
    _old, err, flags, fname, argv_raw, cwd, _cl = _exec_parts(buf)
    return ProcExecFailed(
        filename=join_cwd(cwd, fname),
        argv=split_argv(argv_raw),
        argv_truncated=bool(flags & (EXF_ARGV_TRUNC | EXF_ARGV_FAULT)),
        errno=err,
        **base,
    )


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
}
