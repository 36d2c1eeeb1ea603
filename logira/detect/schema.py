"""The rule file schema (what a YAML rule file may contain), as msgspec Structs.

Unknown keys are errors (`forbid_unknown_fields`), so a typo can never silently widen a
rule. Semantic checks (values of enums, regexes, globs, CIDRs, templates) are in
`validate.py`; the reference for every key is docs/rules.md.
"""

from __future__ import annotations

import msgspec

SEVERITY_ORDER = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
EVENT_TYPES = ("exec", "file", "net", "proc", "flow")
FLOW_VIAS = ("pipe", "image", "file", "args", "self")
EXE_KINDS = ("file", "fd", "loader", "memfd", "anon", "deleted")
FILE_OPS = ("create", "modify", "read", "delete", "rmdir", "rename", "chmod", "truncate", "link",
            "symlink", "mkdir")  # fmt: skip
NET_OPS = ("connect", "send", "bind", "listen", "accept", "established", "close")
# what a net condition without op/direction matches: connection records (established, close)
# only when a rule names them, so older rules do not fire twice per connection
NET_OPS_DEFAULT = ("connect", "send", "bind", "listen", "accept")
NET_OUTCOMES = ("established", "closed", "reset", "aborted", "refused", "timeout", "unreachable", "error")
PROC_OPS = ("io_uring_setup", "compat_syscall", "fork", "exit", "unshare", "clone", "clone3", "setns", "mount",
            "umount", "pivot_root", "open_tree", "open_tree_attr", "move_mount", "fsopen", "fsmount",
            "mount_setattr")  # fmt: skip
SCOPES = ("process", "tree", "siblings", "run")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    pass


FlagGroup = str | list[str]


class ExecCond(_Strict):
    """Conditions on an exec (or on one command of a shell script)."""

    program: list[str] = []  # globs on the basename, or on the full path when they contain "/"
    flags: list[FlagGroup] = []  # every group present; a group is alternatives ("-r" | "--recursive")
    args: list[FlagGroup] = []  # every group present among argv[1:]; tokens or globs
    paths: list[str] = []  # globs; some operand, resolved against cwd ("~" expanded), matches
    subcommand: list[str] = []  # first operand(s): "push", "system prune"
    script: list[str] = []  # globs on the first operand resolved against cwd (`sh /tmp/x`, `python3 x.py`)
    value_opts: list[str] = []  # options that consume the next token ("-p", "--output")
    # options that give the program and end the options: what follows is its arguments, never a
    # script operand (`python3 -m pytest tests/`, `bash -c CODE arg0`, `perl -e CODE file`)
    end_opts: list[str] = []
    posix: bool = False  # options end at the first operand (ssh: `ssh host ls -R` is not -R)
    cmdline: str = ""  # regex searched in argv joined by spaces
    shell: ShellCond | None = None  # only for `sh|bash|… -c SCRIPT`
    exe_kind: list[str] = []  # how the program was reached (EXE_KINDS; ExecData.exe_kind)
    fileless: bool | None = None  # the image or its script has no file on disk (memfd, deleted)
    truncated: bool | None = None  # argv was longer than the capture cap (head and tail kept)


class ShellCond(_Strict):
    pipe: list[ExecCond] = []  # commands matching these, in this order, in one pipeline
    command: ExecCond | None = None  # some command of the script matches
    regex: str = ""  # regex searched in the raw script


class ProcCond(_Strict):
    """Conditions on a process of the lineage (the event's own, its parent, an ancestor)."""

    program: list[str] = []
    cmdline: str = ""


class FileCond(_Strict):
    op: list[str] = []
    path: list[str] = []  # names the op touches: path; rename/link: path and path2; symlink: path2
    path2: list[str] = []  # rename/link/symlink new name only
    src: list[str] = []  # link/symlink: the existing file / target string (the `path` field)
    workspace: str = ""  # inside | outside ($WORKSPACE = the run's cwd)
    exec_bit: bool | None = None  # event's mode (chmod/create) has any of 0o111
    setuid: bool | None = None  # event's mode has setuid or setgid
    failed: bool | None = None  # None: either; True: only failed attempts; False: only successes
    unverified: list[str] = []  # globs on FileData.path_unverified (the reason); ["*"]: any unverified name


class NetCond(_Strict):
    op: list[str] = []
    direction: str = ""  # outbound (connect, send) | inbound (bind, listen, accept)
    proto: list[str] = []
    family: list[str] = []
    port: list[int | str] = []  # remote port (local port for bind/listen); ranges "6660-6669"
    dst: list[str] = []  # CIDRs, addresses, keywords public/private/loopback/link_local/any
    src: list[str] = []  # local address (bind/listen/accept)
    dns: list[str] = []  # globs on the DNS query name (lower-case, no trailing dot)
    dns_label_min: int = 0  # some label at least this long
    dns_name_min: int = 0  # whole name at least this long
    failed: bool | None = None
    # the user buffer named another peer than the kernel used (connect/send): any kind, or one of
    # "socket" (differs from the socket's peer), "changed" (rewritten while the syscall ran)
    peer_mismatch: bool | None = None
    outcome: list[str] = []  # established/close records: NET_OUTCOMES
    bytes_min: int = 0  # this record's bytes (close: bytes sent on the connection)
    run_bytes_min: int = 0  # close: bytes the run sent to this dst_ip so far, this connection included


class FlowCond(_Strict):
    """A data flow (detect/flow.py): a program whose code came from network-fed data."""

    via: list[str] = []  # FLOW_VIAS: pipe | image | file | args | self
    into: ExecCond | None = None  # the consumer's exec (the program that ran the code)
    source: ExecCond | None = None  # the producer's exec (the process that reached the network)


class ProcOpCond(_Strict):
    op: list[str] = []


class When(_Strict):
    """One event condition: exactly one type block, plus optional lineage conditions."""

    exec: ExecCond | None = None
    file: FileCond | None = None
    net: NetCond | None = None
    proc: ProcOpCond | None = None
    flow: FlowCond | None = None
    process: ProcCond | None = None
    parent: ProcCond | None = None
    ancestor: ProcCond | None = None
    # the process that last created or wrote the event's file (file events: the path; exec: the
    # program, or a script operand); no match when the run did not see it written (docs/rules.md)
    writer: ProcCond | None = None


class Sequence(_Strict):
    steps: list[When | list[When]]  # a step may list alternatives
    within: float = 60.0  # seconds from the first step to the last
    scope: str = "siblings"  # process | tree | siblings | run
    same: str = ""  # "path": the file path / exec filename must be equal in every step
    max_pending: int = 256  # partial chains kept per rule (oldest dropped and counted)


class Rule(_Strict):
    id: str
    title: str
    severity: str
    category: str
    description: str
    message: str
    tags: list[str] = []
    when: When | list[When] | None = None
    sequence: Sequence | None = None
    except_: list[When] = msgspec.field(default_factory=list, name="except")
    dedup: list[str] = []  # report once per distinct value tuple of these message fields
    enabled: bool = True
    override: bool = False
