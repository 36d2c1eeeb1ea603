"""File-domain records (bpf/file.bpf.c) -> FileOp.

Every file record has the same layout after the 64-byte header (`struct file_rec`):

    s64 ret; u32 flags; s32 mode; u8 op; u8 sc; u8 pflags; u8 ident; u16 len[4]; u16 alias[2]
    u64 ino; u32 dev; u32 mnt_ns
    data: base1, raw1, base2, raw2 back to back (lengths in len[], no NULs)

path = base1 joined with raw1, path2 = base2 joined with raw2. The kernel resolves the
base (cwd or dirfd, or the fd itself) and copies the raw user string; the join and the
lexical normalisation (`.`, `..`, `//`) happen here, so stored paths are absolute and
normalised. A symlink's path is its target string exactly as given.

An alias at the start of an absolute raw string (`/proc/self/fd/N`, `/dev/fd/N`,
`/proc/self/cwd`, ...: pflags bit 6/7, `alias[i]` bytes) was resolved in the kernel from
the task's own fd table / fs: base is its real path, so path = base + raw[alias:], and the
raw string is kept as `path_literal` (resolved = "kernel"). `dev` is the kernel's s_dev
(major << 20 | minor), converted here to the st_dev encoding that stat() returns.
"""

from __future__ import annotations

import os
import struct

from logira.model.kernel import FILE_OPS, FileOp
from logira.model.paths import normalize
from logira.probes import layout

K_FILE_WRITE_OPEN = 16  # open/openat/openat2/creat with write intent: create | modify
K_FILE_READ = 17  # read-only open, once per (process, file)
K_FILE_OP = 18  # unlink/rmdir/rename/chmod/truncate/link/symlink/mkdir

KIND_NAMES = {K_FILE_WRITE_OPEN: "file_write_open", K_FILE_READ: "file_read", K_FILE_OP: "file_op"}

# enum FSC_* in bpf/file.bpf.c (index = value)
SYSCALLS = (
    "",
    "open",
    "openat",
    "openat2",
    "creat",
    "unlink",
    "unlinkat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "truncate",
    "ftruncate",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
)
OP_SYMLINK = FILE_OPS.index("symlink")

PF_TRUNC1 = 1
PF_UNRES1 = 2
PF_TRUNC2 = 4
PF_UNRES2 = 8
PF_CHANGED1 = 16
PF_CHANGED2 = 32
PF_ALIAS1 = 64
PF_ALIAS2 = 128
ID_SET = 1  # ident: dev/ino are set
ID_REREAD1 = 2  # ident: raw1/raw2 could only be copied at exit (not resident at entry)
ID_REREAD2 = 4

FIXED = struct.Struct("<qIiBBBBHHHHHHQII")
DATA_OFF = layout.HDR_SIZE + FIXED.size
assert DATA_OFF == 112, DATA_OFF
_unpack = FIXED.unpack_from


def join(base: str, raw: str) -> str:
    """The path `raw` names when resolved against directory `base` (both may be empty)."""
    if not base or raw.startswith("/"):
        return normalize(raw)
    if not raw:
        return normalize(base)
    if not base.startswith("/"):
        return base + "/" + raw  # pseudo file (e.g. "pipefs:[12]"): nothing to normalise
    return normalize(base + "/" + raw)


def _s(b: memoryview) -> str:
    return str(b, "utf-8", "surrogateescape")


def kernel_dev(dev: int) -> int:
    """The kernel's internal dev_t (MAJOR << 20 | MINOR) as stat()'s st_dev."""
    return os.makedev(dev >> 20, dev & 0xFFFFF)


def _side(base: str, raw: str, alias: int, unresolved: bool) -> tuple[str, str]:
    """(path, literal) of one side; literal is "" when it equals path."""
    if alias:
        real = join(base, raw[alias:].lstrip("/")) if raw[alias:] else normalize(base)
        lit = normalize(raw)
        return real, (lit if lit != real else "")
    if unresolved:
        return (raw if not raw.startswith("/") else normalize(raw)), ""
    return join(base, raw), ""


def decode_file(buf: memoryview, hdr, base: dict) -> FileOp:
    """Decode one file record (any of the three file kinds)."""
    ret, flags, mode, op, sc, pf, ident, l0, l1, l2, l3, a1, a2, ino, dev, mnt_ns = _unpack(buf, layout.HDR_SIZE)
    o = DATA_OFF
    end = o + l0 + l1 + l2 + l3
    if end > len(buf):
        raise ValueError(f"file record of {len(buf)} bytes shorter than its strings ({end})")
    if op >= len(FILE_OPS):
        raise ValueError(f"unknown file op {op}")
    b1 = _s(buf[o : o + l0])
    o += l0
    r1 = _s(buf[o : o + l1])
    o += l1
    lit1 = ""
    if op == OP_SYMLINK:
        path = r1  # the link's content, exactly as given
    else:
        path, lit1 = _side(b1, r1, a1 if pf & PF_ALIAS1 else 0, bool(pf & PF_UNRES1))
    path2 = lit2 = ""
    if l2 or l3:
        b2 = _s(buf[o : o + l2])
        o += l2
        r2 = _s(buf[o : o + l3])
        path2, lit2 = _side(b2, r2, a2 if pf & PF_ALIAS2 else 0, bool(pf & PF_UNRES2))
    return FileOp(
        op=FILE_OPS[op],
        path=path,
        path2=path2,
        syscall=SYSCALLS[sc] if sc < len(SYSCALLS) else f"syscall_{sc}",
        flags=flags,
        mode=mode,
        ret=ret,
        path_truncated=bool(pf & (PF_TRUNC1 | PF_TRUNC2)),
        path_unresolved=bool(pf & (PF_UNRES1 | PF_UNRES2)),
        path_changed=bool(pf & (PF_CHANGED1 | PF_CHANGED2)),
        path_literal=lit1,
        path2_literal=lit2,
        resolved="kernel" if pf & (PF_ALIAS1 | PF_ALIAS2) else "",
        path_reread=bool(ident & (ID_REREAD1 | ID_REREAD2)),
        dev=kernel_dev(dev) if ident & ID_SET else 0,
        ino=ino if ident & ID_SET else 0,
        mnt_ns=mnt_ns,
        **base,
    )


DECODERS = {K_FILE_WRITE_OPEN: decode_file, K_FILE_READ: decode_file, K_FILE_OP: decode_file}
