"""`logira …` run in-process against a fixture home, for the read-side command tests (cli, report).

In-process (main(argv) and capsys) keeps hundreds of command checks cheap; the socket points at a
file that does not exist, so no test ever talks to a daemon someone else runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from logira.cli.main import main

CliRun = Callable[..., tuple[int, str, str]]


def in_process_cli(home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *,
                   unset: tuple[str, ...] = ()) -> CliRun:  # fmt: skip
    """A run(*argv) -> (exit code, stdout, stderr) against `home`; `unset`: environment left out."""
    monkeypatch.setenv("LOGIRA_HOME", str(home))
    monkeypatch.setenv("LOGIRA_SOCK", str(home / "no-daemon.sock"))
    for name in unset:
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        cap = capsys.readouterr()
        return code, cap.out, cap.err

    return run
