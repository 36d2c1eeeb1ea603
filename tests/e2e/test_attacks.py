"""The audited command attacks its own recording. Each attempt must fail or be recorded, and
the recording must go on (proved by events stored after the attempt)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from e2e_support import PY, StoredRun, logira_for

from logira.cgroup2 import find_cgroup2_mount
from logira.cgroup2 import procs as cgroup_procs

pytestmark = pytest.mark.bpf


def _created(run: StoredRun, path: Path) -> bool:
    return any(r["data_json"]["op"] == "create" and r["data_json"]["path"] == str(path) for r in run.files())


def test_agent_cannot_stop_or_alter_its_run_over_the_socket(logira):
    attack = textwrap.dedent("""
        import os, socket, struct, sys
        from logira.daemon import protocol
        path = os.environ["LOGIRA_SOCK"]
        def talk(raw):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            s.connect(path)
            s.sendall(raw)
            try:
                return protocol.recv_msg(s)
            except Exception as exc:
                return repr(exc)
            finally:
                s.close()
        frame = protocol.encode_frame
        results = [
            talk(frame(protocol.AgentExited(exit_code=0))),
            talk(frame(protocol.StartRun(tool="x", argv=["x"], cwd="/", pid=os.getpid()))),
            talk(frame(protocol.StartRun(tool="x", argv=["x"], cwd="/", pid=os.getppid()))),
            talk(struct.pack(">I", 29) + b'{"type":"agent_exited","v":1}'),
            talk(b"\\xff\\xff\\xff\\xff garbage"),
            talk(struct.pack(">I", 9) + b"not json!"),
        ]
        for r in results:
            print(type(r).__name__, getattr(r, "message", r))
        open("after-attack", "w").write("still recorded\\n")
    """)
    res = logira("run", "--tool", "sockattack", "--", PY, "-c", attack)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    assert len(lines) == 6
    # Nothing the agent sent was accepted: every reply is an error (or the connection was cut).
    assert all(not ln.startswith(("RunStarted", "RunFinished")) for ln in lines), lines
    assert lines[0].startswith("Error ")  # agent_exited on a connection that owns no run
    assert lines[1].startswith("Error ") and lines[2].startswith("Error ")
    run = logira.only_run()
    assert run.meta["status"] == "complete" and run.meta["exit_code"] == 0
    # Recording continued after the attempts, and the attempts themselves are on record.
    assert _created(run, logira.workspace / "after-attack")
    sock = str(logira.daemon.sock)
    assert any(r["data_json"].get("unix_path") == sock for r in run.of_type("net"))


def test_agent_cannot_leave_its_cgroup(logira):
    cg2 = find_cgroup2_mount()
    script = textwrap.dedent(f"""
        import os
        def cg():
            return open("/proc/self/cgroup").read().strip().split("::")[-1]
        mine = "{cg2}" + cg()
        print("before", cg())
        for target in ["{cg2}/cgroup.procs", os.path.dirname(mine) + "/cgroup.procs", mine + "/cgroup.procs"]:
            try:
                with open(target, "w") as f:
                    f.write(str(os.getpid()))
                print("moved", target)
            except OSError as exc:
                print("denied", exc.errno)
        try:
            os.mkdir(mine + "/escape")
            print("mkdir ok")
        except OSError as exc:
            print("mkdir denied", exc.errno)
        print("after", cg())
        open("after-escape", "w").write("x")
    """)
    res = logira("run", "--tool", "cgattack", "--", "/usr/bin/python3", "-c", script)
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode().splitlines()
    assert out[0] == out[-1].replace("after", "before"), out  # still in its run cgroup
    assert out[0].startswith(f"before /{logira.daemon.cgroup_parent}/") or out[0].startswith("before /")
    assert out[1:4] == ["denied 13", "denied 13", "denied 13"], out
    assert out[4] == "mkdir denied 13", out
    run = logira.only_run()
    run_cg = str(cg2) + out[0].split(" ", 1)[1]
    # The attempts are on record: write-intent opens of cgroup.procs (failed) and the mkdir.
    attempts = {(r["data_json"]["op"], r["data_json"]["path"]) for r in run.files()}
    for path in (f"{cg2}/cgroup.procs", f"{os.path.dirname(run_cg)}/cgroup.procs", f"{run_cg}/cgroup.procs"):
        assert any(p == path for _op, p in attempts), f"open of {path} not recorded: {sorted(attempts)}"
    assert ("mkdir", f"{run_cg}/escape") in attempts
    assert _created(run, logira.workspace / "after-escape")


def test_symlink_swaps_under_home_redirect_nothing(logira, tmp_path):
    # A root-owned directory the agent would love root to write into.
    target = tmp_path / "rootdir"
    target.mkdir(mode=0o755)
    victim = target / "victim"
    victim.write_text("original\n")
    os.chmod(tmp_path, 0o755)
    before = sorted(p.name for p in target.iterdir())
    home = logira.home
    script = textwrap.dedent(f"""
        set -e
        home={home}
        run=$(ls "$home/runs")
        # plant symlinks where root might write
        for n in meta.json.tmp events.jsonl index.sqlite index.sqlite-wal index.sqlite-shm "$run.tmp"; do
            ln -s {victim} "$home/runs/$n" || true
        done
        # swap the (root-owned, active) run dir, then runs/, then the home itself for
        # symlinks to a root-owned dir: the original's finalize chowned through such links
        mv "$home/runs/$run" "$home/runs/$run.moved"
        ln -s {target} "$home/runs/$run"
        mv "$home/runs" "$home/runs.moved"
        ln -s {target} "$home/runs"
        mv "$home" "$home.moved"
        ln -s {target} "$home"
        echo swapped > after-swap
    """)
    try:
        res = logira("run", "--tool", "swap", "--", "sh", "-c", script)
        assert res.returncode == 0, res.stderr
        # The run still completed, in the directory the daemon opened at the start.
        moved = Path(f"{home}.moved") / "runs.moved"
        (run_dir,) = [p for p in moved.iterdir() if p.is_dir() and not p.is_symlink()]
        assert run_dir.name.endswith("-swap.moved")
        run = StoredRun(run_dir)
        assert run.meta["status"] == "complete" and run.meta["run_id"] == run_dir.name.removesuffix(".moved")
        assert _created(run, logira.workspace / "after-swap")
        assert f"logira: run {run.meta['run_id']}  " in res.stderr.decode()
        # No root write was redirected: the target is exactly as before.
        assert sorted(p.name for p in target.iterdir()) == before
        assert victim.read_text() == "original\n"
        st = victim.stat()
        assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o644
        st = target.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o755)
        assert run_dir.stat().st_uid == logira.user.uid  # the real run dir was handed over
    finally:
        for p in (Path(f"{home}.moved"), home):
            if p.is_symlink():
                p.unlink()
            else:
                shutil.rmtree(p, ignore_errors=True)


def test_verify_catches_edits_truncation_and_deletion(logirad, test_user):
    # Its own daemon: `verify --all` looks at every seal of the uid, and the shared daemon holds
    # seals of other tests' runs (in other $LOGIRA_HOMEs) for the same user.
    gen = logira_for(test_user, logirad)
    logira = next(gen)
    try:
        _verify_scenario(logira)
    finally:
        gen.close()


def _verify_scenario(logira) -> None:
    procs = [
        logira.popen("run", "--tool", f"v{i}", "--", "sh", "-c", f"echo a > a{i}; cat a{i} >/dev/null")
        for i in range(2)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    runs = [StoredRun(d) for d in logira.run_dirs()]
    res = logira("verify", "--all")
    assert res.returncode == 0, res.stdout
    assert res.stdout.decode().count(": intact") == 2

    # (the agent runs as the user, so it can do all this to its finished runs)
    first, second = runs
    events = first.dir / "events.jsonl"
    lines = events.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"seq":2', b'"seq":2 ', 1).replace(b"exec", b"exex", 1)
    as_user(logira, "sh", "-c", 'cat > "$0"', str(events), input=b"".join(lines))
    res = logira("verify", first.id)
    assert res.returncode == 1
    out = res.stdout.decode()
    assert out.startswith(f"{first.id}: NOT INTACT\n") and "line 2" in out and "edited" in out, out

    events2 = second.dir / "events.jsonl"
    keep = b"".join(events2.read_bytes().splitlines(keepends=True)[:3])
    as_user(logira, "sh", "-c", 'cat > "$0"', str(events2), input=keep)
    res = logira("verify", second.id)
    assert res.returncode == 1
    assert "truncated" in res.stdout.decode(), res.stdout

    as_user(logira, "rm", "-rf", str(second.dir))
    res = logira("verify", "--all")
    assert res.returncode == 1
    out = res.stdout.decode()
    assert second.id in out and "deleted" in out, out


def as_user(logira, *argv: str, input: bytes | None = None) -> None:
    subprocess.run(logira.user.cmd(*argv), input=input, check=True, env=logira.env(), capture_output=True)


def test_agent_killing_logira_run_keeps_being_recorded(logira):
    # The agent runs as the same user as `logira run`, so it can kill it; the run belongs to
    # the daemon, which keeps recording until the agent's process tree is gone.
    res = logira(
        "run", "--tool", "killparent", "--", "sh", "-c", "kill -KILL $PPID; sleep 0.5; echo x > after-kill"
    )
    assert res.returncode == -9
    (run_dir,) = logira.run_dirs()
    deadline = time.monotonic() + 20
    while StoredRun(run_dir).meta["status"] == "running":
        assert time.monotonic() < deadline, "the run never ended after its agent exited"
        time.sleep(0.2)
    run = StoredRun(run_dir)
    assert run.meta["status"] == "complete" and run.meta["exit_code"] == 0
    assert _created(run, logira.workspace / "after-kill")


def test_verify_all_only_considers_the_seals_of_the_current_home(logira, daemon):
    # One user, two homes, one daemon: seals are filed per uid, so each must record its run's
    # directory; verify --all in one home must neither call the other home's runs deleted nor
    # miss a deletion in its own.
    gen = logira_for(logira.user, daemon)
    other = next(gen)
    try:
        for lg, tool in ((logira, "homea"), (other, "homeb")):
            res = lg("run", "--tool", tool, "--", "true")
            assert res.returncode == 0, res.stderr
        a, b = logira.only_run(), other.only_run()
        for run in (a, b):
            assert run.meta["run_dir"] == os.path.realpath(run.dir)
            seal = json.loads((daemon.state_dir / "seals" / str(logira.user.uid) / f"{run.id}.json").read_bytes())
            assert seal["run_dir"] == run.meta["run_dir"]
        for lg, run in ((logira, a), (other, b)):
            res = lg("verify", "--all")
            assert (res.returncode, res.stdout.decode()) == (
                0, f"{run.id}: intact ({run.meta['event_count']} records, sealed)\n"), res.stdout
        as_user(other, "rm", "-rf", str(b.dir))
        res = other("verify", "--all")
        assert (res.returncode, res.stdout.decode()) == (
            1, f"NOT INTACT: run {b.id} deleted (seal exists, directory gone)\n")
        res = other("verify", b.id)
        assert res.returncode == 1 and f"{b.id}: NOT INTACT\n  - run deleted" in res.stdout.decode()
        res = logira("verify", "--all")  # home A is untouched: B's deletion is not its business
        assert (res.returncode, res.stdout.decode()) == (
            0, f"{a.id}: intact ({a.meta['event_count']} records, sealed)\n")
        res = logira("verify", b.id)  # not a run of home A: unknown here, not "deleted"
        assert res.returncode != 0 and b"deleted" not in res.stdout + res.stderr
    finally:
        gen.close()


def test_agent_cannot_ptrace_or_steal_from_logira_run(logira):
    # `logira run` lives outside the run cgroup with the agent's uid. Without Yama, a same-uid
    # process may ptrace it (inject code that runs unrecorded) or pidfd_getfd its daemon socket;
    # logira run makes itself non-dumpable, so all of these need CAP_SYS_PTRACE.
    attack = textwrap.dedent("""
        import ctypes, os, sys
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        ppid = os.getppid()
        def res(rc):
            return "ok" if rc >= 0 else os.strerror(ctypes.get_errno())
        print("seize", res(libc.ptrace(0x4206, ppid, 0, 0)))  # PTRACE_SEIZE
        pidfd = os.pidfd_open(ppid)
        print("getfd", res(libc.syscall(438, pidfd, 3, 0)))   # pidfd_getfd(fd 3)
        try:
            open(f"/proc/{ppid}/mem", "rb").close()
            print("mem ok")
        except OSError as exc:
            print("mem", exc.strerror)
        open("after-ptrace", "w").write("x")
    """)
    res = logira("run", "--tool", "ptrace", "--", PY, "-c", attack)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().splitlines() == [
        "seize Operation not permitted",
        "getfd Operation not permitted",
        "mem Permission denied",
    ]
    run = logira.only_run()
    assert run.meta["status"] == "complete"
    assert _created(run, logira.workspace / "after-ptrace")


def test_summary_line_shows_escapes_not_terminal_controls(test_user, daemon):
    # The run dir path contains $LOGIRA_HOME; a name with terminal controls must be shown escaped.
    gen = logira_for(test_user, daemon)
    logira = next(gen)
    evil = logira.home.parent / (logira.home.name + "\x1b]0;owned\x07\x1b[2J")
    logira.home = evil
    try:
        res = logira("run", "--tool", "esc", "--", "true")
        assert res.returncode == 0, res.stderr
        err = res.stderr.decode()
        assert "\x1b" not in err and "\x07" not in err, err
        run_id = logira.only_run().id
        assert f"dir={evil.parent}/{evil.name.split(chr(27))[0]}\\x1b]0;owned\\x07\\x1b[2J/runs/{run_id}" in err, err
    finally:
        shutil.rmtree(evil, ignore_errors=True)
        gen.close()


def test_other_users_cannot_read_a_users_seals(logira, other_user):
    # A seal holds the run's meta (argv, cwd, user): secrets passed on a command line must not be
    # readable by every local user through root's state dir, while the user still verifies its runs.
    res = logira("run", "--tool", "secret", "--", "true", "--token=hunter2")
    assert res.returncode == 0, res.stderr
    run = logira.only_run()
    seal_dir = logira.daemon.state_dir / "seals" / str(logira.user.uid)
    seal = seal_dir / f"{run.id}.json"
    assert "hunter2" in seal.read_text()
    for path, mode in ((seal_dir, 0o750), (seal, 0o640)):
        st = path.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, logira.user.gid, mode), path
    for argv in (["cat", str(seal)], ["ls", str(seal_dir)]):
        res_other = subprocess.run(other_user.cmd(*argv), env=other_user.env(), capture_output=True, check=False)
        assert res_other.returncode != 0 and b"Permission denied" in res_other.stderr, res_other
    res = logira("verify", run.id)
    assert res.returncode == 0 and res.stdout.decode().startswith(f"{run.id}: intact"), res.stdout


_FOLLOWERS = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from daemon_helpers import Client
    from logira.daemon import protocol as p
    conns, out = [], []
    for _ in range(int(sys.argv[3])):
        c = Client(sys.argv[1])
        conns.append(c)
        r = c.request(p.Follow(run_id="last"))
        out.append(type(r).__name__ if not isinstance(r, p.Error) else r.message)
    for r in sorted(set(out)):
        print(out.count(r), r)
""")


def test_followers_per_user_are_capped(logira):
    # Each follower that stops reading holds up to follower_buffer lines in the daemon before it is
    # cut off; the agent (same uid) could open many of them on its own run to exhaust root's memory.
    from logira.daemon.server import MAX_FOLLOWS_PER_UID

    proc = logira.popen("run", "--tool", "follow", "--", "sleep", "3")
    try:
        deadline = time.monotonic() + 10
        while not [r for r in logira.daemon.status().runs if r.uid == logira.user.uid]:
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        tests_dir = str(Path(__file__).resolve().parents[1])
        res = subprocess.run(
            logira.user.cmd(PY, "-c", _FOLLOWERS, str(logira.daemon.sock), tests_dir, str(MAX_FOLLOWS_PER_UID + 2)),
            env=logira.env(), capture_output=True, text=True, timeout=30, check=False,
        )
        assert res.stdout.splitlines() == [
            f"{MAX_FOLLOWS_PER_UID} Following",
            f"2 too many followers for uid {logira.user.uid} (limit={MAX_FOLLOWS_PER_UID})",
        ], res
    finally:
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert logira.only_run().meta["status"] == "complete"


def test_agent_ignoring_sigterm_is_killed_when_the_daemon_dies(logirad, test_user):
    # Once logirad is gone nothing is recorded, so `logira run` stops the agent. An agent that
    # ignores SIGTERM (itself and a background child) must not keep running unrecorded.
    gen = logira_for(test_user, logirad)
    lg = next(gen)
    script = "trap '' TERM; (sleep 20; echo x > after-bg) & echo started; sleep 20; echo x > after"
    proc = lg.popen("run", "--tool", "noterm", "--", "sh", "-c", script)
    try:
        assert proc.stdout.readline() == b"started\n"
        parent = logirad.cgroup_parent_path
        (run_cg,) = [c for c in parent.iterdir() if c.is_dir()]
        deadline = time.monotonic() + 5
        while len(cgroup_procs(run_cg)) < 4:  # sh, the background subshell, the two sleeps
            assert time.monotonic() < deadline, cgroup_procs(run_cg)
            time.sleep(0.02)
        logirad.kill()
        # without the client's kill, the sleeps would keep it for 20 s and it would exit 0
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + 9, err
        assert b"lost the connection to logirad mid-run" in err
        deadline = time.monotonic() + 5
        while cgroup_procs(run_cg):
            assert time.monotonic() < deadline, f"processes left running unrecorded: {cgroup_procs(run_cg)}"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        gen.close()
    assert not (lg.workspace / "after").exists() and not (lg.workspace / "after-bg").exists()


_SPY = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from daemon_helpers import Client
    from logira.daemon import protocol as p
    for req in (p.Follow(run_id=sys.argv[3]), p.Follow(run_id="last"), p.Status()):
        with Client(sys.argv[1]) as c:
            r = c.request(req)
        print(r.message if isinstance(r, p.Error) else [x.run_id for x in r.runs] if isinstance(r, p.StatusReply) else r)
""")


def test_other_users_cannot_follow_or_list_a_users_run(logira, logira_other):
    proc = logira.popen("run", "--tool", "private", "--", "sleep", "2")
    try:
        deadline = time.monotonic() + 10
        while not (mine := [r for r in logira.daemon.status().runs if r.uid == logira.user.uid]):
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        run_id = mine[0].run_id
        tests_dir = str(Path(__file__).resolve().parents[1])
        res = subprocess.run(
            logira_other.user.cmd(PY, "-c", _SPY, str(logira.daemon.sock), tests_dir, run_id),
            env=logira_other.env(), capture_output=True, text=True, timeout=30, check=False,
        )
        assert res.stdout.splitlines() == [f"run {run_id} is not active", "run last is not active", "[]"], res
    finally:
        proc.communicate(timeout=30)
    assert proc.returncode == 0


_FAKE_DAEMON = textwrap.dedent("""
    import socket, sys
    from logira.daemon import protocol as p
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sys.argv[1])
    srv.listen(4)
    print("listening", flush=True)
    conn, _ = srv.accept()
    msg = p.decode_client(p.recv_body(conn))
    print("got", type(msg).__name__, flush=True)
    p.send_msg(conn, p.RunStarted(run_id="20260101-000000-fake", run_dir="/nowhere"))
    try:
        p.recv_body(conn)  # agent_exited
        p.send_msg(conn, p.RunFinished(run_id="20260101-000000-fake", run_dir="/nowhere"))
    except Exception:
        pass
""")


def test_logira_run_refuses_a_daemon_that_is_not_root(logira):
    # The agent, as the user, can plant LOGIRA_SOCK in a shell rc file and serve a fake logirad:
    # later `logira run`s would then run the agent unrecorded behind a clean summary line.
    sock = logira.workspace / "fake.sock"
    fake = subprocess.Popen(
        logira.user.cmd(PY, "-c", _FAKE_DAEMON, str(sock)), env=logira.env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert fake.stdout.readline() == "listening\n"
        res = subprocess.run(
            logira.argv("run", "--", "sh", "-c", "echo x > ran"),
            env={**logira.env(), "LOGIRA_SOCK": str(sock)}, cwd=logira.workspace,
            capture_output=True, timeout=30, check=False,
        )
        assert res.returncode == 1, res
        assert res.stderr.decode() == (
            f"error: {sock} is served by uid {logira.user.uid}, not root: that is not logirad (check "
            "LOGIRA_SOCK and where it is set); refusing to use it\n"
        )
        assert not (logira.workspace / "ran").exists()
    finally:
        fake.kill()
        out, _ = fake.communicate()
    assert "got" not in out  # nothing was ever sent to it


def test_verify_ignores_seals_the_user_could_have_forged(logira):
    # The agent can edit a finished run, recompute the chain, and point LOGIRA_STATE_DIR (shell rc)
    # at seals it wrote itself to match. Only root-owned seals count.
    res = logira("run", "--tool", "forge", "--", "true")
    assert res.returncode == 0, res.stderr
    run = logira.only_run()
    real = logira.daemon.state_dir / "seals" / str(logira.user.uid) / f"{run.id}.json"
    fake_state = logira.workspace / "state"
    (fake_state / "seals" / str(logira.user.uid)).mkdir(parents=True)
    forged = fake_state / "seals" / str(logira.user.uid) / f"{run.id}.json"
    forged.write_bytes(real.read_bytes())  # a perfect copy, but written by the user
    subprocess.run(["chown", "-R", f"{logira.user.uid}:{logira.user.gid}", str(fake_state)], check=True)
    res = subprocess.run(
        logira.argv("verify", run.id), env={**logira.env(), "LOGIRA_STATE_DIR": str(fake_state)},
        cwd=logira.workspace, capture_output=True, timeout=30, check=False,
    )
    out = res.stdout.decode()
    assert "no seal for this run" in out, out
    res = logira("verify", run.id)  # the real, root-owned seal still verifies
    assert res.returncode == 0 and "no seal" not in res.stdout.decode(), res.stdout
