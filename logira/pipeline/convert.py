"""Kernel event -> stored Record, with the one-line summary from docs/architecture.md.

Pure functions: no I/O, no state. The session assigns `seq` and enriches `exe` from the
process tree afterwards; errno is derived from a negative `ret` here so every consumer
(rules, queries) sees the same value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from logira.model import execinfo
from logira.model.kernel import (
    AnyKernelEvent,
    BlindSpot,
    FileOp,
    NetOp,
    NsOp,
    ProcExec,
    ProcExecFailed,
    ProcExit,
    ProcFork,
)
from logira.model.paths import errno_name, is_pseudo, result_of
from logira.model.record import ExecData, FileData, NetData, ProcData, Record

SUMMARY_ARGV_MAX = 200


def exec_summary(argv: list[str], filename: str) -> str:
    """`exec <argv joined>`, capped at 200 characters of argv."""
    text = " ".join(argv) if argv else filename
    return "exec " + text[:SUMMARY_ARGV_MAX]


def file_summary(op: str, path: str, path2: str = "", errno: int = 0) -> str:
    """`file <op> <path>[ -> <path2>]`; a failed op says so: `file modify DENIED (EACCES) <path>`."""
    if errno:
        label = "DENIED" if result_of(errno) == "denied" else "FAILED"
        op = f"{op} {label} ({errno_name(errno)})"
    return f"file {op} {path}" + (f" -> {path2}" if path2 else "")


def net_summary(ev: NetOp) -> str:
    if ev.family == "unix":
        return f"net {ev.op} unix {ev.unix_path}"
    ip, port = ev.dst_ip, ev.dst_port
    if not ip and ev.op in ("bind", "listen"):
        ip, port = ev.src_ip, ev.src_port
    text = f"net {ev.op} {ev.proto} {ip}:{port}"
    if ev.op == "close":
        text += f" {ev.outcome} sent={ev.bytes} received={ev.bytes_received} {ev.duration_ns / 1e9:.3f}s"
    if ev.dns_qname:
        text += f" dns={ev.dns_qname}"
        if len(ev.dns_qnames) > 1:
            text += f" (+{len(ev.dns_qnames) - 1} more)"
    if ev.peer_mismatch:
        text += f" claimed={ev.claimed_dst_ip}:{ev.claimed_dst_port}"
    return text


def _exec(ev: ProcExec, run_id: str, seq: int) -> Record:
    script = execinfo.script_of(ev)
    kind = execinfo.exe_kind(ev, script)
    data = ExecData(filename=ev.filename, argv=ev.argv, argv_truncated=ev.argv_truncated, comm=ev.comm,
                    cwd=ev.cwd, tid=ev.tid, gid=ev.gid, cgroup_id=ev.cgroup_id, argv_cut=ev.argv_cut,
                    argv_omitted=ev.argv_omitted, argv_head_partial=ev.argv_head_partial,
                    argv_tail_partial=ev.argv_tail_partial, requested=ev.requested, script=script,
                    caller_argv=execinfo.caller_argv(ev),
                    interp=ev.interp, exe_kind=kind, fileless=execinfo.is_fileless(kind, script),
                    exe_uid=ev.exe_uid, exe_mode=ev.exe_mode, exe_writable=execinfo.exe_writable(ev),
                    exe_dev=ev.exe_dev, exe_ino=ev.exe_ino, fds=ev.fds, agent_markers=ev.env_markers,
                    agent_markers_truncated=ev.env_truncated)  # fmt: skip
    return Record(run_id=run_id, seq=seq, ts=ev.ts, type="exec", pid=ev.pid, ppid=ev.ppid, uid=ev.uid,
                  summary=exec_summary(ev.argv, ev.filename), data_json=data)  # fmt: skip


def _exec_failed(ev: ProcExecFailed, run_id: str, seq: int) -> Record:
    data = ExecData(filename=ev.filename, argv=ev.argv, argv_truncated=ev.argv_truncated, comm=ev.comm,
                    errno=ev.errno, tid=ev.tid, gid=ev.gid, cgroup_id=ev.cgroup_id)  # fmt: skip
    return Record(run_id=run_id, seq=seq, ts=ev.ts, type="exec", pid=ev.pid, ppid=ev.ppid, uid=ev.uid,
                  summary=f"exec-failed {ev.filename} errno={ev.errno}", data_json=data)  # fmt: skip


def _fork(ev: ProcFork, run_id: str, seq: int) -> Record:
    data = ProcData(op="fork", comm=ev.comm, child_pid=ev.child_pid)
    return Record(run_id=run_id, seq=seq, ts=ev.ts, type="proc", pid=ev.pid, ppid=ev.ppid, uid=ev.uid,
                  summary=f"fork {ev.child_pid}", data_json=data)  # fmt: skip


def _exit(ev: ProcExit, run_id: str, seq: int) -> Record:
    data = ProcData(
        op="exit", comm=ev.comm, exit_code=ev.exit_code, signal=ev.signal, core_dumped=ev.core_dumped
    )
    summary = f"exit signal={ev.signal}" if ev.signal else f"exit code={ev.exit_code}"
    return Record(run_id=run_id, seq=seq, ts=ev.ts, type="proc", pid=ev.pid, ppid=ev.ppid, uid=ev.uid,
                  summary=summary, data_json=data)  # fmt: skip


def _blindspot(ev: BlindSpot, run_id: str, seq: int) -> Record:
    data = ProcData(op=ev.kind, comm=ev.comm, syscall_nr=ev.syscall_nr)
    summary = ev.kind + (f" nr={ev.syscall_nr}" if ev.syscall_nr >= 0 else "")
    return Record(run_id=run_id, seq=seq, ts=ev.ts, type="proc", pid=ev.pid, ppid=ev.ppid, uid=ev.uid,
                  summary=summary, data_json=data)  # fmt: skip


def _nsop(ev: NsOp, run_id: str, seq: int) -> Record:
    ret = ev.ret
    data = ProcData(op=ev.op, comm=ev.comm, flags=ev.flags, namespaces=ev.namespaces, source=ev.source,
                    target=ev.target, fstype=ev.fstype, ret=ret, errno=-ret if ret < 0 else 0)  # fmt: skip
    return Record(run_id=run_id, seq=seq, ts=ev.ts, type="proc", pid=ev.pid, ppid=ev.ppid, uid=ev.uid,
                  summary=ns_summary(ev), data_json=data)  # fmt: skip


def ns_summary(ev: NsOp) -> str:
    """`<op> [ns=a,b] [<fstype>] [<source>] [-> <target>] [errno=N]`"""
    parts = [ev.op]
    if ev.namespaces:
        parts.append("ns=" + ",".join(ev.namespaces))
    if ev.fstype:
        parts.append(ev.fstype)
    if ev.source:
        parts.append(ev.source)
    if ev.target:
        parts.append("-> " + ev.target)
    if ev.ret < 0:
        parts.append(f"errno={-ev.ret}")
    return " ".join(parts)


CHANGED = "changed during the syscall"
REREAD = "read after the syscall"


def _kernel_doubt(ev: FileOp) -> str:
    """Why the kernel probe cannot vouch for the path string (docs/jsonl.md, path_unverified)."""
    if ev.path_changed:
        return CHANGED  # the caller's buffer differed at exit from the copy made at entry
    if ev.path_reread:
        return REREAD  # not resident at entry: copied at exit, after the caller could rewrite it
    return ""


def _file(ev: FileOp, run_id: str, seq: int) -> Record:
    ret = ev.ret
    err = -ret if ret < 0 else 0
    data = FileData(op=ev.op, path=ev.path, path2=ev.path2, syscall=ev.syscall, flags=ev.flags, mode=ev.mode,
                    ret=ret, errno=err, path_truncated=ev.path_truncated,
                    path_unresolved=ev.path_unresolved, comm=ev.comm, tid=ev.tid,
                    path_literal=ev.path_literal, path2_literal=ev.path2_literal, resolved=ev.resolved,
                    path_unverified=_kernel_doubt(ev),
                    dev=ev.dev, ino=ev.ino, mnt_ns=ev.mnt_ns, pseudo=ev.op != "read" and is_pseudo(ev.path2 or ev.path))  # fmt: skip
    summary = file_summary(ev.op, ev.path, ev.path2, err)
    return Record(run_id=run_id, seq=seq, ts=ev.ts, type="file", pid=ev.pid, ppid=ev.ppid, uid=ev.uid,
                  summary=summary, data_json=data)  # fmt: skip


def _net(ev: NetOp, run_id: str, seq: int) -> Record:
    ret = ev.ret
    data = NetData(op=ev.op, proto=ev.proto, family=ev.family, dst_ip=ev.dst_ip, dst_port=ev.dst_port,
                   src_ip=ev.src_ip, src_port=ev.src_port, unix_path=ev.unix_path, syscall=ev.syscall, ret=ret,
                   errno=-ret if ret < 0 else 0, bytes=ev.bytes, dns_qname=ev.dns_qname, dns_qtype=ev.dns_qtype,
                   dns_qnames=ev.dns_qnames, dns_response=ev.dns_response, dns_truncated=ev.dns_truncated,
                   peer_verified=ev.peer_verified, peer_mismatch=ev.peer_mismatch,
                   claimed_dst_ip=ev.claimed_dst_ip, claimed_dst_port=ev.claimed_dst_port, outcome=ev.outcome,
                   bytes_received=ev.bytes_received, bytes_acked=ev.bytes_acked, retransmits=ev.retransmits,
                   connect_ns=ev.connect_ns, duration_ns=ev.duration_ns, comm=ev.comm, tid=ev.tid)  # fmt: skip
    return Record(run_id=run_id, seq=seq, ts=ev.ts, type="net", pid=ev.pid, ppid=ev.ppid, uid=ev.uid,
                  summary=net_summary(ev), data_json=data)  # fmt: skip


# One dict lookup on the exact class instead of an isinstance chain: this runs for every event.
_CONVERTERS: dict[type, Callable[[Any, str, int], Record]] = {
    ProcExec: _exec,
    ProcExecFailed: _exec_failed,
    ProcFork: _fork,
    ProcExit: _exit,
    BlindSpot: _blindspot,
    NsOp: _nsop,
    FileOp: _file,
    NetOp: _net,
}


def convert(ev: AnyKernelEvent, run_id: str, seq: int) -> Record:
    """Build the Record for one kernel event."""
    fn = _CONVERTERS.get(type(ev))
    if fn is None:
        fn = next((f for cls, f in _CONVERTERS.items() if isinstance(ev, cls)), None)  # a subclass
        if fn is None:
            raise TypeError(f"unknown kernel event {type(ev).__name__}")
    return fn(ev, run_id, seq)


_DOMAINS: dict[type, str] = {FileOp: "file", NetOp: "net"}


def domain(ev: AnyKernelEvent) -> str:
    """The probe domain an event belongs to, for per-run --exec/--file/--net filtering."""
    return _DOMAINS.get(type(ev), "exec")
