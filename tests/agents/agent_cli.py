"""Where the real agent CLIs are (installed by `make setup` into build/agents) and how to drive them offline.

Nothing here talks to logira: it builds the HOME, config and environment that make Claude Code or Codex
talk to a scripted mock on 127.0.0.1 instead of a model provider. conftest.py wraps them in `logira run`.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
AGENTS_DIR = REPO / "build" / "agents"
BIN = AGENTS_DIR / "node_modules" / ".bin"
CLAUDE = BIN / "claude"
CODEX = BIN / "codex"
GEMINI = BIN / "gemini"
# Versions are pinned in the Makefile (AGENT_PKGS); the tests only check they are what ran.

CLAUDE_HOOK_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "SubagentStart",
    "SubagentStop",
    "Stop",
    "SessionEnd",
)
CODEX_HOOK_EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SessionEnd")
GEMINI_HOOK_EVENTS = ("SessionStart", "BeforeAgent", "BeforeTool", "AfterTool", "AfterAgent", "SessionEnd")
GEMINI_MODEL = "gemini-2.5-pro"  # named, so the CLI does not first ask a classifier model which to use


def unusable_reason(binary: Path) -> str | None:
    """Why the throwaway user could not run `binary` (None: it can).

    The user needs o+x on every directory from / down and o+rx on the file, after symlinks."""
    if not binary.exists():
        return f"{binary} is not installed (run `make setup`; it needs the npm registry once)"
    real = binary.resolve()
    for d in [*reversed(real.parents)]:
        if not d.stat().st_mode & stat.S_IXOTH:
            return f"{d} is not searchable by other users, so the test user cannot run {real}"
    mode = real.stat().st_mode
    if (mode & (stat.S_IROTH | stat.S_IXOTH)) != (stat.S_IROTH | stat.S_IXOTH):
        return f"{real} is not readable and executable by other users"
    return None


def dump_hook_command(dump_dir: Path, event: str) -> str:
    """A hook command that keeps the JSON it gets on stdin as <dump_dir>/<event>-<ns>.json."""
    return f"cat > {dump_dir}/{event}-$(date +%s%N).json"


def hooks_config(commands: dict[str, list[str]]) -> dict[str, Any]:
    """The `hooks` mapping both CLIs read: event -> [{matcher, hooks: [{type: command, command}]}]."""
    return {
        event: [{"matcher": "", "hooks": [{"type": "command", "command": c} for c in cmds]}]
        for event, cmds in commands.items()
    }


def dump_hooks(dump_dir: Path, events: tuple[str, ...]) -> dict[str, Any]:
    return hooks_config({e: [dump_hook_command(dump_dir, e)] for e in events})


def read_dumped_hooks(dump_dir: Path) -> list[dict[str, Any]]:
    """The dumped hook payloads in the order they fired."""
    files = sorted(dump_dir.glob("*.json"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    return [json.loads(p.read_text()) for p in files]


class AgentHome:
    """The HOME of the agent's sessions: the throwaway user's own (fresh) home, as the passwd entry has
    it, so the agent sees a first start and the rules' `$HOME` is the HOME the agent uses."""

    def __init__(self, user):
        self.user = user
        self.path = user.home
        self.hook_dump = self.path / "hook-dump"
        self.hook_dump.mkdir(mode=0o700, exist_ok=True)
        self.chown(self.hook_dump)

    def chown(self, path: Path) -> None:
        os.chown(path, self.user.uid, self.user.gid)

    def write(self, rel: str, text: str, mode: int = 0o600) -> Path:
        """Write a file under HOME as the user would have it (parents created and owned by the user)."""
        path = self.path / rel
        missing = [p for p in reversed(path.parents) if not p.exists()]
        path.parent.mkdir(parents=True, exist_ok=True)
        for p in missing:
            self.chown(p)
        path.write_text(text)
        os.chmod(path, mode)
        self.chown(path)
        return path

    # -- Claude Code
    def claude_settings(self, settings: dict[str, Any]) -> Path:
        return self.write(".claude/settings.json", json.dumps(settings, indent=2) + "\n")

    def claude_env(self, mock_url: str) -> dict[str, str]:
        return {
            "HOME": str(self.path),
            "SHELL": "/bin/bash",  # Claude runs Bash tool calls in $SHELL (zsh when unset and installed)
            "ANTHROPIC_BASE_URL": mock_url,
            "ANTHROPIC_API_KEY": "sk-ant-mock",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }

    # -- Codex
    def codex_config(self, mock_url: str, extra: str = "") -> Path:
        """~/.codex/config.toml as the user has it before installing hooks (it is written whole: call it
        before `logira agent hooks install codex`, which adds the hooks' trust to it).
        No traffic beyond the mock: no plugin marketplace sync (a `git ls-remote` to GitHub), no update
        check, no analytics."""
        text = (
            'model = "gpt-mock-1"\n'
            'model_provider = "mock"\n'
            "check_for_update_on_startup = false\n"
            f"{extra}\n"
            "[features]\n"
            "plugins = false\n"
            "remote_plugin = false\n"
            "in_app_updates = false\n"
            "[analytics]\n"
            "enabled = false\n"
            "[model_providers.mock]\n"
            'name = "mock"\n'
            f'base_url = "{mock_url}/v1"\n'
            'wire_api = "responses"\n'
            'env_key = "MOCK_API_KEY"\n'
            "request_max_retries = 0\n"
            "stream_max_retries = 0\n"
        )
        return self.write(".codex/config.toml", text)

    def codex_hooks(self, hooks: dict[str, Any]) -> Path:
        return self.write(".codex/hooks.json", json.dumps({"hooks": hooks}, indent=2) + "\n")

    def codex_env(self) -> dict[str, str]:
        return {"HOME": str(self.path), "SHELL": "/bin/bash", "MOCK_API_KEY": "sk-mock"}

    # -- Gemini CLI
    def gemini_settings(self, hooks: dict[str, Any] | None = None) -> Path:
        """~/.gemini/settings.json: API-key auth, no usage statistics or telemetry, and hooks if given
        (merged into what is there, so `logira agent hooks install gemini` can come before or after)."""
        path = self.path / ".gemini" / "settings.json"
        doc = json.loads(path.read_text()) if path.exists() else {}
        doc.setdefault("security", {}).setdefault("auth", {})["selectedType"] = "gemini-api-key"
        doc.setdefault("privacy", {})["usageStatisticsEnabled"] = False
        doc["telemetry"] = {"enabled": False}
        doc.setdefault("general", {}).update(
            {"enableAutoUpdate": False, "enableAutoUpdateNotification": False}
        )
        if hooks:
            doc.setdefault("hooks", {}).update(hooks)
        return self.write(".gemini/settings.json", json.dumps(doc, indent=2) + "\n")

    def gemini_env(self, mock_url: str) -> dict[str, str]:
        return {
            "HOME": str(self.path),
            "SHELL": "/bin/bash",
            "GEMINI_API_KEY": "mock-key",
            "GOOGLE_GEMINI_BASE_URL": mock_url,
            "GEMINI_CLI_TRUST_WORKSPACE": "true",  # headless runs refuse an untrusted folder otherwise
        }

    def gemini_transcripts(self) -> list[Path]:
        return sorted((self.path / ".gemini" / "tmp").glob("*/chats/session-*.jsonl"))

    def claude_transcripts(self) -> list[Path]:
        return sorted((self.path / ".claude" / "projects").glob("*/*.jsonl"))

    def codex_rollouts(self) -> list[Path]:
        return sorted((self.path / ".codex" / "sessions").glob("*/*/*/rollout-*.jsonl"))


def claude_argv(prompt: str, *extra: str) -> list[str]:
    return [str(CLAUDE), "-p", prompt, "--dangerously-skip-permissions", *extra]


def codex_argv(prompt: str, *extra: str, bypass_hook_trust: bool = False) -> list[str]:
    trust = ["--dangerously-bypass-hook-trust"] if bypass_hook_trust else []
    return [
        str(CODEX),
        "exec",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        *trust,
        *extra,
        prompt,
    ]


def gemini_argv(prompt: str, *extra: str) -> list[str]:
    return [str(GEMINI), "-p", prompt, "--yolo", "-m", GEMINI_MODEL, *extra]
