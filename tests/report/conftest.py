"""Homes with stored runs for the report/diff/export tests (built through the real sinks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from logira.cli.main import main
from tests.cli.fixtures import T0, S, sample_records, write_run

from .hostile import write_hostile

RID = "20260102-150405-claude"
PREV = "20260102-140405-claude"


@pytest.fixture(scope="session")
def rhome(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with an earlier run of the same workspace and the hostile run."""
    h = tmp_path_factory.mktemp("rhome")
    write_run(h, PREV, sample_records(PREV)[:5], start_ts=T0 - 3600 * S)
    write_hostile(h, RID)
    return h


@pytest.fixture
def rcli(rhome: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run `logira …` in-process against `rhome`; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("LOGIRA_HOME", str(rhome))
    monkeypatch.setenv("LOGIRA_SOCK", str(rhome / "no-daemon.sock"))
    monkeypatch.delenv("GITHUB_WORKFLOW_REF", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        cap = capsys.readouterr()
        return code, cap.out, cap.err

    return run
