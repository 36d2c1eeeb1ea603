"""Homes with stored runs for the report/diff/export tests (built through the real sinks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.fixtures import T0, S, sample_records, write_run
from tests.cli.inprocess import in_process_cli

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
    # SARIF output names the CI workflow from GITHUB_WORKFLOW_REF: an outer CI must not leak into it
    return in_process_cli(rhome, monkeypatch, capsys, unset=("GITHUB_WORKFLOW_REF",))
