"""Who wrote a file: the `writer:` condition of rules (docs/rules.md).

A file the run saw created or written keeps a snapshot of the process that did it (its
resolved exe and argv at that moment, not a name it could later change). Renames and hard
links carry the provenance to the new name. Droppers and ordinary builds differ exactly
here: a linker writing `/tmp/build/a.out` versus curl writing `/tmp/x`.
"""

from __future__ import annotations

import msgspec

from logira.model.paths import normalize
from logira.model.proctree import ProcessTree, ProcInfo
from logira.model.record import ExecData, FileData, Record

MAX_FILES = 65536  # bounded: when full the table starts again (a lost writer only means no exception)
_WRITES = frozenset({"create", "modify", "truncate"})


class FileWriters:
    def __init__(self, tree: ProcessTree, used: bool) -> None:
        self.tree = tree
        self.used = used  # some rule has a `writer:` condition: otherwise nothing is kept
        self._by_path: dict[str, ProcInfo] = {}

    def _snapshot(self, pid: int) -> ProcInfo:
        p = self.tree.get(pid)
        if p is None:
            return ProcInfo(pid=pid)
        # a copy: the tree's entry changes at the process's next exec (trust, script and all)
        return msgspec.structs.replace(p, argv=list(p.argv[:16]))

    def _put(self, path: str, info: ProcInfo) -> None:
        if len(self._by_path) >= MAX_FILES:
            self._by_path.clear()
        self._by_path[path] = info

    def observe(self, rec: Record) -> None:
        """Update the table with a file record (call before matching it)."""
        d = rec.data_json
        if not self.used or not isinstance(d, FileData) or d.ret < 0 or d.pseudo:
            return
        op = d.op
        if op in _WRITES:
            self._put(d.path, self._snapshot(rec.pid))
        elif op in ("rename", "link") and d.path2:
            prev = self._by_path.pop(d.path, None) if op == "rename" else self._by_path.get(d.path)
            self._put(d.path2, prev if prev is not None else self._snapshot(rec.pid))
        elif op in ("delete", "rmdir"):
            self._by_path.pop(d.path, None)

    def of(self, rec: Record) -> ProcInfo | None:
        """The writer of the record's file: file events their path, execs the program or a
        script operand (`ld.so /tmp/x`, `sh ./x`)."""
        d = rec.data_json
        if isinstance(d, FileData):
            return self._by_path.get(d.path)
        if isinstance(d, ExecData):
            w = self._by_path.get(d.filename)
            if w is not None:
                return w
            for arg in d.argv[1:4]:
                if arg.startswith("-"):
                    continue
                path = arg if arg.startswith("/") else f"{d.cwd.rstrip('/')}/{arg}" if d.cwd else ""
                w = self._by_path.get(normalize(path)) if path else None
                if w is not None:
                    return w
        return None

