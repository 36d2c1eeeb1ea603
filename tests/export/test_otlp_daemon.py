"""logirad streams every run's records to an OTLP collector; what it cannot deliver is counted in meta.json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_helpers import DaemonHandle, HeldChild, make_home, start_run

from logira import __version__
from logira.daemon import protocol as p

from .otlp_receiver import Receiver, attrs

pytestmark = pytest.mark.bpf


def _run(d: DaemonHandle, home: Path, script: str) -> tuple[p.RunFinished, dict]:
    with d.client() as c:
        child = HeldChild(["/bin/sh", "-c", script], cwd=str(home.parent))
        started = start_run(c, child, home, ["sh", "-c", script], file=True, net=True, cwd=str(home.parent))
        child.release()
        c.send(p.AgentExited(exit_code=child.wait()))
        fin = c.recv(30)
    assert isinstance(fin, p.RunFinished), fin
    meta = json.loads((home / "runs" / started.run_id / "meta.json").read_text())
    return fin, meta


def test_daemon_streams_runs_to_otlp(require_bpf: None) -> None:
    recv = Receiver()
    d = DaemonHandle(config_text=f'otlp_endpoint = "{recv.url}"\notlp_retries = 1\notlp_finish_wait = 10\n').start()
    home = make_home()
    try:
        fin, meta = _run(d, home, "echo hi > out.txt; cat out.txt >/dev/null; /bin/true")
        assert meta["complete"] is True and meta["export_losses"] == {}
        # every sink's counters reach meta.json: the index and the exporter took every record
        for name in ("sqlite", "otlp"):
            assert meta["sinks"][name]["written"] == meta["event_count"], meta["sinks"]
            assert meta["sinks"][name]["failed"] == 0, meta["sinks"]
        assert recv.errors == []  # every request parsed strictly as ExportLogsServiceRequest
        mine = [attrs(r.attributes) for r in recv.records()]
        mine = [a for a in mine if a["logira.run_id"] == meta["run_id"]]
        assert sorted(a["logira.seq"] for a in mine) == list(range(1, meta["event_count"] + 1))
        lines = (home / "runs" / meta["run_id"] / "events.jsonl").read_text().splitlines()
        stored = {json.loads(x)["seq"]: json.loads(x) for x in lines}
        for a in mine:
            assert a["logira.type"] == stored[a["logira.seq"]]["type"]
            assert json.loads(a["logira.data"]) == stored[a["logira.seq"]]["data_json"]
        assert any(a.get("file.path", "").endswith("/out.txt") for a in mine)
        res = recv.resources()[0]
        assert res["host.name"] == meta["host"] and res["service.version"] == __version__

        # the collector goes down: capture goes on, the record is complete, the loss is counted
        recv.mode = "refuse"
        fin, meta = _run(d, home, "/bin/true; echo x > y.txt")
        assert fin.complete is True and meta["complete"] is True and meta["status"] == "complete"
        losses = meta["export_losses"]["otlp"]
        assert sum(losses.values()) == meta["event_count"] and set(losses) <= {"failed", "unsent"}
        assert "export_losses" in d.log_text()
        view = subprocess.run([sys.executable, "-m", "logira.cli.main", "view", meta["run_id"], "--no-color"],
                              env={**os.environ, "LOGIRA_HOME": str(home)}, capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip
        assert view.returncode == 0 and "copies:    otlp lost " in view.stdout, view.stdout + view.stderr
    finally:
        d.cleanup()
        recv.close()
        shutil.rmtree(home.parent, ignore_errors=True)
