"""`logira run` through a real logirad: exit statuses, the summary line, what is stored."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess

import pytest
from e2e_support import StoredRun

pytestmark = pytest.mark.bpf

SUMMARY = re.compile(
    r"^logira: run (?P<id>\S+)  dir=(?P<dir>\S+)  events=(?P<events>\d+)  detections=(?P<det>\d+)(?P<rest>.*)$"
)


def _summary(stderr: bytes) -> re.Match:
    lines = [ln for ln in stderr.decode().splitlines() if ln.startswith("logira: run ")]
    assert len(lines) == 1, f"expected one summary line, stderr was: {stderr!r}"
    m = SUMMARY.match(lines[0])
    assert m, lines[0]
    return m


CASES = [  # tool, argv, logira's exit status, meta exit_code, meta exit_signal
    ("ok", ["true"], 0, 0, 0),
    ("three", ["sh", "-c", "exit 3"], 3, 3, 0),
    ("kill9", ["sh", "-c", "kill -KILL $$"], 137, None, 9),
    ("term15", ["sh", "-c", "kill -TERM $$"], 143, None, 15),
]


def test_exit_status_is_the_agents(logira):
    # Concurrently (they are independent runs of one user): also proves runs don't mix.
    procs = [(case, logira.popen("run", "--tool", case[0], "--", *case[1])) for case in CASES]
    results = [(case, p.communicate(timeout=60), p.returncode) for case, p in procs]
    runs = {StoredRun(d).meta["tool"]: StoredRun(d) for d in logira.run_dirs()}
    assert sorted(runs) == sorted(c[0] for c in CASES)
    for (tool, argv, status, code, sig), (_out, err), rc in results:
        assert rc == status, err
        m = _summary(err)
        run = runs[tool]
        assert m["id"] == run.id and m["dir"] == str(run.dir)
        assert re.fullmatch(r"\d{8}-\d{6}-" + tool, run.id)
        meta = run.meta
        assert (meta["exit_code"], meta["exit_signal"]) == (code, sig)
        assert meta["status"] == "complete" and meta["complete"] is True
        assert meta["command_argv"] == argv and meta["tool"] == tool
        assert meta["uid"] == logira.user.uid and meta["cwd"] == str(logira.workspace)
        # The summary line, meta and both stores agree on the number of records.
        assert int(m["events"]) == meta["event_count"] == len(run.records)
        assert run.db("SELECT count(*) FROM events")[0][0] == len(run.records)
        assert [r["seq"] for r in run.records] == list(range(1, len(run.records) + 1))
        # The agent's own exec is the root process of the run, inside it from its first instruction.
        execs = run.execs()
        assert execs and execs[0]["data_json"]["argv"] == argv
        assert execs[0]["pid"] == meta["root_pid"]
        exits = [
            r for r in run.of_type("proc") if r["data_json"]["op"] == "exit" and r["pid"] == meta["root_pid"]
        ]
        assert len(exits) == 1
        assert (exits[0]["data_json"]["exit_code"], exits[0]["data_json"]["signal"]) == (code or 0, sig)
        # Handed over to the user after the run.
        assert run.dir.stat().st_uid == logira.user.uid
        assert "INCOMPLETE" not in m["rest"]
    # The read side sees them.
    res = logira("runs")
    assert res.returncode == 0 and all(r.id in res.stdout.decode() for r in runs.values())
    res = logira("view", runs["three"].id)
    assert res.returncode == 0 and runs["three"].id in res.stdout.decode()


def test_command_not_found_is_127_and_recorded(logira):
    res = logira("run", "--tool", "nf", "--", "/nonexistent/agent-xyz", "--flag")
    assert res.returncode == 127
    assert "logira: /nonexistent/agent-xyz: command not found" in res.stderr.decode()
    run = logira.only_run()
    failed = [r for r in run.of_type("exec") if r["data_json"].get("errno")]
    assert [r["summary"] for r in failed] == ["exec-failed /nonexistent/agent-xyz errno=2"]
    assert run.meta["exit_code"] == 127


def test_stdin_passthrough(logira):
    res = logira("run", "--", "cat", input=b"hi\n")
    assert res.returncode == 0
    assert res.stdout == b"hi\n"
    assert [r["data_json"]["filename"] for r in logira.only_run().execs()] == ["/usr/bin/cat"]


def test_stragglers_recorded_and_run_ends(logira):
    # the background sleep would hold the run for 120 s if the straggler wait did not end it:
    # the deadline below (a wait, not a timing assertion) catches that on any machine
    res = logira("run", "--tool", "strag", "--", "sh", "-c", "sleep 120 & echo $!; exit 0", timeout=90)
    assert res.returncode == 0
    sleep_pid = int(res.stdout.decode().split()[0])
    run = logira.only_run()
    assert sleep_pid in run.meta["stragglers"]
    assert "stragglers=1" in _summary(res.stderr)["rest"]
    # The straggler was killed (default action) and its death is in the record.
    exits = [r for r in run.of_type("proc") if r["data_json"]["op"] == "exit" and r["pid"] == sleep_pid]
    assert len(exits) == 1 and exits[0]["data_json"]["signal"] == 9


def test_status_with_daemon_ready(logira):
    res = logira("status")
    out = res.stdout.decode()
    assert res.returncode == 0, out
    assert re.search(r"^Ready:\s+YES$", out, re.M)
    assert re.search(rf"^Daemon:\s+running \(pid {logira.daemon.proc.pid}, uid 0, ", out, re.M)
    for dom in ("exec", "file", "net"):
        assert f"{dom} loaded" in out


def test_run_is_readable_while_active(logira, logira_other):
    """The run dir is readable by the user during the run (0750 root:user), meta says running;
    `logira status` shows the active run to its user only."""
    proc = logira.popen(
        "run", "--tool", "live", "--", "sh", "-c", "echo started; read x || true", stdin=subprocess.PIPE
    )
    try:
        assert select.select([proc.stdout], [], [], 20)[0], "agent did not start"
        assert proc.stdout.readline() == b"started\n"
        (run_dir,) = logira.run_dirs()
        st = run_dir.stat()
        assert st.st_uid == 0 and st.st_gid == logira.user.gid and (st.st_mode & 0o777) == 0o750
        meta = StoredRun(run_dir).meta
        assert meta["status"] == "running"
        mine = json.loads(logira("status", "--json").stdout)["daemon"]["runs"]
        assert [(r["run_id"], r["uid"]) for r in mine] == [(run_dir.name, logira.user.uid)]
        theirs = json.loads(logira_other("status", "--json").stdout)["daemon"]["runs"]
        assert theirs == []
        proc.stdin.close()  # lets `read` return: the agent exits normally
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert StoredRun(run_dir).meta["status"] == "complete"


def test_probe_flags_select_what_is_recorded(logira):
    res = logira(
        "run", "--tool", "noflags", "--no-file", "--no-net", "--", "sh", "-c", "echo x > f.txt; cat f.txt"
    )
    assert res.returncode == 0, res.stderr
    run = logira.only_run()
    assert run.meta["probes"] == {"exec": True, "file": False, "net": False}
    assert run.files() == [] and run.of_type("net") == []
    # filename is the binary actually run (symlinks resolved: sh -> dash)
    expected = [os.path.realpath("/usr/bin/sh"), os.path.realpath("/usr/bin/cat")]
    assert [r["data_json"]["filename"] for r in run.execs()] == expected


def test_filtered_events_are_counted_in_meta_and_shown_by_view_not_as_loss(logira):
    # three refused TCP connects on loopback (port 9: nothing listens) with --no-net; python -I -S
    # does no name lookups (bash's /dev/tcp asks nscd, which would add unix connects)
    script = (
        "import socket\n"
        "for _ in range(3):\n"
        "    s = socket.socket()\n"
        "    try: s.connect(('127.0.0.1', 9))\n"
        "    except OSError: pass\n"
        "    s.close()\n"
        "open('f.txt', 'w').close()\n"
    )
    res = logira("run", "--tool", "filt", "--no-net", "--", "/usr/bin/python3", "-I", "-S", "-c", script)
    assert res.returncode == 0, res.stderr
    run = logira.only_run()
    meta = run.meta
    # each refused connect is two net records: the connect (-111) and the connection's close (refused)
    assert meta["filtered"] == {"exec": 0, "file": 0, "net": 6}
    assert (meta["status"], meta["complete"], meta["drops"]["total"]) == ("complete", True, 0)
    assert (meta["detect_errors"], meta["sqlite_missing"]) == (0, 0)
    assert run.of_type("net") == [] and [f["data_json"]["path"] for f in run.files("create")] == [
        str(logira.workspace / "f.txt")
    ]
    out = logira("view", run.id, "--color", "never").stdout.decode()
    assert "  record:    complete, no events dropped\n" in out
    assert "  filtered:  net 6 events not recorded on request (--no-net)\n" in out


def test_tail_next_waits_for_the_next_run_instead_of_printing_the_last(logira):
    assert logira("run", "--tool", "before", "--", "/bin/echo", "old-run-marker").returncode == 0
    tail = logira.popen("tail", "--next", "--type", "exec")
    try:
        # tail is waiting (nothing printed for the previous run) until a new run starts
        assert not select.select([tail.stdout], [], [], 1.0)[0], "tail --next printed before any new run"
        assert tail.poll() is None
        res = logira("run", "--tool", "after", "--", "/bin/echo", "new-run-marker")
        assert res.returncode == 0, res.stderr
        out, err = tail.communicate(timeout=30)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait(timeout=30)
    assert tail.returncode == 0, err
    assert b"new-run-marker" in out and b"old-run-marker" not in out
