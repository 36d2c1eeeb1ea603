"""Record kinds and the common header layout, mirroring bpf/common.h.

Keep this file and `enum rec_kind` / `struct rec_hdr` in bpf/common.h in lock step:
the decoders trust these numbers blindly.
"""

from __future__ import annotations

import struct

# enum rec_kind: process domain 1..15, file 16..31, net 32..47.
K_FORK = 1
K_EXEC = 2
K_EXEC_FAILED = 3
K_EXIT = 4
K_BLIND_IO_URING = 5
K_BLIND_COMPAT = 6
K_NS = 7  # unshare/clone/clone3 with CLONE_NEW*, setns
K_MOUNT = 8  # mount, umount2, pivot_root, open_tree(_attr), move_mount, fsopen, fsmount, mount_setattr
K_FILE_FIRST = 16
K_FILE_LAST = 31
K_NET_FIRST = 32
K_NET_LAST = 47
K_MAX = 64

# Names of the process-domain kinds (counter keys). The file/net decode modules list
# theirs in their own KIND_NAMES dict, which logira.probes.decode merges.
KIND_NAMES: dict[int, str] = {
    K_FORK: "fork",
    K_EXEC: "exec",
    K_EXEC_FAILED: "exec_failed",
    K_EXIT: "exit",
    K_BLIND_IO_URING: "io_uring_setup",
    K_BLIND_COMPAT: "compat_syscall",
    K_NS: "namespace",
    K_MOUNT: "mount",
}

# struct rec_hdr: ts_ns, cgroup_id, pid, tid, ppid, uid, gid, kind, size, comm[16], run_cgroup_id
HDR = struct.Struct("<QQIIIIIHH16sQ")
HDR_SIZE = HDR.size
assert HDR_SIZE == 64, HDR_SIZE
