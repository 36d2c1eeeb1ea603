"""Real daemon + throwaway user fixtures for the agent-aware tests (same as tests/e2e)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from e2e_support import Logira, logira_for


@pytest.fixture(scope="session")
def daemon(require_bpf) -> Iterator[object]:
    from daemon_helpers import running_daemon

    with running_daemon() as handle:
        yield handle


@pytest.fixture
def logira(test_user, daemon) -> Iterator[Logira]:
    yield from logira_for(test_user, daemon)
