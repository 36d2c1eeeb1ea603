"""The network record through the daemon: forged peers and DNS to a resolver the agent picked
are detected, TCP volume reaches the record, `view` shows bytes per destination."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from logira.detect.netmatch import system_resolvers

pytestmark = pytest.mark.bpf

WL = Path(__file__).resolve().parents[1] / "capture" / "wl"


def query(name: str) -> bytes:
    out = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0\0\1\0\1"


@pytest.fixture
def race_bin() -> Iterator[str]:
    d = Path(tempfile.mkdtemp(prefix="logira-e2e-net-"))
    os.chmod(d, 0o755)  # the test user runs it
    out = d / "net_peer_race"
    subprocess.run(["gcc", "-O2", "-pthread", "-o", str(out), str(WL / "net_peer_race.c")], check=True)
    yield str(out)
    shutil.rmtree(d, ignore_errors=True)


def detections(run, rule: str) -> list[dict]:
    return [r for r in run.of_type("detection") if r["data_json"]["rule_id"] == rule]


def by_seq(run, seq: int) -> dict:
    (rec,) = [r for r in run.records if r["seq"] == seq]
    return rec


def test_forged_connect_peer_and_own_resolver_are_detected(logira, race_bin):
    # a connect whose buffer a second thread rewrites while the kernel is connecting, and a
    # DNS query to 127.0.0.77:53, a resolver the agent chose instead of the system's
    sysres = sorted(str(a) for a in system_resolvers() if a.version == 4 and not a.is_loopback)
    with socket.socket() as full, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dns:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        dns.bind(("127.0.0.77", 53))
        with socket.create_connection(("127.0.0.1", port)):  # fills the accept queue
            script = (
                "import socket, subprocess, sys\n"
                "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                f"u.sendto({query('own-resolver.example.test')!r}, ('127.0.0.77', 53))\n"
                + (f"u.sendto({query('system.invalid')!r}, ({sysres[0]!r}, 53))\n" if sysres else "")
                + f"subprocess.run([{race_bin!r}, 'late', '{port}', '4444', 'sa.bin'], check=True)\n"
            )
            res = logira("run", "--tool", "netrec", "--", "/usr/bin/python3", "-I", "-S", "-c", script)
    assert res.returncode == 0, res.stderr
    run = logira.only_run()
    (mm,) = detections(run, "net-peer-mismatch")
    assert mm["data_json"]["severity"] == "high"
    ev = by_seq(run, mm["data_json"]["related_event_seq"])["data_json"]
    assert (ev["op"], ev["dst_ip"], ev["dst_port"], ev["peer_verified"]) == ("connect", "127.0.0.1", port, True)
    assert (ev["peer_mismatch"], ev["claimed_dst_ip"], ev["claimed_dst_port"]) == ("socket", "10.9.9.9", 4444)
    (own,) = detections(run, "net-dns-nonsystem-resolver")
    ev = by_seq(run, own["data_json"]["related_event_seq"])["data_json"]
    assert (ev["dst_ip"], ev["dst_port"], ev["dns_qname"]) == ("127.0.0.77", 53, "own-resolver.example.test")
    # the query to the system's resolver is recorded and not flagged
    names = {r["data_json"].get("dns_qname") for r in run.of_type("net")}
    assert "own-resolver.example.test" in names and (not sysres or "system.invalid" in names)
    assert run.meta["complete"] is True


def test_tcp_volume_per_destination_in_record_and_view(logira):
    got: list[int] = []
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen()
        port = lsn.getsockname()[1]

        def serve() -> None:
            for _ in range(2):
                c, _ = lsn.accept()
                with c:
                    c.sendall(b"r" * 100)
                    n = 0
                    while data := c.recv(65536):
                        n += len(data)
                    got.append(n)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        script = (
            "import socket\n"
            "for n in (300000, 200000):\n"
            f"    s = socket.create_connection(('127.0.0.1', {port}))\n"
            "    s.recv(100, socket.MSG_WAITALL)\n"
            "    s.sendall(b'x' * n)\n"
            "    s.close()\n"
        )
        res = logira("run", "--tool", "vol", "--", "/usr/bin/python3", "-I", "-S", "-c", script)
        t.join(10)
    assert res.returncode == 0, res.stderr
    assert got == [300000, 200000]
    run = logira.only_run()
    closes = [r["data_json"] for r in run.of_type("net") if r["data_json"]["op"] == "close"]
    assert [(c["bytes"], c["bytes_received"], c["outcome"], c["run_dst_bytes"]) for c in closes] == [
        (300000, 100, "closed", 300000),
        (200000, 100, "closed", 500000),
    ]
    out = logira("view", run.id, "--color", "never").stdout.decode()
    line = next(x for x in out.splitlines() if f"127.0.0.1:{port}" in x)
    assert "488.3 KiB" in line and "200 B" in line, line
