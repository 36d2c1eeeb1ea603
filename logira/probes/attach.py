"""Extra attach points: programs that serve several syscall tracepoints.

The kernel verifies every loaded program on its own, so N identical exit programs cost N
verifications at start-up. Where the handler is the same (every `sys_exit_*` tracepoint
has the same layout, and the stash made at sys_enter says which syscall it was), the BPF
object defines ONE program on its section's tracepoint and the loader attaches it to the
others listed here as well. A name here that the object lacks is a build mismatch.
"""

from __future__ import annotations

import platform

_PATH_OPS = (
    "unlinkat", "rmdir", "rename", "renameat", "renameat2", "chmod", "fchmod", "fchmodat",
    "fchmodat2", "truncate", "ftruncate", "link", "linkat", "symlink", "symlinkat", "mkdir",
    "mkdirat", "mknod", "mknodat",
)  # fmt: skip

# namespace / mount syscalls besides unshare (umount2's tracepoint is named "umount")
_NS_MOUNT_OPS = (
    "clone", "clone3", "setns", "mount", "umount", "pivot_root", "open_tree", "open_tree_attr",
    "move_mount", "fsopen", "fsmount", "mount_setattr",
)  # fmt: skip

# program name -> tracepoints ("category/name") it is attached to besides its own section
EXTRA_TRACEPOINTS: dict[str, tuple[str, ...]] = {
    # bpf/file.bpf.c: file_exit_op is on sys_exit_unlink
    "file_exit_op": tuple(f"syscalls/sys_exit_{op}" for op in _PATH_OPS),
    # bpf/file.bpf.c: file_exit_open is on sys_exit_open
    "file_exit_open": ("syscalls/sys_exit_openat", "syscalls/sys_exit_openat2", "syscalls/sys_exit_creat"),
    # bpf/exec.bpf.c: on_exit_execve is on sys_exit_execve
    "on_exit_execve": ("syscalls/sys_exit_execveat",),
    # bpf/nsmount.h: enter programs by argument count, one exit program for all
    "on_enter_ns1": ("syscalls/sys_enter_clone", "syscalls/sys_enter_clone3"),
    "on_enter_ns2": ("syscalls/sys_enter_umount", "syscalls/sys_enter_pivot_root", "syscalls/sys_enter_fsopen"),
    "on_enter_ns3": ("syscalls/sys_enter_fsmount",),
    "on_enter_ns5": ("syscalls/sys_enter_move_mount", "syscalls/sys_enter_open_tree_attr",
                     "syscalls/sys_enter_mount_setattr"),
    "on_exit_nsmount": tuple(f"syscalls/sys_exit_{s}" for s in _NS_MOUNT_OPS),
}

# program name -> domain whose object does the same job more cheaply on x86-64: the program
# is not attached while that domain is loaded (bpf/dnsfds.h: exec's raw sys_enter program
# forgets closed DNS fds, so net's sys_enter_close tracepoint program is not needed)
REPLACED_ON_X86: dict[str, str] = {"net_enter_close": "exec"}


def skipped(prog_name: str, domains: tuple[str, ...] | list[str]) -> bool:
    """True if `prog_name` is not attached because a loaded domain does its job."""
    by = REPLACED_ON_X86.get(prog_name)
    return by is not None and by in domains and platform.machine() == "x86_64"
