"""Retro-hunt through each run's index: the same detections as a full evaluation, far fewer records read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from logira.cli.rules import HuntStats, hunt_run
from logira.detect.loader import load_rules
from logira.detect.prefilter import widen_glob
from logira.model.record import ExecData, FileData, NetData
from tests.cli.fixtures import rec, sample_records, write_run
from tests.report.hostile import hostile_records

IOC = """rules:
  - id: ioc-dest
    title: Contact with a known bad address
    severity: high
    category: ioc
    description: retro-hunt IOC
    message: "{dst_ip}:{dst_port} by {exe}"
    when:
      net: {dst: ["93.184.216.34"], direction: outbound}
  - id: ioc-path
    title: Write under a home secret dir
    severity: medium
    category: ioc
    description: retro-hunt IOC
    message: "{path}"
    when:
      file: {op: [modify, create], path: ["$HOME/.s[s]h/**"]}
"""


def _key(hits) -> list[tuple]:
    return sorted((h.run_id, h.related_seq, h.rule_id, h.message) for h in hits)


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    home = tmp_path / "home"
    out = [write_run(home, "20260102-150405-claude", sample_records("20260102-150405-claude")),
           write_run(home, "20260102-160405-claude", hostile_records("20260102-160405-claude"))]  # fmt: skip
    quiet = "20260102-170405-quiet"  # nothing any IOC could match
    out.append(write_run(home, quiet, [rec(quiet, 1, 0.1, "exec", ExecData(filename="/usr/bin/ls", argv=["ls"])),
                                       rec(quiet, 2, 0.2, "file", FileData(op="create", path="/w/x")),
                                       rec(quiet, 3, 0.3, "net", NetData(op="connect", proto="tcp",
                                                                         dst_ip="10.1.1.1", dst_port=80))]))  # fmt: skip
    return out


def _jsonl_only(runs: list[Path], tmp_path: Path) -> list[Path]:
    out = []
    for r in runs:
        dst = tmp_path / "jsonl" / "runs" / r.name
        shutil.copytree(r, dst)
        (dst / "index.sqlite").unlink()
        out.append(dst)
    return out


@pytest.mark.parametrize("builtin", [False, True], ids=["ioc-only", "with-builtin"])
def test_prefiltered_hunt_equals_full_evaluation(runs, tmp_path: Path, monkeypatch, builtin: bool):
    monkeypatch.setattr("logira.cli.rules._home_of", lambda uid: "/home/u")
    rs = load_rules(extra=[("ioc.yaml", IOC)], site_dir=None)
    if not builtin:
        from logira.cli.rules import _subset

        rs = _subset(rs, [lr for lr in rs.rules if lr.source == "ioc.yaml"])
    fast, slow = HuntStats(), HuntStats()
    hits_fast = [h for r in runs for h in hunt_run(rs, r, fast)[0]]
    hits_full = [h for r in _jsonl_only(runs, tmp_path) for h in hunt_run(rs, r, slow)[0]]
    assert _key(hits_fast) == _key(hits_full)
    assert slow.full == 3 and slow.skipped == 0
    if not builtin:
        assert {h.rule_id for h in hits_fast} == {"ioc-dest", "ioc-path"}
        assert fast.skipped == 1  # the quiet run was never read
        assert fast.events < slow.events / 2  # bounded work: only candidate rows and the tree's rows


def test_widened_globs_are_supersets():
    assert widen_glob("$HOME/.ssh/**", "/home/u", "/w") == "/home/u/.ssh*"
    assert widen_glob("**/.env", "/h", "/w") == "*.env"
    assert widen_glob("/tmp/[a-z]?x*", "", "") == "/tmp/??x*"
    assert widen_glob("$WORKSPACE/a[*]", "/h", "/w/p[1]") == "/w/p[[]1]/a?"


def test_hunt_cli_json_and_bad_input(runs, tmp_path: Path, monkeypatch, capsys):
    from logira.cli.main import main

    monkeypatch.setenv("LOGIRA_HOME", str(runs[0].parents[1]))
    monkeypatch.setattr("logira.cli.rules._home_of", lambda uid: "/home/u")
    f = tmp_path / "ioc.yaml"
    f.write_text(IOC)
    assert main(["rules", "test", str(f), "--all-runs", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert {(h["run_id"][-6:], h["rule_id"]) for h in hits} == {("claude", "ioc-dest"), ("claude", "ioc-path")}
    empty = tmp_path / "empty.yaml"
    empty.write_text("rules: []\n")
    assert main(["rules", "test", str(empty), "--all-runs"]) == 1
    assert "defines no active rule" in capsys.readouterr().err
