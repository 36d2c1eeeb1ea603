"""`logirad`: start-up checks, crash recovery, the event loop, and orderly shutdown.

Start-up failures (not root, an unsupported CPU architecture, a second instance, no cgroup2,
BPF refused, objects missing) print ONE line `logirad: error: ...` naming the fix and exit 1.
SIGTERM/SIGINT finalize every active run as "interrupted" and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import stat
import struct
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logira import cgroup2
from logira.daemon import config as config_mod
from logira.daemon import logging as dlog
from logira.daemon.config import DaemonConfig
from logira.daemon.registry import Registry, ensure_state_dir
from logira.daemon.sessions import SessionManager
from logira.pipeline.flow import FlowControl
from logira.pipeline.router import Router

if TYPE_CHECKING:
    from logira.probes.loader import Probes
from logira.errors import LogiraError


class FatalError(LogiraError):
    """Start-up cannot continue: one line for the operator."""


def _running_pid(sock_path: str) -> int | None:
    """The pid of a daemon answering on sock_path, None if nobody answers."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    s.settimeout(1.0)
    try:
        s.connect(sock_path)
        pid, _uid, _gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        return pid
    except OSError:
        return None
    finally:
        s.close()


def check_single_instance(cfg: DaemonConfig, state_dir: Path) -> int:
    """Refuse a second daemon; take the lock; remove a stale socket. Returns the lock fd."""
    pid = _running_pid(cfg.socket)
    if pid is not None:
        raise FatalError(f"logirad already running (pid {pid}) on {cfg.socket}")
    lock_path = state_dir / "logirad.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise FatalError(f"logirad already running (pid {other}) with state dir {state_dir}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    try:
        st = os.lstat(cfg.socket)
    except FileNotFoundError:
        return fd
    if not stat.S_ISSOCK(st.st_mode):
        os.close(fd)
        raise FatalError(f"{cfg.socket} exists and is not a socket; remove it or choose another --sock")
    os.unlink(cfg.socket)  # stale: nobody answered and we hold the lock
    dlog.get().info("stale_socket_removed", socket=cfg.socket)
    return fd


def reconcile(sessions: SessionManager, state_dir: Path) -> None:
    """Close what a crashed daemon left: kill and remove run cgroups, mark open runs incomplete."""
    from logira.daemon.runfiles import RunFilesError, recover_run

    log = dlog.get()
    registry = Registry(state_dir)
    parent = sessions.cg_parent
    for key, entry in registry.entries():
        if entry is not None:
            cg = Path(entry.cgroup)
            if cg.parent == parent and cg.is_dir():
                cgroup2.kill_all(cg)
                cgroup2.remove(cg)
            try:
                meta = recover_run(
                    entry.home, entry.uid, entry.gid, entry.run_id, state_dir, "daemon crashed"
                )
                log.warning(
                    "run_recovered",
                    run_id=entry.run_id,
                    uid=entry.uid,
                    status=meta.status,
                    events=meta.event_count,
                )
            except (RunFilesError, OSError) as exc:
                log.error("run_recovery_failed", run_id=entry.run_id, uid=entry.uid, error=str(exc))
        registry.remove(key)
    for child in sorted(parent.iterdir()):
        if child.is_dir():
            cgroup2.kill_all(child)
            removed = cgroup2.remove(child)
            log.warning("stale_cgroup_removed", cgroup=str(child), removed=removed)


SHUTDOWN_S = 20.0  # the whole shutdown (runs finalized, server closed, reader stopped) is bounded by this


async def serve(cfg: DaemonConfig, probes: Probes, sessions: SessionManager, cg_mount: Path) -> None:
    """The daemon's task group: the write path wired once, then the socket server until a signal.

        RingReader ─► Router ─► RunPipeline (one per run) ─► chain (JSONL → live) ─► FanOut ─► sinks
            ▲                                                            (SQLite, journald, ...)
            └──── FlowControl (pause/resume: the only control path back to the source)
    """
    from logira.daemon.canary import Canary
    from logira.daemon.server import Server
    from logira.daemon.status import DaemonState
    from logira.probes.ringbuf import RingReader

    log = dlog.get()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reader = RingReader(probes, sessions.router.route)
    sessions.router.flow.attach(reader)
    sessions.source = reader
    state = DaemonState(cfg, probes, sessions, cg_mount)
    run_group = (cfg.run_group, config_mod.run_group_gid(cfg.run_group)) if cfg.run_group else None
    server = Server(
        sessions, cfg.socket, lambda conn: state.reply(conn.uid), cfg.follower_buffer, run_group=run_group,
        canary=Canary(sessions, probes),
    )  # fmt: skip
    state.server = server
    async with asyncio.TaskGroup() as tg:
        sessions.bind(tg)
        reader.start()
        try:
            await server.start()
            log.info(
                "logirad_started",
                pid=os.getpid(),
                socket=cfg.socket,
                state_dir=cfg.state_dir,
                cgroup_parent=str(sessions.cg_parent),
                probes=list(probes.domains),
                ready_s=round(probes.ready_s, 3),
            )
            await stop.wait()
            log.info("logirad_stopping", active_runs=len(sessions.runs))
            try:
                async with asyncio.timeout(SHUTDOWN_S):
                    await sessions.shutdown()
                    await server.close()
            except TimeoutError:
                log.error("shutdown_timeout", active_runs=len(sessions.runs), seconds=SHUTDOWN_S)
        finally:
            reader.drain()
            reader.stop()
            sessions.cancel_all()  # runs left after the deadline: crash recovery closes them next start
            if sessions.otlp is not None:  # every run is closed: its losses are in its meta already
                sessions.otlp.close(timeout=cfg.otlp_finish_wait)
    log.info("logirad_stopped", unrouted=sessions.unrouted)


def open_exporter(cfg: DaemonConfig):
    """The daemon-wide OTLP exporter (its thread started), or None when no endpoint is configured."""
    if not cfg.otlp_endpoint:
        return None
    from logira.sinks.otlp import OtlpConfig, OtlpExporter

    exp = OtlpExporter(OtlpConfig(endpoint=cfg.otlp_endpoint, timeout=cfg.otlp_timeout, batch_max=cfg.otlp_batch_max,
                                  queue_max=cfg.otlp_queue_max, retries=cfg.otlp_retries, headers=cfg.otlp_headers))
    exp.start()
    return exp


def run(argv: list[str] | None = None) -> int:
    """Entry point body; returns the exit status."""
    try:
        cfg = config_mod.load(argv)
        dlog.setup(cfg.log_format)
        journal = dlog.open_journal(cfg.journald, cfg.journald_socket)
    except (config_mod.ConfigError, dlog.LoggingError) as exc:
        print(f"logirad: error: {exc}", file=sys.stderr)
        return 1
    try:
        from logira.probes import arch
        from logira.probes.loader import ProbeConfig, ProbeError, Probes, object_path
    except OSError as exc:  # libbpf.so.1: the one library an installed wheel needs from the system
        print(f"logirad: error: {getattr(exc, 'what', exc)}", file=sys.stderr)
        return 1

    lock_fd = -1
    probes = None
    try:
        if os.geteuid() != 0:
            raise FatalError("logirad must run as root (it loads BPF and manages cgroups): sudo logirad")
        arch.check(object_path("exec").parent)
        state_dir = ensure_state_dir(Path(cfg.state_dir))
        lock_fd = check_single_instance(cfg, state_dir)
        cg_mount = cgroup2.find_cgroup2_mount()
        probes = Probes(
            ProbeConfig(
                exec=cfg.exec,
                file=cfg.file,
                net=cfg.net,
                ring_bytes=cfg.ring_bytes,
                wake_bytes=cfg.wake_bytes,
                argv_max=cfg.argv_max,
            )
        )
        probes.detach_linger = cfg.detach_linger
        probes.load()
        flow = FlowControl(cfg.queue_high, cfg.queue_low)
        otlp = open_exporter(cfg)
        sessions = SessionManager(cfg, probes, cg_mount, state_dir, router=Router(flow), journal=journal, otlp=otlp)
        reconcile(sessions, state_dir)
        try:
            import uvloop

            runner: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
        except ImportError:
            runner = asyncio.run
        runner(serve(cfg, probes, sessions, cg_mount))
        return 0
    except (FatalError, ProbeError, arch.ArchError, cgroup2.CgroupError, OSError) as exc:
        print(f"logirad: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if probes is not None:
            with contextlib.suppress(Exception):
                probes.close()
        if lock_fd >= 0:
            os.close(lock_fd)


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
