"""Running the scripted agent (fake_agent.py) under a real `logira run`, and reading the result."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from e2e_support import PY, StoredRun

from logira.agents import calls as agent_calls

FAKE = Path(__file__).resolve().parent / "fake_agent.py"
HOOK_CMD = f"{PY} -m logira.cli.main hook --agent claude"


def agent_binary(logira, name: str = "claude") -> Path:
    """A copy of the scripted agent named like a real agent binary (so the exec looks like one)."""
    path = logira.workspace / name
    shutil.copy(FAKE, path)
    text = path.read_text()
    path.write_text(f"#!{PY}\n" + text)
    os.chmod(path, 0o755)
    os.chown(path, logira.user.uid, logira.user.gid)
    return path


def run_agent(logira, steps: list[dict], *, binary: Path | None = None, hook_cmd: str = HOOK_CMD):
    argv = [str(binary)] if binary else [PY, str(FAKE)]
    p = subprocess.Popen(logira.argv("run", "--tool", "fake", "--", *argv, json.dumps(steps)),
                         env=logira.env(FAKE_HOOK_CMD=hook_cmd), cwd=logira.workspace,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, (out, err)
    assert out == b"", out  # nothing of the hooks reaches the agent's stdout
    return StoredRun(sorted(logira.run_dirs())[-1])


def db(run: StoredRun) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{run.dir / 'index.sqlite'}?mode=ro", uri=True)


def calls_of(run: StoredRun) -> dict[str, agent_calls.ToolCall]:
    with db(run) as conn:
        return {c.call_id: c for c in agent_calls.tool_calls(conn)}


def attribution_of(run: StoredRun) -> dict[int, tuple[str, str]]:
    with db(run) as conn:
        return agent_calls.attribution(conn)
