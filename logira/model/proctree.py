"""The process tree of one run, built from exec/proc records.

Used by the daemon to enrich file/net records with the process's exe, by detection for
lineage conditions and evidence, and by retro-hunts over stored runs. pids can be reused
over a long run; the tree keeps the newest process for a pid and forgets exited ones only
when the pid shows up again.
"""

from __future__ import annotations

import msgspec

from logira.model.execinfo import trusted_image
from logira.model.record import ExecData, LineageEntry, ProcData, Record


class ProcInfo(msgspec.Struct, kw_only=True):
    pid: int
    ppid: int = 0
    exe: str = ""
    argv: list[str] = []
    cwd: str = ""
    comm: str = ""
    uid: int = 0
    start_ts: int = 0
    exec_seq: int = 0  # seq of the exec record that gave this process its image
    exit_ts: int = 0
    exit_code: int | None = None
    exit_signal: int = 0
    script: str = ""  # the script its exec was asked to run (ExecData.script)
    exe_kind: str = ""
    trusted: bool = False  # the image is a real, system-owned file: its name may grant exceptions


class ProcessTree:
    def __init__(self) -> None:
        self._procs: dict[int, ProcInfo] = {}

    def __len__(self) -> int:
        return len(self._procs)

    def get(self, pid: int) -> ProcInfo | None:
        return self._procs.get(pid)

    def all(self) -> list[ProcInfo]:
        return list(self._procs.values())

    def observe(self, rec: Record) -> None:
        data = rec.data_json
        if rec.type == "exec" and isinstance(data, ExecData):
            if data.errno:
                return
            info = self._procs.get(rec.pid)
            if info is None or info.exit_ts:
                info = ProcInfo(pid=rec.pid, start_ts=rec.ts)
                self._procs[rec.pid] = info
            info.ppid = rec.ppid or info.ppid
            info.exe = data.filename
            info.argv = data.argv
            info.cwd = data.cwd
            info.comm = data.comm
            info.uid = rec.uid
            info.exec_seq = rec.seq
            info.script = data.script
            info.exe_kind = data.exe_kind
            info.trusted = trusted_image(data.exe_kind, data.fileless, data.exe_writable)
        elif rec.type == "proc" and isinstance(data, ProcData):
            if data.op == "fork":
                parent = self._procs.get(rec.pid)
                self._procs[data.child_pid] = ProcInfo(
                    pid=data.child_pid,
                    ppid=rec.pid,
                    exe=parent.exe if parent else data.exe,
                    argv=list(parent.argv) if parent else [],
                    cwd=parent.cwd if parent else "",
                    comm=data.comm,
                    uid=rec.uid,
                    start_ts=rec.ts,
                    script=parent.script if parent else "",
                    exe_kind=parent.exe_kind if parent else "",
                    trusted=parent.trusted if parent else False,
                )
            elif data.op == "exit":
                info = self._procs.get(rec.pid)
                if info is not None:
                    info.exit_ts = rec.ts
                    info.exit_code = data.exit_code
                    info.exit_signal = data.signal
        elif rec.pid and rec.pid not in self._procs:
            # first sight of a process that was already running when the run started
            self._procs[rec.pid] = ProcInfo(pid=rec.pid, ppid=rec.ppid, uid=rec.uid, start_ts=rec.ts)

    def exe(self, pid: int) -> str:
        info = self._procs.get(pid)
        return info.exe if info else ""

    def ancestors(self, pid: int, max_depth: int = 16) -> list[ProcInfo]:
        """`pid` first, then its parent, grandparent... as far as the run knows them."""
        out: list[ProcInfo] = []
        seen: set[int] = set()
        cur = self._procs.get(pid)
        while cur is not None and len(out) < max_depth and cur.pid not in seen:
            out.append(cur)
            seen.add(cur.pid)
            cur = self._procs.get(cur.ppid) if cur.ppid else None
        return out

    def lineage(self, pid: int, max_depth: int = 16) -> list[LineageEntry]:
        return [
            LineageEntry(pid=p.pid, exe=p.exe, argv=list(p.argv), cwd=p.cwd)
            for p in self.ancestors(pid, max_depth)
        ]

    def descendants(self, pid: int) -> set[int]:
        children: dict[int, list[int]] = {}
        for p in self._procs.values():
            children.setdefault(p.ppid, []).append(p.pid)
        out: set[int] = set()
        stack = [pid]
        while stack:
            for c in children.get(stack.pop(), []):
                if c not in out and c != pid:
                    out.add(c)
                    stack.append(c)
        return out
