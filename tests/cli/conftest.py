"""Fixture homes for the read-side command tests, built through the real storage code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .fixtures import T0, S, sample_records, write_run
from .inprocess import in_process_cli

RID = "20260102-150405-claude"
OLD = "20251201-090000-a-really-long-tool-name-for-truncation"
LIVE = "20260102-160000-codex"


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with an old run, the sample run and a running run (JSONL only, no index yet)."""
    h = tmp_path_factory.mktemp("home")
    old = sample_records(OLD)[:3]
    write_run(h, OLD, old, start_ts=T0 - 32 * 86400 * S, end=2.0)
    write_run(h, RID, sample_records(RID))
    write_run(
        h, LIVE, sample_records(LIVE)[:5], start_ts=T0 + 3600 * S, end=None, status="running", sqlite=False
    )
    return h


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run `logira …` in-process against `home`; returns (exit code, stdout, stderr)."""
    # the colour tests set these themselves: whatever the outer shell has must not leak in
    return in_process_cli(home, monkeypatch, capsys, unset=("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE"))


@pytest.fixture
def scratch_home(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of `home` for commands that delete runs."""
    h = tmp_path / "home"
    shutil.copytree(home, h, symlinks=True)
    monkeypatch.setenv("LOGIRA_HOME", str(h))
    return h
