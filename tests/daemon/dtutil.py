"""Small readers for the daemon tests (stored run files, seals)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def lines(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]


def meta(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "meta.json").read_text())


def seal(state_dir: Path, uid: int, run_id: str) -> dict[str, Any]:
    return json.loads((state_dir / "seals" / str(uid) / f"{run_id}.json").read_text())


def execs(recs: list[dict[str, Any]]) -> list[list[str]]:
    return [r["data_json"]["argv"] for r in recs if r["type"] == "exec" and not r["data_json"]["errno"]]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def wait_for(pred: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
