"""Regenerate tests/agents/fixtures/ from the REAL agent CLIs (run as root: `python tests/agents/capture_fixtures.py`).

Runs Claude Code and Codex (from build/agents) offline against the scripted mocks as a throwaway user,
with every hook event dumping its stdin, then writes sanitized copies of the hook payloads, the
Claude transcript and the Codex rollout: paths become /home/agent/..., long strings and lists are cut
(the transcripts carry the whole system prompt), the mock's port becomes 8080. Ids are kept: they are
random and the fixtures' lines refer to each other through them.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from agent_cli import (  # noqa: E402
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
from mock_anthropic import ClaudeScript, MockAnthropic, bash  # noqa: E402
from mock_common import ToolCall  # noqa: E402
from mock_gemini import GeminiScript, MockGemini, shell  # noqa: E402
from mock_openai import CodexScript, MockOpenAI, exec_command  # noqa: E402

FIXTURES = HERE / "fixtures"


def _suite_conftest():
    """tests/conftest.py (its throwaway-user helpers), loaded by path: `conftest` by name is ambiguous."""
    spec = importlib.util.spec_from_file_location("suite_conftest", HERE.parent / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAX_STR = 240
MAX_LIST = 12
# The wrapper Claude puts around a Bash command, and the variables it sets: the tool call prints both.
SHOW_SHELL = "tr '\\0' ' ' < /proc/$$/cmdline; echo; env | grep -E '^(CLAUDE|CODEX|GEMINI|AI_AGENT|TRACEPARENT)' | sort"


def cut(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_STR else value[:MAX_STR] + f"…[{len(value) - MAX_STR} more chars]"
    if isinstance(value, list):
        items = [cut(v) for v in value[:MAX_LIST]]
        return items + ([f"…[{len(value) - MAX_LIST} more items]"] if len(value) > MAX_LIST else [])
    if isinstance(value, dict):
        return {k: cut(v) for k, v in value.items()}
    return value


class Sanitizer:
    def __init__(self, home: Path, workspace: Path, user, port: int):
        self.subs = [
            (slug(workspace), "-home-agent-project"),
            (str(workspace), "/home/agent/project"),
            (str(home), "/home/agent"),
            (str(user.home), "/home/agent"),
            (str(HERE.parents[1]), "/opt/logira"),
            (f"127.0.0.1:{port}", "127.0.0.1:8080"),
            (user.name, "agent"),
            (f"claude-{user.uid}", "claude-1000"),
            (f"cc-socks-{user.uid}", "cc-socks-1000"),
        ]

    def text(self, s: str) -> str:
        for old, new in self.subs:
            s = s.replace(old, new)
        return re.sub(r"gemini-shell-[A-Za-z0-9]{6}", "gemini-shell-XXXXXX", s)

    def value(self, v: Any) -> Any:
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {self.text(k): self.value(x) for k, x in v.items()}
        return v


def slug(path: Path) -> str:
    """The directory name Claude Code gives a cwd under ~/.claude/projects/."""
    return re.sub(r"[^A-Za-z0-9]", "-", str(path))


def write_hooks(payloads: list[dict[str, Any]], hooks_dir: Path, san: Sanitizer) -> None:
    """One file per hook payload, named <order it fired>-<event>[-<tool>].json."""
    shutil.rmtree(hooks_dir, ignore_errors=True)
    hooks_dir.mkdir(parents=True)
    for i, payload in enumerate(payloads, 1):
        name = f"{i:02d}-{payload['hook_event_name']}-{payload.get('tool_name', '')}".rstrip("-")
        (hooks_dir / f"{name}.json").write_text(json.dumps(san.value(payload), indent=2) + "\n")


def write_jsonl(src: Path, dst: Path, san: Sanitizer) -> None:
    """A transcript or rollout, line by line: sanitized, long strings cut."""
    lines = [json.dumps(cut(san.value(json.loads(ln)))) for ln in src.read_text().splitlines()]
    dst.write_text("\n".join(lines) + "\n")


def run_as(user, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    full_env = {**user.env(), **env}
    return subprocess.run(
        user.cmd(*argv), env=full_env, cwd=cwd, capture_output=True, timeout=300, stdin=subprocess.DEVNULL
    )


def capture_claude(user, out: Path) -> None:
    home = AgentHome(user)
    ws = home.path / "project"
    ws.mkdir()
    home.chown(ws)
    home.claude_settings({"hooks": dump_hooks(home.hook_dump, CLAUDE_HOOK_EVENTS)})
    with MockAnthropic() as mock:
        mock.add(
            ClaudeScript(
                [
                    [bash("echo hello > notes.txt", "Write a note")],
                    [ToolCall("Write", {"file_path": str(ws / "hello.py"), "content": "print('hi')\n"})],
                    [
                        ToolCall(
                            "Edit",
                            {"file_path": str(ws / "hello.py"), "old_string": "hi", "new_string": "hello"},
                        )
                    ],
                    [bash(SHOW_SHELL, "Show the shell")],
                    [bash("exit 3", "Fail on purpose")],
                    [bash("sleep 1", "Sleep in the background", run_in_background=True)],
                ],
                final_text="all done",
            )
        )
        res = run_as(user, claude_argv("do the steps"), home.claude_env(mock.url), ws)
        assert res.returncode == 0, res.stderr.decode()
        san = Sanitizer(home.path, ws, user, mock.port)
        write_hooks(read_dumped_hooks(home.hook_dump), out / "claude_hooks", san)
        (transcript,) = home.claude_transcripts()
        write_jsonl(transcript, out / "claude_transcript.jsonl", san)


def capture_codex(user, out: Path) -> None:
    home = AgentHome(user)
    ws = home.path / "project"
    ws.mkdir()
    home.chown(ws)
    with MockOpenAI() as mock:
        home.codex_config(mock.url)
        home.codex_hooks(dump_hooks(home.hook_dump, CODEX_HOOK_EVENTS))
        mock.add(
            CodexScript(
                [
                    [exec_command("echo hello > notes.txt")],
                    [exec_command(SHOW_SHELL)],
                    [exec_command("exit 3")],
                ],
                final_text="all done",
            )
        )
        res = run_as(user, codex_argv("do the steps", bypass_hook_trust=True), home.codex_env(), ws)
        assert res.returncode == 0, res.stderr.decode()
        san = Sanitizer(home.path, ws, user, mock.port)
        write_hooks(read_dumped_hooks(home.hook_dump), out / "codex_hooks", san)
        (rollout,) = home.codex_rollouts()
        write_jsonl(rollout, out / "codex_rollout.jsonl", san)
        (out / "codex_stderr.txt").write_text(san.text(res.stderr.decode()))


def capture_gemini(user, out: Path) -> None:
    home = AgentHome(user)
    ws = home.path / "project"
    ws.mkdir()
    home.chown(ws)
    home.gemini_settings(dump_hooks(home.hook_dump, GEMINI_HOOK_EVENTS))
    with MockGemini() as mock:
        mock.add(
            GeminiScript(
                [
                    [shell("echo hello > notes.txt", "Write a note")],
                    [shell(SHOW_SHELL, "Show the shell")],
                    [shell("exit 3", "Fail on purpose")],
                ],
                final_text="all done",
            )
        )
        res = run_as(user, gemini_argv("do the steps"), home.gemini_env(mock.url), ws)
        assert res.returncode == 0, res.stderr.decode()
        san = Sanitizer(home.path, ws, user, mock.port)
        write_hooks(read_dumped_hooks(home.hook_dump), out / "gemini_hooks", san)
        (transcript,) = home.gemini_transcripts()
        write_jsonl(transcript, out / "gemini_transcript.jsonl", san)


def main() -> None:
    users = _suite_conftest()
    for capture in (capture_claude, capture_codex, capture_gemini):  # a fresh user (and HOME) for each CLI
        user = users._make_user()
        try:
            FIXTURES.mkdir(exist_ok=True)
            capture(user, FIXTURES)
        finally:
            users._drop_user(user)
    print(f"fixtures written to {FIXTURES}")


if __name__ == "__main__":
    main()
