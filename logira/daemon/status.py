"""`status` replies: what the daemon is, whether it can record, and what it is recording.

Non-root peers see only their own active runs; the daemon-wide counters are visible to all
(they reveal nothing about other users' activity beyond totals).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from logira import __version__
from logira.daemon import protocol as p
from logira.daemon.config import DaemonConfig
from logira.daemon.sessions import SessionManager


class DaemonState:
    """What `status` reports, gathered in one place."""

    def __init__(self, cfg: DaemonConfig, probes: Any, sessions: SessionManager, cg_mount: Path) -> None:
        self.cfg = cfg
        self.probes = probes
        self.sessions = sessions
        self.cg_mount = cg_mount
        self.started = time.monotonic()
        self.server: Any = None

    def drops(self) -> dict[str, int]:
        out: dict[str, int] = {}
        try:
            kernel = self.probes.drop_counts()
        except Exception:
            kernel = {}
        for kind, n in kernel.items():
            out[f"kernel:{kind}"] = n
        out["kernel_total"] = sum(kernel.values())
        reader = self.sessions.source
        out["reader"] = int(getattr(reader, "decode_errors", 0) or 0)
        out["unrouted"] = self.sessions.unrouted
        # lost in user space: pipelines (ended and active runs) plus batches the router could not take
        out["queue"] = self.sessions.queue_drops + int(getattr(reader, "handler_lost", 0) or 0)
        if self.server is not None:
            out["bad_frames"] = self.server.bad_frames
        return out

    def reply(self, peer_uid: int) -> p.StatusReply:
        loaded = getattr(self.probes, "events_fd", -1) >= 0
        domains = set(getattr(self.probes, "domains", ()) or ())
        probes = {
            d: p.ProbeDomain(enabled=getattr(self.cfg, d), loaded=d in domains)
            for d in ("exec", "file", "net")
        }
        reasons: list[str] = []
        btf = Path("/sys/kernel/btf/vmlinux").exists()
        if not btf:
            reasons.append("kernel has no BTF (/sys/kernel/btf/vmlinux)")
        if not loaded:
            reasons.append("BPF probes are not loaded")
        for d, st in probes.items():
            if st.enabled and not st.loaded:
                reasons.append(f"{d} probes enabled but not loaded")
        problem = self.sessions.rules_problem()
        if problem:
            reasons.append(problem)
        if self.sessions.shutting_down:
            reasons.append("logirad is shutting down")
        return p.StatusReply(
            pid=os.getpid(),
            uid=os.geteuid(),
            version=__version__,
            kernel_release=os.uname().release,
            btf=btf,
            cgroup2_mount=str(self.cg_mount),
            cgroup_parent=str(self.sessions.cg_parent),
            probes_loaded=loaded,
            probes_attached=bool(getattr(self.probes, "attached", False)),
            probes=probes,
            ring_bytes=self.cfg.ring_bytes,
            drops=self.drops(),
            runs=self.sessions.visible_runs(peer_uid),
            runs_total=len(self.sessions.runs),
            ready=not reasons,
            reasons=reasons,
            uptime_s=round(time.monotonic() - self.started, 3),
            reader_pauses=self.sessions.pauses,
            hooks={
                "recorded": self.sessions.hooks_recorded,
                "refused": self.sessions.hooks_refused,
                "outside_runs": self.sessions.hooks_unrouted,
            },
        )
