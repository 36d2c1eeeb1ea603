"""Run a REAL agent CLI under `logira run` against the real logirad, driven by a scripted mock model.

`AgentRunner.claude(script)` / `.codex(script)` start the mock on 127.0.0.1, give the agent a fresh HOME
(owned by the throwaway user), run `logira run -- <agent> …` as that user in the test's workspace, and
return an `AgentRun`: the CLI's result, the stored run, what the mock received, and the agent's HOME.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_cli import (
    CLAUDE_HOOK_EVENTS,
    CODEX_HOOK_EVENTS,
    GEMINI_HOOK_EVENTS,
    AgentHome,
    claude_argv,
    codex_argv,
    dump_hooks,
    gemini_argv,
    read_dumped_hooks,
)
from e2e_support import Logira, StoredRun
from kernel_view import describe
from mock_anthropic import ClaudeScript, MockAnthropic
from mock_common import MockServer, Recorded, Script
from mock_gemini import GeminiScript, MockGemini
from mock_openai import CodexScript, MockOpenAI

RUN_LINE = re.compile(r"^logira: run (?P<id>\S+)  dir=(?P<dir>\S+)", re.M)
AGENT_TIMEOUT = 300  # a deadline on a wait, never an assertion: the CLIs take a few seconds here


@dataclass
class AgentRun:
    result: subprocess.CompletedProcess
    run: StoredRun
    home: AgentHome
    mock: MockServer
    scripts: list[Script] = field(default_factory=list)

    @property
    def stderr(self) -> str:
        return self.result.stderr.decode(errors="replace")

    def hooks_fired(self) -> list[dict[str, Any]]:
        """Payloads the dump hooks kept (only when the run was started with dump_hooks=True)."""
        return read_dumped_hooks(self.home.hook_dump)


class AgentRunner:
    """One test's agent sessions: its Logira (user, daemon, LOGIRA_HOME, workspace) and its agent HOMEs."""

    def __init__(self, logira: Logira):
        self.logira = logira
        self.home = AgentHome(logira.user)

    @property
    def workspace(self) -> Path:
        return self.logira.workspace

    def logira_as_user(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """`logira <args>` as the user (e.g. `agent hooks install claude`)."""
        return subprocess.run(
            self.logira.argv(*args),
            env=self.logira.env(**env),
            cwd=self.workspace,
            capture_output=True,
            timeout=60,
            check=False,
        )

    def install_hooks(self, agent: str) -> str:
        """`logira agent hooks install <agent>` as the user, the way a user sets hooks up."""
        res = self.logira_as_user("agent", "hooks", "install", agent)
        assert res.returncode == 0, res.stderr
        return res.stdout.decode()

    def run_under_logira(
        self, argv: list[str], env: dict[str, str], tool: str, logira_args: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.logira.argv("run", "--tool", tool, *logira_args, "--", *argv),
            env=self.logira.env(**env),
            cwd=self.workspace,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=AGENT_TIMEOUT,
            check=False,
        )

    def shell_under_logira(
        self, script: str, env: dict[str, str], tool: str = "agents"
    ) -> subprocess.CompletedProcess:
        """`logira run -- bash -c script`: several agent sessions in one run."""
        return self.run_under_logira(["/bin/bash", "-c", script], env, tool)

    # -- Claude Code
    def claude(
        self,
        *scripts: ClaudeScript,
        prompt: str = "do the steps",
        dump: bool = False,
        hooks: bool = False,
        tool: str = "claude",
        on_request: Callable[[Recorded], None] | None = None,
    ) -> AgentRun:
        home = self.home
        if hooks:
            self.install_hooks("claude")
        if dump:
            home.claude_settings({"hooks": dump_hooks(home.hook_dump, CLAUDE_HOOK_EVENTS)})
        with MockAnthropic(on_request=on_request) as mock:
            for s in scripts:
                mock.add(s)
            res = self.run_under_logira(claude_argv(prompt), home.claude_env(mock.url), tool)
        return AgentRun(res, self.run_of(res), home, mock, list(scripts))

    # -- Codex
    def codex(
        self,
        *scripts: CodexScript,
        prompt: str = "do the steps",
        dump: bool = False,
        bypass_hook_trust: bool = False,
        hooks: bool = False,
        tool: str = "codex",
        on_request: Callable[[Recorded], None] | None = None,
    ) -> AgentRun:
        home = self.home
        with MockOpenAI(on_request=on_request) as mock:
            for s in scripts:
                mock.add(s)
            home.codex_config(mock.url)
            if hooks:  # after the user's config.toml exists: install merges its trust entries into it
                self.install_hooks("codex")
            if dump:
                home.codex_hooks(dump_hooks(home.hook_dump, CODEX_HOOK_EVENTS))
            # Codex runs only trusted hooks: `logira agent hooks install` records the trust of its own;
            # the dump hooks are written by hand (untrusted), so those runs pass the bypass flag
            argv = codex_argv(prompt, bypass_hook_trust=bypass_hook_trust or dump)
            res = self.run_under_logira(argv, home.codex_env(), tool)
        return AgentRun(res, self.run_of(res), home, mock, list(scripts))

    # -- Gemini CLI
    def gemini(
        self,
        *scripts: GeminiScript,
        prompt: str = "do the steps",
        dump: bool = False,
        hooks: bool = False,
        tool: str = "gemini",
        on_request: Callable[[Recorded], None] | None = None,
    ) -> AgentRun:
        home = self.home
        if hooks:
            self.install_hooks("gemini")
        home.gemini_settings(dump_hooks(home.hook_dump, GEMINI_HOOK_EVENTS) if dump else None)
        with MockGemini(on_request=on_request) as mock:
            for s in scripts:
                mock.add(s)
            res = self.run_under_logira(gemini_argv(prompt), home.gemini_env(mock.url), tool)
        return AgentRun(res, self.run_of(res), home, mock, list(scripts))

    @staticmethod
    def run_of(res: subprocess.CompletedProcess) -> StoredRun:
        """The run `logira run` stored, from its summary line (`logira: run <id>  dir=<dir> …`)."""
        found = RUN_LINE.search(res.stderr.decode(errors="replace"))
        assert found, f"no run summary in logira's stderr: {res.stderr[-3000:]!r}"
        run = StoredRun(Path(found["dir"]))
        keep = os.environ.get("LOGIRA_AGENT_TEST_KEEP")  # debugging: a copy of each run's summaries
        if keep:
            Path(keep, f"{run.id}.txt").write_text(describe(run) + "\n")
        return run


def make_fifo(agents: AgentRunner, name: str) -> Path:
    """A FIFO in the workspace, owned by the user: a tool call's process blocks reading it."""
    path = agents.workspace / name
    os.mkfifo(path, 0o600)
    os.chown(path, agents.logira.user.uid, agents.logira.user.gid)
    return path


def release_later(
    fifo: Path, results_in: Callable[[Recorded], set[str]], first: str, then: str, hold_ns: int
) -> Callable[[Recorded], None]:
    """An on_request callback for the mock: once the result of call `then` came back, and at least
    `hold_ns` after the result of call `first` came back, it writes a line to `fifo`, which releases
    the process blocked reading it. So that process acts after both calls ended, and more than
    `hold_ns` after `first` ended, by construction (a wait in a helper thread, never an assertion)."""
    state: dict[str, int] = {}

    def release() -> None:
        while time.time_ns() < state["first"] + hold_ns:
            time.sleep(0.05)
        with open(fifo, "w") as f:  # its reader is there, blocked on it: this open does not block
            f.write("go\n")

    def on_request(rec: Recorded) -> None:
        done = results_in(rec)
        if first in done:
            state.setdefault("first", time.time_ns())
        if then in done and "first" in state and not state.get("released"):
            state["released"] = 1
            threading.Thread(target=release, daemon=True).start()

    return on_request
