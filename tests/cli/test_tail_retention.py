"""tail (file-then-stream merge over a real unix socket speaking the real protocol), rm, prune."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from logira.daemon import protocol

from .conftest import LIVE, OLD, RID
from .fixtures import S, sample_records, write_run


class FollowServer:
    """A minimal logirad stand-in on a real unix socket: answers one `follow` with a script."""

    def __init__(self, path: Path, script):
        self.path = str(path)
        self.script = script
        self.got: list[object] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            msg = protocol.decode_client(protocol.recv_body(conn))
            self.got.append(msg)
            for reply in self.script(msg):
                protocol.send_msg(conn, reply)

    def close(self) -> None:
        self.thread.join(timeout=5)
        self.sock.close()


def stored_lines(home: Path, run_id: str) -> list[str]:
    return (home / "runs" / run_id / "events.jsonl").read_text().splitlines()


def test_tail_merges_file_then_stream_once_in_order(cli, home, tmp_path, monkeypatch):
    lines = stored_lines(home, RID)  # seqs 1..17
    sock = tmp_path / "d.sock"

    def script(msg):
        yield protocol.Following(run_id=RID, next_seq=10)  # 1..9 come from the file
        yield protocol.Records(lines=lines[7:12])  # seqs 8..12: 8 and 9 overlap the file
        yield protocol.Records(lines=lines[12:])
        yield protocol.RunEnded(run_id=RID)

    srv = FollowServer(sock, script)
    monkeypatch.setenv("LOGIRA_SOCK", str(sock))
    code, out, err = cli("tail", "--run", "last")
    srv.close()
    assert code == 0, err
    assert isinstance(srv.got[0], protocol.Follow) and srv.got[0].run_id == "last"
    got = [int(ln.split()[0]) for ln in out.splitlines()]
    assert got == list(range(1, 18))
    assert (
        out.splitlines()[8]
        == "      9  +2s        file           100  file create /home/u/proj/evil\\x1b[31mRED\\x1b]0;pwn\\x07\\nname\\u202etxt.sh"
    )


def test_tail_filters_and_json_verbatim(cli, home, tmp_path, monkeypatch):
    lines = stored_lines(home, RID)
    sock = tmp_path / "d.sock"

    def script(msg):
        yield protocol.Following(run_id=RID, next_seq=1)  # started before the first event
        yield protocol.Records(lines=lines)
        yield protocol.RunEnded(run_id=RID)

    srv = FollowServer(sock, script)
    monkeypatch.setenv("LOGIRA_SOCK", str(sock))
    code, out, _ = cli("tail", "--path", "**/.ssh/**", "--json")
    srv.close()
    assert code == 0
    assert out.splitlines() == [lines[6], lines[7]]  # the event and the detection about it


def test_tail_without_daemon_prints_stored_and_exits_0(cli):
    code, out, _ = cli("tail", RID, "--type", "detection")
    assert code == 0
    assert [int(ln.split()[0]) for ln in out.splitlines()] == [8, 11]


def test_tail_run_not_active_falls_back_to_stored(cli, tmp_path, monkeypatch):
    sock = tmp_path / "d.sock"
    srv = FollowServer(sock, lambda msg: [protocol.Error(message=f"run {OLD} is not active")])
    monkeypatch.setenv("LOGIRA_SOCK", str(sock))
    code, out, _ = cli("tail", OLD)
    srv.close()
    assert code == 0 and [int(ln.split()[0]) for ln in out.splitlines()] == [1, 2, 3]


def test_rm_removes_and_refuses_running_and_bad_ids(cli, scratch_home):
    code, out, _ = cli("rm", OLD)
    assert code == 0 and out == f"removed {OLD}\n" and not (scratch_home / "runs" / OLD).exists()
    code, _, err = cli("rm", LIVE)
    assert (
        code == 1
        and err.startswith(f"error: run {LIVE} is still running")
        and (scratch_home / "runs" / LIVE).exists()
    )
    code, _, err = cli("rm", "../../etc")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    code, _, err = cli("rm", "20200101-000000-none")
    assert code == 1 and err.startswith("error: run 20200101-000000-none not found")


def test_rm_never_follows_a_symlinked_run(cli, scratch_home, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("x")
    os.symlink(victim, scratch_home / "runs" / "20200101-000000-link")
    code, _, err = cli("rm", "20200101-000000-link")
    assert code == 1 and err.startswith("error: ")
    assert (victim / "keep").exists()


def test_prune(cli, tmp_path, monkeypatch):
    now = time.time_ns()
    day = 86400 * S
    for rid, start, status in (("20200101-000000-old", now - 40 * day, "complete"),
                               ("20200101-000001-new", now - day, "complete"),
                               ("20200101-000002-stuck", now - 50 * day, "running")):  # fmt: skip
        write_run(tmp_path, rid, sample_records(rid)[:2], start_ts=start, end=None if status == "running" else 1.0,
                  status=status)  # fmt: skip
    monkeypatch.setenv("LOGIRA_HOME", str(tmp_path))
    code, out, _ = cli("prune", "--older-than", "30d", "--dry-run")
    assert code == 0 and out.startswith("would remove 20200101-000000-old  (ended ") and out.count("\n") == 1
    assert (tmp_path / "runs" / "20200101-000000-old").exists()
    code, out, _ = cli("prune", "--older-than", "30d")
    assert code == 0 and out.startswith("removed 20200101-000000-old")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "20200101-000001-new",
        "20200101-000002-stuck",
    ]
    code, _, err = cli("prune", "--older-than", "soon")
    assert code == 2 and err.startswith("error: invalid --older-than 'soon'")


@pytest.mark.parametrize("cmd", ["runs", "view", "query", "explain", "tail", "rm", "prune"])
def test_help_has_examples(cmd, capsys):
    from logira.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "examples:\n  logira " + cmd in capsys.readouterr().out
