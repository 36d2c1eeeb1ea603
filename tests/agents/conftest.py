"""Real agent CLIs (Claude Code, Codex, Gemini CLI) under `logira run` against a real logirad, driven offline.

The CLIs come from `make setup` (build/agents, see agent_cli.py). Without them the tests skip, unless
CI=true or LOGIRA_REQUIRE_AGENTS=1 (set by .ci/run), where a missing CLI fails the test: CI cannot go
green without the real agents, the same rule as LOGIRA_REQUIRE_BPF.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# The modules here and tests/e2e's helpers are imported by name, whatever pytest's import mode.
sys.path[:0] = [str(HERE), str(HERE.parent / "e2e")]

from agent_cli import CLAUDE, CODEX, GEMINI, unusable_reason  # noqa: E402
from e2e_support import logira_for  # noqa: E402
from harness import AgentRunner  # noqa: E402


def _require(binary: Path) -> None:
    reason = unusable_reason(binary)
    if reason is None:
        return
    if os.environ.get("CI") == "true" or os.environ.get("LOGIRA_REQUIRE_AGENTS") == "1":
        pytest.fail(f"real-agent tests are mandatory here but cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def claude_cli() -> Path:
    _require(CLAUDE)
    return CLAUDE


@pytest.fixture(scope="session")
def codex_cli() -> Path:
    _require(CODEX)
    return CODEX


@pytest.fixture(scope="session")
def gemini_cli() -> Path:
    _require(GEMINI)
    return GEMINI


@pytest.fixture
def agents(fresh_user, daemon) -> Iterator[AgentRunner]:
    """An AgentRunner for a user made for this test: its fresh home is the agent's HOME."""
    for logira in logira_for(fresh_user, daemon):
        yield AgentRunner(logira)
