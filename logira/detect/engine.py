"""The Detector: evaluates one run's records against a RuleSet.

Dispatch is by record type and op (exec: by program basename), so an ordinary event costs
a dict lookup and, for file events, one set lookup (literal globs) and one combined RE2 regex
over every other path glob listening on that op; only events that pass the prefilter are
checked rule by rule. Sequence rules keep
bounded per-rule state (see `sequence.py`).
"""

from __future__ import annotations

from collections.abc import Callable

from logira.detect.compile import CRule, CWhen, ExecCtx, FileCtx, FlowCtx, file_names, other_names
from logira.detect.flow import Flow, FlowTracker
from logira.detect.globs import Globs
from logira.detect.loader import RuleSet
from logira.detect.provenance import FileWriters
from logira.detect.rx import MAX_MEM, MAX_MEM_UNTRUSTED
from logira.detect.sequence import SequenceState
from logira.detect.shell import SHELLS
from logira.model.proctree import ProcessTree
from logira.model.record import DetectionData, ExecData, FileData, NetData, ProcData, Record

Entry = tuple[CWhen, CRule, int]  # (condition, rule, step index or -1 for a plain rule)
_EMPTY: list[Entry] = []
_DEDUP_MAX = 4096  # distinct dedup keys remembered per rule
_CACHE_MAX = 1024  # entries per match cache; cleared when full (bounded memory, argv <= 4 KiB each)
_MULTI_NAME_OPS = frozenset({"rename", "link", "symlink"})


class _FileOpTable:
    __slots__ = ("always", "both", "entries", "prefilter")

    def __init__(self) -> None:
        self.entries: list[Entry] = []  # rules with a path-like condition (prefiltered)
        self.always: list[Entry] = []  # rules without one
        self.both: list[Entry] = []  # entries + always, in rule order
        self.prefilter: Globs | None = None


class Detector:
    """Evaluate records of one run. `process` is called after `tree.observe(rec)`."""

    def __init__(self, ruleset: RuleSet, *, home: str, workspace: str, tree: ProcessTree) -> None:
        self.home = home.rstrip("/") or "/"
        self.workspace = workspace.rstrip("/") or "/"
        self.tree = tree
        self.rules = [
            CRule(
                lr.rule, lr.source, self.home, self.workspace, MAX_MEM_UNTRUSTED if lr.untrusted else MAX_MEM
            )
            for lr in ruleset.rules
        ]
        self.sequences: dict[str, SequenceState] = {}
        uses_writer = any(w.writer is not None for r in self.rules for w in (*r.whens, *r.excepts))
        self.writers = FileWriters(tree, used=uses_writer)
        self.evaluated = 0
        self.deduplicated = 0  # detections not repeated because of a rule's `dedup`
        self._dedup: dict[str, set[tuple[object, ...]]] = {}
        self.detections = 0
        self._exec_by_name: dict[str, list[Entry]] = {}
        self._exec_other: list[Entry] = []
        self._file: dict[str, _FileOpTable] = {}
        self._net: dict[str, list[Entry]] = {}
        self._net_dns: list[Entry] = []  # conditions on the DNS name: only for records that have one
        self._exec_cache: dict[tuple[str, str], list[Entry]] = {}
        self._exec_match: dict[tuple[str, tuple[str, ...], str], list[Entry]] = {}
        self._net_match: dict[tuple[object, ...], list[Entry]] = {}
        self._proc: dict[str, list[Entry]] = {}
        self._flow: list[Entry] = []
        self.flows: FlowTracker | None = None  # only when some rule listens to flows
        self._ranks = {r.id: i for i, r in enumerate(self.rules)}
        self._build()

    # -- dispatch tables --------------------------------------------------------------
        # record type -> the stage that selects its candidate rules (decided once, not per event)
        self._by_type: dict[str, Callable[[object], tuple[object, list[Entry]] | None]] = {
            "file": self._file_candidates, "exec": self._exec_candidates_of,
            "net": self._net_candidates, "proc": self._proc_candidates,
        }  # fmt: skip

    def _build(self) -> None:
        from logira.detect.schema import FILE_OPS, NET_OPS, PROC_OPS

        file_pats: dict[str, list[str]] = {op: [] for op in FILE_OPS}  # raw globs per op
        rank = self._ranks
        for rule in self.rules:
            if rule.sequence is not None:
                self.sequences[rule.id] = SequenceState(rule, self.tree)
            for w, idx in rule.steps:
                entry: Entry = (w, rule, idx)
                src = w.src
                if src.exec is not None:
                    prog = w.cond.program if w.cond is not None else None  # type: ignore[union-attr]
                    names = prog.literal_names if prog is not None else None
                    if prog is None and src.exec.shell is not None:
                        names = SHELLS  # a shell condition can only match a shell's -c script
                    if names:
                        for n in names:
                            self._exec_by_name.setdefault(n, []).append(entry)
                    else:
                        self._exec_other.append(entry)
                elif src.file is not None:
                    fc = src.file
                    for op in fc.op or FILE_OPS:
                        table = self._file.setdefault(op, _FileOpTable())
                        pats = [*fc.path, *fc.path2, *fc.src]
                        if pats:
                            table.entries.append(entry)
                            file_pats[op] += pats
                        else:
                            table.always.append(entry)
                elif src.net is not None:
                    cnet = w.cond
                    n = src.net
                    if n.dns or n.dns_label_min or n.dns_name_min:
                        self._net_dns.append(entry)
                        continue
                    for op in cnet.ops or NET_OPS:  # type: ignore[union-attr]
                        self._net.setdefault(op, []).append(entry)
                elif src.proc is not None:
                    for op in src.proc.op or PROC_OPS:
                        self._proc.setdefault(op, []).append(entry)
                elif src.flow is not None:
                    self._flow.append(entry)
        if self._flow:
            self.flows = FlowTracker()
        for op, table in self._file.items():
            table.both = sorted(table.entries + table.always, key=lambda e: rank[e[1].id])
            if file_pats[op]:
                # one set lookup and at most one RE2 pass decide whether any path rule of this op can match
                table.prefilter = Globs(
                    sorted(set(file_pats[op])),
                    home=self.home,
                    workspace=self.workspace,
                    max_mem=MAX_MEM,
                )

    # -- evaluation -------------------------------------------------------------------
    def _rank(self, e: Entry) -> int:
        return self._ranks[e[1].id]

    def _exec_candidates(self, fn: str, argv0: str) -> list[Entry]:
        """Entries whose program condition can match (cached per (filename, argv[0]))."""
        key = (fn, argv0)
        hit = self._exec_cache.get(key)
        if hit is not None:
            return hit
        b1 = fn.rpartition("/")[2]
        b2 = argv0.rpartition("/")[2]
        out = list(self._exec_by_name.get(b1, ()))
        if b2 != b1:
            out += [e for e in self._exec_by_name.get(b2, ()) if e not in out]
        for e in self._exec_other:
            prog = e[0].cond.program  # type: ignore[union-attr]
            if prog is None or prog(fn, argv0):
                out.append(e)
        out.sort(key=self._rank)  # detections come out in rule order
        if len(self._exec_cache) >= _CACHE_MAX:
            self._exec_cache.clear()
        self._exec_cache[key] = out
        return out

    def process(self, rec: Record) -> list[DetectionData]:
        """Detections for one record (in rule order; sequence completions included)."""
        self.evaluated += 1
        flow_out = self._flows(rec) if self.flows is not None else []
        out = self._process(rec)
        return flow_out + out if flow_out else out

    def _flows(self, rec: Record) -> list[DetectionData]:
        """Detections of data flows that this record completed (detect/flow.py)."""
        assert self.flows is not None
        flows = self.flows.observe(rec)
        if not flows:
            return []
        out: list[DetectionData] = []
        tree = self.tree
        for fl in flows:
            ctx = FlowCtx(fl, self.home)
            pid = fl.consumer_pid
            for w, rule, _step in self._flow:
                if not w.match(ctx, pid, tree):
                    continue
                if rule.excepts and any(e.match(ctx, pid, tree) for e in rule.excepts if e.type in (None, "flow")):
                    continue
                steps = sorted({s for s in (fl.producer_seq, fl.consumer_seq, rec.seq) if s})
                values = self._flow_fields(fl, rec)
                if rule.rule.dedup and self._seen_values(rule, values):
                    continue
                out.append(self._detection(rule, rec, steps, values=values, pid=pid))
        self.detections += len(out)
        return out

    def _flow_fields(self, fl: Flow, rec: Record) -> dict[str, object]:
        c, p = fl.consumer, fl.producer
        info = self.tree.get(fl.consumer_pid)
        return {"pid": fl.consumer_pid, "ppid": info.ppid if info else 0, "uid": rec.uid, "type": "flow",
                "exe": c.filename, "comm": c.comm, "filename": c.filename, "program": c.filename.rpartition("/")[2],
                "argv": " ".join(c.argv), "cmdline": " ".join(c.argv), "cwd": c.cwd, "via": fl.via,
                "source_exe": p.filename if p else "", "source_cmdline": " ".join(p.argv) if p else "",
                "path": fl.path, "pipe": fl.pipe}  # fmt: skip

    def _process(self, rec: Record) -> list[DetectionData]:
        """The rules this record's type and fields select, then lineage, exceptions, dedup, sequences."""
        if rec.type == "file":
            self.writers.observe(rec)
        select = self._by_type.get(rec.type)
        found = select(rec.data_json) if select is not None else None
        if found is None:
            return []
        ctx, entries = found
        if not entries:
            return []
        return self._evaluate(rec, ctx, entries)

    def _file_candidates(self, data: object) -> tuple[object, list[Entry]] | None:
        """Rules whose file conditions match (prefiltered by name and aliases), with their context."""
        if not isinstance(data, FileData):
            return None
        table = self._file.get(data.op)
        if table is None:
            return None
        op = data.op
        pf = table.prefilter
        names = file_names(op, data.path, data.path2) if op in _MULTI_NAME_OPS else (data.path,)
        # `path:` also matches the name as written (an alias) and, when the file is a watched
        # sensitive file under another name, that file's real name (docs/rules.md)
        aliases = other_names(data) if (data.path_literal or data.path2_literal or data.same_file_as) else ()
        hit = pf is not None and (
            any(pf.test(n) for n in names)
            or (op in _MULTI_NAME_OPS and pf.test(data.path))
            or any(pf.test(n) for n in aliases)
        )
        entries = table.both if hit else table.always
        if not entries:
            return None
        ctx = FileCtx(data, names, aliases)
        entries = [e for e in entries if e[0].cond.match(ctx)]  # type: ignore[union-attr,arg-type]
        return ctx, entries

    def _exec_candidates_of(self, data: object) -> tuple[object, list[Entry]] | None:
        """Rules whose exec conditions match (cached per distinct command line), with their context."""
        if not isinstance(data, ExecData) or data.errno:
            return None  # failed attempts (e.g. PATH search) are recorded, not judged
        fn = data.filename
        argv = data.argv or [fn]
        # identical command lines repeat a lot in agent sessions: cache which conditions match
        # (keyed on everything a condition can look at: trust and kind decide exceptions)
        key = (fn, tuple(argv), data.cwd, data.script, data.exe_kind, data.fileless, data.exe_writable,
               data.argv_truncated, data.argv_cut, data.argv_head_partial, data.argv_tail_partial)  # fmt: skip
        hit_entries = self._exec_match.get(key)
        ctx = ExecCtx.of(data, self.home)
        if hit_entries is None:
            hit_entries = [e for e in self._exec_candidates(fn, argv[0]) if e[0].cond.match(ctx)]  # type: ignore[union-attr,arg-type]
            if len(self._exec_match) >= _CACHE_MAX:
                self._exec_match.clear()
            self._exec_match[key] = hit_entries
        entries = hit_entries
        return ctx, entries

    def _net_candidates(self, data: object) -> tuple[object, list[Entry]] | None:
        """Rules whose net conditions match (cached per distinct connection), with their context."""
        if not isinstance(data, NetData):
            return None
        nkey = (data.op, data.proto, data.family, data.dst_ip, data.dst_port, data.src_ip, data.src_port,
                data.dns_qname, data.errno, data.ret, data.peer_mismatch, data.outcome, data.bytes,
                data.run_dst_bytes, tuple(data.dns_qnames))  # fmt: skip
        hit_entries = self._net_match.get(nkey)
        if hit_entries is None:
            cands = self._net.get(data.op, _EMPTY)
            if data.dns_qname:
                cands = sorted(cands + self._net_dns, key=self._rank)
            hit_entries = [e for e in cands if e[0].cond.match(data)]  # type: ignore[union-attr]
            if len(self._net_match) >= _CACHE_MAX:
                self._net_match.clear()
            self._net_match[nkey] = hit_entries
        entries = hit_entries
        ctx = data
        return ctx, entries

    def _proc_candidates(self, data: object) -> tuple[object, list[Entry]] | None:
        """Rules of this proc op (fork/exit/...), with their context."""
        if not isinstance(data, ProcData):
            return None
        entries = self._proc.get(data.op, _EMPTY)
        ctx = data
        return ctx, entries

    def _evaluate(self, rec: Record, ctx: object, entries: list[Entry]) -> list[DetectionData]:
        t = rec.type
        out: list[DetectionData] = []
        done: set[str] = set()
        seq_hits: dict[str, list[int]] = {}
        tree = self.tree
        pid = rec.pid
        writer = self.writers.of(rec) if self.writers.used else None
        for w, rule, step in entries:  # the type condition already matched
            if rule.id in done or (w.has_lineage and not w.lineage_ok(pid, tree, writer)):
                continue
            if rule.excepts and any(e.match(ctx, pid, tree, writer) for e in rule.excepts if e.type in (None, t)):
                continue
            if step < 0:
                done.add(rule.id)
                if rule.rule.dedup and self._seen_before(rule, rec):
                    continue
                out.append(self._detection(rule, rec, [rec.seq]))
            else:
                seq_hits.setdefault(rule.id, []).append(step)
        for rid, steps in seq_hits.items():
            state = self.sequences[rid]
            for seqs in state.feed(rec, steps):
                out.append(self._detection(state.rule, rec, seqs))
        self.detections += len(out)
        return out

    def _seen_before(self, rule: CRule, rec: Record) -> bool:
        """True when this rule already reported the same dedup values in this run."""
        return self._seen_values(rule, self.fields(rec))

    def _seen_values(self, rule: CRule, values: dict[str, object]) -> bool:
        key = tuple(values.get(f, "") for f in rule.rule.dedup)
        seen = self._dedup.setdefault(rule.id, set())
        if key in seen:
            self.deduplicated += 1
            return True
        if len(seen) >= _DEDUP_MAX:
            seen.clear()  # bounded: a value seen long ago may be reported again, never lost
        seen.add(key)
        return False

    def sequence_drops(self) -> int:
        """Partial sequence chains (and data-flow state) dropped because a rule's state was full."""
        return sum(s.dropped for s in self.sequences.values()) + (self.flows.dropped if self.flows else 0)

    def _detection(
        self, rule: CRule, rec: Record, steps: list[int], *, values: dict[str, object] | None = None,
        pid: int | None = None,
    ) -> DetectionData:  # fmt: skip
        r = rule.rule
        if rule.template.fields:
            message = rule.template.render(values if values is not None else self.fields(rec))
        else:
            message = rule.template.render({})
        return DetectionData(
            rule_id=r.id,
            severity=r.severity,
            message=message,
            related_event_seq=rec.seq,
            title=r.title,
            category=r.category,
            tags=list(r.tags),
            lineage=self.tree.lineage(rec.pid if pid is None else pid),
            steps=steps if len(steps) > 1 else [],
        )

    def fields(self, rec: Record) -> dict[str, object]:
        """Template values of a record (the names listed in template.FIELDS)."""
        d = rec.data_json
        info = self.tree.get(rec.pid)
        v: dict[str, object] = {"pid": rec.pid, "ppid": rec.ppid, "uid": rec.uid, "type": rec.type,
                                "exe": getattr(d, "exe", "") or (info.exe if info else ""),
                                "comm": getattr(d, "comm", "") or (info.comm if info else "")}  # fmt: skip
        if isinstance(d, ExecData):
            v.update(filename=d.filename, program=d.filename.rpartition("/")[2], argv=" ".join(d.argv),
                     cmdline=" ".join(d.argv), cwd=d.cwd, exe=d.filename)  # fmt: skip
        elif isinstance(d, FileData):
            v.update(
                op=d.op, path=d.path, path2=d.path2, mode=oct(d.mode) if d.mode >= 0 else "", errno=d.errno,
                path_literal=d.path_literal, same_file_as=d.same_file_as, unverified=d.path_unverified,
            )
        elif isinstance(d, NetData):
            dst = f"[{d.dst_ip}]:{d.dst_port}" if ":" in d.dst_ip else f"{d.dst_ip}:{d.dst_port}"
            v.update(op=d.op, proto=d.proto, family=d.family, dst_ip=d.dst_ip, dst_port=d.dst_port,
                     dst=d.unix_path or dst, src_ip=d.src_ip, src_port=d.src_port, unix_path=d.unix_path,
                     dns_qname=d.dns_qname, bytes=d.bytes, errno=d.errno, dns_qnames=",".join(d.dns_qnames),
                     peer_mismatch=d.peer_mismatch, claimed_dst_ip=d.claimed_dst_ip,
                     claimed_dst_port=d.claimed_dst_port, outcome=d.outcome, bytes_received=d.bytes_received,
                     run_dst_bytes=d.run_dst_bytes)  # fmt: skip
        elif isinstance(d, ProcData):
            v.update(op=d.op, syscall_nr=d.syscall_nr, namespaces=",".join(d.namespaces), source=d.source,
                     target=d.target, fstype=d.fstype, errno=d.errno)  # fmt: skip
        return v
