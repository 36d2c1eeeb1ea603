"""The optional "new egress destination for this workspace" detection (off by default), through a real logirad."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from daemon_helpers import DaemonHandle, HeldChild, finish_run, make_home, start_run

from logira.daemon import protocol as p

pytestmark = pytest.mark.bpf


def _listener() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s, s.getsockname()[1]


def _run(d: DaemonHandle, home: Path, ws: Path, ports: list[int]) -> tuple[dict, list[dict]]:
    script = "; ".join(f"exec 3<>/dev/tcp/127.0.0.1/{port}; exec 3>&-" for port in ports)
    with d.client() as c:
        child = HeldChild(["/bin/bash", "-c", script], cwd=str(ws))
        started = start_run(c, child, home, ["bash", "-c", script], net=True, cwd=str(ws))
        fin = finish_run(c, child, timeout=30)
    assert isinstance(fin, p.RunFinished) and fin.complete, fin
    run_dir = home / "runs" / started.run_id
    recs = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    return json.loads((run_dir / "meta.json").read_text()), [r for r in recs if r["type"] == "detection"]


def test_new_destinations_of_a_workspace_are_low_detections(require_bpf: None) -> None:
    d = DaemonHandle(probes=("exec", "net"), config_text="new_egress_detection = true\n").start()
    home = make_home()
    ws = Path(tempfile.mkdtemp(prefix="lgws-"))
    (ws / ".git").mkdir()
    (ws / "sub").mkdir()
    a, pa = _listener()
    b, pb = _listener()
    try:
        meta, dets = _run(d, home, ws, [pa])  # first run of the workspace: the baseline, no detection
        assert [x for x in dets if x["data_json"]["rule_id"] == "net-new-destination-for-workspace"] == []
        meta, dets = _run(d, home, ws / "sub", [pa, pb])  # same git root: same workspace
        new = [x for x in dets if x["data_json"]["rule_id"] == "net-new-destination-for-workspace"]
        assert len(new) == 1, dets
        det = new[0]["data_json"]
        assert det["severity"] == "low" and f"127.0.0.1:{pb}" in det["message"] and str(ws) in det["message"]
        assert meta["detections"].get("low") == 1
        meta, dets = _run(d, home, ws, [pa, pb])  # nothing new any more
        assert not [x for x in dets if x["data_json"]["rule_id"] == "net-new-destination-for-workspace"]
        hist = d.state_dir / "egress" / "0"
        assert hist.stat().st_uid == 0 and hist.stat().st_mode & 0o077 == 0  # root's, not the agent's
    finally:
        a.close()
        b.close()
        d.cleanup()
        shutil.rmtree(home.parent, ignore_errors=True)
        shutil.rmtree(ws, ignore_errors=True)
