"""What an agent does is stored exactly: processes, file changes, network, detections; runs of
different users stay apart."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.bpf


@pytest.fixture(scope="module")
def http_server(tmp_path_factory) -> Iterator[int]:
    """python3 -m http.server on 127.0.0.1 (loopback only), outside any run."""
    root = tmp_path_factory.mktemp("www")
    (root / "hello.txt").write_text("hello from the test server\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("http.server did not start")
            time.sleep(0.05)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_files_execs_and_network_exact(logira, http_server):
    port = http_server
    url = f"http://127.0.0.1:{port}/hello.txt"
    script = (
        "mkdir out && echo hello > out/a.txt && mv out/a.txt out/b.txt && chmod 600 out/b.txt && "
        f"curl -fsS -o page.txt {url} && rm out/b.txt"
    )
    res = logira("run", "--tool", "act", "--", "sh", "-c", script)
    assert res.returncode == 0, res.stderr
    ws = str(logira.workspace)
    assert (logira.workspace / "page.txt").read_text() == "hello from the test server\n"
    run = logira.only_run()

    curl = [r for r in run.execs() if r["data_json"]["filename"] == "/usr/bin/curl"]
    assert len(curl) == 1
    assert curl[0]["data_json"]["argv"] == ["curl", "-fsS", "-o", "page.txt", url]
    assert curl[0]["data_json"]["cwd"] == ws
    assert curl[0]["summary"] == f"exec curl -fsS -o page.txt {url}"

    files = [
        (r["data_json"]["op"], r["data_json"]["path"], r["data_json"].get("path2", "")) for r in run.files()
    ]
    for expected in [
        ("mkdir", f"{ws}/out", ""),
        ("create", f"{ws}/out/a.txt", ""),
        ("rename", f"{ws}/out/a.txt", f"{ws}/out/b.txt"),
        ("chmod", f"{ws}/out/b.txt", ""),
        ("create", f"{ws}/page.txt", ""),
        ("delete", f"{ws}/out/b.txt", ""),
    ]:
        assert expected in files, f"{expected} not in {files}"
    # Order of the changes is the order they happened in.
    seqs = [
        files.index(e)
        for e in [
            ("mkdir", f"{ws}/out", ""),
            ("create", f"{ws}/out/a.txt", ""),
            ("rename", f"{ws}/out/a.txt", f"{ws}/out/b.txt"),
        ]
    ]
    assert seqs == sorted(seqs)

    conns = [
        r
        for r in run.of_type("net")
        if r["data_json"]["op"] == "connect" and r["data_json"]["dst_port"] == port
    ]
    assert conns, f"no connect to port {port}: {[r['summary'] for r in run.of_type('net')]}"
    c = conns[0]
    assert c["data_json"]["dst_ip"] == "127.0.0.1" and c["data_json"]["proto"] == "tcp"
    assert c["pid"] == curl[0]["pid"]
    assert c["summary"] == f"net connect tcp 127.0.0.1:{port}"
    # The same facts are indexed in SQLite.
    assert run.db("SELECT dst_ip, dst_port FROM events WHERE seq = ?", c["seq"]) == [("127.0.0.1", port)]
    assert run.db("SELECT count(*) FROM events WHERE type='file' AND path = ?", f"{ws}/out/a.txt")[0][0] >= 2
    assert run.meta["counts"]["exec"] == len(run.of_type("exec"))


def test_detection_with_lineage(logira):
    ssh = logira.user.home / ".ssh"
    try:
        res = logira(
            "run",
            "--tool",
            "det",
            "--",
            "sh",
            "-c",
            "mkdir -p ~/.ssh && echo 'ssh-ed25519 AAAA attacker' >> ~/.ssh/authorized_keys",
        )
        assert res.returncode == 0, res.stderr
        run = logira.only_run()
        target = str(ssh / "authorized_keys")
        writes = [r for r in run.files() if r["data_json"]["path"] == target]
        assert writes, run.summaries()
        by_seq = {r["seq"]: r for r in run.records}
        dets = [
            r
            for r in run.of_type("detection")
            if by_seq.get(r["data_json"]["related_event_seq"], {}).get("seq") in {w["seq"] for w in writes}
        ]
        assert dets, f"no detection for {target}: {[r['summary'] for r in run.of_type('detection')]}"
        d = dets[0]["data_json"]
        assert d["severity"] in ("high", "critical")
        assert target in d["message"]
        # Lineage: the writing process first, then its ancestors up to the agent's root process.
        pids = [e["pid"] for e in d["lineage"]]
        assert pids[0] == writes[0]["pid"]
        assert run.meta["root_pid"] in pids
        # A detection directly follows its event, and the stores agree.
        assert dets[0]["seq"] > d["related_event_seq"]
        assert run.db(
            "SELECT rule_id, severity, related_seq FROM detections WHERE seq = ?", dets[0]["seq"]
        ) == [(d["rule_id"], d["severity"], d["related_event_seq"])]
        assert run.meta["suspicious_count"] >= 1
        n = len(run.of_type("detection"))
        sev = run.meta["detections"]
        expect = " ".join(
            f"{k}={sev[k]}" for k in ("critical", "high", "medium", "low", "info") if sev.get(k)
        )
        assert f"detections={n} ({expect})" in res.stderr.decode()
    finally:
        subprocess.run(["rm", "-rf", str(ssh)], check=False)


def test_two_users_concurrent_runs_kept_apart(logira, logira_other):
    procs = []
    for lg in (logira, logira_other):
        marker = f"marker-{lg.user.name}"
        procs.append(
            lg.popen(
                "run",
                "--tool",
                "iso",
                "--",
                "sh",
                "-c",
                f"for i in 1 2 3 4 5; do echo $i >> {marker}; sleep 0.2; done; cat {marker} >/dev/null",
            )
        )
    for p in procs:
        _out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    for lg, other in ((logira, logira_other), (logira_other, logira)):
        run = lg.only_run()  # each home holds exactly its own run
        assert run.meta["uid"] == lg.user.uid
        assert {r["uid"] for r in run.records if r["type"] != "detection"} == {lg.user.uid}
        paths = {r["data_json"]["path"] for r in run.files()}
        assert str(lg.workspace / f"marker-{lg.user.name}") in paths
        assert not any(other.user.name in p for p in paths), paths
        assert not any(str(other.workspace) in r["summary"] for r in run.records)
        assert os.stat(run.dir).st_uid == lg.user.uid


CUSTOM_RULES = """version: 1
rules:
  - id: custom-canary-write
    title: Canary file written
    severity: medium
    category: test
    description: A file named canary-*.txt was written (test rule).
    message: "canary {op} {path}"
    when:
      file:
        op: [create, modify]
        path: ["**/canary-*.txt"]
"""


def test_custom_rules_fire_and_are_recorded(logira):
    rules = logira.workspace / "my-rules.yaml"
    rules.write_text(CUSTOM_RULES)
    os.chown(rules, logira.user.uid, logira.user.gid)
    res = logira(
        "run", "--tool", "custom", "--rules", "my-rules.yaml", "--", "sh", "-c", "echo x > canary-1.txt"
    )
    assert res.returncode == 0, res.stderr
    run = logira.only_run()
    assert run.meta["custom_rules_path"] == str(rules)
    import hashlib

    assert run.meta["custom_rules_sha256"] == hashlib.sha256(CUSTOM_RULES.encode()).hexdigest()
    dets = [
        r["data_json"] for r in run.of_type("detection") if r["data_json"]["rule_id"] == "custom-canary-write"
    ]
    assert [d["message"] for d in dets] == [f"canary create {logira.workspace}/canary-1.txt"]
