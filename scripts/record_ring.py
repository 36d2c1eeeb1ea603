"""Record the raw ring-buffer records of a real run into a replay fixture (needs root and BPF).

    sudo .venv/bin/python scripts/record_ring.py OUT.bin -- sh -c 'echo hi > f; curl -s ...'

Loads every probe domain, tracks a fresh cgroup, runs the command inside it, drains the ring and
writes the exact bytes (logira/probes/replay.py describes the format). Re-record a fixture when a
record layout changes (bpf/common.h, a domain's record struct).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from logira import cgroup2  # noqa: E402
from logira.probes.loader import ProbeConfig, Probes  # noqa: E402
from logira.probes.replay import write_recording  # noqa: E402
from logira.probes.ringbuf import RingReader  # noqa: E402


async def record(out: Path, argv: list[str], cwd: Path) -> int:
    probes = Probes(ProbeConfig(exec=True, file=True, net=True))
    probes.load()
    parent = cgroup2.find_cgroup2_mount() / f"logira-rec-{secrets.token_hex(4)}"
    os.mkdir(parent, 0o755)
    cg = cgroup2.create(parent, "run")
    cg_id = cgroup2.cgroup_id(cg)
    reader = RingReader(probes, lambda _events: None)
    reader.record = []
    try:
        reader.start()
        probes.track(cg_id)

        def enter() -> None:
            fd = os.open(str(cg / "cgroup.procs"), os.O_WRONLY)
            os.write(fd, b"0\n")
            os.close(fd)

        proc = await asyncio.to_thread(subprocess.run, argv, cwd=cwd, preexec_fn=enter, check=False)
        while cgroup2.populated(cg):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        reader.drain()
        probes.untrack(cg_id)
        reader.drain()
        write_recording(out, reader.record, {"clock_offset": reader.clock.offset, "run_cgroup_id": cg_id,
                                             "argv": argv, "recorded_at": time.time_ns(),
                                             "kernel": os.uname().release})  # fmt: skip
        print(f"{out}: {len(reader.record)} records, decode errors {reader.decode_errors}, exit {proc.returncode}")
        return 0
    finally:
        reader.stop()
        cgroup2.kill_all(cg)
        cgroup2.remove(cg)
        cgroup2.remove(parent)
        probes.close()


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1]).resolve()
    work = Path(f"/tmp/logira-rec-{secrets.token_hex(3)}")
    work.mkdir()
    return asyncio.run(record(out, sys.argv[3:], work))


if __name__ == "__main__":
    sys.exit(main())
