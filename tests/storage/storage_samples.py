"""Sample records for the storage tests: every type, plus hostile strings."""

from __future__ import annotations

from logira.model.record import DetectionData, ExecData, FileData, LineageEntry, NetData, ProcData, Record

RUN = "20261126-030000-test"
T0 = 1_764_126_000_000_000_000

# Newline, ESC sequence, U+2028, a quote and backslash, and undecodable bytes (0xff, 0xc3 alone)
# as they arrive from the decoders: surrogate-escaped.
BAD_BYTES = b"/tmp/evil\n\x1b[31mred\xe2\x80\xa8\"\\\xff\xc3.txt"
HOSTILE = BAD_BYTES.decode("utf-8", "surrogateescape")


def sample_records(run_id: str = RUN, n_extra: int = 0) -> list[Record]:
    """Seqs 1..6+n_extra: exec, proc fork, file (hostile path), net (dns), detection, failed exec."""
    recs = [
        Record(run_id=run_id, seq=1, ts=T0 + 1, type="exec", pid=100, ppid=1, uid=1000,
               summary="exec /bin/echo hi", data_json=ExecData(filename="/bin/echo", argv=["echo", "hi"],
                                                                cwd="/home/u")),
        Record(run_id=run_id, seq=2, ts=T0 + 2, type="proc", pid=100, ppid=1, uid=1000,
               summary="fork 101", data_json=ProcData(op="fork", child_pid=101, exe="/bin/bash")),
        Record(run_id=run_id, seq=3, ts=T0 + 3, type="file", pid=101, ppid=100, uid=1000,
               summary=f"file create {HOSTILE}",
               data_json=FileData(op="create", path=HOSTILE, path2="", exe="/bin/touch", flags=0o101)),
        Record(run_id=run_id, seq=4, ts=T0 + 4, type="net", pid=101, ppid=100, uid=0,
               summary="net connect udp 127.0.0.53:53 dns=example.com",
               data_json=NetData(op="connect", proto="udp", family="inet", dst_ip="127.0.0.53", dst_port=53,
                                 dns_qname="example.com", exe="/usr/bin/curl")),
        Record(run_id=run_id, seq=5, ts=T0 + 4, type="detection", pid=101, ppid=100, uid=0,
               summary="[high] F001: write to evil",
               data_json=DetectionData(rule_id="F001", severity="high", message="write to evil",
                                       related_event_seq=3, lineage=[LineageEntry(pid=101, argv=[HOSTILE])])),
        Record(run_id=run_id, seq=6, ts=T0 + 6, type="exec", pid=102, ppid=100, uid=1000,
               summary="exec-failed /nope errno=2",
               data_json=ExecData(filename="/nope", argv=["/nope", "x\ny"], errno=2)),
    ]
    for i in range(n_extra):
        seq = 7 + i
        recs.append(Record(run_id=run_id, seq=seq, ts=T0 + seq, type="file", pid=103, ppid=100, uid=1000,
                           summary=f"file modify /tmp/f{seq}",
                           data_json=FileData(op="modify", path=f"/tmp/f{seq}")))
    return recs


async def build_run(run_dir, state_dir, records: list[Record], seal: bool = True):
    """A finished run as the daemon leaves it (without the root-only ownership steps)."""
    import os

    from logira.format.meta import RunMeta, encode_meta
    from logira.sinks.jsonl import JsonlSink
    from logira.sinks.sqlite import SqliteSink
    from logira.storage.seal import write_seal

    run_dir.mkdir(parents=True)
    meta = RunMeta(run_id=run_dir.name, tool="test", command="agent --go", uid=os.getuid(), gid=os.getgid(),
                   start_ts=T0, status="running")
    fd = os.open(run_dir / "events.jsonl", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    jsonl = JsonlSink(fd, run_dir.name)
    db = await SqliteSink.create(str(run_dir / "index.sqlite"), meta)
    jsonl.write(records)
    await db.write(records)
    meta.end_ts, meta.status, meta.complete = T0 + 10**9, "complete", True
    meta.event_count, meta.final_hash = jsonl.last_seq, jsonl.last_hash
    meta.suspicious_count = sum(r.type == "detection" for r in records)
    jsonl.close()
    await db.update_run(meta)
    await db.close()
    (run_dir / "meta.json").write_bytes(encode_meta(meta))
    return write_seal(state_dir, meta) if seal else None
