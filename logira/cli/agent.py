"""`logira agent hooks install|uninstall|status <agent>`: wire an agent's hooks to `logira hook`.

Merges, never clobbers (logira/agents/hookconfig.py): shows the diff, keeps a backup of the file
it changes (`<file>.logira-bak-<UTC time>`), writes atomically with the file's mode, and refuses a
file it cannot parse. Runs as the user, on the user's own files. For Codex it also records (and on
uninstall removes) Codex's trust of logira's own hook entries in ~/.codex/config.toml
(logira/agents/codex_trust.py), and `status` says whether Codex trusts them.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from logira.agents import codex_trust as ct
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


class _Edit:
    """One file's change: its text before and after (equal: nothing to write)."""

    def __init__(self, path: Path, before: str, after: str, existed: bool):
        self.path, self.before, self.after, self.existed = path, before, after, existed

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        lines = difflib.unified_diff(
            self.before.splitlines(keepends=True), self.after.splitlines(keepends=True),
            fromfile=f"{self.path} (before)", tofile=f"{self.path} (after)",
        )  # fmt: skip
        return "".join(esc(line.rstrip("\n")) + "\n" for line in lines)


def codex_config_path() -> Path:
    """The user layer's config.toml: Codex reads hook trust from there only (also for project hooks)."""
    return Path(os.path.expanduser("~")) / ".codex" / "config.toml"


def run(args: argparse.Namespace) -> int:
    if getattr(args, "agent_cmd", None) != "hooks":
        raise CliError("usage: logira agent hooks install|uninstall|status claude|codex|gemini", exit_code=2)
    spec = hc.AGENTS[args.agent]
    path = config_path(spec, args.project)
    text, existed = _read(path)
    command = args.hook_command or default_command(spec.agent)
    foreign: list[ct.CodexHook] = []
    try:
        doc = hc.parse_config(text, str(path))
        if args.action == "status":
            if spec.agent == "codex":
                return _codex_status(spec, path, doc, existed, args.project)
            return _status(spec, path, doc, existed)
        if args.action == "install":
            new = hc.install(doc, spec, command, str(path))
        else:
            new = hc.uninstall(doc, str(path))
        edits = [_Edit(path, text, hc.render(new) if new != doc else text, existed)]
        if spec.agent == "codex":
            trust, foreign = _codex_trust_edit(path, doc, new, command if args.action == "install" else None, spec)
            edits.append(trust)
    except hc.HookConfigError as exc:
        raise CliError(str(exc)) from None
    if not any(e.changed for e in edits):
        what = "already installed" if args.action == "install" else "not installed"
        print(f"{esc(str(path))}: logira hook {what}; nothing to change")
        _codex_notes(spec, args.action, foreign)
        return 0
    for e in edits:
        sys.stdout.write(e.diff())
    if args.dry_run:
        print("(dry run: nothing written)")
        return 0
    for e in edits:  # the hook first: a trust written without its hook names nothing Codex runs
        if not e.changed:
            continue
        link = e.path.is_symlink()
        try:
            backup = _write(e.path, e.after, e.existed)
        except OSError as exc:
            raise CliError(f"cannot write {e.path}: {exc.strerror or exc}") from None
        saved = f" (backup: {esc(str(backup))})" if backup else ""
        if e.path == path:
            done = "installed in" if args.action == "install" else "removed from"
            print(f"logira hook {done} {esc(str(path))}{saved}")
        else:
            done = "recorded in" if args.action == "install" else "updated in"
            print(f"Codex hook trust {done} {esc(str(e.path))}{saved}")
        if link:
            print(f"note: {esc(str(e.path))} was a symlink; it is now a file (the link's target is unchanged)")
    _codex_notes(spec, args.action, foreign)
    return 0


def _codex_trust_edit(
    path: Path, old: dict, new: dict, trust_command: str | None, spec: hc.AgentHooks
) -> tuple[_Edit, list[ct.CodexHook]]:
    cfg_path = codex_config_path()
    cfg_text, cfg_existed = _read(cfg_path)
    cfg = ct.parse_toml(cfg_text, str(cfg_path))
    changes, foreign = ct.reconcile(old, new, str(path), ct.trusted_hashes(cfg), trust_command, spec.timeout)
    after = ct.edit_trust(cfg_text, changes, str(cfg_path)) if changes else cfg_text
    return _Edit(cfg_path, cfg_text, after, cfg_existed), foreign


def _codex_notes(spec: hc.AgentHooks, action: str, foreign: list[ct.CodexHook]) -> None:
    if spec.agent != "codex" or action != "install":
        return
    for h in foreign:
        print(f"note: {esc(h.event)}: the logira hook there runs `{esc(h.command)}`, not the command being "
              "installed; it is not trusted (uninstall and install again, or trust it in Codex's /hooks)")  # fmt: skip
    for line in _codex_environment_notes():
        print(f"note: {line}")


def _codex_environment_notes() -> list[str]:
    """What would keep Codex from running the hooks whatever their trust."""
    out = []
    home = os.environ.get("CODEX_HOME")
    if home and Path(home) != codex_config_path().parent:
        out.append(f"CODEX_HOME={esc(home)}: Codex reads hooks.json and config.toml there, not in ~/.codex")
    text, _ = _read(codex_config_path())
    try:
        if ct.hooks_disabled(ct.parse_toml(text, "config.toml")):
            out.append("`[features] hooks = false` in ~/.codex/config.toml: Codex runs no hook")
    except hc.HookConfigError:
        out.append("~/.codex/config.toml is not valid TOML: Codex will not start")
    return out


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
    return 0 if not missing else 1


def _codex_status(spec: hc.AgentHooks, path: Path, doc: dict, existed: bool, project: bool) -> int:
    rc = _status(spec, path, doc, existed)
    ours = [h for h in ct.hooks_of(doc, str(path)) if h.ours]
    if not ours:
        return rc
    cfg_text, _ = _read(codex_config_path())
    cfg = ct.parse_toml(cfg_text, str(codex_config_path()))
    trusted = ct.trusted_hashes(cfg)
    review = [(h, ct.status_of(h, trusted)) for h in ours]
    review = [(h, s) for h, s in review if s != "trusted"]
    if not review:
        print(f"  trusted by Codex: all {len(ours)} (in {esc(str(codex_config_path()))})")
    else:
        rc = 1
        print(f"  needs review in Codex ({len(review)} of {len(ours)} not trusted; Codex skips them):")
        for h, s in review:
            why = "modified since trusted" if s == "modified" else "not trusted"
            print(f"    {esc(h.event)}: {why}  key {esc(h.key)}  hash {h.hash or '(cannot compute)'}")
        print("  run `logira agent hooks install codex` to trust logira's own hook, or review it in Codex's /hooks")
    if project and not _project_trusted(cfg, Path.cwd()):
        print(f"  note: Codex loads {esc(str(path.parent))} only in a trusted project; {esc(str(Path.cwd()))} "
              "is not marked trusted in ~/.codex/config.toml ([projects.\"…\"] trust_level = \"trusted\")")  # fmt: skip
    for line in _codex_environment_notes():
        print(f"  note: {line}")
    return rc


def _project_trusted(cfg: dict, cwd: Path) -> bool:
    projects = cfg.get("projects")
    if not isinstance(projects, dict):
        return False
    for d in (cwd, *cwd.parents):
        entry = projects.get(str(d))
        if isinstance(entry, dict) and entry.get("trust_level") == "trusted":
            return True
    return False
