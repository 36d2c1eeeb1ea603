"""File domain, real BPF: every test runs real commands in a tracked run cgroup and
asserts on the exact ops and absolute paths the kernel probes report."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from logira.model.kernel import FileOp

pytestmark = pytest.mark.bpf

PY = "/usr/bin/python3"  # the system interpreter: no pyenv shim scripts in the record


def file_ops(rc, marker: Path, timeout: float = 5) -> list[FileOp]:
    """FileOps of the run up to (excluding) the `mkdir marker` that the command ends with.

    The ring is ordered, so once the marker's record arrived every earlier record did too:
    this makes "X was NOT reported" assertions meaningful without sleeping.
    """
    m = str(marker)

    def is_marker(e) -> bool:
        return isinstance(e, FileOp) and e.op == "mkdir" and e.path == m

    evs = rc.events(wait_for=is_marker, timeout=timeout)
    ops = [e for e in evs if isinstance(e, FileOp)]
    idx = next((i for i, e in enumerate(ops) if is_marker(e)), None)
    assert idx is not None, f"marker mkdir {m} never arrived; got {[(e.op, e.path) for e in ops]}"
    return ops[:idx]


def sh(rc, script: str, cwd: Path, marker: Path, user=None):
    """Run `sh -c script; mkdir marker` in the run cgroup and return its FileOps."""
    done = rc.run(["sh", "-c", f"{script}\nmkdir {marker}"], cwd=cwd, user=user)
    assert done.returncode == 0, done.stderr
    return file_ops(rc, marker)


def changes(ops: list[FileOp]) -> list[tuple[str, str, str]]:
    """(op, path, path2) of everything except reads, in order."""
    return [(e.op, e.path, e.path2) for e in ops if e.op != "read"]


def test_relative_write_after_cd_is_created_with_absolute_path(tracked, tmp_path):
    (tmp_path / "sub").mkdir()
    ops = sh(tracked, "cd sub && echo x > rel.txt", tmp_path, tmp_path / "m")
    assert changes(ops) == [("create", f"{tmp_path}/sub/rel.txt", "")]
    (ev,) = [e for e in ops if e.op == "create"]
    assert ev.syscall == "openat" and ev.ret >= 0 and ev.mode == 0o666
    assert ev.flags & os.O_CREAT and ev.flags & os.O_TRUNC
    assert ev.comm == "sh" and not ev.path_truncated and not ev.path_unresolved


def test_overwrite_existing_file_is_modify(tracked, tmp_path):
    (tmp_path / "f").write_text("old")
    ops = sh(tracked, "echo new > ./f; echo more >> f", tmp_path, tmp_path / "m")
    assert changes(ops) == [("modify", f"{tmp_path}/f", ""), ("modify", f"{tmp_path}/f", "")]
    first, second = [e for e in ops if e.op != "read"]
    assert first.flags & os.O_TRUNC and not first.flags & os.O_APPEND
    assert second.flags & os.O_APPEND and first.mode == second.mode == 0o666


def test_rm_rf_reports_every_file_and_dir_with_absolute_paths(tracked, tmp_path):
    t = tmp_path / "tree"
    for d in ("a/b", "c"):
        (t / d).mkdir(parents=True)
    for f in ("top.txt", "a/x", "a/b/y", "c/z"):
        (t / f).write_text(f)
    ops = sh(tracked, "rm -rf tree", tmp_path, tmp_path / "m")
    got = {(e.op, e.path) for e in ops if e.op in ("delete", "rmdir")}
    want = {("delete", f"{t}/{f}") for f in ("top.txt", "a/x", "a/b/y", "c/z")}
    want |= {("rmdir", f"{t}/{d}") for d in ("a/b", "a", "c")} | {("rmdir", str(t))}
    assert got == want
    assert len([e for e in ops if e.op in ("delete", "rmdir")]) == 8
    assert all(e.syscall == "unlinkat" and e.ret == 0 for e in ops if e.op in ("delete", "rmdir"))


def test_mv_is_rename_with_both_paths_absolute(tracked, tmp_path):
    (tmp_path / "a").write_text("a")
    (tmp_path / "d").mkdir()
    ops = sh(tracked, "mv a d/b", tmp_path, tmp_path / "m")
    assert changes(ops) == [("rename", f"{tmp_path}/a", f"{tmp_path}/d/b")]
    (ev,) = [e for e in ops if e.op == "rename"]
    assert ev.syscall in ("rename", "renameat", "renameat2") and ev.ret == 0


def test_chmod_plus_x_reports_new_mode(tracked, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    f.chmod(0o644)
    ops = sh(tracked, "chmod +x f", tmp_path, tmp_path / "m")
    (ev,) = [e for e in ops if e.op == "chmod"]
    assert (ev.path, ev.mode, ev.ret) == (str(f), 0o755, 0)
    assert ev.syscall in ("fchmodat", "fchmodat2")


def test_symlink_then_write_through_it_reports_target(tracked, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "target").write_text("t")
    ops = sh(tracked, "ln -s d/target link && echo hi > link", tmp_path, tmp_path / "m")
    assert changes(ops) == [
        ("symlink", "d/target", f"{tmp_path}/link"),
        ("modify", f"{tmp_path}/d/target", ""),
    ]


def test_truncate_mkdir_and_hard_link(tracked, tmp_path):
    (tmp_path / "f").write_text("data")
    ops = sh(tracked, "truncate -s 0 f; mkdir -m 700 newdir; ln f newdir/hard", tmp_path, tmp_path / "m")
    # coreutils truncate: open(O_WRONLY|O_CREAT) of the existing file, then ftruncate(fd)
    assert changes(ops) == [
        ("modify", f"{tmp_path}/f", ""),
        ("truncate", f"{tmp_path}/f", ""),
        ("mkdir", f"{tmp_path}/newdir", ""),
        ("link", f"{tmp_path}/f", f"{tmp_path}/newdir/hard"),
    ]
    _, trunc, mk, link = [e for e in ops if e.op != "read"]
    assert (trunc.syscall, trunc.ret, trunc.mode) == ("ftruncate", 0, -1)
    assert (mk.syscall, mk.mode, mk.ret) == ("mkdir", 0o700, 0)
    assert link.syscall in ("link", "linkat") and link.ret == 0


def test_fd_ops_use_the_fds_path(tracked, tmp_path):
    (tmp_path / "f").write_text("data")
    code = "import os; fd = os.open('f', os.O_RDWR); os.ftruncate(fd, 1); os.fchmod(fd, 0o600)"
    done = tracked.run([PY, "-c", code + f"; os.mkdir('{tmp_path}/m')"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ops = file_ops(tracked, tmp_path / "m")
    assert [(e.op, e.path, e.syscall, e.mode) for e in ops if e.op != "read"] == [
        ("modify", f"{tmp_path}/f", "openat", -1),
        ("truncate", f"{tmp_path}/f", "ftruncate", -1),
        ("chmod", f"{tmp_path}/f", "fchmod", 0o600),
    ]


def test_eacces_kept_and_enoent_dropped(tracked, world_tmp, test_user):
    root_file = world_tmp / "rootfile"
    root_file.write_text("secret")
    root_file.chmod(0o644)
    script = "echo x > rootfile; rm -f nonexistent; echo y > missing_dir/f; chmod 777 rootfile; true"
    ops = sh(tracked, script, world_tmp, world_tmp / "m", user=test_user)
    assert [(e.op, e.path, e.ret, e.uid) for e in ops if e.op != "read"] == [
        ("modify", str(root_file), -13, test_user.uid),
        ("chmod", str(root_file), -1, test_user.uid),
    ]


def test_read_dedup_per_process(tracked, tmp_path):
    f = tmp_path / "secret"
    f.write_text("s")
    code = "for _ in range(3): open('secret').read()"
    done = tracked.run([PY, "-c", code + f"\nimport os; os.mkdir('{tmp_path}/m')"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    reads = [e for e in file_ops(tracked, tmp_path / "m") if e.op == "read" and e.path == str(f)]
    assert len(reads) == 1
    assert reads[0].ret >= 0 and reads[0].syscall == "openat" and reads[0].mode == -1


def test_read_once_per_process_two_processes(tracked, tmp_path):
    f = tmp_path / "secret"
    f.write_text("s")
    ops = sh(tracked, "cat secret >/dev/null; cat secret > /dev/null", tmp_path, tmp_path / "m")
    reads = [e for e in ops if e.op == "read" and e.path == str(f)]
    assert len(reads) == 2 and reads[0].pid != reads[1].pid
    assert {e.comm for e in reads} == {"cat"}


def test_untracked_cgroup_reports_nothing(untracked, tracked, tmp_path):
    (tmp_path / "f").write_text("x")
    done = untracked.run(["sh", "-c", "echo y > f; cat f; mkdir d; rm -r d; rm f"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # a tracked run going through the same ring afterwards proves the ring was drained
    sh(tracked, "true", tmp_path, tmp_path / "m")
    assert untracked.events() == []


FILEOPS_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Every file syscall the probes know, called directly (no libc remapping). */
int main(int argc, char **argv)
{
	if (argc < 2 || chdir(argv[1]))
		return 2;
	syscall(SYS_mkdir, "d", 0750);
	int dfd = open("d", O_RDONLY | O_DIRECTORY);
	struct open_how how = {.flags = O_CREAT | O_WRONLY, .mode = 0600};
	close(syscall(SYS_openat2, dfd, "o2", &how, sizeof(how)));
	close(syscall(SYS_creat, "./d/../c", 0644));
	close(syscall(SYS_open, "d//o2", O_WRONLY | O_TRUNC));
	syscall(SYS_symlinkat, "o2", dfd, "sl");
	syscall(SYS_linkat, AT_FDCWD, "c", dfd, "hl", 0);
	syscall(SYS_rename, "c", "c2");
	syscall(SYS_renameat, dfd, "hl", AT_FDCWD, "hl2");
	syscall(SYS_renameat2, AT_FDCWD, "hl2", AT_FDCWD, "hl3", 1 /* RENAME_NOREPLACE */);
	syscall(SYS_chmod, "c2", 0600);
	syscall(SYS_fchmodat, dfd, "o2", 0640);
	syscall(452 /* fchmodat2 */, dfd, "./o2", 0604, 0);
	syscall(SYS_truncate, "c2", 0);
	syscall(SYS_unlink, "c2");
	syscall(SYS_unlinkat, dfd, "sl", 0);
	syscall(SYS_mkdirat, dfd, "sub", 0700);
	syscall(SYS_unlinkat, dfd, "sub", AT_REMOVEDIR);
	syscall(SYS_rmdir, "d/.");
	syscall(SYS_link, "hl3", "hl4");
	syscall(SYS_symlink, "/abs/../target", "sl2");
	syscall(SYS_mkdir, "marker", 0755);
	return 0;
}
"""


def test_every_syscall_variant_exact(tracked, tmp_path, cc):
    wl = cc.source(FILEOPS_C, "h2_fileops")
    drops_before = tracked.cap.drop_counts()
    done = tracked.run([str(wl), str(tmp_path)])
    assert done.returncode == 0, done.stderr
    w, d = str(tmp_path), f"{tmp_path}/d"
    got = [(e.op, e.path, e.path2, e.syscall, e.mode, e.ret) for e in file_ops(tracked, tmp_path / "marker")]
    got = [g for g in got if g[0] != "read"]
    assert got == [
        ("mkdir", d, "", "mkdir", 0o750, 0),
        ("create", f"{d}/o2", "", "openat2", 0o600, got[1][5]),
        ("create", f"{w}/c", "", "creat", 0o644, got[2][5]),
        ("modify", f"{d}/o2", "", "open", -1, got[3][5]),
        ("symlink", "o2", f"{d}/sl", "symlinkat", -1, 0),
        ("link", f"{w}/c", f"{d}/hl", "linkat", -1, 0),
        ("rename", f"{w}/c", f"{w}/c2", "rename", -1, 0),
        ("rename", f"{d}/hl", f"{w}/hl2", "renameat", -1, 0),
        ("rename", f"{w}/hl2", f"{w}/hl3", "renameat2", -1, 0),
        ("chmod", f"{w}/c2", "", "chmod", 0o600, 0),
        ("chmod", f"{d}/o2", "", "fchmodat", 0o640, 0),
        ("chmod", f"{d}/o2", "", "fchmodat2", 0o604, 0),
        ("truncate", f"{w}/c2", "", "truncate", -1, 0),
        ("delete", f"{w}/c2", "", "unlink", -1, 0),
        ("delete", f"{d}/sl", "", "unlinkat", -1, 0),
        ("mkdir", f"{d}/sub", "", "mkdirat", 0o700, 0),
        ("rmdir", f"{d}/sub", "", "unlinkat", -1, 0),
        ("link", f"{w}/hl3", f"{w}/hl4", "link", -1, 0),
        ("symlink", "/abs/../target", f"{w}/sl2", "symlink", -1, 0),
    ]
    assert all(g[5] >= 0 for g in got[1:4])  # the opens returned fds
    renames = [e for e in tracked.events() if isinstance(e, FileOp) and e.op == "rename"]
    assert [e.flags for e in renames] == [0, 0, 1]
    drops = tracked.cap.drop_counts()
    assert {
        k: drops.get(k, 0) - drops_before.get(k, 0) for k in ("file_write_open", "file_read", "file_op")
    } == {
        "file_write_open": 0,
        "file_read": 0,
        "file_op": 0,
    }


def test_deep_cwd_flags_truncation_and_keeps_the_tail(tracked, tmp_path):
    deep = tmp_path.joinpath(*(["a"] * 140))
    deep.mkdir(parents=True)
    ops = sh(tracked, "echo x > leaf", deep, tmp_path / "m")
    (ev,) = [e for e in ops if e.op == "create"]
    assert ev.path_truncated is True and not ev.path_unresolved
    assert ev.path.endswith("/a/a/a/leaf") and str(deep).endswith(ev.path.removesuffix("/leaf"))


NONRESIDENT_C = r"""
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* unlink() a path whose bytes sit in a file mapping that was never touched: the copy at
 * sys_enter faults (no page-table entry yet), the probe must copy it again at sys_exit. */
int main(int argc, char **argv)
{
	int fd = open(argv[1], O_RDONLY);
	char *p = mmap(0, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return 2;
	syscall(SYS_unlink, p);
	syscall(SYS_mkdir, argv[2], 0755);
	return 0;
}
"""


def test_path_in_nonresident_page_is_copied_again_at_exit(tracked, tmp_path, cc):
    wl = cc.source(NONRESIDENT_C, "h2_nonresident")
    victim = tmp_path / "victim"
    victim.write_text("v")
    holder = tmp_path / "holder"
    holder.write_bytes(str(victim).encode() + b"\0")
    done = tracked.run([str(wl), str(holder), str(tmp_path / "m")])
    assert done.returncode == 0, done.stderr
    ops = file_ops(tracked, tmp_path / "m")
    assert [(e.op, e.path, e.ret, e.path_unresolved) for e in ops if e.op == "delete"] == [
        ("delete", str(victim), 0, False)
    ]
    assert not victim.exists()


def test_read_reported_again_after_exec_in_the_same_process(tracked, tmp_path):
    f = tmp_path / "secret"
    f.write_text("s")
    # the shell reads the file, then execs cat (same pid, new program) which reads it again
    ops = sh(
        tracked,
        f"(read x < secret; exec cat secret > /dev/null); mkdir {tmp_path}/m0",
        tmp_path,
        tmp_path / "m",
    )
    reads = [(e.pid, e.comm) for e in ops if e.op == "read" and e.path == str(f)]
    assert len(reads) == 2 and reads[0][0] == reads[1][0]
    assert [c for _, c in reads] == ["sh", "cat"]


def test_paths_cross_mounts(tracked, tmp_path):
    # /dev/shm is a tmpfs mounted on devtmpfs /dev: the cwd walk crosses two mounts
    name = f"h2-{os.getpid()}-{tmp_path.name}"
    try:
        ops = sh(tracked, f"echo x > {name}; rm {name}", Path("/dev/shm"), tmp_path / "m")
    finally:
        Path("/dev/shm", name).unlink(missing_ok=True)
    assert changes(ops) == [("create", f"/dev/shm/{name}", ""), ("delete", f"/dev/shm/{name}", "")]


def test_fd_op_on_unlinked_file_is_marked_deleted(tracked, tmp_path):
    code = "import os; fd = os.open('gone', os.O_RDWR | os.O_CREAT, 0o600); os.unlink('gone'); os.fchmod(fd, 0o640)"
    done = tracked.run([PY, "-c", code + f"; os.mkdir('{tmp_path}/m')"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ops = file_ops(tracked, tmp_path / "m")
    assert [(e.op, e.path) for e in ops if e.op != "read"] == [
        ("create", f"{tmp_path}/gone"),
        ("delete", f"{tmp_path}/gone"),
        ("chmod", f"{tmp_path}/gone (deleted)"),
    ]


def test_write_open_of_a_pipe_names_the_pseudo_file(tracked, tmp_path):
    # stdout is the harness's pipe: /dev/stdout -> /proc/self/fd/1 -> pipe, followed by open
    ops = sh(tracked, "echo x > /dev/stdout", tmp_path, tmp_path / "m")
    (ev,) = [e for e in ops if e.op != "read"]
    assert ev.op == "modify" and re.fullmatch(r"pipefs:\[\d+\]", ev.path), ev.path


def test_ftruncate_of_a_memfd_names_it(tracked, tmp_path):
    code = "import os; fd = os.memfd_create('payload'); os.ftruncate(fd, 4096)"
    done = tracked.run([PY, "-c", code + f"; os.mkdir('{tmp_path}/m')"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ops = file_ops(tracked, tmp_path / "m")
    assert [(e.op, e.path, e.syscall) for e in ops if e.op != "read"] == [
        ("truncate", "tmpfs:memfd:payload", "ftruncate")
    ]
