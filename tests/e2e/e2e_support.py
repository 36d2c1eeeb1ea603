"""Helpers shared by the end-to-end tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec

REPO = Path(__file__).resolve().parents[2]
PY = (
    str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
)


class StoredRun:
    """A finished run read back from disk: meta.json, events.jsonl, index.sqlite."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self.id = run_dir.name
        self.meta = msgspec.json.decode((run_dir / "meta.json").read_bytes())
        self.records = [
            msgspec.json.decode(line) for line in (run_dir / "events.jsonl").read_bytes().splitlines()
        ]

    def of_type(self, type_: str) -> list[dict]:
        return [r for r in self.records if r["type"] == type_]

    def summaries(self) -> list[str]:
        return [r["summary"] for r in self.records]

    def execs(self) -> list[dict]:
        return [r for r in self.of_type("exec") if not r["data_json"].get("errno")]

    def files(self, op: str | None = None) -> list[dict]:
        return [r for r in self.of_type("file") if op is None or r["data_json"]["op"] == op]

    def db(self, sql: str, *params: object) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.dir / 'index.sqlite'}?mode=ro", uri=True)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


class Logira:
    """Runs the `logira` CLI as `user` with this test's home and the daemon's socket."""

    def __init__(self, user, daemon, home: Path, workspace: Path):
        self.user = user
        self.daemon = daemon
        self.home = home
        self.workspace = workspace

    def env(self, **extra: str) -> dict[str, str]:
        return self.user.env(
            LOGIRA_SOCK=str(self.daemon.sock),
            LOGIRA_HOME=str(self.home),
            LOGIRA_STATE_DIR=str(self.daemon.state_dir),
            **extra,
        )

    def argv(self, *args: str) -> list[str]:
        return self.user.cmd(PY, "-m", "logira.cli.main", *args)

    def __call__(
        self, *args: str, input: bytes | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        """Run `logira <args>` to completion, capturing output (bytes)."""
        return subprocess.run(
            self.argv(*args),
            env=self.env(),
            cwd=self.workspace,
            input=input,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str, **kw) -> subprocess.Popen:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(self.argv(*args), env=self.env(), cwd=self.workspace, **kw)

    def run_dirs(self) -> list[Path]:
        runs = self.home / "runs"
        return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.exists() else []

    def only_run(self) -> StoredRun:
        dirs = self.run_dirs()
        assert len(dirs) == 1, f"expected exactly one run under {self.home}, found {[d.name for d in dirs]}"
        return StoredRun(dirs[0])


def make_private_dir(user, name: str) -> Path:
    path = user.home / f"{name}-{secrets.token_hex(3)}"
    path.mkdir(mode=0o700)
    os.chown(path, user.uid, user.gid)
    return path


def logira_for(user, daemon) -> Iterator[Logira]:
    """A Logira for `user` with a fresh home (created by `logira run` itself) and workspace."""
    home = user.home / f"lh-{secrets.token_hex(3)}"  # created by `logira run` itself, as the user
    ws = make_private_dir(user, "ws")
    try:
        yield Logira(user, daemon, home, ws)
    finally:
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
