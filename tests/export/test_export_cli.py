"""`logira export`: jsonl verbatim, otlp-json strictly valid, to a file or a collector; bad input is one line."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.report.conftest import RID

from .otlp_receiver import Receiver, attrs, parse_strict


def test_export_jsonl_is_the_stored_bytes(rcli, rhome: Path, tmp_path: Path):
    out = tmp_path / "run.jsonl"
    code, _, err = rcli("export", RID, "--format", "jsonl", "-o", str(out))
    assert code == 0, err
    assert out.read_bytes() == (rhome / "runs" / RID / "events.jsonl").read_bytes()


def test_export_otlp_json_lines(rcli, tmp_path: Path):
    out = tmp_path / "run.otlp.jsonl"
    code, _, err = rcli("export", RID, "--format", "otlp-json", "-o", str(out))
    assert code == 0, err
    reqs = [parse_strict(line) for line in out.read_bytes().splitlines()]
    recs = [lr for r in reqs for rl in r.resource_logs for sl in rl.scope_logs for lr in sl.log_records]
    assert [attrs(r.attributes)["logira.seq"] for r in recs] == list(range(1, 25))
    assert {attrs(r.attributes)["logira.run_id"] for r in recs} == {RID}
    assert attrs(reqs[0].resource_logs[0].resource.attributes)["host.name"] == "box"


def test_export_to_collector(rcli):
    recv = Receiver()
    try:
        code, _, err = rcli("export", RID, "--format", "otlp-json", "--endpoint", recv.url)
        assert code == 0, err
        assert recv.errors == [] and len(recv.records()) == 24
        assert "exported 24 records" in err
    finally:
        recv.close()


def test_export_bad_input(rcli, tmp_path: Path):
    code, _, err = rcli("export", RID, "--format", "csv")
    assert code == 2 and err == "error: unknown --format 'csv' (expected jsonl | otlp-json)\n"
    code, _, err = rcli("export", "20990101-000000-x")
    assert code == 1 and "not found" in err and err.count("\n") == 1
    code, _, err = rcli("export", RID, "-o", str(tmp_path / "no" / "x.jsonl"))
    assert code == 1 and "does not exist" in err
    code, _, err = rcli("export", RID, "--format", "jsonl", "--endpoint", "http://127.0.0.1:1")
    assert code == 2 and "--endpoint needs --format otlp-json" in err
    code, _, err = rcli("export", RID, "--format", "otlp-json", "--endpoint", "ftp://x")
    assert code == 2 and "must be http://host:port" in err and err.count("\n") == 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = rcli("export", RID, "--format", "otlp-json", "--endpoint", f"http://127.0.0.1:{port}")
    assert code == 1 and err.count("\n") == 1 and "is the collector running" in err
    refuse = Receiver(mode="refuse")
    try:
        code, _, err = rcli("export", RID, "--format", "otlp-json", "--endpoint", refuse.url)
        assert code == 1 and "collector answered 503 after 0 records were delivered" in err
    finally:
        refuse.close()
    slow = Receiver(mode="slow", delay=2)
    try:
        code, _, err = rcli("export", RID, "--format", "otlp-json", "--endpoint", slow.url, "--timeout", "0.2")
        assert code == 1 and "timed out" in err and "raise --timeout" in err
    finally:
        slow.close()
    assert [p for p in tmp_path.iterdir()] == []
