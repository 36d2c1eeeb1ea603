"""Fleet-wide journald: logirad's structured fields shipped by the real systemd-journal-upload to a real
systemd-journal-remote on loopback arrive intact (docs/export.md, "journald, fleet-wide")."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import EXEC_ONLY, DaemonHandle, HeldChild, finish_run, make_home, start_run
from journald_helpers import running_journald

from logira.daemon import protocol as p

REMOTE = "/lib/systemd/systemd-journal-remote"
UPLOAD = "/lib/systemd/systemd-journal-upload"
RULE = """version: 1
rules:
  - id: test-upload-marker
    title: Marker program ran
    severity: critical
    category: test
    description: fires on one exact command
    message: "marker ran: {argv}"
    when:
      exec: {program: ["true"], args: ["lgd-upload-marker"]}
"""

pytestmark = pytest.mark.bpf


def _need(path: str) -> None:
    if not Path(path).exists():
        pytest.skip(f"{path} is not installed (make setup installs systemd-journal-remote)")


@pytest.fixture(scope="module")
def journald() -> Iterator[None]:
    """A journald for this module (the running one, or one started by hand)."""
    yield from running_journald()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _remote_entries(journal: Path, run_id: str, want: int, deadline: float) -> list[dict]:
    while True:
        out = subprocess.run(["journalctl", "--file", str(journal), "-o", "json", "--no-pager", f"RUN_ID={run_id}"],
                             capture_output=True, text=True, check=False).stdout  # fmt: skip
        got = [json.loads(x) for x in out.splitlines() if x.strip()]
        if len(got) >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_fields_arrive_intact_through_journal_upload_and_remote(require_bpf: None, journald: None,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    for tool in (REMOTE, UPLOAD):
        _need(tool)
    d = DaemonHandle(journald="on", probes=EXEC_ONLY).start()
    home = make_home()
    port = _free_port()
    out = tmp_path / "remote.journal"
    remote = subprocess.Popen([REMOTE, f"--listen-http=127.0.0.1:{port}", f"--output={out}", "--split-mode=none"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        with d.client() as c:
            child = HeldChild(["/bin/sh", "-c", "/bin/true lgd-upload-marker"])
            started = start_run(c, child, home, ["sh"], rules_yaml=RULE, rules_path="/tmp/upload.yaml")
            fin = finish_run(c, child)
        assert isinstance(fin, p.RunFinished) and fin.detections == 1, fin
        # ship the local journal (all of it, then exit) to the receiver on loopback
        deadline = time.monotonic() + 60
        entries: list[dict] = []
        while time.monotonic() < deadline:
            up = subprocess.run([UPLOAD, f"--url=http://127.0.0.1:{port}", "--follow=no",
                                 f"--save-state={tmp_path / 'upload.state'}"],
                                capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
            assert up.returncode == 0, up.stderr
            entries = _remote_entries(out, started.run_id, 3, time.monotonic() + 2)
            if len(entries) >= 3:
                break
        by_event = {e.get("LOGIRA_EVENT"): e for e in entries}
        assert {"run_started", "detection", "run_finished"} <= set(by_event), (
            f"remote journal has {sorted(by_event, key=str)} for the run; upload said {up.stderr[-500:]!r}")
        det = by_event["detection"]
        assert det["RUN_ID"] == started.run_id
        assert (det["RULE_ID"], det["SEVERITY"], det["PRIORITY"]) == ("test-upload-marker", "critical", "2")
        assert det["SYSLOG_IDENTIFIER"] == "logirad"
        assert det["MESSAGE"].startswith("[critical] test-upload-marker: marker ran")
        assert det["_HOSTNAME"] == socket.gethostname()  # journald's own trusted fields survive too
        assert by_event["run_finished"]["STATUS"] == "complete"
    finally:
        remote.terminate()
        remote.wait(10)
        d.cleanup()
        shutil.rmtree(home.parent, ignore_errors=True)
