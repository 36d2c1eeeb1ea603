"""`logira status [--json]`: is logira ready to record on this machine, and if not, why.

Works without the daemon: the local checks (kernel, BTF, cgroup2) are made here, the
daemon's own view (probes, ring buffer, drops, active runs) is asked over the socket.
Exit 0 only when ready; the reasons are printed in text mode too.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import msgspec

from logira import __version__
from logira.cgroup2 import CgroupError, find_cgroup2_mount
from logira.cli.errors import CliError
from logira.client.connection import Connection, socket_path
from logira.daemon import protocol
from logira.render.escape import esc as safe

MIN_KERNEL = (5, 8)
BTF_PATH = "/sys/kernel/btf/vmlinux"


class LocalChecks(msgspec.Struct, kw_only=True):
    kernel_release: str
    kernel_ok: bool
    btf: bool
    cgroup2_mount: str  # "" when none is mounted


class StatusReport(msgspec.Struct, kw_only=True):
    ready: bool
    reasons: list[str]
    client_version: str
    sock: str
    daemon_running: bool
    daemon_error: str
    local: LocalChecks
    daemon: protocol.StatusReply | None


def _kernel_version(release: str) -> tuple[int, int]:
    parts = release.split("-")[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


def local_checks() -> LocalChecks:
    """What the client can see without the daemon."""
    release = os.uname().release
    try:
        mount = str(find_cgroup2_mount())
    except CgroupError:
        mount = ""
    return LocalChecks(
        kernel_release=release,
        kernel_ok=_kernel_version(release) >= MIN_KERNEL,
        btf=Path(BTF_PATH).exists(),
        cgroup2_mount=mount,
    )


def collect(sock: str | None = None) -> StatusReport:
    """Gather the local checks and the daemon's status reply into one report."""
    local = local_checks()
    reasons: list[str] = []
    if not local.kernel_ok:
        reasons.append(f"kernel {local.kernel_release} is older than 5.8 (ring buffers need >= 5.8)")
    if not local.btf:
        reasons.append(f"kernel has no BTF ({BTF_PATH}); use a kernel built with CONFIG_DEBUG_INFO_BTF=y")
    if not local.cgroup2_mount:
        reasons.append(
            "no cgroup2 filesystem is mounted; mount one (mount -t cgroup2 none /sys/fs/cgroup/unified)"
        )
    path = socket_path(sock)
    reply: protocol.StatusReply | None = None
    daemon_error = ""
    try:
        with Connection.open(path, timeout=3.0) as conn:
            reply = conn.request(protocol.Status(), protocol.StatusReply, timeout=5.0)
    except CliError as exc:
        daemon_error = str(exc)
        reasons.append(daemon_error)
    if reply is not None:
        reasons.extend(r for r in reply.reasons if r not in reasons)
        if not reply.ready and not reply.reasons:
            reasons.append("logirad reports it is not ready (no reason given)")
    return StatusReport(
        ready=reply is not None and reply.ready and not reasons,
        reasons=reasons,
        client_version=__version__,
        sock=path,
        daemon_running=reply is not None,
        daemon_error=daemon_error,
        local=local,
        daemon=reply,
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def render_text(rep: StatusReport) -> list[str]:
    """The aligned text lines of `logira status`."""
    d = rep.daemon
    lines = []
    if d is not None:
        lines.append(
            f"Daemon:       running (pid {d.pid}, uid {d.uid}, version {safe(d.version)}, up {_duration(d.uptime_s)})"
        )
    else:
        lines.append("Daemon:       not running")
    lines.append(f"Socket:       {safe(rep.sock)}  {'OK' if d is not None else 'FAIL'}")
    kernel = d.kernel_release if d is not None else rep.local.kernel_release
    lines.append(
        f"Kernel:       {safe(kernel)}  ({'>= 5.8 OK' if rep.local.kernel_ok else 'older than 5.8'})"
    )
    lines.append(f"BTF:          {_yes(d.btf if d is not None else rep.local.btf)}")
    mount = (d.cgroup2_mount if d is not None else rep.local.cgroup2_mount) or "not mounted"
    parent = f"  (run parent: {safe(d.cgroup_parent)})" if d is not None and d.cgroup_parent else ""
    lines.append(f"cgroup2:      {safe(mount)}{parent}")
    if d is not None:
        probes = "  ".join(
            f"{name} {'loaded' if p.loaded else ('FAILED' if p.enabled else 'off')}"
            for name, p in sorted(d.probes.items())
        )
        lines.append(f"Probes:       {probes or '(none)'}  attached={_yes(d.probes_attached).lower()}")
        lines.append(f"Ring buffer:  {d.ring_bytes >> 20} MiB")
        drops = "  ".join(f"{safe(k)}={v}" for k, v in sorted(d.drops.items())) or "none"
        lines.append(f"Drops:        {drops}")
        h = d.hooks
        if h:
            lines.append(
                f"Agent hooks:  {h.get('recorded', 0)} recorded  {h.get('refused', 0)} refused by their run  "
                f"{h.get('outside_runs', 0)} from outside any run (agent not started by `logira run`)"
            )
        mine = "" if os.geteuid() == 0 else " (yours; the daemon shows each user only their own)"
        lines.append(f"Active runs:  {len(d.runs)}{mine}")
        for r in d.runs:
            lines.append(
                f"  {safe(r.run_id)}  uid={r.uid}  pid={r.root_pid}  events={r.events}  {safe(r.run_dir)}"
            )
    else:
        lines.append("Probes:       unknown (daemon not running)")
    lines.append(f"Ready:        {'YES' if rep.ready else 'NO'}")
    if rep.reasons:
        lines.append("Reasons:")
        lines.extend(f"  - {safe(r)}" for r in rep.reasons)
    return lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status",
        help="check whether logira is ready on this machine",
        description="Check the daemon, kernel, BTF, cgroup2 and probes. Exit 0 when ready, 1 (with the "
        "reasons) when not. Works when the daemon is down.",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    rep = collect()
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(rep), indent=2).decode())
    else:
        print("\n".join(render_text(rep)))
    return 0 if rep.ready else 1
