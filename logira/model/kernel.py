"""Typed kernel events: what the probes decode out of the ring buffer.

Every event carries the common process header. `ts` is wall-clock UTC nanoseconds,
converted from the kernel's CLOCK_MONOTONIC stamp in user space; `mono_ns` keeps the
raw stamp so events of one run can be ordered exactly.
"""

from __future__ import annotations

import msgspec


class KernelEvent(msgspec.Struct, kw_only=True):
    ts: int
    mono_ns: int
    cgroup_id: int  # the task's own v2 cgroup
    run_cgroup_id: int  # its ancestor at the run level: identifies the run
    pid: int  # tgid
    tid: int
    ppid: int  # real_parent->tgid
    uid: int
    gid: int
    comm: str


class ProcFork(KernelEvent, kw_only=True, tag="fork"):
    """A new process (threads are not reported). `pid` is the parent."""

    child_pid: int


class ProcExec(KernelEvent, kw_only=True, tag="exec"):
    """A successful exec. `filename` is the absolute path of the binary actually run.

    When argv was longer than the capture cap, `argv` holds its head and its tail:
    `argv[:argv_cut]` is the head, `argv[argv_cut:]` the tail, `argv_omitted` bytes are
    missing between them; `argv_head_partial` says `argv[argv_cut-1]` is only the start of an
    argument, `argv_tail_partial` that `argv[argv_cut]` is only the end of one.
    """

    filename: str
    argv: list[str]
    argv_truncated: bool = False
    cwd: str = ""
    cwd_truncated: bool = False
    old_pid: int = 0  # tid that called exec when it was not the thread-group leader
    argv_cut: int = 0
    argv_omitted: int = 0
    argv_head_partial: bool = False
    argv_tail_partial: bool = False
    requested: str = ""  # bprm->filename: the name the kernel was asked to run, as given
    interp: str = ""  # bprm->interp when it differs (#! script): the interpreter line's path
    fd_path: str = ""  # real path of the fd exec'd through (/dev/fd/N, AT_EMPTY_PATH, dirfd)
    fd_path_is_dir: bool = False  # fd_path is the directory a relative name was resolved in
    caller_argv0: str = ""  # #! scripts: the argv[0] the caller passed (the new image's argv lacks it)
    exe_uid: int = -1  # inode of the binary that ran: owner, group, mode, link count, identity
    exe_gid: int = -1
    exe_mode: int = -1
    exe_nlink: int = -1
    exe_dev: int = 0
    exe_ino: int = 0
    fds: dict[int, str] = {}  # fd -> "pipe:<ino>:r|w", "fifo:<dev>:<ino>:r|w", fd 0/1 also "file:…", "tty:…"
    fds_more: bool = False  # more pipe fds than the record holds
    env_markers: dict[str, str] = {}  # agent marker variables found in the environment at exec
    env_truncated: bool = False  # the bounded scan stopped before the end, or a value was cut


class ProcExecFailed(KernelEvent, kw_only=True, tag="exec_failed"):
    """An exec attempt that failed. `filename` is as requested (made absolute when relative)."""

    filename: str
    argv: list[str] = []
    argv_truncated: bool = False
    errno: int


class ProcExit(KernelEvent, kw_only=True, tag="exit"):
    """The last thread of a process exited."""

    exit_code: int  # valid when signal == 0
    signal: int = 0
    core_dumped: bool = False


# File ops. `op` is one of FILE_OPS.
FILE_OPS = (
    "create",  # open/creat that created the file (FMODE_CREATED)
    "modify",  # open of an existing file with write intent (O_WRONLY/O_RDWR/O_TRUNC)
    "read",  # read-only open, deduplicated in the kernel per (process, file)
    "delete",  # unlink/unlinkat
    "rmdir",
    "rename",  # path -> path2
    "chmod",  # mode = new mode
    "truncate",
    "link",  # hard link: path2 is the new name, path the existing file
    "symlink",  # path2 is the new link, path the target string as given
    "mkdir",
)


class FileOp(KernelEvent, kw_only=True, tag="file"):
    op: str
    path: str
    path2: str = ""
    syscall: str = ""
    flags: int = 0  # open flags / rename flags / at-flags
    mode: int = -1  # chmod/mkdir/open mode; -1 when not applicable
    ret: int = 0  # fd or 0 on success, -errno on failure
    path_truncated: bool = False
    path_unresolved: bool = False  # relative path whose base could not be resolved in the kernel
    path_changed: bool = False  # the user string changed while the kernel used it (TOCTOU race)
    path_reread: bool = False  # the string could only be read after the syscall (not resident at entry)
    path_literal: str = ""  # the path as the caller wrote it, when an alias made it differ
    path2_literal: str = ""
    resolved: str = ""  # how an alias was resolved: "kernel" (exact) | "receipt" (can race) | ""
    dev: int = 0  # st_dev / st_ino of the file acted on, when the kernel had its inode
    ino: int = 0
    mnt_ns: int = 0  # inode number of the task's mount namespace (the names are in it)


NET_OPS = ("connect", "send", "bind", "listen", "accept", "established", "close")
# close outcomes: closed | reset (RST from the peer) | aborted (this end reset it, or closed it
# before the handshake) | refused | timeout | unreachable | error; established records say
# "established"
NET_OUTCOMES = ("established", "closed", "reset", "aborted", "refused", "timeout", "unreachable", "error")


class NetOp(KernelEvent, kw_only=True, tag="net"):
    op: str
    family: str  # inet | inet6 | unix | other
    proto: str  # tcp | udp | raw | unix | other
    dst_ip: str = ""  # remote address (peer for accept)
    dst_port: int = 0
    src_ip: str = ""  # local address (bind/listen/accept)
    src_port: int = 0
    unix_path: str = ""  # "@name" for abstract sockets
    syscall: str = ""
    ret: int = 0  # 0 / fd / bytes on success, -errno on failure (-115 = EINPROGRESS)
    bytes: int = 0
    dns_qname: str = ""  # query name when the payload to port 53 parsed as DNS
    dns_qtype: int = 0
    dns_qnames: list[str] = []  # every question's name when the message had several
    dns_response: bool = False  # the QR bit was set (a "response" sent to port 53)
    dns_truncated: bool = False  # the captured bytes ended inside the message: names are prefixes
    # connect/send: dst read from the kernel socket (True) or from user memory (False)
    peer_verified: bool = False
    peer_mismatch: str = ""  # "socket": user memory named another peer; "changed": rewritten mid-call
    claimed_dst_ip: str = ""  # what user memory named, when peer_mismatch is set
    claimed_dst_port: int = 0
    # established/close (TCP connections of the run, reported from the socket's state changes)
    outcome: str = ""  # NET_OUTCOMES
    bytes_received: int = 0  # close: tcp_sock.bytes_received (bytes: bytes_sent)
    bytes_acked: int = 0
    retransmits: int = 0
    connect_ns: int = 0  # SYN_SENT -> ESTABLISHED
    duration_ns: int = 0  # connect (or accept) -> this record


NS_OPS = (
    "unshare", "clone", "clone3", "setns",  # kind "namespace"
    "mount", "umount", "pivot_root", "open_tree", "open_tree_attr", "move_mount", "fsopen", "fsmount",
    "mount_setattr",  # kind "mount"
)  # fmt: skip


class NsOp(KernelEvent, kw_only=True, tag="nsop"):
    """A namespace or mount change (or attempt) of a tracked process.

    `namespaces`: the CLONE_NEW* flags by name (unshare/clone/clone3; setns: nstype).
    mount: source/target/fstype; umount: target; pivot_root: source=new_root, target=put_old;
    open_tree/mount_setattr: source=path; move_mount: source=from_path, target=to_path;
    fsopen: fstype=fsname; setns: source = what the fd really is (e.g. "nsfs:[4026531840]").
    Relative paths are joined to the directory they were resolved in (dirfd or cwd).
    """

    op: str  # one of NS_OPS
    flags: int = 0
    namespaces: list[str] = []
    source: str = ""
    target: str = ""
    fstype: str = ""
    fd: int = -100  # dirfd / fd argument (AT_FDCWD = -100 when none)
    ret: int = 0  # >= 0 success (clone: child pid, open_tree/fsopen/fsmount: the new fd), else -errno


class BlindSpot(KernelEvent, kw_only=True, tag="blindspot"):
    """A tracked process used a facility the syscall probes cannot see into."""

    kind: str  # io_uring_setup | compat_syscall
    syscall_nr: int = -1


AnyKernelEvent = ProcFork | ProcExec | ProcExecFailed | ProcExit | FileOp | NetOp | NsOp | BlindSpot
