"""`logira agent hooks install|uninstall|status <agent>`: wire an agent's hooks to `logira hook`.

Merges, never clobbers (logira/agents/hookconfig.py): shows the diff, keeps a backup of the file
it changes (`<file>.logira-bak-<UTC time>`), writes atomically with the file's mode, and refuses a
file it cannot parse. Runs as the user, on the user's own files.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

from logira.agents import hookconfig as hc
from logira.cli import readside
from logira.cli.errors import CliError
from logira.render.escape import esc

EXAMPLES = """\
  logira agent hooks install claude            # ~/.claude/settings.json
  logira agent hooks install claude --project  # ./.claude/settings.json (shared with the repo)
  logira agent hooks install codex --dry-run   # show the diff only
  logira agent hooks status claude
  logira agent hooks uninstall gemini
"""


def register(subparsers) -> None:
    p = readside.add_parser(
        subparsers, "agent", "Install, remove or check logira's hooks in an agent's configuration.",
        "Agent hooks let logira name the tool call behind every process, file and connection "
        "(docs/agents.md). The configuration is merged, never overwritten; a backup is kept.", EXAMPLES,
    )  # fmt: skip
    sub = p.add_subparsers(dest="agent_cmd", metavar="hooks")
    h = sub.add_parser("hooks", help="manage logira's hook entries")
    h.add_argument("action", choices=("install", "uninstall", "status"))
    h.add_argument("agent", choices=tuple(hc.AGENTS))
    h.add_argument("--project", action="store_true", help="the project's config (in the current directory)")
    h.add_argument("--dry-run", action="store_true", help="show the diff, change nothing")
    h.add_argument("--command", dest="hook_command", metavar="CMD",
                   help="hook command to install (default: this install's python -I -S .../logira/client/hook.py --agent A)")  # fmt: skip
    h.add_argument("--yes", action="store_true", help="accepted for scripts (nothing is ever asked)")
    p.set_defaults(func=run)


def config_path(spec: hc.AgentHooks, project: bool) -> Path:
    if project:
        return Path.cwd() / spec.project_path
    return Path(os.path.expanduser("~")) / spec.user_path


def _stable_prefix() -> Path:
    """sys.prefix by the name that survives an upgrade: `make install` links $PREFIX/bin/logira to
    lib/logira/current/bin/logira, and `current` moves to the new venv (scripts/install.py)."""
    real = Path(os.path.realpath(sys.prefix))
    exe = shutil.which("logira")
    step = Path(os.path.abspath(exe)) if exe else None
    for _ in range(8):  # follow the launcher's links one at a time; the first name of our venv wins
        if step is None:
            break
        if Path(os.path.realpath(step.parent.parent)) == real:
            return step.parent.parent
        if not step.is_symlink():
            break
        step = Path(os.path.normpath(step.parent / os.readlink(step)))
    return Path(sys.prefix)


def default_command(agent: str) -> str:
    """The hook client run directly by this install's interpreter with -I -S (logira/client/hook.py):
    the same program as `logira hook`, without site-packages start-up on every tool call."""
    from logira.client import hook

    prefix, real = _stable_prefix(), os.path.realpath(sys.prefix)
    script = Path(os.path.abspath(hook.__file__))
    if str(script).startswith(real + os.sep):  # a wheel install: name the file through the stable prefix
        script = prefix / os.path.relpath(script, real)
    python = prefix / "bin" / "python3"
    if not python.exists():
        python = Path(sys.executable)
    return f"{shlex.quote(str(python))} -I -S {shlex.quote(str(script))} --agent {agent}"


def _read(path: Path) -> tuple[str, bool]:
    try:
        return path.read_text(), True
    except FileNotFoundError:
        return "", False
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None


def _write(path: Path, text: str, existed: bool) -> Path | None:
    """Backup (if the file existed), then atomic replace keeping its mode. Returns the backup path."""
    backup = None
    mode = 0o600
    if existed:
        st = path.stat()
        mode = st.st_mode & 0o777
        backup = path.with_name(f"{path.name}.logira-bak-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        shutil.copy2(path, backup)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.logira-tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return backup


def run(args: argparse.Namespace) -> int:
    if getattr(args, "agent_cmd", None) != "hooks":
        raise CliError("usage: logira agent hooks install|uninstall|status claude|codex|gemini", exit_code=2)
    spec = hc.AGENTS[args.agent]
    path = config_path(spec, args.project)
    text, existed = _read(path)
    try:
        doc = hc.parse_config(text, str(path))
        if args.action == "status":
            return _status(spec, path, doc, existed)
        if args.action == "install":
            new = hc.install(doc, spec, args.hook_command or default_command(spec.agent), str(path))
        else:
            new = hc.uninstall(doc, str(path))
    except hc.HookConfigError as exc:
        raise CliError(str(exc)) from None
    if new == doc:
        what = "already installed" if args.action == "install" else "not installed"
        print(f"{esc(str(path))}: logira hook {what}; nothing to change")
        return 0
    new_text = hc.render(new)
    diff = difflib.unified_diff(
        text.splitlines(keepends=True), new_text.splitlines(keepends=True),
        fromfile=f"{path} (before)", tofile=f"{path} (after)",
    )  # fmt: skip
    sys.stdout.write("".join(esc(line.rstrip("\n")) + "\n" for line in diff))
    if args.dry_run:
        print("(dry run: nothing written)")
        return 0
    try:
        backup = _write(path, new_text, existed)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
    done = "installed in" if args.action == "install" else "removed from"
    print(f"logira hook {done} {esc(str(path))}" + (f" (backup: {esc(str(backup))})" if backup else ""))
    if args.action == "install" and spec.agent == "codex" and not _codex_hooks_enabled():
        print("note: Codex runs hooks only with `[features] codex_hooks = true` in ~/.codex/config.toml, "
              "and asks you to trust new hooks once (/hooks)")  # fmt: skip
    return 0


def _codex_hooks_enabled() -> bool:
    text, _ = _read(Path(os.path.expanduser("~/.codex/config.toml")))
    return re.search(r"(?m)^\s*codex_hooks\s*=\s*true\b", text) is not None


def _status(spec: hc.AgentHooks, path: Path, doc: dict, existed: bool) -> int:
    hooked = hc.hooked_events(doc)
    missing = [e for e in spec.events if e not in hooked]
    print(f"{spec.agent}: {esc(str(path))}" + ("" if existed else " (does not exist)"))
    if not hooked:
        print("  logira hook: not installed")
        return 1
    print(f"  logira hook on: {', '.join(esc(e) for e in hooked)}")
    if missing:
        print(f"  missing: {', '.join(missing)} (run `logira agent hooks install {spec.agent}`)")
    if spec.agent == "codex" and not _codex_hooks_enabled():
        print("  note: `[features] codex_hooks = true` is not set in ~/.codex/config.toml")
    return 0 if not missing else 1
