"""End-to-end helpers: `logira run` as a throwaway user against a REAL logirad.

Every test gets its own $LOGIRA_HOME (inside the user's home, owned by the user) and its own
workspace, so a test only ever sees its own runs. The daemon is started once per session
(BPF load is the slow part): the `daemon` fixture of tests/conftest.py, shared with tests/agents.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The test modules import e2e_support by name; make that independent of pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_support import Logira, logira_for


@pytest.fixture
def logira(test_user, daemon) -> Iterator[Logira]:
    """`logira` as the throwaway test user, with a fresh home and workspace."""
    yield from logira_for(test_user, daemon)


@pytest.fixture
def logira_other(other_user, daemon) -> Iterator[Logira]:
    """`logira` as the second throwaway user."""
    yield from logira_for(other_user, daemon)
