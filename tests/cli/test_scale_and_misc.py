"""Large process trees are summarised, old databases without the view indexes still work,
shell completion scripts are valid, tail --tree follows new descendants, daemon errors are one line."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import textwrap

import pytest

from logira.daemon import protocol
from logira.model.record import ExecData

from .conftest import RID
from .fixtures import rec, sample_records, write_run
from .test_tail_retention import FollowServer


def test_big_process_tree_is_summarised(cli, tmp_path, monkeypatch):
    rid = "20260102-170000-swarm"
    recs = [
        rec(rid, 1, 0.0, "exec", ExecData(filename="/usr/bin/bash", argv=["bash", "run.sh"]), pid=10, ppid=1)
    ]
    for i in range(120):  # 120 git children of the shell
        recs.append(rec(rid, i + 2, 0.1 + i / 1000, "exec", ExecData(filename="/usr/bin/git", argv=["git", "log", str(i)]),
                        pid=100 + i, ppid=10))  # fmt: skip
    write_run(tmp_path, rid, recs)
    monkeypatch.setenv("LOGIRA_HOME", str(tmp_path))
    code, out, _ = cli("view", rid)
    lines = out.splitlines()
    assert code == 0
    assert "Processes (121 that exec'd)" in lines
    assert "  10 bash run.sh" in lines
    assert "  ├─ 100 git log 0" in lines
    assert "  └─ … 114 more children (git x114)" in lines
    assert "  … tree summarised: 7 of 121 processes shown (view --all, or query --type exec)" in lines
    code, out, _ = cli("view", rid, "--all")
    assert "  └─ 219 git log 119" in out.splitlines() and "summarised" not in out


def test_database_without_view_indexes_gives_same_answers(cli, home, tmp_path, monkeypatch):
    h2 = tmp_path / "h2"
    shutil.copytree(home / "runs" / RID, h2 / "runs" / RID)
    db = sqlite3.connect(h2 / "runs" / RID / "index.sqlite")
    db.execute("DROP INDEX ev_change")
    db.execute("DROP INDEX ev_net")
    db.commit()
    db.close()
    runs = []
    for h in (home, h2):
        monkeypatch.setenv("LOGIRA_HOME", str(h))
        runs.append([cli("view", RID, "--json")[1], cli("query", RID, "--path", "**/proj/*", "--json")[1],
                     cli("query", RID, "--dest", "93.184.0.0/16", "--json")[1]])  # fmt: skip
    assert runs[0] == runs[1]
    assert len(json.loads(runs[0][0])["destinations"]) == 3


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts(cli, shell, tmp_path):
    code, out, _ = cli("completion", shell)
    assert code == 0 and "query" in out and "--severity" in out and "/runs" in out
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} not installed")
    script = tmp_path / f"c.{shell}"
    script.write_text(out)
    assert subprocess.run([shell, "-n", str(script)], capture_output=True).returncode == 0


def test_tail_tree_follows_descendants(cli, home, tmp_path, monkeypatch):
    lines = (home / "runs" / RID / "events.jsonl").read_text().splitlines()
    sock = tmp_path / "d.sock"
    srv = FollowServer(sock, lambda m: [protocol.Following(run_id=RID, next_seq=1), protocol.Records(lines=lines),
                                        protocol.RunEnded(run_id=RID)])  # fmt: skip
    monkeypatch.setenv("LOGIRA_SOCK", str(sock))
    code, out, _ = cli("tail", "--pid", "100", "--tree", "--type", "exec")
    srv.close()
    assert code == 0 and [int(ln.split()[0]) for ln in out.splitlines()] == [1, 3, 13]


def test_tail_daemon_refusal_is_one_line(cli, tmp_path, monkeypatch):
    sock = tmp_path / "d.sock"
    srv = FollowServer(sock, lambda m: [protocol.Error(message="permission denied: run belongs to uid 1001")])
    monkeypatch.setenv("LOGIRA_SOCK", str(sock))
    code, out, err = cli("tail", RID)
    srv.close()
    assert code == 1 and out == "" and err == "error: logirad: permission denied: run belongs to uid 1001\n"


def test_running_run_is_read_from_jsonl_without_noise(cli, tmp_path, monkeypatch):
    rid = "20260102-180000-live"
    write_run(tmp_path, rid, sample_records(rid), end=None, status="running", sqlite=False)
    monkeypatch.setenv("LOGIRA_HOME", str(tmp_path))
    code, out, err = cli("query", "--type", "detection")
    assert code == 0 and err == "" and [int(ln.split()[0]) for ln in out.splitlines()[2:]] == [8, 11]
    code, out, _ = cli("explain")
    assert code == 0 and out.splitlines()[0] == f"Run {rid}  RUNNING  2 detections (high 1, medium 1)"


def test_incomplete_run_shows_drops_by_stage(cli, tmp_path, monkeypatch):
    from logira.format.meta import DropsMeta

    rid = "20260102-190000-lossy"
    drops = DropsMeta(kernel={"file_open": 3, "exec": 0}, kernel_total=3, reader=1, queue=0, total=4)
    write_run(tmp_path, rid, sample_records(rid)[:4], status="incomplete", drops=drops,
              incomplete_reasons=["ring buffer full\x1b[2J"], stragglers=[4242])  # fmt: skip
    monkeypatch.setenv("LOGIRA_HOME", str(tmp_path))
    code, out, _ = cli("view")
    assert code == 0 and out.splitlines()[0] == f"Run {rid}  INCOMPLETE"
    assert ("  record:    INCOMPLETE, dropped 4 (kernel 3 [file_open 3], reader 1, queue 0); "
            "ring buffer full\\x1b[2J; stragglers still running: 4242") in out.splitlines()  # fmt: skip
    code, out, _ = cli("runs", "--json")
    assert json.loads(out)[0]["status"] == "INCOMPLETE" and json.loads(out)[0]["dropped"] == 4


def test_explain_uses_rule_set_title_and_description(cli, tmp_path, monkeypatch):
    from logira.detect.loader import load_rules
    from logira.model.record import DetectionData

    rule = load_rules().rules[0].rule
    rid = "20260102-200000-rules"
    recs = sample_records(rid)[:7]
    recs.append(rec(rid, 8, 1.5, "detection", DetectionData(rule_id=rule.id, severity="high", message="m",
                                                            related_event_seq=7, title="stale stored title")))  # fmt: skip
    write_run(tmp_path, rid, recs)
    monkeypatch.setenv("LOGIRA_HOME", str(tmp_path))
    code, out, _ = cli("explain")
    assert code == 0
    assert f"[HIGH] {rule.id}  {rule.title}   1x, +1.5s" in out.splitlines()
    desc = " ".join(rule.description.split())
    assert (
        out.splitlines()[out.splitlines().index(f"[HIGH] {rule.id}  {rule.title}   1x, +1.5s") + 1]
        == "  " + textwrap.wrap(desc, 100)[0]
    )
    code, out, _ = cli("view", "--json")
    assert json.loads(out)["detections"][0]["title"] == rule.title
