#!/usr/bin/env python3
"""`make install` / `make uninstall`: put logira on this machine, and take it off again.

Runs with the system python3 and the standard library only (it creates the environment logira runs
in). Every path below is under DESTDIR when one is given (packagers); PREFIX defaults to /usr/local.

    $PREFIX/lib/logira/venv-<version>-<digest>/   private virtualenv holding the wheel (BPF objects inside)
    $PREFIX/lib/logira/current -> venv-...         switched atomically: an upgrade never leaves a half state
    $PREFIX/lib/logira/install-manifest.json       everything install put there; uninstall reads it
    $PREFIX/bin/logira, $PREFIX/bin/logirad        -> ../lib/logira/current/bin/...
    $PREFIX/share/man/man1/logira*.1, man8/logirad.8          generated from the argparse parsers
    $PREFIX/share/bash-completion/completions/logira, $PREFIX/share/zsh/site-functions/_logira
    $PREFIX/share/doc/logira/*.md, $PREFIX/share/logira/rules/*.yaml (the built-in ruleset, to read)
    $UNITDIR/logirad.service                       ExecStart= the installed logirad
    $SYSCONFDIR/logira/logirad.toml, rules.d/      config: an edited one is never overwritten

An older venv that a running logirad still uses is kept (removing it under the daemon would break its
shutdown, which seals the active runs) and removed by the next install or the uninstall.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MANIFEST = "install-manifest.json"
UNIT = "logirad.service"
DEFAULT_STATE_DIR = "/var/lib/logira"
# Where systemd looks for system units (systemd.unit(5)); a unit elsewhere cannot be enabled.
SYSTEMD_UNIT_PATHS = ("/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
                      "/lib/systemd/system")  # fmt: skip


class InstallError(Exception):
    """One line for the operator."""


def say(msg: str) -> None:
    print(f"logira: {msg}", flush=True)


class Layout:
    """Final paths (what the installed files are called at run time) and where they are written."""

    def __init__(self, prefix: str, destdir: str, sysconfdir: str, unitdir: str) -> None:
        if not os.path.isabs(prefix) or not os.path.isabs(sysconfdir):
            raise InstallError(f"PREFIX and SYSCONFDIR must be absolute paths (got {prefix!r}, {sysconfdir!r})")
        self.prefix = Path(prefix)
        self.destdir = destdir
        self.lib = self.prefix / "lib" / "logira"
        self.bin = self.prefix / "bin"
        self.share = self.prefix / "share"
        self.docs = self.share / "doc" / "logira"
        self.rules = self.share / "logira" / "rules"
        self.man = self.share / "man"
        self.bash_completion = self.share / "bash-completion" / "completions" / "logira"
        self.zsh_completion = self.share / "zsh" / "site-functions" / "_logira"
        self.unitdir = Path(unitdir or self.prefix / "lib" / "systemd" / "system")
        self.etc = Path(sysconfdir) / "logira"
        self.config = self.etc / "logirad.toml"

    def real(self, path: Path) -> Path:
        """Where `path` is written: under DESTDIR when there is one."""
        return Path(self.destdir + str(path)) if self.destdir else path


class Manifest:
    """What an install put where, so that uninstall removes exactly that."""

    def __init__(self, data: dict | None = None) -> None:
        data = data or {}
        self.version: str = data.get("version", "")
        self.files: list[str] = list(data.get("files", []))
        self.dirs: list[str] = list(data.get("dirs", []))
        self.venvs: list[str] = list(data.get("venvs", []))
        self.config_sha256: str = data.get("config_sha256", "")
        self.config_dist: str = data.get("config_dist", "")

    @classmethod
    def load(cls, lay: Layout) -> Manifest | None:
        try:
            return cls(json.loads(lay.real(lay.lib / MANIFEST).read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise InstallError(f"cannot read {lay.lib / MANIFEST}: {exc}; remove it to start over") from None

    def save(self, lay: Layout) -> None:
        data = {
            "version": self.version,
            "files": sorted(set(self.files)),
            "dirs": sorted(set(self.dirs)),
            "venvs": sorted(set(self.venvs)),
            "config_sha256": self.config_sha256,
            "config_dist": self.config_dist,
        }
        write_file(lay.real(lay.lib / MANIFEST), json.dumps(data, indent=2) + "\n", 0o644)


# -- small file helpers ---------------------------------------------------------------------------


def sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return ""


def write_file(path: Path, content: str | bytes, mode: int) -> None:
    """Atomic replace: readers see the old file or the new one, never half of one."""
    data = content.encode() if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def symlink(path: Path, target: str) -> None:
    """Atomically point `path` at `target` (relative targets keep DESTDIR installs correct)."""
    tmp = path.with_name(f".{path.name}.new")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, path)


def make_dirs(lay: Layout, path: Path, man: Manifest) -> None:
    """mkdir -p, remembering every directory this install created (uninstall removes them if empty)."""
    missing = []
    p = path
    while not lay.real(p).exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    if lay.destdir:
        os.makedirs(lay.destdir, exist_ok=True)
    for d in reversed(missing):
        lay.real(d).mkdir(mode=0o755)
        man.dirs.append(str(d))


# -- install --------------------------------------------------------------------------------------


def find_wheel(wheel_dir: Path) -> Path:
    wheels = sorted(wheel_dir.glob("logira-*.whl"))
    if len(wheels) != 1:
        raise InstallError(f"expected one logira wheel in {wheel_dir}, found {len(wheels)}: run `make wheel`")
    return wheels[0]


def wheel_identity(wheel: Path) -> tuple[str, str]:
    """(version, digest of its RECORD): equal for the same content, whenever it was built."""
    version = wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as zf:
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        digest = hashlib.sha256(zf.read(record)).hexdigest()[:12]
    return version, digest


def build_venv(lay: Layout, venv: Path, wheel: Path) -> None:
    """A fresh venv with the wheel and its dependencies (pip's cache is reused)."""
    real = lay.real(venv)
    if (real / ".logira-complete").exists():
        say(f"{venv} is already installed (same wheel content): reusing it")
        return
    shutil.rmtree(real, ignore_errors=True)  # a half-built one from an interrupted install
    run([sys.executable, "-m", "venv", str(real)])
    run([str(real / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)])
    if lay.destdir:
        _strip_destdir_from_scripts(lay, real)
    (real / ".logira-complete").write_text(wheel.name + "\n")


def _strip_destdir_from_scripts(lay: Layout, real_venv: Path) -> None:
    """venv scripts name their interpreter by absolute path: the staged path must become the final one."""
    staged = lay.destdir.rstrip("/").encode()
    for script in (real_venv / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if staged in data:
            script.write_bytes(data.replace(staged + b"/", b"/"))


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, check=False, **kw)
    if done.returncode != 0:
        raise InstallError(f"`{' '.join(argv)}` failed (exit {done.returncode})")
    return done


def install_generated(lay: Layout, venv: Path, man: Manifest) -> None:
    """Completions and man pages, produced by the installed package from its own parsers."""
    py = str(lay.real(venv) / "bin" / "python")
    for path, shell in ((lay.bash_completion, "bash"), (lay.zsh_completion, "zsh")):
        make_dirs(lay, path.parent, man)
        out = run([py, "-m", "logira.cli.main", "completion", shell], capture_output=True, text=True)
        write_file(lay.real(path), out.stdout, 0o644)
        man.files.append(str(path))
    with tempfile.TemporaryDirectory() as tmp:
        run([py, "-m", "logira.cli.manpage", tmp])
        for page in sorted(Path(tmp).iterdir()):
            dest = lay.man / f"man{page.suffix[1:]}" / page.name
            make_dirs(lay, dest.parent, man)
            write_file(lay.real(dest), page.read_bytes(), 0o644)
            man.files.append(str(dest))


def install_copies(lay: Layout, man: Manifest) -> None:
    """Docs, the reference copy of the built-in rules, the unit."""
    for dest_dir, sources in (
        (lay.docs, [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]),
        (lay.rules, sorted((REPO / "logira" / "rules").glob("*.yaml"))),
    ):
        make_dirs(lay, dest_dir, man)
        for src in sources:
            write_file(lay.real(dest_dir / src.name), src.read_bytes(), 0o644)
            man.files.append(str(dest_dir / src.name))
    unit = (REPO / "config" / "systemd" / UNIT).read_text()
    unit = unit.replace("ExecStart=/usr/bin/logirad", f"ExecStart={lay.bin / 'logirad'}")
    unit = unit.replace(
        "Documentation=file:/usr/share/doc/logira/daemon.md",
        f"Documentation=man:logirad(8) file:{lay.docs / 'daemon.md'}",
    )
    make_dirs(lay, lay.unitdir, man)
    write_file(lay.real(lay.unitdir / UNIT), unit, 0o644)
    man.files.append(str(lay.unitdir / UNIT))


def install_config(lay: Layout, man: Manifest, old: Manifest | None) -> str:
    """The default config: installed, updated while unedited, never overwritten once edited."""
    default = (REPO / "config" / "logirad.toml").read_bytes()
    new_sha = hashlib.sha256(default).hexdigest()
    make_dirs(lay, lay.etc, man)
    make_dirs(lay, lay.etc / "rules.d", man)
    real = lay.real(lay.config)
    current = sha256(real)
    installed_before = old.config_sha256 if old else ""
    dist = lay.config.with_name(lay.config.name + ".dist")
    man.config_dist = old.config_dist if old else ""
    if current in ("", new_sha) or current == installed_before:
        if current != new_sha:
            write_file(real, default, 0o644)
        man.config_sha256 = new_sha
        if man.config_dist:  # the edited copy is gone or matches again: no .dist needed any more
            with contextlib.suppress(FileNotFoundError):
                lay.real(Path(man.config_dist)).unlink()
            man.config_dist = ""
        return f"config {lay.config}" + (" (unchanged)" if current == new_sha else "")
    # edited by the admin: keep it; a default that changed since goes beside it
    man.config_sha256 = installed_before
    if new_sha == installed_before:
        return f"kept your edited {lay.config} (the default has not changed)"
    write_file(lay.real(dist), default, 0o644)
    man.config_dist = str(dist)
    return f"kept your edited {lay.config}; the new default is {dist} (compare and merge by hand)"


def processes_using(paths: list[Path]) -> dict[int, Path]:
    """pid -> the venv it runs from: any process with a file of one of `paths` mapped or as argv[0]."""
    prefixes = [str(p).rstrip("/") + "/" for p in paths]
    found: dict[int, Path] = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/maps") as f:
                maps = f.read()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        texts = [maps, *(c.decode(errors="replace") for c in cmdline[:2])]
        for prefix, path in zip(prefixes, paths, strict=True):
            if any(prefix in t for t in texts):
                found[int(entry)] = path
                break
    return found


def remove_unused_venvs(lay: Layout, man: Manifest, keep: Path) -> list[str]:
    """Old venvs nobody runs from are removed; the ones in use stay listed for next time."""
    notes = []
    old = [Path(v) for v in man.venvs if Path(v) != keep]
    in_use = processes_using([lay.real(v) for v in old]) if old else {}
    busy = {v for v in in_use.values()}
    man.venvs = [str(keep)]
    for v in old:
        if lay.real(v) in busy:
            man.venvs.append(str(v))
            pids = sorted(p for p, w in in_use.items() if w == lay.real(v))
            notes.append(f"kept {v}: still used by pid {', '.join(map(str, pids))} (restart logirad to switch)")
        else:
            shutil.rmtree(lay.real(v), ignore_errors=True)
    return notes


def systemd_is_pid1() -> bool:
    """sd_booted(): systemd creates /run/systemd/system only when it is the init system."""
    return os.path.isdir("/run/systemd/system")


def pid1_name() -> str:
    try:
        return Path("/proc/1/comm").read_text().strip()
    except OSError:
        return "?"


def start_service(lay: Layout, version: str, notes: list[str]) -> None:
    if lay.destdir:
        say(f"staged {version} under DESTDIR={lay.destdir}: enable the unit from the package's post-install step")
        return
    if systemd_is_pid1():
        if str(lay.unitdir) not in SYSTEMD_UNIT_PATHS:
            say(
                f"installed {version}; the unit is in {lay.unitdir}, which systemd does not search: "
                f"rerun with UNITDIR=/etc/systemd/system to have logirad enabled and started"
            )
            return
        run(["systemctl", "daemon-reload"])
        run(["systemctl", "enable", "--quiet", UNIT])
        # restart, not start: an upgrade must run the new version. Active runs are finalized as
        # "interrupted" and sealed by the old daemon (SIGTERM), as docs/daemon.md promises.
        run(["systemctl", "restart", UNIT])
        say(f"installed {version}; logirad enabled and (re)started (systemctl status logirad)")
        return
    busy = " ".join(notes)
    say(
        f"installed {version}; systemd is not PID 1 here ({pid1_name()}), so start the daemon yourself: "
        f"sudo {lay.bin / 'logirad'} &" + (f" ({busy})" if busy else "")
    )


def install(args: argparse.Namespace) -> int:
    lay = Layout(args.prefix, args.destdir, args.sysconfdir, args.unitdir)
    wheel = find_wheel(Path(args.wheel_dir))
    version, digest = wheel_identity(wheel)
    old = Manifest.load(lay)
    man = Manifest()
    man.version = version
    if old is not None:
        man.dirs = list(old.dirs)  # directories an earlier install created stay ours
        man.venvs = list(old.venvs)
    make_dirs(lay, lay.lib, man)
    venv = lay.lib / f"venv-{version}-{digest}"
    build_venv(lay, venv, wheel)
    man.venvs.append(str(venv))
    symlink(lay.real(lay.lib / "current"), venv.name)
    man.files.append(str(lay.lib / "current"))
    make_dirs(lay, lay.bin, man)
    for exe in ("logira", "logirad"):
        symlink(lay.real(lay.bin / exe), os.path.relpath(lay.lib / "current" / "bin" / exe, lay.bin))
        man.files.append(str(lay.bin / exe))
    install_generated(lay, venv, man)
    install_copies(lay, man)
    config_note = install_config(lay, man, old)
    if old is not None:  # files of the older install that this one no longer has
        for stale in set(old.files) - set(man.files):
            with contextlib.suppress(FileNotFoundError):
                lay.real(Path(stale)).unlink()
    notes = remove_unused_venvs(lay, man, venv)
    man.save(lay)
    say(config_note)
    start_service(lay, version, notes)
    return 0


# -- uninstall ------------------------------------------------------------------------------------


def stop_daemons(lay: Layout, man: Manifest) -> None:
    """Stop what runs from this install: its active runs are sealed as interrupted (SIGTERM)."""
    if lay.destdir:
        return
    if systemd_is_pid1():
        subprocess.run(["systemctl", "disable", "--now", "--quiet", UNIT], check=False)
    venvs = [Path(v) for v in man.venvs]
    pids = processes_using(venvs)
    daemons = [pid for pid in pids if b"logirad" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    for pid in daemons:
        say(f"stopping logirad (pid {pid}), which runs from this install")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while daemons and time.monotonic() < deadline:
        daemons = [pid for pid in daemons if _alive(pid)]
        time.sleep(0.1)
    if daemons:
        raise InstallError(f"logirad (pid {daemons[0]}) did not stop within 30 s; stop it, then run uninstall again")


def _alive(pid: int) -> bool:
    """Running (a zombie has exited: only its parent has not collected the status yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def state_dir(lay: Layout) -> Path:
    """The state dir the config names (PURGE removes it), else the default."""
    import tomllib

    try:
        return Path(tomllib.loads(lay.real(lay.config).read_text()).get("state_dir", DEFAULT_STATE_DIR))
    except (OSError, ValueError):
        return Path(DEFAULT_STATE_DIR)


def uninstall(args: argparse.Namespace) -> int:
    lay = Layout(args.prefix, args.destdir, args.sysconfdir, args.unitdir)
    man = Manifest.load(lay)
    if man is None:
        say(f"nothing to uninstall: no install manifest at {lay.lib / MANIFEST}")
        return 0
    purge = args.purge == "1"
    stop_daemons(lay, man)
    state = state_dir(lay)
    for f in man.files:
        with contextlib.suppress(FileNotFoundError):
            lay.real(Path(f)).unlink()
    for v in man.venvs:
        shutil.rmtree(lay.real(Path(v)), ignore_errors=True)
    if man.config_dist:
        with contextlib.suppress(FileNotFoundError):
            lay.real(Path(man.config_dist)).unlink()
    config_sha = sha256(lay.real(lay.config))
    if config_sha and (purge or config_sha == man.config_sha256):
        lay.real(lay.config).unlink()
    elif config_sha:
        say(f"kept your edited {lay.config} (PURGE=1 removes it)")
    if purge:
        shutil.rmtree(lay.real(lay.etc), ignore_errors=True)
        shutil.rmtree(lay.real(state), ignore_errors=True)
        say(f"purged {lay.etc} and {state}")
    else:
        say(f"kept {state} (seals of finished runs; PURGE=1 removes it); runs in users' homes are never touched")
    lay.real(lay.lib / MANIFEST).unlink()
    for d in sorted(set(man.dirs), key=lambda p: p.count("/"), reverse=True):
        with contextlib.suppress(FileNotFoundError, OSError):
            lay.real(Path(d)).rmdir()  # only when empty: others' files in shared dirs stay
    if not lay.destdir and systemd_is_pid1():
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    say(f"uninstalled logira {man.version} from {lay.prefix}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="install.py", description="install or uninstall logira")
    ap.add_argument("action", choices=["install", "uninstall"])
    ap.add_argument("--prefix", default="/usr/local")
    ap.add_argument("--destdir", default="")
    ap.add_argument("--sysconfdir", default="/etc")
    ap.add_argument("--unitdir", default="", help="systemd unit dir (default $PREFIX/lib/systemd/system)")
    ap.add_argument("--wheel-dir", default="build/wheel")
    ap.add_argument("--purge", default="0")
    args = ap.parse_args(argv)
    if os.geteuid() != 0 and not args.destdir:
        print("logira: error: installing system-wide needs root: sudo make install", file=sys.stderr)
        return 1
    try:
        return install(args) if args.action == "install" else uninstall(args)
    except InstallError as exc:
        print(f"logira: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
