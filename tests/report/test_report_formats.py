"""`logira report` json/md/sarif and `check`: content, escaping, SARIF validity, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from logira.model.record import FileData
from tests.cli.fixtures import rec, write_run

from .conftest import PREV, RID
from .hostile import IMG

SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text())


def _report(rcli, *args: str, fmt: str = "json") -> str:
    code, out, err = rcli("report", *args, "--format", fmt)
    assert code == 0, err
    return out


def test_json_model(rcli):
    doc = json.loads(_report(rcli, RID))
    assert doc["schema"] == "logira.report/1" and doc["run"]["run_id"] == RID
    assert doc["run"]["status"] == "COMPLETE" and doc["run"]["incomplete_reasons"] == []
    assert doc["counts"] == {"exec": 4, "proc": 2, "file": 9, "net": 5, "detection": 3, "agent": 1}
    assert sum(sum(b["counts"].values()) for b in doc["timeline"]["buckets"]) == 21  # every non-detection record
    assert [m["seq"] for m in doc["timeline"]["marks"]] == [8, 11, 23]
    assert doc["detections"]["by_severity"] == {"critical": 1, "high": 1, "medium": 1}
    det = {d["rule_id"]: d for d in doc["detections"]["items"]}
    assert det["R010"]["related"]["path"] == "/home/u/.ssh/authorized_keys"
    assert det["R010"]["lineage"][1]["argv"] == ["claude", "--yolo"]
    assert [s["seq"] for s in det["R020"]["steps"]] == [3, 10]
    files = {c["path"]: c for d in doc["files"]["dirs"] for c in d["changes"]}
    assert f"/home/u/proj/{IMG}" in files and "/etc/passwd" not in files  # reads are not changes
    assert "/etc/shadow" not in files  # a denied attempt is not a change ...
    assert doc["files"]["denied"] == [{"op": "modify", "path": "/etc/shadow", "errno": 13, "error": "EACCES",
                                       "count": 1}]  # ... it is kept apart  # fmt: skip
    dests = {d["dst"]: d for d in doc["egress"]["destinations"]}
    assert dests["93.184.216.34:443"]["bytes"] == 1000 and dests["93.184.216.34:443"]["ops"] == ["connect", "send"]
    assert dests["10.0.0.53:53"]["dns"][1] == "evil.example"
    roots = doc["processes"]["roots"]
    assert [r["pid"] for r in roots] == [100] and [c["pid"] for c in roots[0]["children"]] == [101, 300]
    calls = doc["tool_calls"]
    assert calls["available"] is True and [c["call_id"] for c in calls["calls"]] == ["toolu_<b>01</b>"]
    assert calls["calls"][0]["detections"] == ["R030"] and calls["calls"][0]["declared"] is True
    assert det["R030"]["tool_call"] == "toolu_<b>01</b>" and det["R010"]["tool_call"] == ""
    assert json.loads(_report(rcli, PREV))["tool_calls"]["available"] is False
    new = doc["new_in_run"]
    assert new["baseline_runs"] == 1 and new["programs"] == ["/usr/bin/sh"]
    assert new["detections"] == ["R010", "R020", "R030"]


def test_markdown_summary_is_escaped(rcli):
    md = _report(rcli, RID, fmt="md")
    first = md.splitlines()[0]
    assert first.startswith("### logira: run 20260102\\-150405\\-claude") or RID.replace("-", "\\-") in first or RID in first
    assert "COMPLETE" in first and "3 detections (1 critical, 1 high, 1 medium)" in first
    assert "| severity | rule | count | title | first seen |" in md
    assert "<img" not in md and "&lt;img src=x onerror=alert\\(1\\)&gt;" in md
    assert "Hostile &lt;b&gt;title&lt;/b&gt;" in md
    assert "**New in this run**" in md and "/usr/bin/sh" in md
    assert "\x1b" not in md and "\u202e" not in md
    assert "logira report" in md.splitlines()[-1]  # the hint to the full report
    # the agent's tool calls, escaped (the hostile id carries markup), and the detection names its call
    assert "**Tool calls** (1;" in md and "<b>" not in md and "| toolu\\_&lt;b&gt;01&lt;/b&gt; | Bash |" in md
    assert "(tool call toolu\\_&lt;b&gt;01&lt;/b&gt;)" in md


def _repo(tmp_path: Path, *files: str) -> Path:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    for f in files:
        p = repo / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x\n")
    return repo


def _github_minimum(doc: dict) -> None:
    """GitHub's stated minimum for code scanning uploads (docs: SARIF support for code scanning)."""
    assert doc["version"] == "2.1.0"
    for run in doc["runs"]:
        driver = run["tool"]["driver"]
        assert driver["name"]
        ids = [r["id"] for r in driver["rules"]]
        assert len(ids) == len(set(ids))
        for r in driver["rules"]:
            assert r["shortDescription"]["text"] and r["fullDescription"]["text"]
            assert 0 <= float(r["properties"]["security-severity"]) <= 10
        for res in run["results"]:
            assert res["message"]["text"] and res["ruleId"] in ids
            assert driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
            assert res["level"] in ("error", "warning", "note")
            assert res["locations"], "GitHub rejects the whole upload for a result without a location"
            for loc in res["locations"]:
                uri = loc["physicalLocation"]["artifactLocation"]["uri"]
                assert not uri.startswith("/") and ".." not in uri.split("/")
                assert loc["physicalLocation"]["region"]["startLine"] >= 1


def test_sarif_valid_and_anchored(rcli, tmp_path: Path):
    repo = _repo(tmp_path, "AGENTS.md", "README.md")
    out = tmp_path / "r.sarif"
    code, _, err = rcli("report", RID, "--format", "sarif", "--repo", str(repo), "-o", str(out))
    assert code == 0, err
    doc = json.loads(out.read_text())
    jsonschema.Draft4Validator(SCHEMA).validate(doc)
    _github_minimum(doc)
    results = doc["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"R010", "R020", "R030"}
    assert {r["ruleId"]: r["level"] for r in results} == {"R010": "error", "R020": "warning", "R030": "error"}
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["R030"]["properties"]["security-severity"] == "9.5"
    # nothing touched lies inside this repo: every result is on AGENTS.md line 1, with what it was about
    for r in results:
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "AGENTS.md"
    r030 = next(r for r in results if r["ruleId"] == "R030")
    assert "command: sh -c" in r030["message"]["text"] and "path: /home/u/proj/" in r030["message"]["text"]


def test_sarif_anchors_to_touched_repo_file(rcli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # the run worked in a git checkout: a detection about a file of it is anchored on that file
    r2 = _repo(tmp_path, "CLAUDE.md", "src/app.py")
    home = tmp_path / "h"
    from logira.model.record import DetectionData

    rid = "20260103-100000-claude"
    write_run(home, rid, [
        rec(rid, 1, 0.1, "file", FileData(op="modify", path=str(r2 / "src/app.py"))),
        rec(rid, 2, 0.1, "detection", DetectionData(rule_id="R1", severity="low", message="m", related_event_seq=1)),
        rec(rid, 3, 0.2, "file", FileData(op="modify", path="/home/u/.bashrc")),
        rec(rid, 4, 0.2, "detection", DetectionData(rule_id="R2", severity="info", message="n", related_event_seq=3)),
    ], cwd=str(r2))  # fmt: skip
    monkeypatch.setenv("LOGIRA_HOME", str(home))
    code, out, err = rcli("report", rid, "--format", "sarif")  # --repo defaults to the run's workspace
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(doc)
    _github_minimum(doc)
    uris = {r["ruleId"]: r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]}
    assert uris == {"R1": "src/app.py", "R2": "CLAUDE.md"}
    levels = {r["ruleId"]: r["level"] for r in doc["runs"][0]["results"]}
    assert levels == {"R1": "note", "R2": "note"}


def test_sarif_without_anchor_is_one_line(rcli, tmp_path: Path):
    repo = _repo(tmp_path)  # no AGENTS.md, CLAUDE.md, workflow or README
    out = tmp_path / "x.sarif"
    code, so, err = rcli("report", RID, "--format", "sarif", "--repo", str(repo), "-o", str(out))
    assert code == 1 and so == ""
    assert err.count("\n") == 1 and "pass --anchor FILE" in err
    assert not out.exists() and list(tmp_path.glob(".x.sarif*")) == []


def test_incomplete_run(rcli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "h"
    rid = "20260103-110000-codex"
    from logira.format.meta import DropsMeta

    write_run(home, rid, [rec(rid, 1, 0.1, "file", FileData(op="create", path="/w/a"))], status="incomplete",
              drops=DropsMeta(total=7, kernel_total=7, kernel={"file_write_open": 7}),
              incomplete_reasons=["7 events dropped by the kernel (ring buffer full)"])  # fmt: skip
    monkeypatch.setenv("LOGIRA_HOME", str(home))
    doc = json.loads(_report(rcli, rid))
    assert doc["run"]["status"] == "INCOMPLETE"
    assert doc["run"]["incomplete_reasons"] == ["7 events dropped by the kernel (ring buffer full)"]
    assert doc["run"]["drops_by_kind"] == {"file_write_open": 7}
    repo = _repo(tmp_path, "AGENTS.md")
    code, out, err = rcli("report", rid, "--format", "sarif", "--repo", str(repo))
    sarif = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(sarif)
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["logira-run-incomplete"]
    # the gate fails on an incomplete record even without detections
    code, _, err = rcli("check", rid, "--fail-on", "low")
    assert code == 1 and "record INCOMPLETE: 7 events dropped" in err
    code, _, err = rcli("check", rid, "--fail-on", "low", "--allow-incomplete")
    assert code == 0, err


def test_check_and_explain_fail_on(rcli):
    assert rcli("check", RID, "--fail-on", "critical")[0] == 1
    code, _, err = rcli("check", PREV, "--fail-on", "info")
    assert code == 0, err
    code, out, err = rcli("explain", RID, "--fail-on", "high")
    assert code == 1 and "R030" in out and "2 detections at or above high (critical 1, high 1)" in err
    assert rcli("explain", PREV, "--fail-on", "high")[0] == 0
    code, _, err = rcli("check", RID, "--fail-on", "severe")
    assert code == 2 and err.startswith("error: invalid --fail-on 'severe'") and err.count("\n") == 1


def test_bad_input_one_line_nothing_partial(rcli, tmp_path: Path):
    code, out, err = rcli("report", RID, "--format", "pdf")
    assert code == 2 and out == "" and err == "error: unknown --format 'pdf' (expected html | md | sarif | json)\n"
    code, _, err = rcli("report", "20990101-000000-nope", "--format", "md")
    assert code == 1 and err.count("\n") == 1 and "run 20990101-000000-nope not found" in err
    code, _, err = rcli("report", RID, "-o", str(tmp_path / "missing" / "r.html"))
    assert code == 1 and "does not exist (create it first)" in err and err.count("\n") == 1
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = rcli("report", RID, "-o", str(ro / "r.html"))
        if os.geteuid() != 0:  # root may write anywhere
            assert code == 1 and "not writable" in err
    finally:
        ro.chmod(0o700)
    code, _, err = rcli("report", RID, "-o", str(tmp_path))
    assert code == 1 and "is a directory" in err
    # an existing report is replaced whole, never truncated in place
    target = tmp_path / "keep.html"
    target.write_text("old")
    code, _, _ = rcli("report", RID, "--format", "pdf", "-o", str(target))
    assert code == 2 and target.read_text() == "old"
    code, _, _ = rcli("report", RID, "-o", str(target))
    assert code == 0 and target.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # a device or FIFO is written into, never replaced by a regular file
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    import threading

    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    code, _, err = rcli("report", RID, "--format", "md", "-o", str(fifo))
    reader.join(30)
    assert code == 0, err
    assert fifo.is_fifo() and got and got[0].startswith(b"### logira: run")
