"""Fixtures for detection tests: build real `Record`s from compact corpus specs and run them through a Detector.

A case is one event spec or `{events: [spec, ...]}`. Specs:
  exec: "argv as a shell line" | [argv...]   filename, cwd, pid, ppid, parent (cmdline)
  file: "op path [path2]"                    mode (octal int), errno, by (cmdline of the process), pid, ppid,
                                             literal, unverified, same_file_as (FileData fields)
  net:  "op proto ip:port" ("[v6]:port")     dns, src ("ip:port"), by, pid, ppid, qnames (list),
                                             mismatch, claimed ("ip:port"), outcome, bytes, run_bytes
  proc: "io_uring_setup"                     by, pid
  at:   seconds since the case start (default: 1 ms after the previous event)
Every process descends from an agent process (pid 10, `node /usr/bin/claude`) unless ppid is given.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from logira.detect.engine import Detector
from logira.detect.loader import RuleSet, load_rules
from logira.model.proctree import ProcessTree
from logira.model.record import DetectionData, ExecData, FileData, NetData, ProcData, Record

HOME = "/home/agent"
WORKSPACE = "/home/agent/proj"
AGENT_PID = 10
T0 = 1_767_000_000_000_000_000


def _argv(spec: str | list[str]) -> list[str]:
    return shlex.split(spec) if isinstance(spec, str) else [str(a) for a in spec]


def _mode(v: int | str) -> int:
    return int(v, 0) if isinstance(v, str) else int(v)


def _filename(argv: list[str]) -> str:
    return argv[0] if argv[0].startswith("/") else f"/usr/bin/{argv[0]}"


_EXEC_FACTS = frozenset({"exe_kind", "fileless", "exe_writable", "script", "fds", "argv_truncated", "argv_cut",
                        "exe_dev", "exe_ino",
                        "argv_head_partial", "argv_tail_partial", "requested", "interp"})  # fmt: skip


class CaseRunner:
    def __init__(self, ruleset: RuleSet, *, home: str = HOME, workspace: str = WORKSPACE) -> None:
        self.tree = ProcessTree()
        self.detector = Detector(ruleset, home=home, workspace=workspace, tree=self.tree)
        self.seq = 0
        self.ts = T0
        self.next_pid = 100
        self.detections: list[DetectionData] = []
        self.records: list[Record] = []
        self._feed(self._exec_rec(["node", "/usr/bin/claude"], AGENT_PID, 1, filename="/usr/bin/node"))

    def _feed(self, rec: Record) -> list[DetectionData]:
        self.records.append(rec)
        self.tree.observe(rec)
        out = self.detector.process(rec)
        self.detections += out
        return out

    def _rec(self, type_: str, pid: int, ppid: int, data: Any, summary: str = "") -> Record:
        self.seq += 1
        return Record(run_id="r", seq=self.seq, ts=self.ts, type=type_, pid=pid, ppid=ppid, uid=1000,
                      summary=summary, data_json=data)  # fmt: skip

    def _exec_rec(
        self, argv: list[str], pid: int, ppid: int, *, filename: str = "", cwd: str = WORKSPACE,
        extra: dict[str, Any] | None = None,
    ) -> Record:  # fmt: skip
        # extra: kernel facts of the exec (exe_kind, fileless, exe_writable, script, fds, argv_truncated…)
        kw = {k: v for k, v in (extra or {}).items() if k in _EXEC_FACTS}
        if "fds" in kw:
            kw["fds"] = {int(k): v for k, v in kw["fds"].items()}
        data = ExecData(filename=filename or _filename(argv), argv=argv, cwd=cwd, comm=argv[0][-15:], **kw)
        return self._rec("exec", pid, ppid, data, "exec " + " ".join(argv))

    def _pid(self, spec: dict[str, Any]) -> tuple[int, int]:
        pid = spec.get("pid")
        if pid is None:
            pid = self.next_pid
            self.next_pid += 1
        return int(pid), int(spec.get("ppid", AGENT_PID))

    def _process(self, spec: dict[str, Any], pid: int, ppid: int) -> None:
        """Give pid an image: `by` cmdline (exec'd once per pid)."""
        by = spec.get("by")
        if by is not None and (self.tree.get(pid) is None or not self.tree.get(pid).exe):  # type: ignore[union-attr]
            # by_exe: the binary the kernel ran when argv[0] lies (`exec -a ssh cat …`); by_facts: its
            # kernel facts (exe_kind, fileless, exe_writable, …)
            self._feed(self._exec_rec(_argv(by), pid, ppid, filename=spec.get("by_exe", ""),
                                      extra=spec.get("by_facts")))  # fmt: skip

    def event(self, spec: dict[str, Any]) -> list[DetectionData]:
        if "at" in spec:
            self.ts = T0 + int(float(spec["at"]) * 1e9)
        else:
            self.ts += 1_000_000
        pid, ppid = self._pid(spec)
        if "exec" in spec:
            if "parent" in spec:
                parent_pid = self.next_pid
                self.next_pid += 1
                self._feed(self._exec_rec(_argv(spec["parent"]), parent_pid, ppid))
                ppid = parent_pid
            argv = _argv(spec["exec"])
            return self._feed(self._exec_rec(argv, pid, ppid, filename=spec.get("filename", ""),
                                             cwd=spec.get("cwd", WORKSPACE), extra=spec))  # fmt: skip
        self._process(spec, pid, ppid)
        if "file" in spec:
            parts = shlex.split(spec["file"])
            data = FileData(op=parts[0], path=parts[1], path2=parts[2] if len(parts) > 2 else "",
                            mode=_mode(spec.get("mode", -1)), errno=int(spec.get("errno", 0)),
                            path_literal=spec.get("literal", ""), path_unverified=spec.get("unverified", ""),
                            same_file_as=spec.get("same_file_as", ""),
                            dev=int(spec.get("dev", 0)), ino=int(spec.get("ino", 0)))  # fmt: skip
            return self._feed(self._rec("file", pid, ppid, data))
        if "net" in spec:
            op, proto, addr = spec["net"].split(" ")
            ip, _, port = addr.rpartition(":")
            ip = ip.strip("[]")
            family = "inet6" if ":" in ip else "inet"
            src_ip, _, src_port = (spec.get("src") or ":0").rpartition(":")
            c_ip, _, c_port = (spec.get("claimed") or ":0").rpartition(":")
            data = NetData(op=op, proto=proto, family=family, dst_ip=ip, dst_port=int(port),
                           src_ip=src_ip.strip("[]"), src_port=int(src_port), dns_qname=spec.get("dns", ""),
                           dns_qnames=list(spec.get("qnames", [])), peer_mismatch=spec.get("mismatch", ""),
                           claimed_dst_ip=c_ip.strip("[]"), claimed_dst_port=int(c_port),
                           outcome=spec.get("outcome", ""), bytes=int(spec.get("bytes", 0)),
                           run_dst_bytes=int(spec.get("run_bytes", 0)),
                           ret=int(spec.get("ret", 0)), errno=max(0, -int(spec.get("ret", 0))))  # fmt: skip
            return self._feed(self._rec("net", pid, ppid, data))
        if "proc" in spec:
            kw = {k: v for k, v in spec.items() if k in ("namespaces", "source", "target", "fstype", "flags", "ret")}
            return self._feed(
                self._rec("proc", pid, ppid, ProcData(op=spec["proc"], syscall_nr=int(spec.get("nr", -1)), **kw))
            )
        raise ValueError(f"spec has no exec/file/net/proc: {spec}")

    def case(self, case: dict[str, Any]) -> list[DetectionData]:
        out: list[DetectionData] = []
        for spec in case.get("events", [case]):
            out += self.event(spec)
        return out


@pytest.fixture(scope="session")
def ruleset() -> RuleSet:
    """The built-in rules (no site directory)."""
    return load_rules(site_dir=None)


@pytest.fixture
def runner(ruleset: RuleSet) -> CaseRunner:
    """A fresh run (process tree + Detector) over the built-in rules."""
    return CaseRunner(ruleset)


@pytest.fixture(scope="session")
def runner_cls() -> type[CaseRunner]:
    """The CaseRunner class, for tests that bring their own rules or home."""
    return CaseRunner
