"""A systemd-journald for the tests that read logirad's entries back (sink tests, journal upload).

PID 1 is not systemd on the machines these tests run on, so there may be no journald: use the
running one, or start the real binary by hand for the module and stop it after.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from logira.sinks.journald import DEFAULT_SOCKET, Journal

JOURNALD = "/lib/systemd/systemd-journald"


def running_journald() -> Iterator[None]:
    """Body of a module fixture: yields while a journald listens on its socket (skips when none can)."""
    if Journal.available(DEFAULT_SOCKET):
        yield
        return
    if not Path(JOURNALD).exists() or shutil.which("journalctl") is None:
        pytest.skip(f"systemd-journald is not installed ({JOURNALD})")
    proc = subprocess.Popen([JOURNALD], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    while not Journal.available(DEFAULT_SOCKET):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.skip(f"could not start {JOURNALD} by hand (exit {proc.poll()})")
        time.sleep(0.05)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(10)
