"""Kernel event -> stored Record, with the one-line summary from docs/architecture.md.

Pure functions: no I/O, no state. The session assigns `seq` and enriches `exe` from the
process tree afterwards; errno is derived from a negative `ret` here so every consumer
(rules, queries) sees the same value.
"""

from __future__ import annotations

from logira.model.kernel import (
    AnyKernelEvent,
    BlindSpot,
    FileOp,
    NetOp,
    ProcExec,
    ProcExecFailed,
    ProcExit,
    ProcFork,
)
from logira.model.record import ExecData, FileData, NetData, ProcData, Record

SUMMARY_ARGV_MAX = 200


def _errno(ret: int) -> int:
    return -ret if ret < 0 else 0


def exec_summary(argv: list[str], filename: str) -> str:
    """`exec <argv joined>`, capped at 200 characters of argv."""
    text = " ".join(argv) if argv else filename
    return "exec " + text[:SUMMARY_ARGV_MAX]


def file_summary(op: str, path: str, path2: str = "") -> str:
    return f"file {op} {path}" + (f" -> {path2}" if path2 else "")


def net_summary(ev: NetOp) -> str:
    if ev.family == "unix":
        return f"net {ev.op} unix {ev.unix_path}"
    ip, port = ev.dst_ip, ev.dst_port
    if not ip and ev.op in ("bind", "listen"):
        ip, port = ev.src_ip, ev.src_port
    text = f"net {ev.op} {ev.proto} {ip}:{port}"
    if ev.dns_qname:
        text += f" dns={ev.dns_qname}"
    return text


def _envelope(ev: AnyKernelEvent, run_id: str, seq: int) -> dict[str, object]:
    return {"run_id": run_id, "seq": seq, "ts": ev.ts, "pid": ev.pid, "ppid": ev.ppid, "uid": ev.uid}


def convert(ev: AnyKernelEvent, run_id: str, seq: int) -> Record:
    """Build the Record for one kernel event."""
    env = _envelope(ev, run_id, seq)
    if isinstance(ev, ProcExec):
        data = ExecData(
            filename=ev.filename,
            argv=ev.argv,
            argv_truncated=ev.argv_truncated,
            comm=ev.comm,
            cwd=ev.cwd,
            tid=ev.tid,
            gid=ev.gid,
            cgroup_id=ev.cgroup_id,
        )
        return Record(**env, type="exec", summary=exec_summary(ev.argv, ev.filename), data_json=data)
    if isinstance(ev, ProcExecFailed):
        data = ExecData(
            filename=ev.filename,
            argv=ev.argv,
            argv_truncated=ev.argv_truncated,
            comm=ev.comm,
            errno=ev.errno,
            tid=ev.tid,
            gid=ev.gid,
            cgroup_id=ev.cgroup_id,
        )
        return Record(
            **env, type="exec", summary=f"exec-failed {ev.filename} errno={ev.errno}", data_json=data
        )
    if isinstance(ev, ProcFork):
        pdata = ProcData(op="fork", comm=ev.comm, child_pid=ev.child_pid)
        return Record(**env, type="proc", summary=f"fork {ev.child_pid}", data_json=pdata)
    if isinstance(ev, ProcExit):
        pdata = ProcData(
            op="exit", comm=ev.comm, exit_code=ev.exit_code, signal=ev.signal, core_dumped=ev.core_dumped
        )
        summary = f"exit signal={ev.signal}" if ev.signal else f"exit code={ev.exit_code}"
        return Record(**env, type="proc", summary=summary, data_json=pdata)
    if isinstance(ev, BlindSpot):
        pdata = ProcData(op=ev.kind, comm=ev.comm, syscall_nr=ev.syscall_nr)
        summary = ev.kind + (f" nr={ev.syscall_nr}" if ev.syscall_nr >= 0 else "")
        return Record(**env, type="proc", summary=summary, data_json=pdata)
    if isinstance(ev, FileOp):
        fdata = FileData(
            op=ev.op,
            path=ev.path,
            path2=ev.path2,
            syscall=ev.syscall,
            flags=ev.flags,
            mode=ev.mode,
            ret=ev.ret,
            errno=_errno(ev.ret),
            path_truncated=ev.path_truncated,
            path_unresolved=ev.path_unresolved,
            comm=ev.comm,
            tid=ev.tid,
        )
        return Record(**env, type="file", summary=file_summary(ev.op, ev.path, ev.path2), data_json=fdata)
    if isinstance(ev, NetOp):
        ndata = NetData(
            op=ev.op,
            proto=ev.proto,
            family=ev.family,
            dst_ip=ev.dst_ip,
            dst_port=ev.dst_port,
            src_ip=ev.src_ip,
            src_port=ev.src_port,
            unix_path=ev.unix_path,
            syscall=ev.syscall,
            ret=ev.ret,
            errno=_errno(ev.ret),
            bytes=ev.bytes,
            dns_qname=ev.dns_qname,
            dns_qtype=ev.dns_qtype,
            comm=ev.comm,
            tid=ev.tid,
        )
        return Record(**env, type="net", summary=net_summary(ev), data_json=ndata)
    raise TypeError(f"unknown kernel event {type(ev).__name__}")


def domain(ev: AnyKernelEvent) -> str:
    """The probe domain an event belongs to, for per-run --exec/--file/--net filtering."""
    if isinstance(ev, FileOp):
        return "file"
    if isinstance(ev, NetOp):
        return "net"
    return "exec"
