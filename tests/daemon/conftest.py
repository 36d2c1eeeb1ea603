"""Fixtures for the daemon tests: one shared logirad (exec+net probes) per module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import EXEC_ONLY, DaemonHandle, make_home


@pytest.fixture(scope="module")
def daemon(require_bpf: None) -> Iterator[DaemonHandle]:
    handle = DaemonHandle(probes=EXEC_ONLY)
    try:
        handle.start()
        yield handle
    finally:
        handle.cleanup()


@pytest.fixture
def home() -> Iterator[Path]:
    h = make_home()
    yield h
    shutil.rmtree(h.parent, ignore_errors=True)
