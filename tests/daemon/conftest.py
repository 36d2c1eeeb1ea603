"""Fixtures for the daemon tests: one shared logirad (exec probes only) per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import EXEC_ONLY, DaemonHandle, private_home, running_daemon


@pytest.fixture(scope="module")
def daemon(require_bpf: None) -> Iterator[DaemonHandle]:
    with running_daemon(probes=EXEC_ONLY) as handle:
        yield handle


@pytest.fixture
def home() -> Iterator[Path]:
    with private_home() as h:
        yield h
