"""`logira rules list|check|test`, in-process, against runs written by the real storage code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from logira.cli.main import main
from tests.cli.fixtures import sample_records, write_run

RID = "20260102-150405-claude"
CUSTOM = """rules:
  - id: hunt-evil-dns
    title: Lookup of evil.example
    severity: low
    category: hunt
    description: retro-hunt test rule
    message: "dns {dns_qname} by {exe}"
    when:
      net: {dns: ["evil.example"]}
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    monkeypatch.setenv("LOGIRA_HOME", str(tmp_path / "home"))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        cap = capsys.readouterr()
        return code, cap.out, cap.err

    return run


def _write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_list_json_has_every_builtin_rule(cli) -> None:
    code, out, err = cli("rules", "list", "--json")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert len(rows) >= 50
    row = next(r for r in rows if r["id"] == "exec-ssh-tunnel")
    assert row == {"id": "exec-ssh-tunnel", "severity": "medium", "category": "command-and-control",
                   "title": "SSH port forwarding or SOCKS proxy", "source": "builtin:40-exec.yaml",
                   "tags": ["T1572"]}  # fmt: skip


def test_list_table_and_file(cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "c.yaml", CUSTOM)
    code, out, _ = cli("rules", "list", "--file", f)
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["ID", "SEVERITY", "CATEGORY", "SOURCE", "TITLE"]
    assert lines[-2].split()[:4] == ["hunt-evil-dns", "low", "hunt", f]
    assert lines[-1].endswith("rules active")


def test_check_ok_and_errors(cli, tmp_path: Path) -> None:
    code, out, err = cli("rules", "check", _write(tmp_path, "c.yaml", CUSTOM))
    assert (code, err) == (0, "")
    assert out.startswith("ok: ") and out.endswith(f" rules (1 from {tmp_path}/c.yaml)\n")
    bad = _write(tmp_path, "bad.yaml", CUSTOM.replace("category: hunt", "category: hunt\n    colour: red"))
    code, out, err = cli("rules", "check", bad)
    assert (code, out, err) == (1, "", f"error: {bad}:6: rule hunt-evil-dns: unknown key 'colour'\n")
    dup = _write(tmp_path, "dup.yaml", CUSTOM.replace("hunt-evil-dns", "exec-ssh-tunnel"))
    code, _, err = cli("rules", "check", dup)
    src = (Path(__file__).parents[2] / "config" / "rules" / "40-exec.yaml").read_text().splitlines()
    line = src.index("  - id: exec-ssh-tunnel") + 1
    assert (code, err) == (1, f"error: {dup}:2: rule exec-ssh-tunnel: duplicate id (already defined at "
                              f"builtin:40-exec.yaml:{line}; set override: true to replace it)\n")  # fmt: skip
    code, _, err = cli("rules", "check", str(tmp_path / "missing.yaml"))
    assert (code, err) == (
        1,
        f"error: cannot read rule file {tmp_path}/missing.yaml: No such file or directory\n",
    )


def test_retro_hunt_finds_detections_and_never_modifies_the_run(cli, tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "home", RID, sample_records(RID))
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run_dir.iterdir()}
    f = _write(tmp_path, "c.yaml", CUSTOM)
    code, out, err = cli("rules", "test", f, "--run", "last")  # only FILE's rules by default
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{RID} seq=4 [low] hunt-evil-dns: dns evil.example by /usr/bin/curl",
        # through the index: the exec/proc rows (process tree) and the one DNS row, not all 15 records
        "1 detections in 1 run(s), 6 events evaluated (0 runs ruled out by their index, 1 read through it, 0 in full)",
    ]
    code, out, _ = cli("rules", "test", f, "--all-runs", "--json", "--with-builtin")
    hits = json.loads(out)
    assert {(h["related_seq"], h["rule_id"]) for h in hits} >= {
        (1, "exec-download-pipe-shell"), (4, "hunt-evil-dns"), (7, "persist-authorized-keys"),
    }  # fmt: skip
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run_dir.iterdir()}
    assert after == before


def test_retro_hunt_without_runs_is_one_line_error(cli, tmp_path: Path) -> None:
    code, out, err = cli("rules", "test", _write(tmp_path, "c.yaml", CUSTOM), "--all-runs")
    assert (code, out) == (1, "")
    assert err == f"error: no runs yet under {tmp_path}/home/runs\n"
