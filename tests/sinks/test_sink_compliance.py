"""Every fan-out sink keeps the same contract (open, batches in, counters, close idempotent)."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logira.format.index import event_row
from logira.format.meta import RunMeta
from logira.model.record import DetectionData, FileData, Record
from logira.pipeline.fanout import FanOut
from logira.sinks.base import Sink
from logira.sinks.journald import Journal, JournaldSink
from logira.sinks.sqlite import SqliteSink

RUN = "20260101-000000-t"


def _records() -> list[Record]:
    recs = [Record(run_id=RUN, seq=i, ts=i, type="file", pid=1, ppid=0, uid=1000, summary=f"file create /f{i}",
                   data_json=FileData(op="create", path=f"/f{i}")) for i in range(1, 6)]  # fmt: skip
    recs.append(Record(run_id=RUN, seq=6, ts=6, type="detection", pid=1, ppid=0, uid=1000, summary="[high] r: m",
                       data_json=DetectionData(rule_id="r", severity="high", message="m", related_event_seq=5)))
    return recs


@pytest.fixture
def journal_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "journal.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.setblocking(False)
    yield path, srv
    srv.close()


def _entries(srv: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(srv.recv(1 << 16))
        except BlockingIOError:
            return out


def _sqlite(tmp_path: Path, _j: tuple[str, socket.socket]) -> Sink:
    return SqliteSink(str(tmp_path / "index.sqlite"))


def _journald(_tmp: Path, j: tuple[str, socket.socket]) -> Sink:
    return JournaldSink(Journal(j[0]))


@pytest.mark.parametrize("make", [_sqlite, _journald], ids=["sqlite", "journald"])
async def test_sink_takes_batches_counts_them_and_closes_once(
    make: Callable[[Path, tuple[str, socket.socket]], Sink], tmp_path: Path, journal_socket: tuple[str, socket.socket]
) -> None:
    sink = make(tmp_path, journal_socket)
    fan = FanOut([sink])
    meta = RunMeta(run_id=RUN, status="running")
    await fan.open(meta)
    recs = _records()
    await fan.write(recs[:3])
    await fan.write(recs[3:])
    await fan.flush()
    meta.status, meta.complete = "complete", True
    assert await fan.close(meta) == []
    await sink.close(meta)  # idempotent
    assert (sink.stats.batches, sink.stats.written, sink.stats.failed) == (2, 6, 0)
    if isinstance(sink, SqliteSink):
        conn = sqlite3.connect(tmp_path / "index.sqlite")
        assert conn.execute("SELECT * FROM events ORDER BY seq").fetchall() == [event_row(r) for r in recs]
        assert conn.execute("SELECT meta_json ->> '$.status' FROM runs").fetchone()[0] == "complete"
        conn.close()
    else:
        got = _entries(journal_socket[1])
        events = [next(f for f in e.split(b"\n") if f.startswith(b"LOGIRA_EVENT=")) for e in got]
        assert events == [b"LOGIRA_EVENT=run_started", b"LOGIRA_EVENT=detection", b"LOGIRA_EVENT=run_finished"]
        assert b"MESSAGE=[high] r: m" in got[1].split(b"\n")


class _FailsAtClose:
    name = "exporter"

    def __init__(self) -> None:
        from logira.sinks.base import SinkStats

        self.stats = SinkStats()
        self.seen: RunMeta | None = None

    async def open(self, meta: RunMeta) -> None: ...

    async def write_batch(self, records: object) -> None: ...

    async def flush(self) -> None: ...

    async def close(self, meta: RunMeta) -> None:
        raise ConnectionRefusedError("collector down")


async def test_a_sink_that_fails_to_close_makes_the_run_incomplete_and_later_sinks_see_it(
    tmp_path: Path, journal_socket: tuple[str, socket.socket]
) -> None:
    fan = FanOut([_FailsAtClose(), JournaldSink(Journal(journal_socket[0]))])
    meta = RunMeta(run_id=RUN)
    await fan.open(meta)
    meta.status, meta.complete = "complete", True
    errors = await fan.close(meta)
    assert errors == ["exporter close: ConnectionRefusedError: collector down"]
    assert (meta.status, meta.complete, meta.incomplete_reasons) == ("incomplete", False, errors)
    finished = _entries(journal_socket[1])[-1].split(b"\n")
    assert b"STATUS=incomplete" in finished and b"PRIORITY=4" in finished
