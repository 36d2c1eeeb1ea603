"""decode_file: records packed by hand exactly as bpf/file.bpf.c lays them out."""

from __future__ import annotations

import os
import struct

import pytest

from logira.model.kernel import FILE_OPS, FileOp
from logira.probes import decode, decode_file, layout
from logira.probes.decode_file import DATA_OFF, join, normalize

SC = {name: i for i, name in enumerate(decode_file.SYSCALLS)}


def record(
    kind: int,
    op: str,
    sc: str,
    strings: tuple[bytes, bytes, bytes, bytes],
    *,
    ret: int = 0,
    flags: int = 0,
    mode: int = -1,
    pflags: int = 0,
    size: int | None = None,
    alias: tuple[int, int] = (0, 0),
    ident: tuple[int, int] | None = None,  # (kernel dev, ino)
) -> bytes:
    data = b"".join(strings)
    dev, ino = ident or (0, 0)
    body = struct.pack(
        "<qIiBBBBHHHHHHQII", ret, flags, mode, FILE_OPS.index(op), SC[sc], pflags, 1 if ident else 0,
        *map(len, strings), *alias, ino, dev, 4026531841,
    )  # fmt: skip
    total = layout.HDR_SIZE + len(body) + len(data)
    hdr = layout.HDR.pack(
        1_000, 77, 4242, 4243, 1, 1000, 1000, kind, size or total, b"sh".ljust(16, b"\0"), 55
    )
    return hdr + body + data


def dec(buf: bytes) -> FileOp:
    ev = decode.decode(buf, decode.Clock())
    assert isinstance(ev, FileOp)
    return ev


def test_layout_matches_the_c_struct():
    assert DATA_OFF == 112
    assert set(decode.decoders()) >= {16, 17, 18}
    assert decode.all_kind_names()[17] == "file_read"


def test_create_from_fd_path():
    ev = dec(
        record(
            16, "create", "openat", (b"/home/u/sub/rel.txt", b"", b"", b""), ret=3, flags=0o1101, mode=0o644
        )
    )
    assert (ev.op, ev.path, ev.path2, ev.syscall, ev.ret, ev.flags, ev.mode) == (
        "create",
        "/home/u/sub/rel.txt",
        "",
        "openat",
        3,
        0o1101,
        0o644,
    )
    assert (ev.pid, ev.tid, ev.uid, ev.comm, ev.run_cgroup_id, ev.mono_ns) == (
        4242,
        4243,
        1000,
        "sh",
        55,
        1000,
    )
    assert not ev.path_truncated and not ev.path_unresolved


def test_relative_raw_joined_to_base_and_normalised():
    ev = dec(record(18, "delete", "unlinkat", (b"/w/tree", b"./a//../b/./c", b"", b"")))
    assert (ev.op, ev.path, ev.mode) == ("delete", "/w/tree/b/c", -1)


def test_absolute_raw_is_normalised_without_base():
    ev = dec(record(18, "rmdir", "rmdir", (b"", b"//tmp/x/../y/", b"", b"")))
    assert ev.path == "/tmp/y"


def test_rename_both_paths_and_flags():
    ev = dec(record(18, "rename", "renameat2", (b"/w", b"a", b"/w/d", b"../b"), flags=1))
    assert (ev.path, ev.path2, ev.flags) == ("/w/a", "/w/b", 1)


def test_symlink_target_is_kept_as_given():
    ev = dec(record(18, "symlink", "symlinkat", (b"", b"../x/./t", b"/w", b"link")))
    assert (ev.path, ev.path2) == ("../x/./t", "/w/link")


def test_unresolved_base_keeps_raw_string_flagged():
    ev = dec(
        record(18, "chmod", "fchmodat", (b"", b"rel/f", b"", b""), mode=0o755, pflags=decode_file.PF_UNRES1)
    )
    assert (ev.path, ev.path_unresolved, ev.mode) == ("rel/f", True, 0o755)


def test_unresolved_second_path():
    ev = dec(record(18, "link", "linkat", (b"/w", b"f", b"", b"new"), pflags=decode_file.PF_UNRES2))
    assert (ev.path, ev.path2, ev.path_unresolved) == ("/w/f", "new", True)


def test_truncation_flag_from_either_path():
    assert dec(record(18, "delete", "unlink", (b"/a/a", b"x", b"", b""), pflags=1)).path_truncated
    ev = dec(record(18, "rename", "rename", (b"/a", b"x", b"/a", b"y"), pflags=4))
    assert ev.path_truncated and not ev.path_unresolved


def test_denied_read_keeps_errno():
    ev = dec(record(17, "read", "openat", (b"/etc", b"shadow", b"", b""), ret=-13))
    assert (ev.op, ev.path, ev.ret) == ("read", "/etc/shadow", -13)


def test_non_utf8_bytes_survive():
    ev = dec(record(16, "modify", "open", (b"/w/\xff\xfe", b"", b"", b""), ret=4))
    assert ev.path == "/w/\udcff\udcfe"
    assert ev.path.encode("utf-8", "surrogateescape") == b"/w/\xff\xfe"


def test_pseudo_file_base_is_not_normalised():
    ev = dec(record(16, "modify", "openat", (b"pipefs:[123]", b"", b"", b""), ret=1))
    assert ev.path == "pipefs:[123]"
    assert join("pipefs:[1]", "x") == "pipefs:[1]/x"


def test_record_shorter_than_its_strings_is_a_decode_error():
    buf = record(18, "delete", "unlink", (b"/w", b"abc", b"", b""))
    with pytest.raises(decode.DecodeError, match="shorter than its strings"):
        decode.decode(buf[:-1], decode.Clock())


def test_unknown_op_is_a_decode_error():
    buf = bytearray(record(18, "delete", "unlink", (b"/w", b"a", b"", b"")))
    buf[layout.HDR_SIZE + 16] = len(FILE_OPS)
    with pytest.raises(decode.DecodeError, match="unknown file op"):
        decode.decode(bytes(buf), decode.Clock())


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("/", "/"),
        ("/a/b", "/a/b"),
        ("//a//b//", "/a/b"),
        ("/a/./b/.", "/a/b"),
        ("/a/../../..", "/"),
        ("/../etc/passwd", "/etc/passwd"),
        ("/a/b/..", "/a"),
        ("/a/.hidden/..x", "/a/.hidden/..x"),
        ("rel/../x", "rel/../x"),
    ],
)
def test_normalize(raw, want):
    assert normalize(raw) == want


def test_join_edge_cases():
    assert join("/w", "") == "/w"
    assert join("", "") == ""
    assert join("/", "x") == "/x"
    assert join("/w", "/abs") == "/abs"
    assert join("/w/d (deleted)", "f") == "/w/d (deleted)/f"


def test_kernel_alias_keeps_the_literal_and_resolves_the_rest():
    # unlink("/proc/self/fd/14/x"): the kernel resolved fd 14 to /home/u/.ssh
    raw = b"/proc/self/fd/14/x"
    ev = dec(record(18, "delete", "unlink", (b"/home/u/.ssh", raw, b"", b""), pflags=64, alias=(16, 0)))
    assert (ev.path, ev.path_literal, ev.resolved) == ("/home/u/.ssh/x", "/proc/self/fd/14/x", "kernel")
    # the alias alone (rename to /dev/fd/3): the path is the fd's own path
    ev = dec(record(18, "rename", "rename", (b"", b"/w/a", b"/w/dir", b"/dev/fd/3"), pflags=128, alias=(0, 9)))
    assert (ev.path, ev.path2, ev.path2_literal, ev.path_literal) == ("/w/a", "/w/dir", "/dev/fd/3", "")


def test_identity_and_changed_flags():
    ev = dec(record(17, "read", "openat", (b"/x/y", b"", b"", b""), ret=3, ident=((8 << 20) | 1, 42)))
    assert (ev.dev, ev.ino) == (os.makedev(8, 1), 42)
    ev = dec(record(18, "rename", "rename", (b"", b"/w/a", b"", b"/w/b"), pflags=32))
    assert ev.path_changed and (ev.dev, ev.ino) == (0, 0)
