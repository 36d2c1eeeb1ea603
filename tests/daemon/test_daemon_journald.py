"""journald: native-protocol entries read back with journalctl (a real systemd-journald)."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from daemon_helpers import EXEC_ONLY, DaemonHandle, HeldChild, finish_run, make_home, start_run
from journald_helpers import running_journald

from logira.daemon import protocol as p
from logira.sinks.journald import Journal

MARKER_RULE = """version: 1
rules:
  - id: test-journald-marker
    title: Marker program ran
    severity: high
    category: test
    description: a test rule that fires on one exact command
    message: "marker ran"
    when:
      exec: {program: ["true"], args: ["lgd-marker"]}
"""


@pytest.fixture(scope="module")
def journald() -> Iterator[None]:
    """A journald for this module (the running one, or one started by hand)."""
    yield from running_journald()


def _entries(field: str, value: str, want: int, timeout: float = 10.0) -> list[dict[str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            ["journalctl", "-o", "json", "--no-pager", "-t", "logirad", f"{field}={value}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        got = [json.loads(x) for x in out.splitlines() if x.strip()]
        if len(got) >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_native_entries_are_binary_safe(journald: None) -> None:
    tag = secrets.token_hex(6)
    sink = Journal()
    try:
        assert sink.send(
            "line one\nline two",
            priority=3,
            run_id=tag,
            rule_id="r.x",
            severity="high",
            evidence="a=b\nc\x1b[31m",
        )
    finally:
        sink.close()
    (entry,) = _entries("RUN_ID", tag, 1)
    assert entry["MESSAGE"] == "line one\nline two"
    assert (entry["RUN_ID"], entry["RULE_ID"], entry["SEVERITY"], entry["PRIORITY"]) == (
        tag,
        "r.x",
        "high",
        "3",
    )
    # journalctl -o json shows values with control characters as byte arrays: exact bytes survived
    assert bytes(entry["EVIDENCE"]) == b"a=b\nc\x1b[31m"
    assert entry["SYSLOG_IDENTIFIER"] == "logirad"


@pytest.mark.bpf
def test_daemon_logs_runs_and_detections_to_journald(require_bpf: None, journald: None) -> None:
    d = DaemonHandle(journald="on", probes=EXEC_ONLY).start()
    home = make_home()
    try:
        with d.client() as c:
            child = HeldChild(["/bin/sh", "-c", "/bin/true lgd-marker; /bin/true other"])
            started = start_run(c, child, home, ["sh"], rules_yaml=MARKER_RULE, rules_path="/tmp/marker.yaml")
            fin = finish_run(c, child)
        assert isinstance(fin, p.RunFinished) and fin.detections == 1, fin
        entries = _entries("RUN_ID", started.run_id, 3)
        by_msg = {e["LOGIRA_EVENT"]: e for e in entries}
        assert set(by_msg) >= {"run_started", "detection", "run_finished"}, sorted(by_msg)
        det = by_msg["detection"]
        assert (det["RULE_ID"], det["SEVERITY"], det["PRIORITY"]) == ("test-journald-marker", "high", "3")
        assert det["SYSLOG_IDENTIFIER"] == "logirad"
        assert det["MESSAGE"] == "[high] test-journald-marker: marker ran"
        assert by_msg["run_started"]["MESSAGE"] == "run_started"
        assert by_msg["run_started"]["PRIORITY"] == "6"
        assert by_msg["run_finished"]["STATUS"] == "complete"
    finally:
        d.cleanup()
        shutil.rmtree(home.parent, ignore_errors=True)
