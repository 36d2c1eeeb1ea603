"""Per-run pipeline throughput: kernel events -> records -> rules -> JSONL + SQLite (+ live).

In-process `RunPipeline` with the real sinks (hash-chained JSONL to a file, SQLite in WAL in the
sink's own thread, like the daemon), the default ruleset and a realistic synthetic mix of kernel events:
processes fork, exec and exit, and in between open/read/write files (60%) and talk to the network
(15%). Ring decoding is not included (it is the reader's, see bench_capture.py).

Prints end-to-end events/s (enqueue everything, then wait until every record is in both files),
then a per-stage breakdown in us/event measured stage by stage over the same events (convert,
tree.observe + exe enrichment, the file records' receipt checks, rules, JSONL encode + hash, SQLite
rows, SQLite inserts in the sink's thread, and the index build at finalize).
Target: >= 80 000 events/s end to end on a 2-core machine. Measured here: ~105-120 000 events/s
with the round-1 stages; ~15 000 with round 2's (receipt checks that lstat path components, the
data-flow tracker, lineage and sequence rules), other work running, 30 000 events.

Usage: python bench/bench_pipeline.py [--events N] [--repeat R] [--follower] [--profile] [--no-stages]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from logira.detect.engine import Detector
from logira.detect.loader import load_rules
from logira.format.index import event_row
from logira.format.jsonl import scan_chain
from logira.format.meta import RunMeta
from logira.model.kernel import AnyKernelEvent, FileOp, NetOp, ProcExec, ProcExit, ProcFork
from logira.model.proctree import ProcessTree
from logira.pipeline.convert import convert
from logira.pipeline.filecheck import FileChecker
from logira.pipeline.session import RunPipeline
from logira.sinks.jsonl import JsonlSink
from logira.sinks.sqlite import SqliteSink

HOME = "/home/agent"
WS = "/home/agent/proj"
T0 = 1_790_000_000_000_000_000
CG = 4242

FILES = [
    ("read", f"{WS}/src/app.py"), ("read", f"{WS}/node_modules/react/index.js"), ("modify", f"{WS}/src/app.py"),
    ("create", f"{WS}/build/out.o"), ("read", "/usr/lib/python3.11/os.py"), ("read", "/etc/ld.so.cache"),
    ("create", "/tmp/pytest-of-agent/pytest-3/x.txt"), ("delete", f"{WS}/build/old.o"), ("read", f"{HOME}/.gitconfig"),
    ("rename", f"{WS}/.x.tmp"), ("read", f"{HOME}/.cache/pip/a"), ("mkdir", f"{WS}/build/sub"),
    ("read", "/usr/lib/x86_64-linux-gnu/libc.so.6"), ("modify", f"{WS}/package-lock.json"),
]  # fmt: skip
EXECS = [
    ["git", "status"], ["git", "diff", "--stat"], ["ls", "-la"], ["cat", "README.md"], ["grep", "-rn", "x", "src"],
    ["python3", "-m", "pytest", "-q"], ["npm", "install"], ["sed", "-i", "s/a/b/", "f"], ["node", "x.js"],
    ["bash", "-c", "ls src | grep py | wc -l"], ["rm", "-rf", "./build"], ["make", "-j2"],
]  # fmt: skip
NETS = [
    ("connect", "tcp", "127.0.0.1", 8000, ""), ("send", "udp", "127.0.0.53", 53, "registry.npmjs.org"),
    ("connect", "tcp", "140.82.121.3", 443, ""), ("connect", "tcp", "::1", 5432, ""),
]  # fmt: skip


def build_events(n: int, seed: int = 1) -> list[AnyKernelEvent]:
    """A run's kernel events: a few live processes at a time, each fork -> exec -> activity -> exit."""
    rnd = random.Random(seed)
    evs: list[AnyKernelEvent] = []
    live: list[int] = [1000]
    next_pid = 1001
    ts = T0

    def hdr(pid: int, comm: str = "node") -> dict:
        nonlocal ts
        ts += 1000
        return dict(ts=ts, mono_ns=ts - T0, cgroup_id=CG, run_cgroup_id=CG, pid=pid, tid=pid, ppid=1000,
                    uid=1000, gid=1000, comm=comm)  # fmt: skip

    evs.append(ProcExec(**hdr(1000), filename="/usr/bin/node", argv=["node", "agent.js"], cwd=WS))
    while len(evs) < n:
        x = rnd.random()
        pid = rnd.choice(live)
        if x < 0.60:
            op, path = FILES[min(int(rnd.expovariate(0.35)), len(FILES) - 1)]
            evs.append(FileOp(**hdr(pid), op=op, path=path, path2=f"{WS}/x" if op == "rename" else "",
                              syscall="openat", flags=0o1101 if op != "read" else 0, mode=0o644, ret=3))  # fmt: skip
        elif x < 0.75:
            op, proto, ip, port, dns = NETS[min(int(rnd.expovariate(0.6)), len(NETS) - 1)]
            evs.append(NetOp(**hdr(pid), op=op, family="inet6" if ":" in ip else "inet", proto=proto, dst_ip=ip,
                             dst_port=port, syscall="connect", dns_qname=dns))  # fmt: skip
        elif x < 0.95 or len(live) < 2:  # a command: fork, exec (20% of events with its fork/exit)
            child = next_pid
            next_pid += 1
            argv = EXECS[min(int(rnd.expovariate(0.3)), len(EXECS) - 1)]
            evs.append(ProcFork(**hdr(pid), child_pid=child))
            evs.append(
                ProcExec(**hdr(child, argv[0][:15]), filename=f"/usr/bin/{argv[0]}", argv=argv, cwd=WS)
            )
            live.append(child)
        else:
            victim = live.pop(rnd.randrange(1, len(live)))
            evs.append(ProcExit(**hdr(victim), exit_code=0))
    return evs[:n]


async def end_to_end(events: list[AnyKernelEvent], rules, tmp: Path, follower: bool) -> tuple[float, int]:
    """Seconds to push every event through a fresh RunPipeline into both sinks; records written.

    Built like the daemon builds it (daemon/sessions.py `_pipeline`): the JSONL chain, the SQLite
    sink in its own thread, the rules and the file records' receipt checks (filecheck.py)."""
    jpath = tmp / "events.jsonl"
    for p in tmp.iterdir():
        p.unlink()
    fd = os.open(jpath, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    sqlite = SqliteSink(str(tmp / "index.sqlite"))
    tree = ProcessTree()
    meta = RunMeta(run_id="bench")
    pipe = RunPipeline(
        run_id="bench", chain=JsonlSink(fd, "bench"), sinks=[sqlite],
        detector=Detector(rules, home=HOME, workspace=WS, tree=tree), tree=tree,
        file_checker=FileChecker(), domains={"exec": True, "file": True, "net": True},
    )  # fmt: skip
    if follower:
        pipe.live.add(limit=1 << 30)  # a `logira tail` that keeps up: lines are read back and published
    await pipe.open(meta)
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(pipe.run())
        for i in range(0, len(events), 512):  # the ring reader hands over batches
            for ev in events[i : i + 512]:
                pipe.enqueue(ev)
            await asyncio.sleep(0)
        await pipe.stop()
    dt = time.perf_counter() - t0
    t1 = time.perf_counter()
    assert await pipe.close(meta) == []  # builds the indexes: part of finalize, after the run
    print(f"  finalize (close sinks, build indexes): {time.perf_counter() - t1:.2f} s")
    written = pipe.event_count
    st = scan_chain(jpath.open("rb"))
    con = sqlite3.connect(tmp / "index.sqlite")
    rows = con.execute("SELECT count(*), max(seq) FROM events").fetchone()
    con.close()
    assert (st.count, st.broken_at) == (written, 0) and rows == (written, written), (st, rows, written)
    assert (pipe.errors, pipe.sqlite_missing) == (0, 0), (pipe.errors, pipe.last_error)
    return dt, written


def stages(events: list[AnyKernelEvent], rules, tmp: Path) -> dict[str, float]:
    """us/event of each stage, run one after the other over the same events (single thread)."""
    us: dict[str, float] = {}
    n = len(events)

    t0 = time.perf_counter()
    recs = [convert(ev, "bench", i) for i, ev in enumerate(events, 1)]
    us["convert"] = (time.perf_counter() - t0) / n * 1e6

    tree = ProcessTree()
    t0 = time.perf_counter()
    for rec in recs:
        tree.observe(rec)
        d = rec.data_json
        if rec.type in ("file", "net", "proc") and not d.exe:  # type: ignore[union-attr]
            d.exe = tree.exe(rec.pid)  # type: ignore[union-attr]
    us["tree+enrich"] = (time.perf_counter() - t0) / n * 1e6

    checker = FileChecker()
    t0 = time.perf_counter()
    for i in range(0, n, 512):
        batch = events[i : i + 512]
        checker.begin_batch(batch)
        for j, (ev, rec) in enumerate(zip(batch, recs[i : i + 512], strict=True)):
            if rec.type == "file":
                checker.check(rec, ev, j)  # type: ignore[arg-type]
    us["file receipt checks"] = (time.perf_counter() - t0) / n * 1e6

    det = Detector(rules, home=HOME, workspace=WS, tree=tree)
    t0 = time.perf_counter()
    for rec in recs:
        det.process(rec)
    us["rules"] = (time.perf_counter() - t0) / n * 1e6

    fd = os.open(tmp / "stage.jsonl", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    sink = JsonlSink(fd, "bench")
    t0 = time.perf_counter()
    for i in range(0, n, 4096):
        sink.write(recs[i : i + 4096])
    sink.close()
    us["jsonl encode+hash+write"] = (time.perf_counter() - t0) / n * 1e6

    t0 = time.perf_counter()
    rows = [event_row(r) for r in recs]
    us["sqlite rows (from decoded records)"] = (time.perf_counter() - t0) / n * 1e6

    from logira.format.index import INDEX_SQL, TABLES_SQL
    from logira.sinks.sqlite import _insert_batch

    con = sqlite3.connect(tmp / "stage.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.executescript(TABLES_SQL)
    t0 = time.perf_counter()
    for i in range(0, n, 4096):
        _insert_batch(con, rows[i : i + 4096])
    us["sqlite insert (own thread)"] = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    con.executescript(INDEX_SQL)
    us["sqlite index build at close"] = (time.perf_counter() - t0) / n * 1e6
    con.close()
    return us


async def main_async(args: argparse.Namespace) -> None:
    rules = load_rules(site_dir=None)
    events = build_events(args.events)
    # The prebuilt input is not part of the daemon's heap (there events live for one batch): keep
    # the cyclic collector from rescanning it on every full collection.
    gc.freeze()
    kinds: dict[str, int] = {}
    for ev in events:
        kinds[type(ev).__name__] = kinds.get(type(ev).__name__, 0) + 1
    print(f"events={len(events)} mix: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    with tempfile.TemporaryDirectory(prefix="logira-bench-") as d:
        tmp = Path(d)
        best = 0.0
        for _ in range(args.repeat):
            if args.profile:
                prof = cProfile.Profile()
                prof.enable()
            dt, written = await end_to_end(events, rules, tmp, args.follower)
            if args.profile:
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            best = max(best, len(events) / dt)
            print(
                f"  pass: {len(events) / dt:,.0f} events/s ({written} records incl. detections, {dt:.2f} s)"
            )
        print(f"end to end, best of {args.repeat}: {best:,.0f} events/s ({1e6 / best:.2f} us/event)"
              + (" with one live follower" if args.follower else ""))  # fmt: skip
        if args.no_stages:
            return
        sub = tmp / "stages"
        sub.mkdir()
        us = stages(events, rules, sub)
    print("per stage (us/event, single-threaded, stage by stage):")
    for k, v in us.items():
        print(f"  {k:<32} {v:6.2f}")
    main_thread = sum(
        v for k, v in us.items() if k.startswith(("convert", "tree", "rules", "jsonl", "sqlite rows"))
    )
    print(f"  {'main-thread sum':<32} {main_thread:6.2f}  (= {1e6 / main_thread:,.0f} events/s ceiling)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--follower", action="store_true", help="publish to one live follower (logira tail)")
    ap.add_argument("--profile", action="store_true", help="cProfile each end-to-end pass")
    ap.add_argument("--no-stages", action="store_true", help="end to end only")
    args = ap.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
