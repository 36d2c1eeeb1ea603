"""`logira doctor [--json]`: the thorough check. Every check that fails names its fix in one line.

`status` answers "can I record now?" quickly; `doctor` goes through everything a recording depends
on, and asks the daemon to run its canary: a real exec, file create and connect, recorded by the
loaded probes and recognised (logira/daemon/canary.py). Exit 0 when nothing failed (warnings
allowed), 1 when a check failed, 2 on a bad command line.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import grp
import os
import socket
import stat
import time
from pathlib import Path

import msgspec

from logira import __version__
from logira.cgroup2 import CgroupError, find_cgroup2_mount
from logira.cli.errors import CliError
from logira.client.connection import Connection, socket_path
from logira.daemon import protocol
from logira.render.escape import esc as safe
from logira.storage.home import client_home

MIN_KERNEL = (5, 8)
BTF_PATH = "/sys/kernel/btf/vmlinux"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
FREE_FAIL = 100 << 20  # below this a run can fail mid-way
FREE_WARN = 1 << 30
TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


class Check(msgspec.Struct, kw_only=True):
    name: str
    status: str  # ok | warn | fail | skip
    detail: str
    fix: str = ""


class Report(msgspec.Struct, kw_only=True):
    ok: bool
    version: str
    checks: list[Check]


def _ok(name: str, detail: str) -> Check:
    return Check(name=name, status="ok", detail=detail)


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name=name, status="fail", detail=detail, fix=fix)


def _warn(name: str, detail: str, fix: str) -> Check:
    return Check(name=name, status="warn", detail=detail, fix=fix)


def check_kernel() -> list[Check]:
    release = os.uname().release
    parts = release.split("-")[0].split(".")
    try:
        version = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        version = (0, 0)
    out = [
        _ok("kernel", f"{release} (>= 5.8)")
        if version >= MIN_KERNEL
        else _fail("kernel", f"{release} is older than 5.8", "boot a kernel >= 5.8 (BPF ring buffers)")
    ]
    if Path(BTF_PATH).exists():
        out.append(_ok("btf", BTF_PATH))
    else:
        out.append(_fail("btf", f"{BTF_PATH} is missing", "boot a kernel built with CONFIG_DEBUG_INFO_BTF=y"))
    return out


def check_libbpf() -> Check:
    """The one system library logirad loads (ctypes): present in an installed wheel's environment?"""
    try:
        ctypes.CDLL("libbpf.so.1")
    except OSError:
        return _fail(
            "libbpf", "libbpf.so.1 cannot be loaded", "install it (Debian/Ubuntu: apt-get install libbpf1)"
        )
    return _ok("libbpf", "libbpf.so.1 loads")


def check_cgroup2(daemon: protocol.StatusReply | None) -> Check:
    try:
        mount = find_cgroup2_mount()
    except CgroupError:
        return _fail("cgroup2", "no cgroup2 filesystem is mounted", "mount -t cgroup2 none /sys/fs/cgroup")
    layout = "unified" if str(mount) == "/sys/fs/cgroup" else "hybrid"
    if daemon is None:
        return _ok("cgroup2", f"{mount} ({layout})")
    parent = Path(daemon.cgroup_parent)
    try:
        st = parent.stat()
    except OSError:
        return _fail("cgroup2", f"run parent {parent} is missing", "restart logirad (it creates the parent)")
    if st.st_uid != 0 or st.st_mode & 0o022:
        return _fail(
            "cgroup2",
            f"run parent {parent} is not root-owned 0755 (uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o})",
            f"sudo chown root:root {parent} && sudo chmod 0755 {parent}",
        )
    return _ok("cgroup2", f"{mount} ({layout}); run parent {parent} root-owned, not delegated")


def check_tracefs(daemon: protocol.StatusReply | None) -> Check:
    for path in TRACEFS:
        if os.path.isdir(f"{path}/events"):
            return _ok("tracefs", path)
    if daemon is not None and daemon.probes_loaded:
        return _ok("tracefs", "in use by logirad (not readable by this user)")
    if os.geteuid() != 0:
        return Check(
            name="tracefs", status="skip", detail="not visible to this user; logirad mounts it when needed"
        )
    return _fail("tracefs", "not mounted", "sudo mount -t tracefs nodev /sys/kernel/tracing")


def query_daemon(path: str) -> tuple[protocol.StatusReply | None, str]:
    try:
        with Connection.open(path, timeout=3.0) as conn:
            return conn.request(protocol.Status(), protocol.StatusReply, timeout=5.0), ""
    except CliError as exc:
        return None, str(exc)


def check_daemon(path: str, daemon: protocol.StatusReply | None, error: str) -> list[Check]:
    if daemon is None:
        return [
            _fail(
                "daemon", error.split("; ")[0], "start it as root: sudo logirad &, or systemctl start logirad"
            )
        ]
    out = [_ok("daemon", f"running, pid {daemon.pid}, up {int(daemon.uptime_s)}s")]
    if daemon.version == __version__:
        out.append(_ok("version", f"logirad {safe(daemon.version)} = logira {__version__}"))
    else:
        out.append(
            _fail(
                "version",
                f"logirad is {safe(daemon.version)}, this logira is {__version__}",
                "restart logirad after an upgrade (systemctl restart logirad), or use the matching logira",
            )
        )
    st = os.stat(path)
    mode = stat.S_IMODE(st.st_mode)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    where = f"{path} owner uid {st.st_uid} group {group} mode {mode:04o}"
    if st.st_uid != 0:
        out.append(
            _fail("socket", where, "the socket must belong to root: stop whatever serves it, restart logirad")
        )
    elif mode == 0o666:
        out.append(_ok("socket", f"{where} (any local user may start runs)"))
    elif mode == 0o660 and st.st_gid != 0:
        member = os.getegid() == st.st_gid or st.st_gid in os.getgroups() or os.geteuid() == 0
        out.append(
            _ok("socket", f"{where} (runs limited to group {group})")
            if member
            else _fail(
                "socket",
                f"{where}: you are not in group {group}",
                f"sudo usermod -aG {group} $USER, then log in again",
            )
        )
    else:
        out.append(_fail("socket", where, "restart logirad (it sets 0666, or 0660 root:run_group)"))
    return out


def local_canary() -> protocol.CanaryReply:
    """Root without a daemon: load the probes here and run the daemon's own canary code in-process.

    A private cgroup parent (`logira-doctor-<pid>`) and a 1 MiB ring keep it apart from any logirad
    running on another socket; everything is unloaded and removed afterwards.
    """
    import asyncio
    from types import SimpleNamespace

    from logira import cgroup2
    from logira.daemon.canary import Canary
    from logira.pipeline.flow import FlowControl
    from logira.pipeline.router import Router
    from logira.probes.loader import ProbeConfig, ProbeError, Probes
    from logira.probes.ringbuf import RingReader

    probes = Probes(ProbeConfig(ring_bytes=1 << 20))
    parent = None
    try:
        probes.load()
        parent = cgroup2.ensure_parent(cgroup2.find_cgroup2_mount(), f"logira-doctor-{os.getpid()}")
        router = Router(FlowControl(high=8192, low=2048))
        sessions = SimpleNamespace(router=router, cg_parent=parent, source=RingReader(probes, router.route))
        return asyncio.run(Canary(sessions, probes).run())
    except (ProbeError, CgroupError, OSError) as exc:
        return protocol.CanaryReply(error=f"loading the probes failed: {exc}")
    finally:
        probes.close()
        if parent is not None:
            cgroup2.remove(parent)


def check_canary(path: str, daemon: protocol.StatusReply | None) -> list[Check]:
    names = ("bpf exec", "bpf file", "bpf net")
    by = ""
    if daemon is None and os.geteuid() == 0:
        reply = local_canary()
        by = " (probes loaded by doctor: no daemon)"
    elif daemon is None:
        skipped = "logirad is not running (as root, doctor loads the probes itself)"
        return [Check(name=n, status="skip", detail=skipped) for n in names]
    else:
        try:
            with Connection.open(path, timeout=3.0) as conn:
                reply = conn.request(protocol.Canary(), protocol.CanaryReply, timeout=60.0)
        except CliError as exc:
            fix = "restart logirad with this version (older daemons have no canary)"
            return [_fail("bpf canary", str(exc), fix)]
    if reply.error:
        return [_fail("bpf canary", safe(reply.error), "see logirad's log (journalctl -t logirad)")]
    out = []
    for name, domain, seen, what in (
        ("bpf exec", "exec", reply.exec_seen, "exec of /bin/true"),
        ("bpf file", "file", reply.file_seen, "create of a file"),
        ("bpf net", "net", reply.net_seen, "connect to 127.0.0.1"),
    ):
        if domain not in reply.domains:
            out.append(
                _warn(
                    name, f"{domain} probes are not loaded", f"enable them: {domain} = true in logirad.toml"
                )
            )
        elif seen:
            out.append(_ok(name, f"canary {what} recorded and recognised{by}"))
        else:
            out.append(
                _fail(name, f"canary {what} was not recorded ({reply.events} events came back)",
                      "check `logira status` drops and logirad's log; restart logirad")
            )  # fmt: skip
    return out


def check_journald() -> Check:
    try:
        st = os.stat(JOURNAL_SOCKET)
    except OSError:
        return _warn(
            "journald",
            f"no journal socket at {JOURNAL_SOCKET}",
            "none needed: logs go to stderr (journald = auto)",
        )
    if not stat.S_ISSOCK(st.st_mode):
        return _fail("journald", f"{JOURNAL_SOCKET} is not a socket", "restart systemd-journald")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        s.connect(JOURNAL_SOCKET)
    except PermissionError:
        return _ok("journald", f"{JOURNAL_SOCKET} listening (not writable by this user; logirad is root)")
    except OSError as exc:  # journald = auto then logs to stderr only: nothing is lost from the runs
        return _warn(
            "journald",
            f"{JOURNAL_SOCKET}: {exc.strerror}",
            "systemctl restart systemd-journald (logs go to stderr meanwhile)",
        )
    finally:
        s.close()
    return _ok("journald", f"{JOURNAL_SOCKET} reachable")


def check_home() -> list[Check]:
    home = client_home()
    runs = home / "runs"
    existing = next((p for p in (runs, home, *home.parents) if p.exists()), Path("/"))
    out = []
    if existing in (runs, home):
        problem = None
        for d in (p for p in (home, runs) if p.exists()):  # the daemon's own rules (safefs.open_runs_dir)
            st = d.stat()
            if st.st_uid != os.geteuid():
                problem = _fail("run home", f"{d} belongs to uid {st.st_uid}", f"sudo chown -R $USER {home}")
            elif st.st_mode & 0o022:
                problem = _fail("run home", f"{d} is group/other-writable", f"chmod go-w {d}")
            elif not os.access(d, os.W_OK | os.X_OK):
                problem = _fail("run home", f"{d} is not writable", f"chmod u+rwx {d}")
            if problem:
                break
        created = "" if runs.exists() else " (created by the first run)"
        out.append(problem or _ok("run home", f"{runs}{created}"))
    elif os.access(existing, os.W_OK | os.X_OK):
        out.append(_ok("run home", f"{home} does not exist yet; the first `logira run` creates it"))
    else:
        out.append(
            _fail(
                "run home",
                f"{home} cannot be created ({existing} is not writable)",
                "export LOGIRA_HOME=<a directory you own>",
            )
        )
    vfs = os.statvfs(existing)
    free = vfs.f_bavail * vfs.f_frsize
    text = f"{free >> 20} MiB free under {existing}"
    if free < FREE_FAIL:
        out.append(
            _fail("disk space", text, "free space there (logira prune), or point LOGIRA_HOME elsewhere")
        )
    elif free < FREE_WARN:
        out.append(_warn("disk space", text, "less than 1 GiB: a busy agent's run can be hundreds of MiB"))
    else:
        out.append(_ok("disk space", text))
    return out


class _Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 204)]


def check_clock() -> Check:
    now = time.time()
    year = time.gmtime(now).tm_year
    if not 2024 <= year < 2100:
        return _fail(
            "clock",
            f"the system clock says {time.strftime('%Y-%m-%d', time.gmtime(now))}",
            "set the clock (timedatectl set-ntp true)",
        )
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    tx = _Timex()  # modes = 0: read only, works unprivileged
    state = libc.adjtimex(ctypes.byref(tx))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    if state == TIME_ERROR:
        return _warn(
            "clock",
            f"{stamp}, not synchronised (adjtimex TIME_ERROR)",
            "enable NTP (timedatectl set-ntp true) so run timestamps can be trusted",
        )
    return _ok("clock", f"{stamp}, synchronised" if state >= 0 else stamp)


def collect(sock: str | None = None) -> Report:
    path = socket_path(sock)
    daemon, error = query_daemon(path)
    checks = [
        *check_kernel(),
        check_libbpf(),
        check_cgroup2(daemon),
        check_tracefs(daemon),
        *check_daemon(path, daemon, error),
        *check_canary(path, daemon),
        check_journald(),
        *check_home(),
        check_clock(),
    ]
    return Report(ok=not any(c.status == "fail" for c in checks), version=__version__, checks=checks)


def render_text(rep: Report) -> list[str]:
    mark = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}
    lines = []
    for c in rep.checks:
        lines.append(f"{mark[c.status]}  {c.name:<11} {safe(c.detail)}")
        if c.fix and c.status in ("fail", "warn"):
            lines.append(f"      {'':<11} fix: {safe(c.fix)}")
    failed = sum(c.status == "fail" for c in rep.checks)
    lines.append("doctor: all checks passed" if not failed else f"doctor: {failed} check(s) failed")
    return lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check everything logira needs, with a fix for each problem",
        description="Check the kernel (version, BTF), cgroup2 and the run parent, tracefs, the daemon (running, "
        "version, socket owner and mode), BPF capture with a real canary exec/open/connect recorded by the "
        "daemon, journald, the run home, disk space and the clock. Exit 0 when no check failed "
        "(warnings allowed), 1 when one did.",
    )
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    rep = collect()
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(rep), indent=2).decode())
    else:
        print("\n".join(render_text(rep)))
    return 0 if rep.ok else 1
