"""State of sequence rules: ordered steps, a time window, a process scope, bounded memory.

A partial chain starts when an event matches step 0 and advances when a later event
matches the next step, lies in the chain's scope and falls within `within` seconds of the
first step. Scopes: `process` (same pid), `tree` (the first step's process or a
descendant), `siblings` (the first step's parent's subtree: `cat key | curl …` are
siblings), `run` (anywhere in the run). With `same: path` every step must name the same
file (file path, rename target; for an exec its binary or its first operand, because a
script run through its #! line is recorded as `/bin/sh /tmp/x`). Chains are bucketed by
that name so an event only looks at the chains it can advance. At most `max_pending`
chains per rule are kept; when full the oldest bucket is dropped and counted in `dropped`.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from logira.model.proctree import ProcessTree
from logira.model.record import ExecData, FileData, Record

if TYPE_CHECKING:
    from logira.detect.compile import CRule


class _Chain:
    __slots__ = ("next", "root", "seqs", "start")

    def __init__(self, start: int, root: int, seq: int) -> None:
        self.start = start
        self.root = root
        self.next = 1
        self.seqs = [seq]


def _keys(rec: Record) -> tuple[str, ...]:
    """Names an event can be joined on with `same: path`."""
    d = rec.data_json
    if isinstance(d, FileData):
        return (d.path2 if d.op in ("rename", "link", "symlink") and d.path2 else d.path,)
    if isinstance(d, ExecData):
        # the program and the first operands: the script of an interpreter, or the file the
        # loader runs after its options (`ld.so --library-path DIR /tmp/x`); the step's own
        # condition decides whether that operand is really what runs
        ops = [a for a in d.argv[1:5] if a and not a.startswith("-")][:3]
        return (d.filename, *(posixpath.normpath(posixpath.join(d.cwd or "/", a)) for a in ops))
    return ("",)


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
        self.buckets: dict[str, list[_Chain]] = {}  # insertion-ordered: first = oldest
        self.pending = 0
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
        keys = _keys(rec) if self.same else ("",)
        ts = rec.ts
        advanced = False
        for key in keys:
            bucket = self.buckets.get(key)
            if not bucket:
                continue
            keep: list[_Chain] = []
            for ch in bucket:
                if ts - ch.start > self.window_ns:
                    continue  # expired
                if not advanced and ch.next in steps and self._in_scope(ch, rec.pid):
                    ch.seqs.append(rec.seq)
                    ch.next += 1
                    advanced = True  # one event advances at most one chain
                    if ch.next == self.nsteps:
                        done.append(ch.seqs)
                        continue
                keep.append(ch)
            self.pending -= len(bucket) - len(keep)
            if keep:
                self.buckets[key] = keep
            else:
                del self.buckets[key]
        if 0 in steps:
            self._start(rec, keys[0])
        return done

    def _start(self, rec: Record, key: str) -> None:
        root = self._root(rec)
        bucket = self.buckets.setdefault(key, [])
        for ch in bucket:
            if ch.next == 1 and ch.root == root:
                ch.start, ch.seqs = rec.ts, [rec.seq]  # refresh instead of piling up duplicates
                return
        bucket.append(_Chain(rec.ts, root, rec.seq))
        self.pending += 1
        while self.pending > self.max_pending:
            oldest_key = next(iter(self.buckets))
            oldest = self.buckets[oldest_key]
            oldest.pop(0)
            self.pending -= 1
            self.dropped += 1
            if not oldest:
                del self.buckets[oldest_key]
