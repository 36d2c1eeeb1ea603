"""The audited command attacks its own recording. Each attempt must fail or be recorded, and
the recording must go on (proved by events stored after the attempt)."""

from __future__ import annotations

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
