"""The data-flow tracker on its own (pure logic): what code an exec runs, both event orders,
taint carried through pipes, and bounded state that counts what it forgets."""

from __future__ import annotations

import pytest

from logira.detect import flow
from logira.detect.flow import FlowTracker, program_source
from logira.model.record import ExecData, NetData, ProcData, Record

_seq = [0]


def _rec(type_: str, pid: int, data, ppid: int = 1) -> Record:
    _seq[0] += 1
    return Record(run_id="r", seq=_seq[0], ts=_seq[0], type=type_, pid=pid, ppid=ppid, summary="", data_json=data)


def _exec(pid: int, argv: list[str], fds: dict[int, str] | None = None, ppid: int = 1, **kw) -> Record:
    fn = kw.pop("filename", argv[0] if argv[0].startswith("/") else f"/usr/bin/{argv[0]}")
    return _rec("exec", pid, ExecData(filename=fn, argv=argv, cwd="/w", fds=fds or {}, **kw), ppid)


def _connect(pid: int, ret: int = 0) -> Record:
    return _rec("net", pid, NetData(op="connect", proto="tcp", family="inet", dst_ip="127.0.0.1", dst_port=80, ret=ret))


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (["sh"], ("stdin", "")),
        (["bash", "-s", "x"], ("stdin", "")),
        (["sh", "-c", "id"], ("inline", "")),
        (["bash", "-lc", "id"], ("inline", "")),
        (["python3", "-"], ("stdin", "")),
        (["python3", "-c", "1"], ("inline", "")),
        (["perl", "-e", "1"], ("inline", "")),
        (["bash", "/dev/fd/63"], ("fd", "63")),
        (["python3", "-m", "json.tool"], ("module", "json.tool")),
        (["sh", "x.sh"], ("file", "/w/x.sh")),
    ],
)
def test_program_source(argv, want):
    assert program_source(ExecData(filename=f"/usr/bin/{argv[0]}", argv=argv, cwd="/w")) == want


def test_consumer_before_producer_is_reported_when_the_producer_connects():
    t = FlowTracker()
    assert t.observe(_exec(10, ["sh"], {0: "pipe:5:r"})) == []
    assert t.observe(_exec(11, ["curl", "x"], {1: "pipe:5:w"})) == []
    (f,) = t.observe(_connect(11))
    assert (f.via, f.consumer_pid, f.producer_pid, f.pipe) == ("pipe", 10, 11, "pipe:5")
    assert t.observe(_connect(11)) == []  # once per consumer exec


def test_failed_connect_taints_nothing_and_a_new_image_forgets_the_old_ones_fetches():
    t = FlowTracker()
    t.observe(_exec(20, ["curl", "x"], {1: "pipe:6:w"}))
    t.observe(_exec(21, ["sh"], {0: "pipe:6:r"}))
    assert t.observe(_connect(20, ret=-111)) == []
    t.observe(_exec(30, ["python3", "-c", "x"]))
    assert [f.via for f in t.observe(_connect(30))] == ["self"]
    t.observe(_exec(30, ["python3", "-c", "y"]))  # exec: a new image, not tainted
    assert t.observe(_rec("proc", 30, ProcData(op="fork", child_pid=31))) == []


def test_taint_flows_through_a_decoder_to_the_origin():
    t = FlowTracker()
    t.observe(_exec(40, ["curl", "x"], {1: "pipe:7:w"}))
    t.observe(_exec(41, ["base64", "-d"], {0: "pipe:7:r", 1: "pipe:8:w"}))
    t.observe(_exec(42, ["bash"], {0: "pipe:8:r"}))
    flows = t.observe(_connect(40))
    assert [(f.via, f.consumer_pid, f.producer_pid) for f in flows if f.consumer_pid == 42] == [("pipe", 42, 40)]


@pytest.mark.parametrize("order", ["consumer-last", "decoder-and-consumer-last"])
def test_the_evidence_is_the_network_record_whatever_the_order(order):
    """The flow's producer_seq points at the connect that began the taint, not at a later exec."""
    t = FlowTracker()
    t.observe(_exec(50, ["curl", "x"], {1: "pipe:9:w"}))
    if order == "consumer-last":
        t.observe(_exec(51, ["base64", "-d"], {0: "pipe:9:r", 1: "pipe:10:w"}))
    net = _connect(50)
    t.observe(net)
    if order == "decoder-and-consumer-last":
        t.observe(_exec(51, ["base64", "-d"], {0: "pipe:9:r", 1: "pipe:10:w"}))
    (f,) = [f for f in t.observe(_exec(52, ["sh"], {0: "pipe:10:r"})) if f.consumer_pid == 52]
    assert (f.via, f.producer_pid, f.producer_seq) == ("pipe", 50, net.seq)


def test_state_is_bounded_and_what_is_forgotten_is_counted(monkeypatch):
    monkeypatch.setattr(flow, "MAX_PROCS", 50)
    monkeypatch.setattr(flow, "MAX_PIPES", 50)
    t = FlowTracker()
    for i in range(200):
        t.observe(_exec(1000 + i, ["cat"], {0: f"pipe:{i}:r"}))
    assert len(t.procs) <= 50 and len(t.readers) <= 50
    assert t.dropped == 150 + 150
