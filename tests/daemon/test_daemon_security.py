"""Adversarial tests of the root side: a hostile local user talks to a REAL logirad.

Each test names the attack in its docstring; docs/security.md lists them with the defence.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from daemon_helpers import EXEC_ONLY, REPO, DaemonHandle, HeldChild, finish_run, make_home, start_run
from dtutil import wait_for

from logira.daemon import protocol as p
from logira.daemon.guard import MAX_ARGV_BYTES, MAX_RULES_BYTES, GuardError, HeldPid
from logira.daemon.server import MAX_CONN_PER_UID, _chmod_socket

pytestmark = pytest.mark.bpf
_PYPATH = f"{REPO}:{REPO / 'tests'}"
PY = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable


def _error(msg: p.DaemonMsg) -> str:
    assert isinstance(msg, p.Error), msg
    return msg.message


def _as_user(user, script: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a python script as `user` (setpriv), with the repo importable."""
    return subprocess.run(
        user.cmd(PY, "-c", script, *args),
        env=user.env(PYTHONPATH=_PYPATH),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- who may be recorded -------------------------------------------------------------------


def test_start_run_refuses_a_child_that_execd_a_setuid_program(daemon: DaemonHandle, test_user) -> None:
    """A child with the user's real uid but root's effective uid (set-uid exec) is not the held child."""
    base = Path(tempfile.mkdtemp(prefix="lgs-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        suid = base / "suid-sleep"
        shutil.copy("/bin/sleep", suid)
        os.chown(suid, 0, 0)
        os.chmod(suid, 0o4755)
        home = make_home(test_user.uid, test_user.gid)
        script = textwrap.dedent("""
            import subprocess, sys, time
            from logira.daemon import protocol as p
            from daemon_helpers import Client
            child = subprocess.Popen([sys.argv[1], "30"])
            for _ in range(100):  # wait until the exec happened (euid turns 0)
                uid_line = [l for l in open(f"/proc/{child.pid}/status") if l.startswith("Uid:")][0]
                if uid_line.split()[2] == "0":
                    break
                time.sleep(0.02)
            with Client(sys.argv[2]) as c:
                reply = c.request(p.StartRun(tool="t", argv=["x"], cwd="/", pid=child.pid, home=sys.argv[3],
                                             file=False, net=False))
            print(child.pid, uid_line.split()[1:3])
            print(getattr(reply, "message", reply))
            child.kill()
        """)
        res = _as_user(test_user, script, str(suid), daemon.sock, str(home))
        assert res.returncode == 0, res.stderr
        pid_line, reply = res.stdout.splitlines()
        pid = pid_line.split()[0]
        assert pid_line.endswith(f"['{test_user.uid}', '0']"), pid_line  # real = user, effective = root
        assert reply == (
            f"pid {pid} runs with other credentials than uid {test_user.uid} (a set-uid program?); "
            "logira run's own held child must be given"
        )
        assert list((home / "runs").iterdir()) == []
        shutil.rmtree(home.parent, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _spawn_with_pid(pid: int) -> subprocess.Popen[bytes] | None:
    """A new child of ours that gets exactly `pid` (root: ns_last_pid), or None if someone raced us."""
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(pid - 1))
    proc = subprocess.Popen(["/bin/sleep", "30"])
    if proc.pid == pid:
        return proc
    proc.kill()
    proc.wait()
    return None


def test_pidfd_pin_refuses_a_recycled_pid(require_bpf: None) -> None:
    """The held child dies and its pid is handed to another process before the move: refused.

    Uses ns_last_pid to recycle the pid for real. The impostor is a child of this process with
    uid 0 in no run, so a check by pid number alone (/proc/<pid>/stat and status) accepts it.
    """
    victim = subprocess.Popen(["/bin/sleep", "30"])
    held = HeldPid(victim.pid)
    impostor = None
    try:
        held.verify(os.getpid(), 0, "/logira-none/")  # the genuine child passes
        victim.kill()
        victim.wait()  # reaped: the number is free
        for _ in range(20):
            impostor = _spawn_with_pid(held.pid)
            if impostor is not None:
                break
        assert impostor is not None, "could not recycle the pid (the system forks too fast)"
        # by number, the impostor looks exactly like the held child
        assert Path(f"/proc/{held.pid}/stat").read_text().split(") ")[1].split()[1] == str(os.getpid())
        assert not held.alive()
        with pytest.raises(GuardError, match=f"^pid {held.pid} exited before the run could start$"):
            held.verify(os.getpid(), 0, "/logira-none/")
    finally:
        held.close()
        for proc in (victim, impostor):
            if proc is not None:
                proc.kill()
                proc.wait()


# -- request sizes and rules parsing ------------------------------------------------------


def test_oversized_start_run_fields_are_refused_before_anything_is_created(
    daemon: DaemonHandle, home: Path
) -> None:
    """Megabyte argv / rules / paths would be stored by root (meta.json, seal) or parsed on the loop."""
    child = HeldChild(["/bin/true"])
    base = {"tool": "t", "cwd": "/", "pid": child.pid, "home": str(home), "file": False, "net": False}
    try:
        with daemon.client() as c:
            big_argv = ["x" * 1000] * 200
            assert _error(c.request(p.StartRun(argv=big_argv, **base))) == (  # type: ignore[arg-type]
                f"argv is too large to record ({1001 * 200} > {MAX_ARGV_BYTES} bytes); "
                "pass long input through a file or stdin"
            )
            rules = "# " + "y" * (MAX_RULES_BYTES + 10) + "\n"
            msg = p.StartRun(argv=["x"], rules_yaml=rules, rules_path="/r.yaml", **base)  # type: ignore[arg-type]
            assert _error(c.request(msg)) == (
                f"custom rules are too large ({len(rules)} > {MAX_RULES_BYTES} bytes); split or trim the file"
            )
            msg = p.StartRun(argv=["x"], **{**base, "cwd": "/a\0b"})  # type: ignore[arg-type]
            assert _error(c.request(msg)) == (
                "cwd is not a valid path/name (longer than 4096 bytes or contains NUL)"
            )
            msg = p.StartRun(argv=["x"], **{**base, "home": "/" + "h" * 5000})  # type: ignore[arg-type]
            assert _error(c.request(msg)).startswith("home is not a valid path/name")
        assert list((home / "runs").iterdir()) == []
    finally:
        child.kill()


def _slow_rules() -> str:
    # Valid YAML that the schema rejects only after parsing all of it (~0.5 s of PyYAML).
    rule = "  - id: r{i}\n    title: t\n    category: exfil\n    severity: low\n    message: m\n"
    text = "rules:\n"
    i = 0
    while len(text) < MAX_RULES_BYTES - 200:
        text += rule.format(i=i)
        i += 1
    return text


def test_parsing_a_users_rules_does_not_stall_the_daemon(daemon: DaemonHandle, home: Path) -> None:
    """The daemon parses user YAML as root: it must not block the event loop (every run's reader)."""
    rules = _slow_rules()
    child = HeldChild(["/bin/true"])
    # (sent, answered) monotonic stamps of status round trips, used for ORDER only: which
    # replies came back while the start_run that carries the YAML was still being parsed
    trips: list[tuple[float, float]] = []
    done = threading.Event()

    def probe() -> None:
        with daemon.client() as c:
            while not done.is_set():
                t = time.monotonic()
                assert isinstance(c.request(p.Status()), p.StatusReply)
                trips.append((t, time.monotonic()))

    try:
        with daemon.client() as c:
            th = threading.Thread(target=probe)
            th.start()
            wait_for(lambda: len(trips) >= 1, 10, "status answered")
            sent = time.monotonic()
            reply = c.request(
                p.StartRun(tool="t", argv=["x"], cwd="/", pid=child.pid, home=str(home), rules_yaml=rules,
                           rules_path="/big.yaml", file=False, net=False),
                timeout=30,
            )
            answered = time.monotonic()
            done.set()
            th.join(10)
        assert _error(reply).startswith("rules: /big.yaml:"), reply
        # While the YAML was parsed, other connections kept being served: status round trips
        # that started after the start_run was sent also ended before its reply. Parsing on the
        # event loop would let at most the one round trip already in flight through.
        inside = [trip for trip in trips if trip[0] > sent and trip[1] < answered]
        assert len(inside) >= 3, (len(inside), len(trips))
    finally:
        done.set()
        child.kill()


# -- connection floods ----------------------------------------------------------------------


_FLOOD = textwrap.dedent("""
    import sys
    from logira.daemon import protocol as p
    from daemon_helpers import Client
    conns, results = [], []
    for i in range(int(sys.argv[2])):
        c = Client(sys.argv[1])
        conns.append(c)
        try:
            r = c.request(p.Status(), timeout=5)
            results.append(type(r).__name__ if not isinstance(r, p.Error) else r.message)
        except Exception as exc:
            results.append(type(exc).__name__)
    for r in sorted(set(results)):
        print(results.count(r), r)
    sys.stdout.flush()
    sys.stdin.read()  # hold every connection until the test is done
""")


def test_one_user_cannot_exhaust_the_daemons_connections(daemon: DaemonHandle, test_user, other_user) -> None:
    """Idle connections cost the daemon an fd and buffer each: capped per uid; others still get in."""
    n = MAX_CONN_PER_UID + 6
    flood = subprocess.Popen(
        test_user.cmd(PY, "-c", _FLOOD, daemon.sock, str(n)),
        env=test_user.env(PYTHONPATH=_PYPATH),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert flood.stdout is not None
        got = [flood.stdout.readline().strip() for _ in range(2)]
        assert got == [
            f"{MAX_CONN_PER_UID} StatusReply",
            f"6 too many connections (limit={MAX_CONN_PER_UID}); close idle logira processes and retry",
        ], got
        # another user and root are unaffected while the flood holds its connections
        res = _as_user(other_user, _FLOOD, daemon.sock, "1", timeout=20)
        assert res.stdout.strip() == "1 StatusReply", res
        assert isinstance(daemon.status(), p.StatusReply)
    finally:
        with contextlib.suppress(Exception):
            flood.communicate("", timeout=10)
        flood.kill()


# -- logs and files -------------------------------------------------------------------------


def test_console_log_escapes_user_strings(require_bpf: None, home: Path) -> None:
    """User-chosen strings ($LOGIRA_HOME, rule ids) reach the daemon's log; never as raw escapes."""
    evil_home = home.parent / "h\x1b]0;owned\x07\x1b[2J"
    home.rename(evil_home)
    d = DaemonHandle(probes=EXEC_ONLY, extra_args=["--log-format", "console"]).start()
    child = HeldChild(["/bin/true"])
    try:
        with d.client() as c:
            start_run(c, child, evil_home, ["true"])
            assert isinstance(finish_run(c, child), p.RunFinished)
        wait_for(lambda: "run_finished" in d.log_text(), 5, "run_finished logged")
        log = d.log_text()
        line = next(ln for ln in log.splitlines() if "run_started" in ln)
        assert "\x1b" not in log and "\x07" not in log
        assert "/h\\x1b]0;owned\\x07\\x1b[2J/runs/" in line, line
    finally:
        child.kill()
        d.cleanup()
        shutil.rmtree(evil_home, ignore_errors=True)


def test_socket_chmod_never_follows_a_symlink(tmp_path: Path) -> None:
    """chmod 0666 of the socket path must not land on a file swapped in for the socket."""
    target = tmp_path / "shadow"
    target.write_text("secret\n")
    os.chmod(target, 0o600)
    link = tmp_path / "logirad.sock"
    link.symlink_to(target)
    with pytest.raises(OSError, match="was replaced by a non-socket after bind"):
        _chmod_socket(str(link), 0o666)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_follower_gets_large_records_in_frames_under_the_cap(daemon: DaemonHandle, home: Path) -> None:
    """The agent makes huge records (4 KiB argv) in a burst: the live stream must not break on them.

    The follower reads nothing for a while, so hundreds of lines pile up and go out in one batch:
    in a single `records` frame that batch is several MiB, over the 1 MiB frame cap.
    """
    big = "A" * 3900
    n = 400
    script = f'i=0; while [ $i -lt {n} ]; do /bin/true {big} $i; i=$((i+1)); done'
    child = HeldChild(["/bin/sh", "-c", script])
    with daemon.client() as owner, daemon.client() as f:
        started = start_run(owner, child, home, ["sh"])
        following = f.request(p.Follow(run_id=started.run_id))
        assert isinstance(following, p.Following), following
        child.release()
        rc = child.wait(60)
        time.sleep(1.0)  # everything is buffered for the follower meanwhile
        owner.send(p.AgentExited(exit_code=rc))
        got: list[str] = []
        frames = 0
        while True:
            msg = f.recv(30)
            if isinstance(msg, p.RunEnded):
                break
            assert isinstance(msg, p.Records), msg
            frames += 1
            got.extend(msg.lines)
        assert isinstance(owner.recv(30), p.RunFinished)
    stored = (home / "runs" / started.run_id / "events.jsonl").read_text().splitlines()
    assert got == stored[following.next_seq - 1 :]
    assert sum(f'"argv":["/bin/true","{big}"' in ln for ln in got) == n
    assert frames > 1


# -- hostile rule patterns (ReDoS) ------------------------------------------------------------

_REDOS_RULES = """rules:
  - id: user-redos
    title: t
    severity: low
    category: c
    description: exponential with a backtracking engine; RE2 is linear
    message: hit
    when:
      - exec: {cmdline: "(a|aa)*$"}
      - exec: {program: ["true"], args: [["**a**a**a**b"]]}
"""


def test_a_users_backtracking_rule_does_not_stall_another_run(daemon: DaemonHandle, home: Path) -> None:
    """A per-run rule `(a|aa)*$` and glob `**a**a**a**b` (exponential / O(n^4) when backtracking)
    against ~4 KiB command lines of `a`s: the rules are evaluated on the daemon's one event loop,
    so a backtracking engine would freeze every run. Another run started meanwhile must keep
    streaming its events and finish on time."""
    n_bad, n_good = 40, 50
    adversarial = "a" * 3900 + "c"
    loop = "i=0; while [ $i -lt {n} ]; do /bin/true {arg}; i=$((i+1)); done"
    bad = HeldChild(["/bin/sh", "-c", loop.format(n=n_bad, arg=adversarial + "$i")])
    good = HeldChild(["/bin/sh", "-c", loop.format(n=n_good, arg="victim $i")])
    home2 = make_home()
    try:
        with daemon.client() as a, daemon.client() as b, daemon.client() as f:
            start_run(a, bad, home, ["attacker"], rules_yaml=_REDOS_RULES, rules_path="/redos.yaml")
            sb = start_run(b, good, home2, ["victim"])
            assert isinstance(f.request(p.Follow(run_id=sb.run_id)), p.Following)
            bad.release()
            time.sleep(0.2)  # the hostile run's events are being judged
            good.release()
            b.send(p.AgentExited(exit_code=good.wait(30)))
            streamed: list[str] = []
            while True:
                msg = f.recv(20)
                if isinstance(msg, p.RunEnded):
                    break
                assert isinstance(msg, p.Records), msg
                streamed.extend(msg.lines)
            fin_b = b.recv(20)  # a stalled loop would miss these deadlines (a backtracking
            # engine needs hours for one of these events); no timing is asserted beyond them
            a.send(p.AgentExited(exit_code=bad.wait(60)))
            fin_a = a.recv(30)
        assert isinstance(fin_b, p.RunFinished) and fin_b.complete and fin_b.dropped == 0, fin_b
        assert sum('"argv":["/bin/true","victim"' in ln for ln in streamed) == n_good
        # the hostile rule was really evaluated: every exec of the attacker's run matched it
        assert isinstance(fin_a, p.RunFinished) and fin_a.complete, fin_a
        assert fin_a.detections >= n_bad
    finally:
        bad.kill()
        good.kill()
        shutil.rmtree(home2.parent, ignore_errors=True)
