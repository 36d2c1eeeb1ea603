"""KernelEvent -> Record: summaries and errno exactly as docs/architecture.md specifies (pure logic)."""

from __future__ import annotations

from logira.model.kernel import BlindSpot, FileOp, NetOp, ProcExec, ProcExecFailed, ProcExit, ProcFork
from logira.pipeline.convert import convert

H = {
    "ts": 5,
    "mono_ns": 1,
    "cgroup_id": 7,
    "run_cgroup_id": 7,
    "pid": 10,
    "tid": 11,
    "ppid": 9,
    "uid": 0,
    "gid": 0,
    "comm": "c",
}


def _summary_of(ev) -> tuple[str, str]:
    rec = convert(ev, "r", 1)
    return rec.type, rec.summary


def test_summaries() -> None:
    assert _summary_of(ProcExec(**H, filename="/usr/bin/ls", argv=["ls", "-l"])) == ("exec", "exec ls -l")
    assert _summary_of(ProcExec(**H, filename="/usr/bin/x", argv=["x" * 300]))[1] == "exec " + "x" * 200
    assert _summary_of(ProcExec(**H, filename="/usr/bin/x", argv=[]))[1] == "exec /usr/bin/x"
    assert _summary_of(ProcExecFailed(**H, filename="/tmp/nope", errno=2)) == ("exec", "exec-failed /tmp/nope errno=2")
    assert _summary_of(ProcFork(**H, child_pid=42)) == ("proc", "fork 42")
    assert _summary_of(ProcExit(**H, exit_code=3)) == ("proc", "exit code=3")
    assert _summary_of(ProcExit(**H, exit_code=0, signal=9)) == ("proc", "exit signal=9")
    assert _summary_of(BlindSpot(**H, kind="compat_syscall", syscall_nr=5)) == ("proc", "compat_syscall nr=5")
    assert _summary_of(BlindSpot(**H, kind="io_uring_setup")) == ("proc", "io_uring_setup")
    assert _summary_of(FileOp(**H, op="create", path="/w/a")) == ("file", "file create /w/a")
    assert _summary_of(FileOp(**H, op="rename", path="/w/a", path2="/w/b")) == ("file", "file rename /w/a -> /w/b")
    assert _summary_of(NetOp(**H, op="connect", family="inet", proto="tcp", dst_ip="1.2.3.4", dst_port=443)) == (
        "net",
        "net connect tcp 1.2.3.4:443",
    )
    assert _summary_of(
        NetOp(
            **H,
            op="send",
            family="inet",
            proto="udp",
            dst_ip="10.0.0.1",
            dst_port=53,
            dns_qname="example.com",
        )
    ) == ("net", "net send udp 10.0.0.1:53 dns=example.com")
    assert _summary_of(NetOp(**H, op="connect", family="unix", proto="unix", unix_path="/run/x.sock")) == (
        "net",
        "net connect unix /run/x.sock",
    )
    assert _summary_of(NetOp(**H, op="listen", family="inet", proto="tcp", src_ip="0.0.0.0", src_port=8080)) == (
        "net",
        "net listen tcp 0.0.0.0:8080",
    )


def test_envelope_and_errno() -> None:
    rec = convert(FileOp(**H, op="modify", path="/etc/x", ret=-13), "run-1", 9)
    assert (rec.run_id, rec.seq, rec.ts, rec.pid, rec.ppid, rec.uid) == ("run-1", 9, 5, 10, 9, 0)
    assert (rec.data_json.ret, rec.data_json.errno, rec.data_json.tid) == (-13, 13, 11)
    net = convert(NetOp(**H, op="connect", family="inet", proto="tcp", ret=-115), "r", 1).data_json
    assert (net.ret, net.errno) == (-115, 115)
    ok = convert(FileOp(**H, op="create", path="/w/a", ret=3), "r", 1).data_json
    assert (ok.ret, ok.errno) == (3, 0)
    failed = convert(ProcExecFailed(**H, filename="/x", argv=["x"], errno=13), "r", 1).data_json
    assert (failed.errno, failed.filename, failed.argv) == (13, "/x", ["x"])
