"""events.jsonl: hash chain, buffering, exact bytes of hostile strings."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from storage_samples import BAD_BYTES, HOSTILE, RUN, sample_records

from logira.format.jsonl import ZERO_HASH, iter_jsonl, raw_bytes_of, scan_chain, split_line
from logira.format.textsafe import exact_strings
from logira.model.record import FileData
from logira.sinks.jsonl import JsonlSink


def _write(path: Path, records, flush: bool = True) -> JsonlSink:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    sink = JsonlSink(fd, RUN)
    sink.write(records)
    if flush:
        sink.close()
    return sink


def test_chain_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    recs = sample_records()
    sink = _write(path, recs)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(recs) + 1
    prev = ZERO_HASH
    for line, rec in zip(lines, recs, strict=False):
        # Recompute independently of the sink: body = line minus the hash member, plus "}".
        head, sep, tail = line.rpartition(b',"hash":"')
        assert sep and tail.endswith(b'"}') and len(tail) == 66
        body = head + b"}"
        assert hashlib.sha256(prev.encode() + body).hexdigest() == tail[:64].decode()
        prev = tail[:64].decode()
        obj = json.loads(line)  # a standard JSON parser accepts every line
        assert obj["seq"] == rec.seq and obj["hash"] == prev
        assert list(obj)[:9] == ["run_id", "seq", "ts", "type", "pid", "ppid", "uid", "summary", "data_json"]
    assert (sink.count, sink.last_seq, sink.last_hash) == (6, 6, prev)
    back = list(iter_jsonl(path))
    assert [r.seq for r in back] == [1, 2, 3, 4, 5, 6]
    assert back[0].data() == recs[0].data_json and back[3].data() == recs[3].data_json
    assert back[3].uid == 0 and b'"uid":0' in lines[3]  # uid 0 is written, never omitted
    st = scan_chain(path.open("rb"))
    assert (st.count, st.last_seq, st.last_hash, st.broken_at, st.partial_tail) == (6, 6, prev, 0, False)


def test_hostile_strings_stay_one_line_and_exact(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    _write(path, sample_records())
    raw = path.read_bytes()
    raw.decode("utf-8")  # the file is valid UTF-8
    assert b"\x1b" not in raw and b"\xe2\x80\xa8" in raw  # ESC escaped; U+2028 is valid JSON text
    line3 = raw.split(b"\n")[2]
    assert b"\\u001b[31m" in line3 and b"\\n" in line3
    rec = next(r for r in iter_jsonl(path) if r.seq == 3)
    data = rec.data()
    assert isinstance(data, FileData)
    # Display form: undecodable bytes as visible \xNN, everything else as is.
    assert data.path == "/tmp/evil\n\x1b[31mred\u2028\"\\\\xff\\xc3.txt"
    exact = exact_strings(raw_bytes_of(line3))
    assert set(exact) == {"summary", "data_json.path"}
    assert os.fsencode(exact["data_json.path"]) == BAD_BYTES
    assert exact["summary"] == f"file create {HOSTILE}"
    line5 = raw.split(b"\n")[4]
    assert os.fsencode(exact_strings(raw_bytes_of(line5))["data_json.lineage.0.argv.0"]) == BAD_BYTES
    assert raw_bytes_of(raw.split(b"\n")[0]) == {}  # clean records carry no raw_bytes
    # readers keep raw_bytes: every StoredRecord has exactly the line's member
    lines = raw.split(b"\n")[:-1]
    back = list(iter_jsonl(path))
    assert [r.raw_bytes for r in back] == [raw_bytes_of(ln) for ln in lines]
    assert os.fsencode(exact_strings(rec.raw_bytes)["data_json.path"]) == BAD_BYTES


def test_buffered_until_flush(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = _write(path, sample_records()[:2], flush=False)
    assert path.stat().st_size == 0 and sink.flushed_seq == 0 and sink.last_seq == 2
    sink.flush()
    assert sink.flushed_seq == 2 and path.read_bytes().count(b"\n") == 2
    with pytest.raises(ValueError, match="seq must increase: got 2 after 2"):
        sink.write(sample_records()[1:2])
    sink.write(sample_records()[2:])
    sink.close()
    sink.close()  # idempotent
    assert [r.seq for r in iter_jsonl(path)] == [1, 2, 3, 4, 5, 6]


def test_chain_continues_after_reopen(tmp_path: Path) -> None:
    """A sink resumed from scan_chain() state produces the same file as one uninterrupted sink."""
    recs = sample_records(n_extra=4)
    one = tmp_path / "one.jsonl"
    _write(one, recs)
    two = tmp_path / "two.jsonl"
    _write(two, recs[:5])
    st = scan_chain(two.open("rb"))
    fd = os.open(two, os.O_WRONLY | os.O_APPEND)
    sink = JsonlSink(fd, RUN, prev_hash=st.last_hash, last_seq=st.last_seq, count=st.count)
    sink.write(recs[5:])
    sink.close()
    assert one.read_bytes() == two.read_bytes()


def test_partial_last_line_is_not_yielded(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    _write(path, sample_records())
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    assert [r.seq for r in iter_jsonl(path)] == [1, 2, 3, 4, 5]
    st = scan_chain(path.open("rb"))
    assert (st.count, st.last_seq, st.partial_tail) == (5, 5, True)


def test_split_line_rejects_bad_suffixes() -> None:
    good = b'{"a":1,"hash":"' + b"a" * 64 + b'"}'
    assert split_line(good) == (b'{"a":1}', "a" * 64)
    assert split_line(b'{"a":1,"hash":"' + b"A" * 64 + b'"}') is None
    assert split_line(b'{"a":1,"hash":"' + b"a" * 63 + b'"}') is None
    assert split_line(b'{"a":1}') is None



async def test_any_lone_surrogate_is_written_not_fatal(tmp_path: Path) -> None:
    """A high surrogate (not from surrogateescape) must not make a batch fail in either sink."""
    from logira.format.meta import RunMeta
    from logira.sinks.sqlite import SqliteSink

    rec = sample_records()[2]
    rec.data_json.path = "/tmp/\ud800x\udcff"
    path = tmp_path / "events.jsonl"
    _write(path, [rec])
    line = path.read_bytes()
    assert bytes.fromhex(raw_bytes_of(line)["data_json.path"]) == b"/tmp/\xed\xa0\x80x\xff"
    db = await SqliteSink.create(str(tmp_path / "i.sqlite"), RunMeta(run_id=RUN))
    await db.write([rec])
    await db.close()
