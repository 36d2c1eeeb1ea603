"""End-to-end helpers: `logira run` as a throwaway user against a REAL logirad.

Every test gets its own $LOGIRA_HOME (inside the user's home, owned by the user) and its own
workspace, so a test only ever sees its own runs. The daemon is started once per session
(BPF load is the slow part) through `tests/daemon_helpers.py`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The test modules import e2e_support by name; make that independent of pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_support import Logira, logira_for


@pytest.fixture(scope="session")
def daemon(require_bpf) -> Iterator[object]:
    """One real logirad for all e2e tests (BPF load takes seconds), private socket/state/cgroups."""
    from daemon_helpers import running_daemon  # tests/ is on sys.path (conftest dir)

    with running_daemon() as handle:
        yield handle


@pytest.fixture
def logira(test_user, daemon) -> Iterator[Logira]:
    """`logira` as the throwaway test user, with a fresh home and workspace."""
    yield from logira_for(test_user, daemon)


@pytest.fixture
def logira_other(other_user, daemon) -> Iterator[Logira]:
    """`logira` as the second throwaway user."""
    yield from logira_for(other_user, daemon)
