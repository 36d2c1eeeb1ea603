"""Data flow between the processes of a run: who feeds code to whom.

Download-and-run has endless spellings (`curl … | sh`, `{ curl …; } | $SHELL`, `bash <(curl
…)`, `curl … | base64 -d | sh`, `curl -o x; sh x`, `curl … | xargs sh -c`…); what they share is
structure, and the kernel records the structure: the pipe inode on each fd at exec (with the
end's direction), which processes reached the network, which files they wrote, and what
each interpreter was asked to run. This tracker follows it:

- a process is *tainted* once it made an outbound inet connect, sent to a DNS server, or
  accepted a connection (it reads remote data); a process fed by a tainted pipe is tainted
  too (decoders, `tee`, `gunzip` carry the data on), transitively;
- a file written by a tainted process is *downloaded* (a rename carries it along);
- a `Flow` is reported when an exec'd program's CODE comes from tainted data:
  `pipe`  - it reads its program from stdin or /dev/fd/N (`sh`, `bash -s`, `python3 -`,
            `bash /dev/fd/63`) and that fd is a pipe a tainted process writes;
  `image` - its image or the #! script the kernel was asked to run is a downloaded file;
  `file`  - its first operand (the script of `sh x.sh`, `python3 x.py`), or the regular file on
            its stdin when it reads its program from there (`sh < x.sh`), is a downloaded file;
  files are known by path and by identity (dev, inode), so an alias or a hard link of a
  downloaded file is still one;
  `args`  - it runs inline code (`-c`) and its parent (≤ 3 levels) is a non-shell process
            fed by a tainted pipe (`… | xargs sh -c`);
  `self`  - it runs inline code (`-c`/`-e`) and reached the network itself (an interpreter
            fetching and exec'ing code).
  The rules (`when: flow:`) decide which consumers matter (shells, interpreters).

Either order of events works: a consumer exec'd before its producer reached the network is
reported when the producer does. State is bounded (`MAX_*`); what is forgotten is counted
in `dropped` (it reaches the run's meta like partial sequence chains).
"""

from __future__ import annotations

import posixpath
from collections import OrderedDict

import msgspec

from logira.model.record import ExecData, FileData, NetData, ProcData, Record

MAX_PROCS = 8192
MAX_PIPES = 8192
MAX_FILES = 4096
MAX_WRITES = 32  # files remembered per not-yet-tainted process
MAX_PROPAGATION = 256  # processes visited per taint event

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox", "fish"})
_INLINE = {"-c", "-e", "-E", "-r"}  # sh/bash/python -c, perl/ruby/node -e, php -r
_STDIN_OPERANDS = frozenset({"-", "/dev/stdin", "/proc/self/fd/0", "/dev/fd/0"})
_VALUE_OPTS = frozenset({"-o", "-O", "-W", "-X", "-m", "-I", "-M", "--rcfile", "--init-file"})


class Flow(msgspec.Struct, kw_only=True):
    via: str  # pipe | image | file | args | self
    consumer_pid: int
    consumer: ExecData  # the exec whose code came from tainted data
    consumer_seq: int
    producer_pid: int  # the process that reached the network (the start of the chain)
    producer: ExecData | None = None  # its exec, when known
    producer_seq: int = 0  # the record that tainted the producer (connect / DNS send / accept)
    path: str = ""  # file flows: the downloaded file
    pipe: str = ""  # pipe flows: the pipe identity


class _Proc:
    __slots__ = ("data", "exec_seq", "fed_by", "origin", "ppid", "program", "reads", "taint_seq", "tainted",
                 "writes")  # fmt: skip

    def __init__(self, ppid: int) -> None:
        self.ppid = ppid
        self.data: ExecData | None = None
        self.exec_seq = 0
        self.reads: dict[int, str] = {}  # fd -> pipe id (read end)
        self.writes: set[str] = set()  # pipe ids (write end)
        self.tainted = False
        self.taint_seq = 0
        self.fed_by = 0  # pid of the tainted writer feeding it (0: it reached the network itself)
        self.origin = 0  # pid of the process that reached the network, at the start of the chain
        self.program: tuple[str, str] = ("", "")  # where its code comes from (see program_source)


def _base(path: str) -> str:
    return path.rpartition("/")[2]


def program_source(d: ExecData) -> tuple[str, str]:
    """What code an exec runs: ("inline", ""), ("stdin", ""), ("fd", "N"), ("file", path),
    ("module", name), or ("", "")."""
    argv = d.argv
    if not argv:
        return ("", "")
    name = _base(d.filename)
    if name == "busybox" or (_base(argv[0]) == "busybox" and len(argv) > 1):
        argv = argv[1:]
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break
        if a in _INLINE or (a[0] == "-" and not a.startswith("--") and "c" in a[1:] and name in SHELLS):
            return ("inline", "")
        if a == "-s" and name in SHELLS:
            return ("stdin", "")
        if a.startswith("-m") and name.startswith("python"):  # `python3 -m json.tool`: a module's code
            return ("module", a[2:] or (argv[i + 1] if i + 1 < len(argv) else ""))
        i += 2 if a in _VALUE_OPTS else 1
    if i >= len(argv):
        return ("stdin", "")
    op = argv[i]
    if op in _STDIN_OPERANDS:
        return ("stdin", "")
    for pre in ("/dev/fd/", "/proc/self/fd/"):
        if op.startswith(pre) and op[len(pre) :].isdigit():
            return ("fd", op[len(pre) :])
    if d.script:
        return ("file", d.script)
    return ("file", posixpath.normpath(posixpath.join(d.cwd or "/", op)))


class FlowTracker:
    def __init__(self) -> None:
        self.procs: OrderedDict[int, _Proc] = OrderedDict()
        self.readers: OrderedDict[str, set[int]] = OrderedDict()
        self.writers: OrderedDict[str, set[int]] = OrderedDict()
        self.downloaded: OrderedDict[str, tuple[int, int]] = OrderedDict()  # path or "dev:ino" -> (pid, seq)
        self.pending_writes: dict[int, list[str]] = {}  # paths and "@dev:ino" identities
        self.reported: set[tuple[int, int, str]] = set()
        self.dropped = 0

    # -- bounded containers --------------------------------------------------------------
    def _proc(self, pid: int, ppid: int = 0) -> _Proc:
        p = self.procs.get(pid)
        if p is None:
            p = self.procs[pid] = _Proc(ppid)
            if len(self.procs) > MAX_PROCS:
                self.procs.popitem(last=False)
                self.dropped += 1
        return p

    def _add(self, table: OrderedDict[str, set[int]], key: str, pid: int) -> None:
        s = table.get(key)
        if s is None:
            s = table[key] = set()
            if len(table) > MAX_PIPES:
                table.popitem(last=False)
                self.dropped += 1
        s.add(pid)

    # -- events ----------------------------------------------------------------------------
    def observe(self, rec: Record) -> list[Flow]:
        d = rec.data_json
        if rec.type == "exec" and isinstance(d, ExecData):
            return [] if d.errno else self._exec(rec, d)
        if rec.type == "net" and isinstance(d, NetData):
            return self._net(rec, d)
        if rec.type == "file" and isinstance(d, FileData):
            return self._file(rec, d)
        if rec.type == "proc" and isinstance(d, ProcData) and d.op == "fork":
            parent = self.procs.get(rec.pid)
            child = self._proc(d.child_pid, rec.pid)
            if parent is not None:  # fds are inherited: so is being fed
                child.reads, child.writes = dict(parent.reads), set(parent.writes)
                child.tainted, child.taint_seq, child.fed_by = parent.tainted, parent.taint_seq, parent.fed_by
                child.origin = parent.origin
                for pipe in child.writes:
                    self._add(self.writers, pipe, d.child_pid)
                for pipe in child.reads.values():
                    self._add(self.readers, pipe, d.child_pid)
        return []

    def _exec(self, rec: Record, d: ExecData) -> list[Flow]:
        p = self._proc(rec.pid, rec.ppid)
        p.ppid = rec.ppid or p.ppid
        p.data, p.exec_seq = d, rec.seq
        p.program = program_source(d)
        p.reads, p.writes = {}, set()
        # a new image: what the old one fetched is gone; being fed is re-derived from its fds
        p.tainted, p.fed_by, p.taint_seq = False, 0, 0
        for fd, ident in d.fds.items():
            kind = ident.partition(":")[0]
            if kind not in ("pipe", "fifo"):
                continue
            pipe, _, mode = ident.rpartition(":")
            if "r" in mode:
                p.reads[int(fd)] = pipe
                self._add(self.readers, pipe, rec.pid)
            if "w" in mode:
                p.writes.add(pipe)
                self._add(self.writers, pipe, rec.pid)
        out: list[Flow] = []
        # fed by an already tainted writer?
        for pipe in p.reads.values():
            for w in self.writers.get(pipe, ()):
                wp = self.procs.get(w)
                if wp is not None and wp.tainted and w != rec.pid:
                    # the evidence is where the taint began (the network record), not this exec
                    out += self._feed(rec.pid, w, pipe, wp.taint_seq or rec.seq)
                    break
        out += self._check_consumer(rec.pid)
        return out

    def _net(self, rec: Record, d: NetData) -> list[Flow]:
        if d.family not in ("inet", "inet6"):
            return []
        if d.op == "connect" and d.ret < 0 and d.ret != -115:
            return []  # refused / failed: nothing was read
        if d.op == "send" and d.dst_port != 53:
            return []
        if d.op not in ("connect", "send", "accept", "established"):
            return []
        return self._taint(rec.pid, 0, rec.seq)

    def _file(self, rec: Record, d: FileData) -> list[Flow]:
        if d.errno or d.ret < 0:
            return []
        if d.op in ("create", "modify"):
            p = self.procs.get(rec.pid)
            names = [d.path] + ([f"@{d.dev}:{d.ino}"] if d.ino else [])  # identity: aliases and renames
            if p is not None and p.tainted:
                for n in names:
                    self._downloaded(n, p.origin or rec.pid, rec.seq)
            else:
                w = self.pending_writes.setdefault(rec.pid, [])
                if len(w) < MAX_WRITES:
                    w.extend(names)
                if len(self.pending_writes) > MAX_PROCS:
                    self.pending_writes.pop(next(iter(self.pending_writes)))
                    self.dropped += 1
        elif d.op in ("rename", "link") and d.path2 and d.path in self.downloaded:
            self._downloaded(d.path2, *self.downloaded[d.path])
        return []

    def _downloaded(self, path: str, pid: int, seq: int) -> None:
        self.downloaded[path] = (pid, seq)
        self.downloaded.move_to_end(path)
        if len(self.downloaded) > MAX_FILES:
            self.downloaded.popitem(last=False)
            self.dropped += 1

    # -- propagation -----------------------------------------------------------------------
    def _taint(self, pid: int, fed_by: int, seq: int) -> list[Flow]:
        p = self._proc(pid)
        if p.tainted:
            return []
        p.tainted, p.fed_by, p.taint_seq = True, fed_by, seq
        w = self.procs.get(fed_by) if fed_by else None
        p.origin = (w.origin or fed_by) if w is not None else pid
        for path in self.pending_writes.pop(pid, ()):
            self._downloaded(path, p.origin, seq)
        out = self._check_consumer(pid)
        budget = MAX_PROPAGATION
        for pipe in list(p.writes):
            for r in list(self.readers.get(pipe, ())):
                if r == pid or budget <= 0:
                    continue
                budget -= 1
                out += self._feed(r, pid, pipe, seq)
        # children already running inline code for a fed, non-shell parent (xargs sh -c)
        if fed_by:
            for cpid, c in list(self.procs.items()):
                if c.ppid == pid and budget > 0:
                    budget -= 1
                    out += self._check_consumer(cpid)
        return out

    def _feed(self, reader: int, writer: int, pipe: str, seq: int) -> list[Flow]:
        r = self.procs.get(reader)
        if r is None:
            return []
        out: list[Flow] = []
        kind, fd = r.program
        if r.data is not None and (
            (kind == "stdin" and r.reads.get(0) == pipe) or (kind == "fd" and r.reads.get(int(fd)) == pipe)
        ):
            wp = self.procs.get(writer)
            out += self._report("pipe", reader, (wp.origin if wp else 0) or writer, seq, pipe=pipe)
        out += self._taint(reader, writer, seq)
        return out

    def _check_consumer(self, pid: int) -> list[Flow]:
        """Flows whose consumer is pid, given what is known now."""
        p = self.procs.get(pid)
        if p is None or p.data is None:
            return []
        out: list[Flow] = []
        d = p.data
        kind, arg = p.program
        stdin = d.fds.get(0, "")
        ident = ("@" + stdin[5:]) if kind == "stdin" and stdin.startswith("file:") else ""  # `sh < x.sh`
        exe_id = f"@{d.exe_dev}:{d.exe_ino}" if d.exe_ino else ""
        for via, path in (("image", d.filename), ("image", d.script), ("image", exe_id),
                          ("file", arg if kind == "file" else ""), ("file", ident)):  # fmt: skip
            src = self.downloaded.get(path) if path else None
            if src is not None and src[0] != pid:
                shown = path if not path.startswith("@") else (d.filename if path == exe_id else "stdin")
                out += self._report(via, pid, src[0], src[1], path=shown)
        if kind == "inline":
            if p.tainted and not p.fed_by:
                out += self._report("self", pid, pid, p.taint_seq)
            anc, depth = self.procs.get(p.ppid), 0
            while anc is not None and depth < 3:
                ad = anc.data
                if anc.tainted and anc.fed_by and ad is not None and _base(ad.filename) not in SHELLS:
                    out += self._report("args", pid, anc.origin or anc.fed_by, anc.taint_seq)
                    break
                anc, depth = self.procs.get(anc.ppid), depth + 1
        return out

    def _report(self, via: str, consumer: int, producer: int, seq: int, **kw: str) -> list[Flow]:
        c = self.procs.get(consumer)
        if c is None or c.data is None:
            return []
        key = (consumer, c.exec_seq, via)
        if key in self.reported:
            return []
        self.reported.add(key)
        if len(self.reported) > MAX_PROCS * 4:
            self.reported.clear()  # bounded: a flow may be reported again, never lost
        pp = self.procs.get(producer)
        return [Flow(via=via, consumer_pid=consumer, consumer=c.data, consumer_seq=c.exec_seq,
                     producer_pid=producer, producer=pp.data if pp is not None else None,
                     producer_seq=seq, **kw)]  # fmt: skip
