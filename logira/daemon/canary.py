"""The canary behind `logira doctor`: prove that capture works end to end, right now.

A short-lived root process in its own cgroup under the run parent (tracked exactly like a run: the
same router, the same probes) executes /bin/true, creates a file in a private temp dir and connects
to a TCP listener on 127.0.0.1; the daemon then checks that each of the three came back from the
kernel as a decoded record. Nothing is stored: no run dir, no seal. One canary at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from logira import cgroup2
from logira.daemon import protocol as p
from logira.model.kernel import FileOp, KernelEvent, NetOp, ProcExec

# What the canary process does (argv: temp dir, port). Plain syscalls, no shell tricks.
_CANARY_CODE = """
import os, socket, subprocess, sys
subprocess.run(["/bin/true"], check=True)
os.close(os.open(os.path.join(sys.argv[1], "canary-file"), os.O_CREAT | os.O_WRONLY, 0o600))
socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=5).close()
"""
TIMEOUT_S = 20.0


class _Collect:
    """A router inlet that just keeps the canary's events."""

    def __init__(self) -> None:
        self.events: list[KernelEvent] = []

    def enqueue(self, ev: KernelEvent) -> None:
        self.events.append(ev)

    def __len__(self) -> int:
        return 0  # never holds the flow control back


class Canary:
    def __init__(self, sessions: Any, probes: Any) -> None:
        self.sessions = sessions
        self.probes = probes
        self._lock = asyncio.Lock()
        self._n = 0

    async def run(self) -> p.CanaryReply:
        if self._lock.locked():  # one at a time: each one costs a process and a cgroup
            return p.CanaryReply(error="another canary is running; retry in a second")
        async with self._lock:
            try:
                return await self._run()
            except (TimeoutError, OSError) as exc:
                return p.CanaryReply(error=f"canary failed: {exc}")

    async def _run(self) -> p.CanaryReply:
        domains = set(getattr(self.probes, "domains", ()) or ())
        self._n += 1
        tmp = Path(tempfile.mkdtemp(prefix="logira-canary-"))
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cg: Path | None = None
        cg_id = 0
        inlet = _Collect()
        router = self.sessions.router
        try:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            port = listener.getsockname()[1]
            cg = cgroup2.create(self.sessions.cg_parent, f"canary-{os.getpid()}-{self._n}")
            cg_id = cgroup2.cgroup_id(cg)
            router.add(cg_id, inlet)
            self.probes.track(cg_id)
            # held before exec (like a run's agent), moved in, then released: its first exec is recorded
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", 'read _x; exec "$@"', "canary", sys.executable, "-c", _CANARY_CODE,
                str(tmp), str(port), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, cwd=str(tmp),
            )  # fmt: skip
            cgroup2.move_pid(cg, proc.pid)
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.close()
            _out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
            with contextlib.suppress(OSError):
                listener.accept()[0].close()
            source = self.sessions.source
            if source is not None:
                source.drain()
            self.probes.untrack(cg_id)
            if source is not None:
                source.drain()
            if proc.returncode != 0:
                tail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
                return p.CanaryReply(error=f"the canary process failed (exit {proc.returncode}): {tail[0]}")
            return _recognise(inlet.events, str(tmp / "canary-file"), port, domains)
        finally:
            listener.close()
            if cg_id:
                router.remove(cg_id)
                with contextlib.suppress(Exception):
                    self.probes.untrack(cg_id)
            if cg is not None:
                cgroup2.kill_all(cg)
                cgroup2.remove(cg)
            shutil.rmtree(tmp, ignore_errors=True)


def _recognise(events: list[KernelEvent], path: str, port: int, domains: set[str]) -> p.CanaryReply:
    true_bin = os.path.realpath("/bin/true")
    exec_seen = any(isinstance(e, ProcExec) and e.filename in ("/bin/true", true_bin) for e in events)
    file_seen = any(isinstance(e, FileOp) and e.op == "create" and e.path == path for e in events)
    net_seen = any(isinstance(e, NetOp) and e.op == "connect" and e.dst_port == port for e in events)
    return p.CanaryReply(
        domains=sorted(domains),
        exec_seen=exec_seen,
        file_seen=file_seen,
        net_seen=net_seen,
        events=len(events),
    )
