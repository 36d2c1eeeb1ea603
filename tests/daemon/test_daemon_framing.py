"""Protocol framing (pure logic): round trips, the size cap, and decode errors as one line."""

from __future__ import annotations

import asyncio
import struct

import pytest

from logira.daemon import protocol as p


def test_round_trip_every_message() -> None:
    msgs = [
        p.StartRun(tool="t", argv=["a", "b\n"], cwd="/", pid=5, home="/h", rules_yaml="x: 1"),
        p.AgentExited(exit_code=3),
        p.Status(),
        p.Follow(run_id="last"),
    ]
    for m in msgs:
        frame = p.encode_frame(m)
        assert struct.unpack(">I", frame[:4])[0] == len(frame) - 4
        assert p.decode_client(frame[4:]) == m
    replies = [
        p.RunStarted(run_id="r", run_dir="/d"),
        p.RunFinished(run_id="r", run_dir="/d", stragglers=[4]),
        p.Following(run_id="r", next_seq=3),
        p.Records(lines=["{}"]),
        p.RunEnded(run_id="r"),
        p.Error(message="no"),
    ]
    for m in replies:
        assert p.decode_daemon(p.encode_frame(m)[4:]) == m
    assert p.encode_frame(p.Status())[4:] == b'{"type":"status","v":1}'


def test_oversized_and_undecodable() -> None:
    with pytest.raises(p.FrameError, match=r"message too large"):
        p.encode_frame(p.Records(lines=["x" * p.MAX_FRAME]))
    with pytest.raises(p.FrameError, match=r"^bad message: Object missing required field `pid`"):
        p.decode_client(b'{"type":"start_run","tool":"t","argv":[],"cwd":"/"}')
    with pytest.raises(p.FrameError, match=r"^bad message: "):
        p.decode_client(b'{"type":"run_started","run_id":"x","run_dir":"y"}')  # daemon->client type


def test_async_reader_limits() -> None:
    async def read(data: bytes) -> bytes | None:
        r = asyncio.StreamReader()
        r.feed_data(data)
        r.feed_eof()
        return await p.read_frame(r)

    assert asyncio.run(read(b"")) is None
    assert asyncio.run(read(struct.pack(">I", 2) + b"{}")) == b"{}"
    with pytest.raises(p.FrameError, match="truncated frame header"):
        asyncio.run(read(b"\x00\x00"))
    with pytest.raises(p.FrameError, match="truncated frame body"):
        asyncio.run(read(struct.pack(">I", 10) + b"{}"))
    with pytest.raises(p.FrameError, match=r"message too large \(4294967295 > 1048576 bytes\)"):
        asyncio.run(read(b"\xff\xff\xff\xff"))
