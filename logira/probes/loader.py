"""`Probes`: find, open and load the BPF objects, share their maps, attach on demand.

The first object loaded creates the shared maps (`events`, `tracked_cgroups`, `drops`,
`emitted`); the others reuse the same fds before their own load, so all domains write
into ONE ring buffer and read ONE tracked-cgroup table. Programs are loaded at start
but attached only while at least one run cgroup is tracked, so an idle daemon costs
the host nothing.

Every failure is a `ProbeError` whose message is one line naming the fix.
"""

from __future__ import annotations

import errno
import os
import re
import struct
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec

from logira.errors import LogiraError
from logira.probes import layout, libbpf
from logira.probes.attach import EXTRA_TRACEPOINTS, skipped
from logira.probes.decode import all_kind_names

DOMAINS = ("exec", "file", "net")
SHARED_MAPS = ("events", "tracked_cgroups", "drops", "emitted")  # in every object (common.h)
# shared by the objects that declare them (bpf/dnsfds.h: net fills it, exec forgets at close)
SHARED_OPTIONAL = ("dns_fds", "dns_hint")
# tp_btf programs the kernel keeps from nesting on one CPU: what they skip is loss
RECURSION_COUNTED = ("net_sock_state",)
CONN_VALUE_SIZE, CONN_RUN_OFF = 128, 56  # bpf/net.bpf.c struct conn; its rec_hdr's run_cgroup_id
ARGV_CAP = 16384  # bpf/exec.bpf.c: argv_max must stay below this
BTF_PATH = "/sys/kernel/btf/vmlinux"
EM_BPF = 247
PAGE = os.sysconf("SC_PAGE_SIZE")


class ProbeError(LogiraError):
    """A one-line, user-facing probe problem that names the fix."""


class ProbeConfig(msgspec.Struct, kw_only=True):
    exec: bool = True
    file: bool = True
    net: bool = True
    ring_bytes: int = 16 << 20  # power of two, >= page size
    wake_bytes: int = 256 << 10
    argv_max: int = 4096  # bytes of argv captured; more sets argv_truncated
    run_cgroup_level: int = 2


def object_path(domain: str) -> Path:
    """Where the object of a domain is: $LOGIRA_<DOMAIN>_BPF_OBJ or inside the package."""
    env = os.environ.get(f"LOGIRA_{domain.upper()}_BPF_OBJ")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "bpf" / f"{domain}.bpf.o"


def validate(config: ProbeConfig) -> None:
    """Check the config knobs; raises ProbeError naming the knob."""
    rb = config.ring_bytes
    if rb < PAGE or rb & (rb - 1) or rb % PAGE:
        raise ProbeError(
            f"ring_bytes={rb} is invalid: it must be a power of two and at least {PAGE} (page size)"
        )
    if rb > 1 << 30:
        raise ProbeError(f"ring_bytes={rb} is too large: use at most 1 GiB (ring_bytes)")
    if not 0 < config.argv_max < ARGV_CAP:
        raise ProbeError(f"argv_max={config.argv_max} is invalid: use 1..{ARGV_CAP - 1} (argv_max)")
    if config.wake_bytes < 0:
        raise ProbeError(f"wake_bytes={config.wake_bytes} is invalid: use 0 or more (wake_bytes)")
    if not 1 <= config.run_cgroup_level <= 64:
        raise ProbeError(f"run_cgroup_level={config.run_cgroup_level} is invalid: use 1..64")


def _check_elf(path: Path, domain: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except FileNotFoundError:
        raise ProbeError(
            f"BPF object for {domain} not found at {path}: build it with `make bpf`"
            f" (or point LOGIRA_{domain.upper()}_BPF_OBJ at it)"
        ) from None
    except OSError as exc:
        raise ProbeError(f"cannot read BPF object {path}: {exc.strerror}") from None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        raise ProbeError(f"{path} is not an ELF file: rebuild the BPF objects with `make bpf`")
    little = head[5] == 1
    (machine,) = struct.unpack_from("<H" if little else ">H", head, 18)
    if machine != EM_BPF:
        raise ProbeError(f"{path} is not a BPF object (ELF machine {machine}): rebuild with `make bpf`")
    if not little:
        raise ProbeError(
            f"{path} is a big-endian BPF object, this host is little-endian: rebuild with `make bpf`"
        )


TRACEFS = "/sys/kernel/tracing"


def ensure_tracefs() -> None:
    """Syscall tracepoints attach through tracefs ids; mount it when the host has not."""
    if os.path.isdir(f"{TRACEFS}/events") or os.path.isdir("/sys/kernel/debug/tracing/events"):
        return
    done = subprocess.run(
        ["mount", "-t", "tracefs", "nodev", TRACEFS], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not os.path.isdir(f"{TRACEFS}/events"):
        raise ProbeError(
            f"tracefs is not mounted and mounting it failed ({done.stderr.strip() or 'unknown error'}):"
            f" mount it with `mount -t tracefs nodev {TRACEFS}`"
        )


_PROG_FAIL = re.compile(r"prog '([^']+)': (?:BPF program load failed|failed to load)")


def _verifier_reason(log: list[str]) -> tuple[str, str]:
    """(program, reason) from libbpf's log of a failed load."""
    prog = ""
    for line in log:
        m = _PROG_FAIL.search(line)
        if m:
            prog = m.group(1)
            break
    reason = ""
    inside = False
    body: list[str] = []
    for line in log:
        if "-- BEGIN PROG LOAD LOG --" in line:
            inside, body = True, []
            continue
        if "-- END PROG LOAD LOG --" in line:
            inside = False
            continue
        if inside:
            body.append(line.strip())
    body = [x for x in body if x and not x.startswith(("processed ", "verification time"))]
    if body:
        reason = body[-1]
    elif log:
        reason = log[-1].removeprefix("libbpf: ").strip()
    return prog, reason


def _classify(exc: libbpf.LibbpfError, domain: str, path: Path, config: ProbeConfig) -> ProbeError:
    log = exc.log
    text = "\n".join(log)
    if re.search(r"map 'events'.*failed to create", text) or (
        exc.errno in (errno.ENOMEM, errno.E2BIG) and "events" in text
    ):
        return ProbeError(
            f"cannot create the {config.ring_bytes}-byte ring buffer ({os.strerror(exc.errno)}):"
            " lower ring_bytes in the logirad config"
        )
    if exc.errno in (
        errno.EPERM,
        errno.EACCES,
        errno.EINVAL,
        errno.E2BIG,
        errno.ENOMEM,
        errno.ESRCH,
        errno.ENOENT,
    ):
        prog, reason = _verifier_reason(log)
        if prog:
            return ProbeError(
                f"the kernel refused BPF program {prog} of {path.name} ({os.strerror(exc.errno)}): {reason}"
            )
    tail = log[-1].removeprefix("libbpf: ").strip() if log else ""
    return ProbeError(f"cannot load {path} ({os.strerror(exc.errno)}){': ' + tail if tail else ''}")


class _Loaded:
    def __init__(self, domain: str, path: Path, obj: libbpf.Object, domains: list[str]):
        self.domain = domain
        self.path = path
        self.obj = obj
        self.progs = list(obj.programs())
        # (program, None = its own section, or "category/name" of an extra tracepoint)
        self.points: list[tuple[libbpf.Program, str | None]] = []
        for prog in self.progs:
            if skipped(prog.name, domains):
                continue
            self.points.append((prog, None))
            self.points.extend((prog, tp) for tp in EXTRA_TRACEPOINTS.get(prog.name, ()))
        self.links: list[libbpf.Link | None] = []  # parallel to points once attached

    def attach(self, i: int) -> libbpf.Link:
        prog, tp = self.points[i]
        if tp is None:
            return prog.attach()
        category, name = tp.split("/", 1)
        return prog.attach_tracepoint(category, name)


class Probes:
    """The loaded BPF objects of all enabled domains, their shared maps and links."""

    def __init__(self, config: ProbeConfig | None = None) -> None:
        self.config = config or ProbeConfig()
        validate(self.config)
        self._objs: list[_Loaded] = []
        self._tracked: set[int] = set()
        self._attached = False
        self._lock = threading.Lock()
        self._detach_gen = 0
        self._detacher: threading.Thread | None = None
        self.detach_linger = 2.0  # seconds programs stay attached after the last run ends
        self._ncpu = 0
        self.events_fd = -1
        self.ready_s = 0.0  # seconds from load() start to loaded (not attached)
        self.domains: tuple[str, ...] = ()

    # ------------------------------------------------------------------ load

    def load(self) -> None:
        """Open and load every enabled object. Raises ProbeError (one line) on failure."""
        if self._objs:
            raise ProbeError("probes are already loaded: create a new Probes to load again")
        t0 = time.perf_counter()
        if os.geteuid() != 0:
            raise ProbeError("loading BPF needs root: run logirad as root (e.g. with sudo)")
        if not os.path.exists(BTF_PATH):
            raise ProbeError(
                f"the kernel has no BTF ({BTF_PATH} is missing): use a kernel built with CONFIG_DEBUG_INFO_BTF=y"
            )
        ensure_tracefs()
        wanted = [d for d in DOMAINS if getattr(self.config, d)]
        if not wanted:
            raise ProbeError("no probe domain enabled: enable at least one of exec, file, net")
        paths = {d: object_path(d) for d in wanted}
        for d in wanted:
            _check_elf(paths[d], d)
        self._ncpu = libbpf.num_possible_cpus()
        libbpf.clear_log()  # once: the objects load concurrently and share libbpf's log
        shared: dict[str, int] = {}
        try:
            for d in wanted:
                self._objs.append(self._open_one(d, paths[d], wanted))
            self._create_shared(self._objs[0], shared)
            for o in self._objs:
                self._prepare(o, shared)
            self._load_all()
        except BaseException:
            self.close()
            raise
        finally:
            # the objects hold their own duplicates (bpf_map__reuse_fd dups the fd)
            for fd in shared.values():
                os.close(fd)
        self.events_fd = self._map_fd("events")
        self.domains = tuple(wanted)
        self.ready_s = time.perf_counter() - t0

    def _open_one(self, domain: str, path: Path, domains: list[str]) -> _Loaded:
        try:
            obj = libbpf.Object(str(path))
        except libbpf.LibbpfError as exc:
            raise ProbeError(
                f"cannot open BPF object {path} ({os.strerror(exc.errno)}): rebuild it with `make bpf`"
            ) from None
        loaded = _Loaded(domain, path, obj, domains)
        for name in SHARED_MAPS:
            try:
                obj.map(name)
            except libbpf.LibbpfError:
                obj.close()
                raise ProbeError(f"{path} has no shared map {name}: rebuild it with `make bpf`") from None
        return loaded

    def _create_shared(self, first: _Loaded, shared: dict[str, int]) -> None:
        """Create the shared maps up front (from the first object's definitions, which every
        object repeats via common.h), so that all objects can then load at the same time."""
        ring = first.obj.map("events")
        try:
            ring.set_max_entries(self.config.ring_bytes)
            for name in SHARED_MAPS:
                shared[name] = first.obj.map(name).create_like()
            for name in SHARED_OPTIONAL:
                owner = next((o for o in self._objs if o.obj.has_map(name)), None)
                if owner is not None:
                    shared[name] = owner.obj.map(name).create_like()
        except libbpf.LibbpfError as exc:
            if "events" not in shared:
                raise ProbeError(
                    f"cannot create the {self.config.ring_bytes}-byte ring buffer ({os.strerror(exc.errno)}):"
                    " lower ring_bytes in the logirad config"
                ) from None
            raise ProbeError(f"cannot create BPF map ({exc}): check the memory limits of logirad") from None

    def _prepare(self, o: _Loaded, shared: dict[str, int]) -> None:
        """Point the object at the shared maps and write its .rodata knobs."""
        obj = o.obj
        knobs = {
            "run_cgroup_level": self.config.run_cgroup_level,
            "wake_bytes": self.config.wake_bytes,
            "argv_max": self.config.argv_max,
        }
        try:
            for name in SHARED_MAPS:
                obj.map(name).reuse_fd(shared[name])
            for name in SHARED_OPTIONAL:
                if name in shared and obj.has_map(name):
                    obj.map(name).reuse_fd(shared[name])
            present = obj.rodata_vars()
            obj.set_rodata({k: v for k, v in knobs.items() if k in present})
        except libbpf.LibbpfError as exc:
            raise _classify(exc, o.domain, o.path, self.config) from None

    def _load_all(self) -> None:
        """Load every object, concurrently: a load is mostly the kernel's verifier (a syscall,
        ctypes drops the GIL) plus libbpf parsing vmlinux BTF, so they overlap on the cores.
        The first failure in domain order is raised."""

        def load(o: _Loaded) -> ProbeError | None:
            try:
                o.obj.load()
            except libbpf.LibbpfError as exc:
                return _classify(exc, o.domain, o.path, self.config)
            return None

        if len(self._objs) == 1:
            errors = [load(self._objs[0])]
        else:
            with ThreadPoolExecutor(max_workers=len(self._objs)) as pool:
                errors = list(pool.map(load, self._objs))
        for err in errors:
            if err is not None:
                raise err

    # ------------------------------------------------------------------ tracking
    #
    # Attaching is cheap (~4 ms for every program) but destroying a tracepoint link waits
    # for an RCU grace period inside the kernel's tracepoint mutex: ~40 ms per link, seconds
    # for all of them. So the last untrack() does not detach inline: a background thread
    # waits `detach_linger` seconds, then destroys the links one by one, each under the
    # lock. A track() meanwhile takes the lock (waiting at most for the one destroy in
    # flight), stops the detacher and re-attaches only the programs whose link is gone, so
    # no program is ever attached twice (which would duplicate its records).

    def track(self, run_cgroup_id: int) -> None:
        """Start recording a run cgroup (and everything below it); attaches on the first."""
        self._require_loaded()
        with self._lock:
            try:
                libbpf.map_update(
                    self._map_fd("tracked_cgroups"), struct.pack("<Q", run_cgroup_id), struct.pack("<I", 1)
                )
            except libbpf.LibbpfError as exc:
                raise ProbeError(
                    f"cannot track cgroup {run_cgroup_id} ({os.strerror(exc.errno)}): too many runs at once?"
                ) from None
            self._tracked.add(run_cgroup_id)
            self._detach_gen += 1  # cancels a pending background detach
            try:
                self._attach_missing()
            except BaseException:
                self._tracked.discard(run_cgroup_id)
                libbpf.map_delete(self._map_fd("tracked_cgroups"), struct.pack("<Q", run_cgroup_id))
                raise

    def untrack(self, run_cgroup_id: int) -> None:
        """Stop recording a run cgroup; the last one schedules a background detach."""
        self._require_loaded()
        with self._lock:
            libbpf.map_delete(self._map_fd("tracked_cgroups"), struct.pack("<Q", run_cgroup_id))
            self._tracked.discard(run_cgroup_id)
            if self._tracked or not self._attached:
                return
            self._detach_gen += 1
            gen = self._detach_gen
            self._detacher = threading.Thread(
                target=self._detach_later, args=(gen,), name="logira-detach", daemon=True
            )
            self._detacher.start()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until a scheduled detach has finished; True when nothing is attached."""
        t = self._detacher
        if t is not None:
            t.join(timeout)
        return not self._attached

    @property
    def tracked(self) -> frozenset[int]:
        return frozenset(self._tracked)

    @property
    def attached(self) -> bool:
        return self._attached

    def link_count(self) -> int:
        return sum(1 for o in self._objs for link in o.links if link is not None)

    def _attach_missing(self) -> None:
        libbpf.clear_log()
        if not self._attached:
            self._forget_stale_connections()
        try:
            for o in self._objs:
                if not o.links:
                    o.links = [None] * len(o.points)
                for i in range(len(o.points)):
                    if o.links[i] is None:
                        o.links[i] = o.attach(i)
        except libbpf.LibbpfError as exc:
            self._detach_now()
            tail = exc.log[-1].removeprefix("libbpf: ").strip() if exc.log else ""
            raise ProbeError(
                f"cannot {exc.what} ({os.strerror(exc.errno)}){': ' + tail if tail else ''}"
            ) from None
        self._attached = True

    def _forget_stale_connections(self) -> None:
        """Empty net's `conns` (tracked TCP sockets) before attaching again: a socket whose
        close happened while nothing was attached would otherwise stay in it, and a later
        socket at the same address would be reported as the old run's connection."""
        for o in self._objs:
            if o.obj.has_map("conns"):
                libbpf.map_clear(o.obj.map("conns").fd, 8)

    def _detach_later(self, gen: int) -> None:
        deadline = time.monotonic() + self.detach_linger
        while time.monotonic() < deadline:
            if self._detach_gen != gen:
                return
            time.sleep(0.05)
        for o in self._objs:
            for i in range(len(o.links)):
                with self._lock:
                    if self._detach_gen != gen:
                        return
                    link = o.links[i]
                    if link is not None:
                        link.destroy()
                        o.links[i] = None
        with self._lock:
            if self._detach_gen == gen:
                self._attached = False

    def _detach_now(self) -> None:
        """Destroy every link now, in parallel (grace periods partly overlap)."""
        links = [link for o in self._objs for link in o.links if link is not None]
        if len(links) > 1:
            with ThreadPoolExecutor(max_workers=16) as pool:
                list(pool.map(lambda link: link.destroy(), links))
        elif links:
            links[0].destroy()
        for o in self._objs:
            o.links = []
        self._attached = False

    # ------------------------------------------------------------------ counters

    def _map_fd(self, name: str) -> int:
        return self._objs[0].obj.map(name).fd

    def _require_loaded(self) -> None:
        if not self._objs:
            raise ProbeError("probes are not loaded: call Probes.load() first")

    def _percpu_sums(self, name: str) -> dict[int, int]:
        fd = self._map_fd(name)
        out: dict[int, int] = {}
        fmt = f"<{self._ncpu}Q"
        for kind in range(layout.K_MAX):
            raw = libbpf.map_lookup(fd, struct.pack("<I", kind), 8 * self._ncpu)
            if raw:
                n = sum(struct.unpack(fmt, raw))
                if n:
                    out[kind] = n
        return out

    def open_connections(self, run_cgroup_id: int, *, forget: bool = False) -> int:
        """TCP connections of a run that have not reached TCP_CLOSE yet (net's `conns` map,
        bpf/net.bpf.c); with forget, they are removed, so no close record of them comes later."""
        obj = next((o.obj for o in self._objs if o.obj.has_map("conns")), None)
        if obj is None:
            return 0
        fd = obj.map("conns").fd
        n = 0
        for key in libbpf.map_keys(fd, 8):
            value = libbpf.map_lookup(fd, key, CONN_VALUE_SIZE)
            if value is not None and struct.unpack_from("<Q", value, CONN_RUN_OFF)[0] == run_cgroup_id:
                n += 1
                if forget:
                    libbpf.map_delete(fd, key)
        return n

    def drop_counts(self) -> dict[str, int]:
        """Records the kernel could not put into the ring (ring full), by kind name; plus
        `net_state_missed`: TCP state changes net's tp_btf program did not see because it was
        already running on that CPU (a softirq change inside a process-context one)."""
        names = all_kind_names()
        out = {names.get(k, f"kind{k}"): n for k, n in self._percpu_sums("drops").items()}
        for o in self._objs:
            for prog in o.obj.programs():
                if prog.name in RECURSION_COUNTED:
                    missed = prog.recursion_misses()
                    if missed:
                        out["net_state_missed"] = out.get("net_state_missed", 0) + missed
        return out

    def emitted_counts(self) -> dict[str, int]:
        """Records the kernel put into the ring, by kind name."""
        names = all_kind_names()
        return {names.get(k, f"kind{k}"): n for k, n in self._percpu_sums("emitted").items()}

    # ------------------------------------------------------------------ teardown

    def close(self) -> None:
        """Detach and unload everything (idempotent)."""
        with self._lock:
            self._detach_gen += 1
            self._detach_now()
        for o in self._objs:
            o.obj.close()
        self._objs.clear()
        self._tracked.clear()
        self.events_fd = -1

    def __enter__(self) -> Probes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
