"""A stored run full of hostile names, written through the real sinks (tests/cli/fixtures.py)."""

from __future__ import annotations

from pathlib import Path

from logira.model.record import AgentCall, AgentData, DetectionData, ExecData, FileData, LineageEntry, NetData
from tests.cli.fixtures import T0, S, rec, sample_records, write_run

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"
DNS = '"><svg onload=alert(3)>.example'
HOSTILE_FILE = f"/home/u/proj/{IMG}"
CALL_ID = "toolu_<b>01</b>"


def hostile_records(run_id: str) -> list:
    r = run_id
    base = sample_records(r)  # 17 records, seq 1..17, includes ANSI/bidi/undecodable names
    lineage = [LineageEntry(pid=300, exe="/usr/bin/sh", argv=["sh", "-c", f"touch '{IMG}'; {SCRIPT}"],
                            cwd="/home/u/proj")]  # fmt: skip
    extra = [
        rec(r, 18, 5.0, "exec", ExecData(filename="/usr/bin/sh", argv=["sh", "-c", f"touch '{IMG}'; {SCRIPT}"],
                                        cwd="/home/u/proj"), pid=300, ppid=100,
            summary=f"exec sh -c touch '{IMG}'; {SCRIPT}"),
        rec(r, 19, 5.1, "file", FileData(op="create", path=HOSTILE_FILE, exe="/usr/bin/touch"), pid=300,
            summary=f"file create {HOSTILE_FILE}"),
        rec(r, 20, 5.2, "net", NetData(op="send", proto="udp", family="inet", dst_ip="10.0.0.53", dst_port=53,
                                       dns_qname=DNS, bytes=42, exe="/usr/bin/curl"), pid=300,
            summary=f"net send udp 10.0.0.53:53 dns={DNS}"),
        rec(r, 21, 5.3, "file", FileData(op="modify", path="/etc/shadow", errno=13, ret=-13, exe="/usr/bin/sh"),
            pid=300, summary="file modify DENIED (EACCES) /etc/shadow"),
        rec(r, 22, 5.3, "net", NetData(op="send", proto="tcp", family="inet", dst_ip="93.184.216.34", dst_port=443,
                                       bytes=1000, exe="/usr/bin/curl"), pid=101, ppid=100,
            summary="net send tcp 93.184.216.34:443"),
        rec(r, 23, 5.4, "detection", DetectionData(rule_id="R030", severity="critical",
                                                   message=f"hostile file {IMG} created", related_event_seq=19,
                                                   title="Hostile <b>title</b>", lineage=lineage),
            pid=300, summary=f"[critical] R030: hostile file {IMG} created"),
        # the join's tool call (appended at finalize): declared by the agent, with a hostile id and command
        rec(r, 24, 6.0, "agent", AgentData(op="tool_call", source="join", declared=False, agent="claude",
                                           call=AgentCall(call_id=CALL_ID, agent="claude", tool="Bash",
                                                          command=f"touch '{IMG}'; {SCRIPT}", source="hook",
                                                          start_ts=T0 + 5 * S, end_ts=T0 + 5_500_000_000,
                                                          execs=1, files=1, destinations=1, detections=1,
                                                          seqs=[[18, 23]], how=["marker"])),
            pid=99, summary=f"tool_call {CALL_ID} Bash"),
    ]  # fmt: skip
    return base + extra


def write_hostile(home: Path, run_id: str, **kw) -> Path:
    return write_run(home, run_id, hostile_records(run_id), end=6.0, **kw)
