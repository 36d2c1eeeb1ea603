"""The OTLP sink against a real local receiver that parses every request with the official protobuf classes."""

from __future__ import annotations

import socket

import pytest

from logira import __version__
from logira.read.reader import iter_records
from logira.sinks.otlp import OtlpConfig, OtlpExporter
from tests.report.hostile import IMG, write_hostile

from .otlp_receiver import Receiver, attrs, parse_strict

RID = "20260102-150405-claude"


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> list:
    home = tmp_path_factory.mktemp("otlp")
    return list(iter_records(write_hostile(home, RID)))


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _sink(url: str, **kw) -> OtlpExporter:
    s = OtlpExporter(OtlpConfig(endpoint=url, **kw), host="box-1")
    s.start()
    return s


def test_every_record_arrives_strictly_valid(stored, receiver):
    sink = _sink(receiver.url, batch_max=7)
    sink.write_batch(RID, stored)
    assert sink.finish_run(RID, timeout=30) == {}
    sink.close()
    assert receiver.errors == []
    assert receiver.content_types == {"application/json"}
    recs = receiver.records()
    assert len(receiver.requests) == -(-len(stored) // 7)  # batched
    assert [attrs(r.attributes)["logira.seq"] for r in recs] == [s.seq for s in stored]
    assert {r["host.name"] for r in receiver.resources()} == {"box-1"}
    assert {r["service.version"] for r in receiver.resources()} == {__version__}
    by_seq = {attrs(r.attributes)["logira.seq"]: (r, attrs(r.attributes)) for r in recs}
    det, a = by_seq[23]
    assert a["logira.run_id"] == RID and a["logira.type"] == "detection"
    assert a["logira.rule_id"] == "R030" and a["logira.severity"] == "critical"
    assert det.severity_number == 21 and det.severity_text == "CRITICAL"
    assert det.time_unix_nano == stored[22].ts
    assert IMG in det.body.string_value
    _, a19 = by_seq[19]
    assert a19["file.path"].endswith(IMG) and a19["logira.op"] == "create"
    _, a4 = by_seq[4]
    assert a4["server.address"] == "10.0.0.53" and a4["server.port"] == 53 and a4["dns.question.name"] == "evil.example"
    _, a10 = by_seq[10]
    assert a10["file.path"] == "/tmp/bad\\xff\\xfe.bin"  # undecodable bytes in their visible form


def test_malformed_payload_fails_strict_parsing():
    # the receiver's parser is strict: these would be accepted by a lenient JSON reader
    for bad in (b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"x"}]}]}]}',
                b'{"resourceLogs":[{"scopeLog":[]}]}',
                b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"LOUD"}]}]}]}',
                b'{"resourceLogs":[{"resource":{"attributes":[{"key":"k","value":{"strValue":"v"}}]}}]}'):  # fmt: skip
        with pytest.raises(Exception):  # noqa: B017 - json_format raises ParseError subclasses
            parse_strict(bad)


def test_refusing_collector_is_counted_never_blocks(stored):
    r = Receiver(mode="refuse")
    try:
        sink = _sink(r.url, retries=2, backoff=0.01)
        sink.write_batch(RID, stored)  # returns at once: nothing is sent on the caller's thread
        losses = sink.finish_run(RID, timeout=30)
        sink.close()
    finally:
        r.close()
    assert losses == {"failed": len(stored)}
    assert "503" in sink.last_error


def test_closed_port_and_timeouts_are_counted(stored):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = _sink(f"http://127.0.0.1:{port}", retries=1, backoff=0.01)
    sink.write_batch(RID, stored)
    assert sink.finish_run(RID, timeout=30) == {"failed": len(stored)}
    sink.close()
    slow = Receiver(mode="slow", delay=1.0)
    try:
        sink = _sink(slow.url, timeout=0.2, retries=0)
        sink.write_batch(RID, stored)
        assert sink.finish_run(RID, timeout=30) == {"failed": len(stored)}
        assert "timed out" in sink.last_error
        sink.close()
    finally:
        slow.close()


def test_full_queue_sheds_and_counts(stored, receiver):
    sink = OtlpExporter(OtlpConfig(endpoint=receiver.url, queue_max=10, batch_max=5), host="h")  # not started yet
    sink.write_batch(RID, stored)  # 24 records, room for 10
    sink.start()
    losses = sink.finish_run(RID, timeout=30)
    sink.close()
    assert losses == {"shed": len(stored) - 10}
    assert len(receiver.records()) == 10 and receiver.errors == []


def test_unsent_at_run_end_and_partial_rejects(stored):
    slow = Receiver(mode="slow", delay=0.5)
    try:
        sink = _sink(slow.url, batch_max=1, timeout=5)
        sink.write_batch(RID, stored)
        losses = sink.finish_run(RID, timeout=0.2)  # the run ends long before 24 slow requests are done
        sink.close(timeout=1)
    finally:
        slow.close()
    assert losses.get("unsent", 0) >= len(stored) - 2 and sum(losses.values()) == len(stored)
    rej = Receiver(mode="reject")
    try:
        sink = _sink(rej.url, batch_max=10)
        sink.write_batch(RID, stored)
        assert sink.finish_run(RID, timeout=30) == {"rejected": 3}  # 3 requests, one rejected each
        sink.close()
    finally:
        rej.close()


def test_bad_endpoint_is_refused():
    with pytest.raises(ValueError, match="must be http://host:port"):
        OtlpExporter(OtlpConfig(endpoint="ftp://x"))
