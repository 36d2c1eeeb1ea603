"""The collector sink's records give the join exactly what re-reading events.jsonl gives it."""

from __future__ import annotations

import asyncio
import os
import tempfile

import msgspec

from logira.agents.collect import AgentCollector, ev_of
from logira.agents.finalize import read_events
from logira.model.record import AgentData, DetectionData, ExecData, FileData, NetData, ProcData, Record


def _records() -> list[Record]:
    datas = [
        ("exec", ExecData(filename="/bin/bash", argv=["bash", "-c", "x"], errno=0)),
        ("proc", ProcData(op="fork", child_pid=7)),
        ("file", FileData(op="rename", path="/a.tmp.1.f", path2="/a")),
        ("net", NetData(op="connect", proto="tcp", dst_ip="10.0.0.1", dst_port=443)),
        ("detection", DetectionData(rule_id="R1", severity="high", message="m", related_event_seq=3)),
        ("agent", AgentData(op="hook", source="hook", event="PreToolUse", tool_use_id="t", tool_name="Bash",
                            command="ls", sender_pid=9, session_id="s", transcript_path="/t.jsonl")),
    ]
    return [Record(run_id="r", seq=i + 1, ts=100 + i, type=t, pid=5, ppid=1, summary="s", data_json=d)
            for i, (t, d) in enumerate(datas)]  # fmt: skip


def test_records_and_jsonl_give_the_same_join_input():
    recs = _records()
    with tempfile.TemporaryFile() as f:
        for r in recs:
            f.write(msgspec.json.encode(r) + b"\n")
        f.write(b'{"partial": ')  # a line still being written is not read
        f.flush()
        from_jsonl, bad = read_events(f.fileno())
    assert bad == 0 and from_jsonl == [ev_of(r) for r in recs]


def test_collector_lets_go_above_its_cap():
    c = AgentCollector(cap=4)
    recs = _records()
    asyncio.run(c.write_batch(recs[:3]))
    assert c.records == recs[:3] and not c.overflow
    asyncio.run(c.write_batch(recs[3:]))
    assert c.overflow and c.records == []
    asyncio.run(c.write_batch(recs))
    assert c.records == []


def test_damaged_line_falls_back_to_line_by_line():
    recs = _records()
    fd, path = tempfile.mkstemp()
    try:
        os.write(fd, msgspec.json.encode(recs[0]) + b"\n{broken\n" + msgspec.json.encode(recs[1]) + b"\n")
        evs, bad = read_events(fd)
        assert bad == 1 and [e.seq for e in evs] == [1, 2]
    finally:
        os.close(fd)
        os.unlink(path)
