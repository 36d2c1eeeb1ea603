"""The real-BPF capture harness (used by the process, file and net capture tests).

Fixtures:
  probes     session: all domains whose objects exist loaded ONCE (LOGIRA_TEST_DOMAINS=exec,file
             restricts), a RingReader drained by a background thread every 10 ms; events
             are kept per run cgroup id. Attribute access falls through to `Probes`.
  tracked    function: a fresh run cgroup `<cg2>/logira-test-<rand>/<test>-<rand>` (level 2),
             tracked in the kernel; `.run(argv, user=, cwd=, env=, input=, timeout=)` runs a
             command inside it from its first instruction; `.events(wait_for=, timeout=)`.
  untracked  function: the same, but the cgroup is NOT tracked (events() must stay empty).
  cc         session: `cc(name_or_path, *gcc_flags)` compiles tests/capture/wl/<name>.c (or a
             given .c path) into a world-readable temp dir, cached per session.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logira import cgroup2
from logira.model.kernel import KernelEvent, ProcExit
from logira.probes.loader import DOMAINS, ProbeConfig, Probes, object_path
from logira.probes.ringbuf import RingReader

WL_DIR = Path(__file__).resolve().parent / "wl"


class Capture:
    """Loaded probes + a reader thread that sorts decoded events by run cgroup id."""

    def __init__(self, probes: Probes):
        self.probes = probes
        self.by_run: dict[int, list[KernelEvent]] = {}
        self._lock = threading.Lock()
        self.reader = RingReader(probes, self._on_batch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="capture-drain", daemon=True)
        self._thread.start()

    def __getattr__(self, name: str):
        return getattr(self.probes, name)

    def _on_batch(self, events: list[KernelEvent]) -> None:
        with self._lock:
            for ev in events:
                self.by_run.setdefault(ev.run_cgroup_id, []).append(ev)

    def _poll(self) -> None:
        while not self._stop.wait(0.01):
            self.reader.drain()

    def drain(self) -> None:
        self.reader.drain()

    def events_of(self, run_id: int) -> list[KernelEvent]:
        self.reader.drain()
        with self._lock:
            return list(self.by_run.get(run_id, ()))

    def forget(self, run_id: int) -> None:
        with self._lock:
            self.by_run.pop(run_id, None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.reader.stop()
        self.probes.close()


def _test_domains() -> ProbeConfig:
    only = os.environ.get("LOGIRA_TEST_DOMAINS")
    wanted = set(only.split(",")) if only else set(DOMAINS)
    flags = {d: d in wanted and object_path(d).exists() for d in DOMAINS}
    return ProbeConfig(**flags)


@pytest.fixture(scope="session")
def probes(require_bpf, cgroup_parent: Path) -> Iterator[Capture]:
    """Probes of every built domain, loaded once per session, with a draining reader.

    The session parent cgroup (level 1) is tracked as an anchor for the whole session: no
    task has it as its level-2 ancestor, so it matches nothing, but it keeps the programs
    attached between tests (detaching costs ~40 ms per link here).
    """
    p = Probes(_test_domains())
    p.load()
    anchor = cgroup2.cgroup_id(cgroup_parent)
    p.track(anchor)
    cap = Capture(p)
    yield cap
    p.untrack(anchor)
    cap.close()


@pytest.fixture(scope="session")
def cgroup_parent(require_bpf) -> Iterator[Path]:
    """A private level-1 parent for this session's run cgroups (never the plain `logira`)."""
    parent = cgroup2.find_cgroup2_mount() / f"logira-test-{secrets.token_hex(4)}"
    os.mkdir(parent, 0o755)
    yield parent
    for child in parent.iterdir() if parent.exists() else ():
        if child.is_dir():
            cgroup2.kill_all(child)
            cgroup2.remove(child)
    cgroup2.remove(parent)


class RunCgroup:
    """A run cgroup with helpers to run commands inside it and read their events."""

    def __init__(self, cap: Capture, path: Path, is_tracked: bool):
        self.cap = cap
        self.cgroup = path
        self.id = cgroup2.cgroup_id(path)
        self.is_tracked = is_tracked

    def run(
        self,
        argv: list[str],
        *,
        user=None,
        cwd: str | os.PathLike | None = None,
        env: dict[str, str] | None = None,
        input: bytes | str | None = None,
        timeout: float = 20,
        cgroup: Path | None = None,
        wait_exit: bool = True,
    ) -> subprocess.CompletedProcess:
        """Run argv inside the cgroup (or a `cgroup` below it) from its first instruction.

        The forked child moves itself into the cgroup as root, then drops to `user`
        (a tests.conftest.TestUser), then execs: so the exec itself is already recorded.
        With wait_exit (tracked only) it waits until the root process's exit record
        arrived, so everything the process tree emitted before is in events().
        """
        procs_path = os.fsencode((cgroup or self.cgroup) / "cgroup.procs")
        uid = gid = None
        if user is not None:
            uid, gid = user.uid, user.gid
            if env is None:
                env = user.env()

        def enter() -> None:  # runs in the child between fork and exec: keep it minimal
            fd = os.open(procs_path, os.O_WRONLY)
            os.write(fd, b"0\n")
            os.close(fd)
            if uid is not None:
                os.setgroups([gid])
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)

        text = isinstance(input, str)
        with subprocess.Popen(
            argv,
            preexec_fn=enter,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=text,
        ) as proc:
            try:
                out, err = proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
        done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
        done.pid = proc.pid  # type: ignore[attr-defined]
        if self.is_tracked and wait_exit:
            self.events(wait_for=lambda e: isinstance(e, ProcExit) and e.pid == proc.pid, timeout=5)
        return done

    def events(
        self, wait_for: Callable[[KernelEvent], bool] | None = None, timeout: float = 5
    ) -> list[KernelEvent]:
        """Events of this run collected so far; with wait_for, first wait until one matches."""
        deadline = time.monotonic() + timeout
        while True:
            evs = self.cap.events_of(self.id)
            if wait_for is None or any(wait_for(e) for e in evs) or time.monotonic() > deadline:
                return evs
            time.sleep(0.01)

    def of_type(self, cls: type, **match) -> list:
        """events() of one class whose attributes equal `match`."""
        return [
            e
            for e in self.events()
            if isinstance(e, cls) and all(getattr(e, k) == v for k, v in match.items())
        ]

    def subgroup(self, name: str) -> Path:
        """A nested cgroup below this run cgroup (still traced: same level-2 ancestor)."""
        path = self.cgroup / name
        os.mkdir(path, 0o755)
        return path


def _make_run_cgroup(request, cap: Capture, parent: Path, track: bool) -> Iterator[RunCgroup]:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:40] + "-" + secrets.token_hex(3)
    path = cgroup2.create(parent, name)
    rc = RunCgroup(cap, path, track)
    if track:
        cap.probes.track(rc.id)
    try:
        yield rc
    finally:
        cgroup2.kill_all(path)
        cgroup2.remove(path)
        if track:
            cap.probes.untrack(rc.id)
        cap.forget(rc.id)


@pytest.fixture
def tracked(request, probes: Capture, cgroup_parent: Path) -> Iterator[RunCgroup]:
    """A fresh tracked run cgroup (level 2)."""
    yield from _make_run_cgroup(request, probes, cgroup_parent, True)


@pytest.fixture
def untracked(request, probes: Capture, cgroup_parent: Path) -> Iterator[RunCgroup]:
    """A fresh sibling run cgroup that is NOT tracked."""
    yield from _make_run_cgroup(request, probes, cgroup_parent, False)


class Compiler:
    """gcc into a world-readable temp dir, cached by (source, flags) for the session."""

    def __init__(self, outdir: Path):
        self.outdir = outdir
        self._cache: dict[tuple[str, tuple[str, ...]], Path] = {}
        self._lock = threading.Lock()

    def __call__(self, src: str | os.PathLike, *flags: str) -> Path:
        path = Path(src) if os.fspath(src).endswith(".c") else WL_DIR / f"{src}.c"
        key = (str(path), flags)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            out = self.outdir / f"{path.stem}-{len(self._cache)}"
            r = subprocess.run(
                ["gcc", "-O2", "-o", str(out), str(path), *flags], capture_output=True, text=True, check=False
            )
            if r.returncode != 0:
                pytest.fail(f"gcc failed for {path}: {r.stderr.strip()}")
            os.chmod(out, 0o755)
            self._cache[key] = out
            return out

    def source(self, code: str, name: str, *flags: str) -> Path:
        """Compile C source text (written next to the binaries)."""
        src = self.outdir / f"{name}.c"
        src.write_text(code)
        return self(src, *flags)


@pytest.fixture(scope="session")
def cc() -> Iterator[Compiler]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    d = Path(tempfile.mkdtemp(prefix="logira-wl-"))
    os.chmod(d, 0o755)  # the test users must be able to run the workloads
    yield Compiler(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def world_tmp() -> Iterator[Path]:
    """A temp dir every test user can enter and write (mode 1777), removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="logira-cap-"))
    os.chmod(d, 0o1777)
    yield d
    with contextlib.suppress(OSError):
        shutil.rmtree(d)


def exits_of(events: list[KernelEvent], pid: int) -> list[ProcExit]:
    return [e for e in events if isinstance(e, ProcExit) and e.pid == pid]
