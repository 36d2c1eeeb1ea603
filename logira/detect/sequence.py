"""State of sequence rules: ordered steps, a time window, a process scope, bounded memory.

A partial chain starts when an event matches step 0 and advances when a later event
matches the next step, lies in the chain's scope and falls within `within` seconds of the
first step. Scopes: `process` (same pid), `tree` (the first step's process or a
descendant), `siblings` (the first step's parent's subtree: `cat key | curl …` are
siblings), `run` (anywhere in the run). With `same: path` every step must name the same
file (file path, rename target, exec filename). At most `max_pending` chains per rule are
kept; when full the oldest is dropped and counted in `dropped`.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from logira.model.record import ExecData, FileData, Record
from logira.pipeline.proctree import ProcessTree

if TYPE_CHECKING:
    from logira.detect.compile import CRule


class _Chain:
    __slots__ = ("key", "next", "root", "seqs", "start")

    def __init__(self, start: int, root: int, key: str, seq: int) -> None:
        self.start = start
        self.root = root
        self.key = key
        self.next = 1
        self.seqs = [seq]


def _key(rec: Record) -> str:
    d = rec.data_json
    if isinstance(d, FileData):
        return d.path2 if d.op in ("rename", "link", "symlink") and d.path2 else d.path
    if isinstance(d, ExecData):
        return d.filename
    return ""


class SequenceState:
    def __init__(self, rule: CRule, tree: ProcessTree) -> None:
        seq = rule.sequence
        assert seq is not None
        self.rule = rule
        self.tree = tree
        self.window_ns = int(seq.within * 1e9)
        self.scope = seq.scope
        self.same = seq.same == "path"
        self.nsteps = len(seq.steps)
        self.max_pending = seq.max_pending
        self.chains: deque[_Chain] = deque()
        self.dropped = 0

    def _root(self, rec: Record) -> int:
        if self.scope == "siblings":
            info = self.tree.get(rec.pid)
            return (info.ppid if info and info.ppid else rec.ppid) or rec.pid
        return rec.pid

    def _in_scope(self, chain: _Chain, pid: int) -> bool:
        if self.scope == "run" or pid == chain.root:
            return True
        if self.scope == "process":
            return False
        return any(p.pid == chain.root for p in self.tree.ancestors(pid, max_depth=64))

    def feed(self, rec: Record, steps: list[int]) -> list[list[int]]:
        """Advance chains with this event (matching `steps`); seqs of completed chains."""
        done: list[list[int]] = []
        key = _key(rec) if self.same else ""
        ts = rec.ts
        if self.chains:
            keep: deque[_Chain] = deque()
            advanced = False
            for ch in self.chains:
                if ts - ch.start > self.window_ns:
                    continue  # expired
                if not advanced and ch.next in steps and (not self.same or ch.key == key) and self._in_scope(ch, rec.pid):
                    ch.seqs.append(rec.seq)
                    ch.next += 1
                    advanced = True
                    if ch.next == self.nsteps:
                        done.append(ch.seqs)
                        continue
                keep.append(ch)
            self.chains = keep
        if 0 in steps:
            root = self._root(rec)
            for ch in self.chains:
                if ch.next == 1 and ch.root == root and ch.key == key:
                    ch.start, ch.seqs = ts, [rec.seq]  # refresh instead of piling up duplicates
                    break
            else:
                if len(self.chains) >= self.max_pending:
                    self.chains.popleft()
                    self.dropped += 1
                self.chains.append(_Chain(ts, root, key, rec.seq))
        return done
