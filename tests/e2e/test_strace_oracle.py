"""The strace oracle: a mixed workload runs under `strace -f` inside a real `logira run`, and what
strace saw the kernel do is compared with the stored record, event by event.

strace reports every traced syscall of the workload's processes with its result; logira must hold a
record for each one that changed something (exec, write-open, create, delete, rename, mkdir, rmdir,
chmod, symlink, link, truncate, connect), with the same pid and path, and no record of the workload
that strace did not see. Paths are absolute in the workload, so both sides name them alike; `-y`
makes strace print the file behind each returned fd.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

pytestmark = pytest.mark.bpf  # strace comes with `make setup` (APT_PKGS)

TRACED = "execve,openat,open,creat,unlink,unlinkat,rename,renameat,renameat2,mkdir,mkdirat,rmdir,chmod,fchmodat,symlink,symlinkat,link,linkat,truncate,ftruncate,connect"
LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+)(?:<([^>]*)>)?")
STR = re.compile(r'"((?:[^"\\]|\\.)*)"')
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")


def _workload(ws: str, port: int) -> str:
    w = f"{ws}/w"
    return "\n".join([
        f"mkdir {w} {w}/d",
        *(f"echo {i} > {w}/f{i}; echo more >> {w}/f{i}" for i in range(20)),
        f"mv {w}/f0 {w}/g0; ln -s {w}/g0 {w}/s0; ln {w}/g0 {w}/h0",
        f"chmod 0755 {w}/f1; truncate -s 0 {w}/f2; rm {w}/f3 {w}/s0",
        f"rmdir {w}/d; touch {w}/t; cp {w}/f4 {w}/c4",
        f"cat {w}/nonexistent 2>/dev/null; mkdir {w}/f5 2>/dev/null; rm {w}/nope 2>/dev/null",
        f"(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null",  # refused: still a connect with its result
        f"sh -c 'echo nested > {w}/n; mv {w}/n {w}/n2'",
        "true",
    ])


def _strace_events(text: str, prefix: str) -> Counter:
    """(pid, kind, path[, path2]) of every syscall strace saw change something under `prefix`."""
    out: Counter = Counter()
    for line in text.splitlines():
        m = LINE.match(line)
        if m is None:
            continue
        pid, call, args, ret, fd_path = int(m[1]), m[2], m[3], int(m[4]), m[5] or ""
        strs = STR.findall(args)
        if call == "execve":
            if ret == 0:
                out[(pid, "exec", strs[0] if strs else "")] += 1
            continue
        if call == "connect":
            port = re.search(r"htons\((\d+)\)", args)
            if port and "AF_INET" in args:
                out[(pid, "connect", port[1])] += 1
            continue
        if call == "ftruncate":  # on an fd: -y prints its file as `3</path>`
            fd = re.match(r"\d+<([^>]*)>", args)
            if ret == 0 and fd and fd[1].startswith(prefix):
                out[(pid, "truncate", fd[1])] += 1
            continue
        if ret < 0 or not strs:
            continue  # a failed path op: logira keeps only permission failures (EACCES/EPERM/EROFS)
        path = strs[0]
        if call in ("openat", "open", "creat"):
            if (call == "creat" or any(f in args for f in WRITE_FLAGS)) and fd_path.startswith(prefix):
                out[(pid, "open", fd_path)] += 1
            continue
        if not (path.startswith(prefix) or (len(strs) > 1 and strs[-1].startswith(prefix))):
            continue
        kind = {"unlink": "delete", "unlinkat": "rmdir" if "AT_REMOVEDIR" in args else "delete", "rmdir": "rmdir",
                "rename": "rename", "renameat": "rename", "renameat2": "rename", "mkdir": "mkdir",
                "mkdirat": "mkdir", "chmod": "chmod", "fchmodat": "chmod", "symlink": "symlink",
                "symlinkat": "symlink", "link": "link", "linkat": "link", "truncate": "truncate"}[call]  # fmt: skip
        if kind == "symlink":
            out[(pid, kind, strs[-1])] += 1  # symlink(target, linkpath): the link is what was created
        else:
            out[(pid, kind, path)] += 1
    return out


def _logira_events(run, prefix: str, pids: set[int], trace: str) -> Counter:
    out: Counter = Counter()
    for r in run.records:
        d = r["data_json"]
        if r["pid"] not in pids:
            continue
        if r["type"] == "exec" and not d.get("errno"):
            out[(r["pid"], "exec", d.get("requested") or d["filename"])] += 1
        elif r["type"] == "net" and d["op"] == "connect" and d.get("family") in ("inet", "inet6"):
            out[(r["pid"], "connect", str(d["dst_port"]))] += 1
        elif r["type"] == "file" and d["op"] != "read" and not d.get("errno") and d["path"] != trace:
            op = d["op"]
            path = d["path"]
            if not (path.startswith(prefix) or (d.get("path2") or "").startswith(prefix)):
                continue
            if op in ("create", "modify"):
                out[(r["pid"], "open", path)] += 1
            elif op == "symlink":
                out[(r["pid"], "symlink", d.get("path2") or path)] += 1
            else:
                out[(r["pid"], op, path)] += 1
    return out


def test_every_change_strace_saw_is_recorded_and_nothing_else(logira, tmp_path):
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there: the connect is refused, and recorded all the same
    ws = str(logira.workspace)
    trace = f"{ws}/strace.out"
    res = logira("run", "--tool", "oracle", "--", "strace", "-f", "-qq", "-y", "-s", "4096", "-o", trace,
                 "-e", f"trace={TRACED}", "/bin/bash", "-c", _workload(ws, port), timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    run = logira.only_run()
    assert run.meta["status"] == "complete" and run.meta["drops"]["total"] == 0, run.meta
    with open(trace) as f:
        text = f.read()
    seen = _strace_events(text, f"{ws}/w")
    assert sum(seen.values()) >= 60 and len({k for _, k, _ in seen}) >= 10, seen  # the workload ran, was parsed
    pids = {pid for pid, *_ in seen}
    recorded = _logira_events(run, f"{ws}/w", pids, trace)
    # execs: strace names the path as asked, logira the one asked too (`requested`) or the image
    missing = seen - recorded
    extra = recorded - seen
    assert not missing, f"strace saw, logira lacks: {sorted(missing)}\nlogira has extra: {sorted(extra)}"
    assert not extra, f"logira has, strace did not see: {sorted(extra)}"
