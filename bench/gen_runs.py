"""Synthetic runs for the read-side benchmark, written through the REAL sinks.

`big_run(home, n)`: one run of `n` records with a realistic mix (execs, forks/exits, file
reads and changes in a project tree, DNS + connects, ~0.5% detections with lineage), written
by JsonlSink (hash chain) and SqliteSink (its own writer thread, 10 000-record batches) like the daemon.
`many_runs(home, n)`: `n` small complete runs. Usage:
    python bench/gen_runs.py /tmp/home --events 1000000 --runs 1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path

from logira.format.meta import RunMeta, encode_meta
from logira.model.record import DetectionData, ExecData, FileData, LineageEntry, NetData, ProcData, Record
from logira.sinks.jsonl import JsonlSink
from logira.sinks.sqlite import SqliteSink

S = 1_000_000_000
BATCH = 10_000
CMDS = [["git", "status"], ["python3", "-m", "pytest", "-q"], ["rg", "TODO", "src"], ["ls", "-la"],
        ["npm", "install"], ["curl", "-fsSL", "https://example.com/install.sh"], ["sed", "-i", "s/a/b/", "x.py"]]  # fmt: skip
HOSTS = [f"host{i}.example.com" for i in range(200)]


def _records(run_id: str, n: int, t0: int, rng: random.Random):
    """Yield `n` records in seq order."""
    seq, pid, ts = 0, 1000, t0
    ips = [f"10.{i // 250}.{i % 250}.{(i * 7) % 250 + 1}" for i in range(300)]
    last_file_seq = 0
    while seq < n:
        seq += 1
        ts += rng.randint(5_000, 40_000)
        r = rng.random()
        if r < 0.05:
            pid += 1
            argv = rng.choice(CMDS)
            rec = Record(run_id=run_id, seq=seq, ts=ts, type="exec", pid=pid, ppid=1000 + rng.randint(0, pid - 1000),
                         uid=1000, summary="exec " + " ".join(argv),
                         data_json=ExecData(filename="/usr/bin/" + argv[0], argv=argv, cwd="/home/u/proj"))  # fmt: skip
        elif r < 0.15:
            op = "fork" if r < 0.10 else "exit"
            rec = Record(run_id=run_id, seq=seq, ts=ts, type="proc", pid=pid, ppid=1000, uid=1000,
                         summary=f"{op} {pid + 1}" if op == "fork" else "exit code=0",
                         data_json=ProcData(op=op, child_pid=pid + 1 if op == "fork" else 0))  # fmt: skip
        elif r < 0.80:
            if rng.random() < 0.0002:
                path = f"/home/u/.ssh/{rng.choice(['authorized_keys', 'id_ed25519', 'known_hosts'])}"
            elif r < 0.55:
                path = f"/usr/lib/python3/dist-packages/pkg{rng.randint(0, 500)}/m{rng.randint(0, 50)}.py"
            else:
                path = f"/home/u/proj/src/mod{rng.randint(0, 200)}/f{rng.randint(0, 100)}.py"
            op = (
                "read"
                if r < 0.55
                else rng.choice(["create", "modify", "modify", "modify", "delete", "rename", "chmod"])
            )
            path2 = path + ".new" if op == "rename" else ""
            rec = Record(run_id=run_id, seq=seq, ts=ts, type="file", pid=pid, ppid=1000, uid=1000,
                         summary=f"file {op} {path}" + (f" -> {path2}" if path2 else ""),
                         data_json=FileData(op=op, path=path, path2=path2, exe="/usr/bin/python3"))  # fmt: skip
            last_file_seq = seq
        elif r < 0.995:
            if r < 0.85:
                host = rng.choice(HOSTS)
                d = NetData(
                    op="send", proto="udp", family="inet", dst_ip="10.0.0.53", dst_port=53, dns_qname=host
                )
                summ = f"net send udp 10.0.0.53:53 dns={host}"
            else:
                ip = rng.choice(ips)
                port = rng.choice([443, 443, 80, 22])
                d = NetData(op="connect", proto="tcp", family="inet", dst_ip=ip, dst_port=port)
                summ = f"net connect tcp {ip}:{port}"
            rec = Record(
                run_id=run_id,
                seq=seq,
                ts=ts,
                type="net",
                pid=pid,
                ppid=1000,
                uid=1000,
                summary=summ,
                data_json=d,
            )
        else:
            rule, sev = rng.choice(
                [("R001", "high"), ("R007", "medium"), ("R012", "low"), ("R020", "critical")]
            )
            lineage = [
                LineageEntry(pid=pid, exe="/usr/bin/python3", argv=["python3", "x.py"], cwd="/home/u/proj")
            ]
            rec = Record(run_id=run_id, seq=seq, ts=ts, type="detection", pid=pid, ppid=1000, uid=1000,
                         summary=f"[{sev}] {rule}: synthetic finding",
                         data_json=DetectionData(rule_id=rule, severity=sev, message="synthetic finding",
                                                 related_event_seq=last_file_seq, lineage=lineage))  # fmt: skip
        yield rec


def write_run(home: Path, run_id: str, n: int, t0: int, seed: int = 1) -> Path:
    """One complete run of `n` records through JsonlSink + SqliteSink + encode_meta."""
    rng = random.Random(seed)
    run_dir = home / "runs" / run_id
    run_dir.mkdir(parents=True)
    meta = RunMeta(run_id=run_id, tool=run_id.split("-", 2)[-1], command="agent --yolo", command_argv=["agent", "--yolo"],
                   cwd="/home/u/proj", uid=1000, gid=1000, user="u", start_ts=t0, status="complete", complete=True,
                   exit_code=0)  # fmt: skip
    asyncio.run(_write(run_dir, meta, _records(run_id, n, t0, rng)))
    return run_dir


async def _write(run_dir: Path, meta: RunMeta, records) -> None:
    fd = os.open(run_dir / "events.jsonl", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    jsonl = JsonlSink(fd, meta.run_id)
    sql = await SqliteSink.create(str(run_dir / "index.sqlite"), meta)
    batch: list[Record] = []
    counts: dict[str, int] = {}
    dets: dict[str, int] = {}
    last_ts = meta.start_ts
    for rec in records:
        batch.append(rec)
        counts[rec.type] = counts.get(rec.type, 0) + 1
        if rec.type == "detection":
            dets[rec.data_json.severity] = dets.get(rec.data_json.severity, 0) + 1
        last_ts = rec.ts
        if len(batch) >= BATCH:
            jsonl.write(batch)
            await sql.write(batch)
            batch = []
    jsonl.write(batch)
    await sql.write(batch)
    jsonl.close()
    meta.end_ts, meta.counts, meta.detections = last_ts + S, counts, dets
    meta.event_count, meta.final_hash = jsonl.count, jsonl.last_hash
    meta.suspicious_count = sum(dets.values())
    await sql.update_run(meta)
    await sql.close()
    (run_dir / "meta.json").write_bytes(encode_meta(meta))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("home", type=Path)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=0, help="also this many small runs (20 records each)")
    a = ap.parse_args()
    t0 = time.time_ns() - 3600 * S
    t = time.perf_counter()
    if a.events:
        write_run(a.home, "20260101-000000-bigagent", a.events, t0)
        print(f"big run: {a.events} records in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    t = time.perf_counter()
    for i in range(a.runs):
        write_run(a.home, f"20250101-{i // 60:04d}{i % 60:02d}-small", 20, t0 - (a.runs - i) * 60 * S, seed=i)
    if a.runs:
        print(f"{a.runs} small runs in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
