"""`logira diff` and the per-home summary index: what is new, per workspace, and the index's integrity."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from logira.model.record import DetectionData, ExecData, FileData, NetData
from tests.cli.fixtures import T0, S, rec, write_run

WS = "/home/u/proj"


def _run(home: Path, rid: str, t: int, *, exe="/usr/bin/git", dst="140.82.112.3", dns="github.com",
         write="/home/u/proj/a.txt", cwd=WS, rule=None, extra=()):  # fmt: skip
    recs = [
        rec(rid, 1, 0.1, "exec", ExecData(filename=exe, argv=[exe.rsplit("/", 1)[-1]], cwd=cwd)),
        rec(rid, 2, 0.2, "net", NetData(op="connect", proto="tcp", family="inet", dst_ip=dst, dst_port=443)),
        rec(rid, 3, 0.2, "net", NetData(op="send", proto="udp", family="inet", dst_ip="127.0.0.53", dst_port=53,
                                        dns_qname=dns)),
        rec(rid, 4, 0.3, "file", FileData(op="modify", path=write)),
        rec(rid, 5, 0.4, "file", FileData(op="read", path="/usr/lib/x.so")),
    ]  # fmt: skip
    if rule:
        recs.append(rec(rid, 6, 0.4, "detection", DetectionData(rule_id=rule, severity="high", message="m",
                                                                related_event_seq=4)))  # fmt: skip
    for i, r in enumerate(extra):
        r.seq = len(recs) + 1 + i
        recs.append(r)
    return write_run(home, rid, recs, start_ts=T0 + t * S, cwd=cwd)


@pytest.fixture
def dhome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    _run(h, "20260102-100000-a", 0)
    _run(h, "20260102-110000-a", 3600, exe="/usr/bin/make")
    _run(h, "20260102-115000-b", 3000, cwd="/srv/other", exe="/usr/bin/nc", dst="6.6.6.6")  # other workspace
    rid = "20260102-120000-a"
    _run(h, rid, 7200, exe="/usr/bin/nc", dst="6.6.6.6", dns="evil.example", write="/home/u/.bashrc",
         rule="persist-shell-startup",
         extra=[rec(rid, 0, 0.5, "file", FileData(op="read", path="/home/u/.aws/credentials"))])  # fmt: skip
    monkeypatch.setenv("LOGIRA_HOME", str(h))
    return h


def _diff(cli, *args: str) -> dict:
    code, out, err = cli("diff", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_new_in_run_vs_history(rcli, dhome):
    d = _diff(rcli)
    assert d["run_id"] == "20260102-120000-a" and d["workspace"] == WS
    assert d["baseline_runs"] == 2  # the other workspace's run is not history of this one
    assert d["programs"] == ["/usr/bin/nc"]
    assert d["destinations"] == ["6.6.6.6:443"]
    assert d["dns"] == ["evil.example"]
    assert d["writes_outside"] == ["/home/u/.bashrc"]
    assert d["credentials"] == ["/home/u/.aws/credentials", "/home/u/.bashrc"]
    assert d["detections"] == ["persist-shell-startup"]
    # vs one run / the last N
    d = _diff(rcli, "--against", "20260102-100000-a")
    assert d["baseline_runs"] == 1 and d["programs"] == ["/usr/bin/nc"]
    d = _diff(rcli, "20260102-110000-a", "--last", "1")
    assert d["baseline_runs"] == 1 and d["programs"] == ["/usr/bin/make"] and d["destinations"] == []
    d = _diff(rcli, "20260102-100000-a")
    assert d["baseline_runs"] == 0 and d["programs"] == []
    code, out, _ = rcli("diff")
    assert code == 0 and "New programs executed (1):\n  /usr/bin/nc" in out
    code, out, _ = rcli("view")
    assert code == 0 and "New in this run (vs 2 earlier runs of the workspace)" in out
    assert "destinations (ip:port): 6.6.6.6:443" in out


def test_summary_index_integrity(rcli, dhome):
    _diff(rcli)
    idx = dhome / "summaries.sqlite"
    assert idx.stat().st_mode & 0o777 == 0o600
    db = sqlite3.connect(idx)
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 4
    # a forged history entry whose stat key no longer matches meta.json is recomputed from the run
    db.execute("UPDATE runs SET final_hash = 'forged', meta_key = 'x' WHERE run_id = '20260102-100000-a'")
    db.execute("INSERT INTO items VALUES ('program', '/usr/bin/nc', '20260102-100000-a')")
    db.commit()
    assert _diff(rcli)["programs"] == ["/usr/bin/nc"]  # recomputed from the run itself
    # a run whose meta.json changed (same final hash): only its stat key is refreshed, nothing recomputed
    meta_path = dhome / "runs" / "20260102-110000-a" / "meta.json"
    meta_path.write_bytes(meta_path.read_bytes())
    before = db.execute("SELECT meta_key FROM runs WHERE run_id = '20260102-110000-a'").fetchone()[0]
    assert _diff(rcli)["programs"] == ["/usr/bin/nc"]
    assert db.execute("SELECT meta_key FROM runs WHERE run_id = '20260102-110000-a'").fetchone()[0] != before
    db.close()
    # a corrupt or foreign index is rebuilt
    idx.write_bytes(b"not a database" * 100)
    assert _diff(rcli)["programs"] == ["/usr/bin/nc"]
    db = sqlite3.connect(idx)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    # a deleted run is forgotten
    import shutil

    shutil.rmtree(dhome / "runs" / "20260102-110000-a")
    assert _diff(rcli)["baseline_runs"] == 1
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 3


def test_diff_bad_input(rcli, dhome):
    code, _, err = rcli("diff", "--against", "20990101-000000-x")
    assert code == 1 and "not found" in err and err.count("\n") == 1
    code, _, err = rcli("diff", "--last", "0")
    assert code == 2 and "invalid --last 0" in err
    code, _, err = rcli("diff", "--against", "last")
    assert code == 2 and "is the run itself" in err
