"""The agent's own bookkeeping (shown collapsed as "agent runtime") and its loud configuration.

Paths are classified, not hidden: `query` still returns every runtime record, `view` folds them
into one line per agent. Configuration that decides what the agent may do (permissions, hooks,
MCP servers) is NEVER runtime, wherever it lives: a change to it is a finding.
"""

from __future__ import annotations

import re

from logira.agents.hookconfig import HOOK_COMMAND

# {home} is the run user's passwd home, {uid} the run's uid. Checked in order; first match wins.
_CONFIG = (
    r"{home}/\.claude/settings[^/]*\.json",
    r".*/\.claude/settings[^/]*\.json",
    r".*/\.mcp\.json",
    r"{home}/\.claude\.json\.mcp.*",  # never seen; reserved
    r"/etc/claude-code/.*",
    r"{home}/\.codex/config\.toml",
    r".*/\.codex/config\.toml",
    r".*/\.codex/hooks\.json",
    r".*/\.gemini/settings\.json",
    r"/etc/gemini-cli/.*",
    r"{home}/\.logira(/.*)?",  # logira's own record
)
_RUNTIME = (
    ("claude", r"{home}/\.claude(/.*)?"),
    ("claude", r"{home}/\.claude\.json(\.backup[^/]*|\.lock|\.tmp[^/]*)?"),
    ("claude", r"{home}/\.cache/claude(-cli-nodejs)?(/.*)?"),
    ("claude", r"{home}/\.local/(state|share)/claude(/.*)?"),
    ("claude", r"/tmp/claude-{uid}(/.*)?"),
    ("claude", r"/tmp/claude-[^/]*"),
    ("claude", r"/tmp/cc-socks-{uid}(/.*)?"),
    ("claude", r"/proc/self/fd/\d+/.*"),  # Bun's pool threads: dirfd-relative bookkeeping paths
    ("codex", r"{home}/\.codex(/.*)?"),
    ("codex", r"/tmp/codex[^/]*(/.*)?"),
    ("codex", r"/tmp/\.tmp[A-Za-z0-9]{{6}}(/.*)?"),  # Rust tempfile crate (Codex's arg0 shims)
    ("gemini", r"{home}/\.gemini(/.*)?"),
    ("gemini", r"/tmp/gemini-shell-[A-Za-z0-9]{{6}}(/bgpids\.tmp)?"),  # its shell tool's per-call pid file
    ("any", r"/dev/(null|tty|pts/\d+|ptmx|zero|u?random|fd/\d+|stdin|stdout|stderr)"),
    ("any", r"{home}/\.npm/_logs(/.*)?"),
)

# Process images that are part of an agent's runtime when the agent spawns them outside any
# tool call (Claude builds its shell snapshot and probes git at start; every hook runs logira).
_RUNTIME_ARGV = (
    ("claude", re.compile(r"SNAPSHOT_FILE=.*shell-snapshots/snapshot-")),
    ("logira", HOOK_COMMAND),
    ("claude", re.compile(r"^(?:\S*/)?git (?:rev-parse|status|log|branch|config|remote|worktree|ls-files|diff)\b")),
    ("claude", re.compile(r"^(?:\S*/)?(?:which|command -v|uname|ps|pgrep|rg --version|sh -c (?:which|command -v))\b")),
)


class RuntimeClassifier:
    """Classifies paths and argvs of one run (home/uid fixed)."""

    def __init__(self, home: str, uid: int) -> None:
        home = re.escape(home.rstrip("/") or "/nonexistent-home")
        sub = {"home": home, "uid": str(uid)}
        self._config = re.compile("|".join(f"(?:{p.format(**sub)})" for p in _CONFIG))
        self._runtime = [(agent, re.compile(p.format(**sub))) for agent, p in _RUNTIME]
        # a run touches the same paths over and over: classify each once
        self._config_memo: dict[str, bool] = {}
        self._runtime_memo: dict[str, str] = {}

    def is_config(self, path: str) -> bool:
        """Permission/hook/MCP configuration of an agent (or logira's own record): never runtime."""
        if not path:
            return False
        hit = self._config_memo.get(path)
        if hit is None:
            hit = self._config_memo[path] = self._config.fullmatch(path) is not None
        return hit

    def runtime_agent(self, path: str) -> str:
        """The agent whose bookkeeping `path` is ("any" for /dev/null & co), "" if it is not runtime."""
        if not path:
            return ""
        hit = self._runtime_memo.get(path)
        if hit is None:
            hit = ""
            if not self.is_config(path):
                for agent, rx in self._runtime:
                    if rx.fullmatch(path):
                        hit = agent
                        break
            self._runtime_memo[path] = hit
        return hit

    @staticmethod
    def runtime_exec(argv: list[str]) -> str:
        """The agent whose housekeeping this command line is, "" if none."""
        text = " ".join(argv)[:4096]
        for agent, rx in _RUNTIME_ARGV:
            if rx.search(text):
                return agent
        return ""


AGENT_BINARIES = {"claude": "claude", "codex": "codex", "gemini": "gemini", "claude.exe": "claude",
                  "codex.js": "codex", "codex-linux-x64": "codex", "codex-x86_64-unknown-linux-musl": "codex"}
_LAUNCHERS = frozenset({"node", "bun", "deno", "env", "npx"})  # an agent started through a JS runtime
_PACKAGES = (("@anthropic-ai/claude-code", "claude"), ("claude-code/cli", "claude"), ("@openai/codex", "codex"),
             ("@google/gemini-cli", "gemini"))  # fmt: skip


def agent_of_exec(filename: str, argv: list[str]) -> str:
    """claude | codex | gemini when this exec starts an agent's main process, else "".

    Called for every exec of a run at finalize: the common case (any other program) costs one
    basename and one dict lookup.
    """
    name = filename[filename.rfind("/") + 1 :]
    found = AGENT_BINARIES.get(name)
    if found:
        return found
    if name not in _LAUNCHERS and not name.startswith(("node", "python")):
        return ""
    for a in argv[1:3]:
        found = AGENT_BINARIES.get(a[a.rfind("/") + 1 :])
        if found:
            return found
        for pkg, agent in _PACKAGES:
            if pkg in a:
                return agent
    return ""
