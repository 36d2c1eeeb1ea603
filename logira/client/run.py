"""`logira run`: start an agent command as a recorded run.

The agent's first process is forked HELD (blocked reading a pipe). The daemon is asked to
put that pid into a fresh run cgroup (`start_run`); only after `run_started` does the
client release it, and the child then exec's the command. So the agent's very first
instruction already runs inside the recorded cgroup, and if the daemon is absent or refuses,
the held child is killed and the command never runs: there is no unaudited fallback.

The agent shares logira's terminal, stdin/stdout/stderr and foreground process group, so
it sees exactly what it would see without logira. Ctrl-C reaches it from the tty; logira
itself ignores the first SIGINT and SIGKILLs the agent's processes (everything in the run
cgroup) on the second.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from pathlib import Path

import msgspec

from logira import cgroup2
from logira.cgroup2 import CgroupError, find_cgroup2_mount
from logira.client.connection import Connection
from logira.daemon import protocol
from logira.errors import LogiraError
from logira.render.escape import esc

START_TIMEOUT_S = 30.0  # daemon creates the run dir, cgroup, SQLite; generous on a loaded host
FINISH_TIMEOUT_S = 120.0  # straggler wait + drain + finalize
KILL_GRACE_S = 2.0  # daemon lost: SIGTERM, then SIGKILL after this long
_RELEASE = b"G"


class RunOptions(msgspec.Struct, kw_only=True):
    argv: list[str]
    tool: str = ""
    rules_path: str = ""
    exec: bool = True
    file: bool = True
    net: bool = True
    sock: str | None = None


class RunResult(msgspec.Struct, kw_only=True):
    exit_status: int  # what `logira run` exits with
    finished: protocol.RunFinished | None


def read_rules(path: str) -> tuple[str, str]:
    """Read and validate a custom rules file as the user. Returns (absolute path, text)."""
    abspath = os.path.abspath(path)
    try:
        text = Path(abspath).read_text(encoding="utf-8")
    except OSError as exc:
        raise LogiraError(f"cannot read --rules file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LogiraError(f"--rules file {path} is not UTF-8 text") from None
    if not text.strip():
        raise LogiraError(f"--rules file {path} is empty")
    # imported here: YAML and the rule compiler cost every `logira run` tens of ms otherwise
    from logira.detect.loader import RuleError, load_rules

    try:
        load_rules(extra=[(abspath, text)])
    except RuleError as exc:  # already one line: file:line: rule <id>: what is wrong
        raise LogiraError(f"invalid --rules file: {exc}") from None
    return abspath, text


def _home_for_request() -> str:
    """The home to send: absolute $LOGIRA_HOME, or "" for the daemon's default (~/.logira)."""
    env = os.environ.get("LOGIRA_HOME")
    return os.path.abspath(env) if env else ""


def _ensure_home() -> None:
    from logira.storage.home import HomeError, ensure_home_as_user

    try:
        ensure_home_as_user()
    except HomeError as exc:
        raise LogiraError(str(exc)) from None


def _deny_ptrace() -> None:
    """Make this process non-dumpable, so the agent (same uid, our child) cannot ptrace it.

    Without Yama (absent on some kernels, scope 0 on others) any process of the user may ptrace
    any other: the agent could inject code into `logira run`, which lives outside the run cgroup,
    and act unrecorded, or steal its daemon connection with pidfd_getfd. PR_SET_DUMPABLE=0 makes
    ptrace, pidfd_getfd, process_vm_* and /proc/<pid>/mem need CAP_SYS_PTRACE. It is reset by
    execve, so the agent itself stays debuggable. ctypes: the stdlib has no prctl.
    """
    import ctypes

    pr_set_dumpable = 4
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(pr_set_dumpable, 0, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError) as exc:
        raise LogiraError(f"cannot protect logira run from ptrace (prctl: {exc}); the command was not run") from None


def _fork_held(argv: list[str]) -> tuple[int, int]:
    """Fork the agent's first process, blocked until the parent writes to the pipe.

    Returns (pid, write end). In the child nothing returns: it either exec's the command or
    exits (127 not found, 126 not executable, 1 released without the go byte).
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid:
        os.close(r)
        return pid, w
    try:
        os.close(w)
        go = b""
        while True:
            try:
                go = os.read(r, 1)
                break
            except InterruptedError:
                continue
        if go != _RELEASE:
            os._exit(1)
        # The agent starts with what the user's shell gave logira, not with logira's handlers.
        _restore_dispositions()
        try:
            os.execvp(argv[0], argv)
        except FileNotFoundError:
            os.write(2, f"logira: {argv[0]}: command not found\n".encode(errors="replace"))
            os._exit(127)
        except PermissionError:
            os.write(2, f"logira: {argv[0]}: permission denied\n".encode(errors="replace"))
            os._exit(126)
        except OSError as exc:
            os.write(2, f"logira: {argv[0]}: {exc.strerror}\n".encode(errors="replace"))
            os._exit(126)
    finally:
        os._exit(1)


_ORIGINAL_DISPOSITIONS: dict[int, object] = {}
_HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def _restore_dispositions() -> None:
    """Give the agent the dispositions logira was started with: ignored stays ignored (nohup),
    anything Python installed (its SIGINT handler, its SIG_IGN for SIGPIPE/SIGXFSZ) becomes default."""
    for sig in _HANDLED:
        orig = _ORIGINAL_DISPOSITIONS.get(sig, signal.SIG_DFL)
        signal.signal(sig, signal.SIG_IGN if orig is signal.SIG_IGN else signal.SIG_DFL)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)


def _kill_held(pid: int, w: int) -> None:
    with contextlib.suppress(OSError):
        os.close(w)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _cgroup_rel(pid: int | str) -> str | None:
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("0::/"):
            return line[4:]
    return None


def run_cgroup_of(pid: int) -> Path | None:
    """The run cgroup `pid` was moved into, or None when it does not look like one.

    Only a level-2 cgroup (`<parent>/<run>`) other than logira's own is trusted: signalling
    "everything in the cgroup" must never reach beyond the agent's processes.
    """
    rel, own = _cgroup_rel(pid), _cgroup_rel("self")
    if not rel or rel == own or len(rel.split("/")) != cgroup2.RUN_CGROUP_LEVEL:
        return None
    try:
        return find_cgroup2_mount() / rel
    except CgroupError:
        return None


class _Signals:
    """Signal policy while the agent runs: first SIGINT ignored (the agent got it from the
    tty), second SIGINT kills the agent's processes; SIGTERM/SIGHUP forwarded."""

    def __init__(self, agent_pid: int, run_cgroup: Path | None):
        self.agent_pid = agent_pid
        self.run_cgroup = run_cgroup
        self.sigints = 0
        self.agent_alive = True

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_int)
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGHUP, self._forward)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)  # ^\ goes to the agent, not to logira

    def _on_int(self, _sig: int, _frame: object) -> None:
        self.sigints += 1
        if self.sigints >= 2:
            self.signal_all(signal.SIGKILL)

    def _forward(self, sig: int, _frame: object) -> None:
        if self.agent_alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.agent_pid, sig)

    def signal_all(self, sig: int) -> None:
        """Signal the agent and every process of its run (the run cgroup holds exactly those,
        including any that left the process group or session)."""
        targets = {self.agent_pid} if self.agent_alive else set()
        if self.run_cgroup is not None:
            with contextlib.suppress(OSError):
                targets.update(cgroup2.procs(self.run_cgroup))
        targets.discard(os.getpid())
        # the root process first: killed after its child, a shell would run its next command
        for pid in sorted(targets, key=lambda t: t != self.agent_pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def kill_all(self, timeout: float = 2.0) -> None:
        """SIGKILL the run's processes until none is left: one pass can miss a child forked
        between reading cgroup.procs and the kill of its parent."""
        deadline = time.monotonic() + timeout
        while True:
            self.signal_all(signal.SIGKILL)
            alive = [pid for pid in self._cgroup_procs() if _running(pid)]
            if not alive or time.monotonic() >= deadline:
                return
            time.sleep(0.01)

    def _cgroup_procs(self) -> list[int]:
        if self.run_cgroup is None:
            return []
        try:
            return cgroup2.procs(self.run_cgroup)
        except OSError:
            return []


def _running(pid: int) -> bool:
    """True unless pid is gone or a zombie (a zombie's parent just has not reaped it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :][:1] not in ("Z", "X", "")


def _why_ended(conn: Connection) -> str:
    """What the daemon said (if anything) when it ended the connection mid-run."""
    try:
        msg = conn.recv(timeout=0.5)
    except LogiraError:
        return "lost the connection to logirad mid-run"
    if isinstance(msg, protocol.Error):
        return f"logirad ended the run mid-run: {msg.message}"
    if isinstance(msg, protocol.RunFinished):
        return f"logirad ended the run mid-run ({msg.status})"
    return f"logirad sent an unexpected {type(msg).__name__} mid-run"


def _wait_agent(conn: Connection, pid: int, sigs: _Signals) -> tuple[int, int, bool]:
    """Wait for the agent to exit. Returns (exit_code, signal, daemon_lost)."""
    pidfd = os.pidfd_open(pid)
    daemon_lost = False
    kill_at: float | None = None
    try:
        while True:
            watch = [pidfd] if daemon_lost else [pidfd, conn.fileno()]
            timeout = None if kill_at is None else max(0.0, kill_at - time.monotonic())
            ready, _, _ = select.select(watch, [], [], timeout)
            if pidfd in ready:
                break
            if kill_at is not None and time.monotonic() >= kill_at:
                # SIGTERM can be ignored: an agent that traps it must not go on unrecorded
                sigs.kill_all()
                kill_at = None
            if conn.fileno() in ready and not daemon_lost:
                # The daemon says nothing while the agent runs: readable means EOF/crash (or
                # an error). Fail closed: an agent that can no longer be recorded is stopped.
                daemon_lost = True
                print(
                    f"logira: {_why_ended(conn)}; stopping the agent (the run is incomplete)", file=sys.stderr
                )
                sigs.signal_all(signal.SIGTERM)
                kill_at = time.monotonic() + KILL_GRACE_S
    finally:
        os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    sigs.agent_alive = False
    if daemon_lost:
        # the root process is gone; its background processes are no more recorded than it was
        sigs.kill_all()
    if os.WIFSIGNALED(status):
        return 0, os.WTERMSIG(status), daemon_lost
    return os.WEXITSTATUS(status), 0, daemon_lost


def run(opts: RunOptions) -> RunResult:
    """Run `opts.argv` as a recorded run; returns the agent's status and the daemon's summary."""
    if not opts.argv:
        raise LogiraError("no command given; usage: logira run [flags] -- <command...>", exit_code=2)
    _deny_ptrace()  # first: the window in which other processes of the user may attach stays short
    _ensure_home()
    rules_path, rules_yaml = read_rules(opts.rules_path) if opts.rules_path else ("", "")
    try:
        cwd = os.getcwd()
    except FileNotFoundError:
        raise LogiraError("the current directory was deleted; cd somewhere else and retry") from None
    tool = opts.tool or os.path.basename(opts.argv[0])
    conn = Connection.open(opts.sock)

    for sig in _HANDLED:
        _ORIGINAL_DISPOSITIONS[sig] = signal.getsignal(sig)

    # Until the agent is released, a signal must not leave a held child behind.
    def _abort(sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _abort)
    pid, w = _fork_held(opts.argv)
    try:
        started = conn.request(
            protocol.StartRun(
                tool=tool,
                argv=list(opts.argv),
                cwd=cwd,
                pid=pid,
                home=_home_for_request(),
                rules_yaml=rules_yaml,
                rules_path=rules_path,
                exec=opts.exec,
                file=opts.file,
                net=opts.net,
            ),
            protocol.RunStarted,
            timeout=START_TIMEOUT_S,
        )
    except LogiraError as exc:
        _kill_held(pid, w)
        conn.close()
        raise LogiraError(f"{exc}; the command was not run", exit_code=exc.exit_code) from None
    except KeyboardInterrupt:
        _kill_held(pid, w)
        conn.close()
        raise LogiraError("interrupted before the run started; the command was not run", exit_code=130) from None

    sigs = _Signals(pid, run_cgroup_of(pid))
    sigs.install()
    os.write(w, _RELEASE)
    os.close(w)
    exit_code, term_sig, daemon_lost = _wait_agent(conn, pid, sigs)
    status = 128 + term_sig if term_sig else exit_code
    if daemon_lost:
        conn.close()
        print(
            f"logira: run {esc(started.run_id)}  dir={esc(started.run_dir)}  INCOMPLETE (the recording ended before "
            "the agent did; a crashed logirad seals the run when it starts again)",
            file=sys.stderr,
        )
        return RunResult(exit_status=status, finished=None)

    try:
        conn.send(protocol.AgentExited(exit_code=exit_code, signal=term_sig))
        finished = conn.expect(protocol.RunFinished, timeout=FINISH_TIMEOUT_S)
    except LogiraError as exc:
        # The agent is done and was recorded; only the daemon's confirmation is missing.
        print(
            f"logira: run {esc(started.run_id)}  dir={esc(started.run_dir)}  NOT CONFIRMED ({exc}); "
            f"check later with: logira verify {started.run_id}",
            file=sys.stderr,
        )
        return RunResult(exit_status=status, finished=None)
    finally:
        conn.close()
    print(summary_line(finished), file=sys.stderr)
    return RunResult(exit_status=status, finished=finished)


def _severities(run_dir: str) -> dict[str, int]:
    """Detections by severity from meta.json (readable by the user once the run is handed over)."""
    try:
        raw = Path(run_dir, "meta.json").read_bytes()
        meta = msgspec.json.decode(raw)
    except (OSError, msgspec.DecodeError):
        return {}
    det = meta.get("detections") if isinstance(meta, dict) else None
    if not isinstance(det, dict):
        return {}
    return {k: v for k, v in det.items() if isinstance(v, int) and v}


_SEV_ORDER = ("critical", "high", "medium", "low", "info")


def summary_line(fin: protocol.RunFinished) -> str:
    """The one line `logira run` prints when the run is sealed."""
    # run_dir contains $LOGIRA_HOME as given: never let its bytes reach the terminal raw
    line = f"logira: run {esc(fin.run_id)}  dir={esc(fin.run_dir)}  events={fin.events}  detections={fin.detections}"
    sev = _severities(fin.run_dir) if fin.detections else {}
    if sev:
        parts = [f"{k}={sev[k]}" for k in _SEV_ORDER if sev.get(k)]
        line += " (" + " ".join(parts) + ")"
    if fin.dropped:
        line += f"  INCOMPLETE ({fin.dropped} dropped)"
    elif not fin.complete:
        line += f"  INCOMPLETE ({esc(fin.status)})"
    if fin.stragglers:
        line += f"  stragglers={len(fin.stragglers)}"
    return line
