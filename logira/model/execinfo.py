"""What an exec really ran, derived from kernel facts only (pure functions).

The agent controls argv[0], memfd names and file locations; it does not control the inode
of the binary the kernel loaded or the name the kernel was asked to run. From those this
module derives:

- `exe_kind`: how the program was reached: `file` (a path), `fd` (through /dev/fd/N,
  /proc/self/fd/N or execveat AT_EMPTY_PATH), `loader` (the dynamic loader ran the program
  named by its operand), `memfd`/`anon` (no file at all), `deleted` (unlinked file);
- `script`: the script that was asked to run (#! script, ld.so operand), absolute;
- `fileless`: the image or the script has no file on disk;
- `exe_writable`: the process's uid could rewrite the binary (owner, or group/other write).
"""

from __future__ import annotations

import posixpath
import re

from logira.model.kernel import ProcExec

_FD_NAME = re.compile(r"^/(?:dev/fd|proc/(?:self|thread-self|\d+)/fd)/(\d+)(/.*)?$")
_LOADER = re.compile(r"^ld(?:-linux(?:-[\w-]+)?)?(?:-[\w.]+)?\.so(?:\.\d+)*$")
# ld.so options that take a value (glibc rtld --help)
_LOADER_VALUE_OPTS = frozenset({"--library-path", "--preload", "--audit", "--argv0", "--inhibit-rpath",
                                "--glibc-hwcaps-prepend", "--glibc-hwcaps-mask"})  # fmt: skip
# where a script is trusted as a program name for exceptions: root-managed system locations
TRUSTED_PREFIXES = ("/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/opt/", "/snap/", "/nix/store/")


def is_loader(path: str) -> bool:
    return bool(_LOADER.match(path.rpartition("/")[2]))


def loader_operand(argv: list[str]) -> str:
    """The program `ld-linux… [options] PROGRAM …` runs, or ""."""
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return argv[i + 1] if i + 1 < len(argv) else ""
        if a.startswith("--"):
            i += 1 if "=" in a or a not in _LOADER_VALUE_OPTS else 2
            continue
        return a
    return ""


def _resolve(cwd: str, path: str) -> str:
    if not path or path.startswith("/") or not cwd.startswith("/"):
        return path
    return posixpath.normpath(posixpath.join(cwd, path))


def _pseudo(path: str) -> str:
    """memfd / anon for names that are not paths (bpf/path.h pseudo forms), else ""."""
    if not path or path.startswith("/"):
        return ""
    return "memfd" if "memfd:" in path else "anon"


def _deleted(path: str) -> bool:
    return path.endswith(" (deleted)")


def script_of(ev: ProcExec) -> str:
    """Absolute path of the script the kernel was asked to run, when the image is its interpreter."""
    req = ev.requested
    if ev.interp and req:
        m = _FD_NAME.match(req)
        if m and ev.fd_path:
            if ev.fd_path_is_dir and m.group(2):
                return posixpath.normpath(ev.fd_path + m.group(2))
            return ev.fd_path
        if not req.startswith("/") and ev.fd_path_is_dir and ev.fd_path:
            return posixpath.normpath(posixpath.join(ev.fd_path, req))
        return _resolve(ev.cwd, req)
    if is_loader(ev.filename):
        op = loader_operand(ev.argv)
        return _resolve(ev.cwd, op) if op else ""
    return ""


def exe_kind(ev: ProcExec, script: str) -> str:
    fn = ev.filename
    kind = _pseudo(fn)
    if kind:
        return kind
    if _deleted(fn) or ev.exe_nlink == 0:
        return "deleted"
    if _FD_NAME.match(ev.requested) or (not ev.requested and ev.fd_path):
        return "fd"
    if is_loader(fn) and script:
        return "loader"
    return "file"


def is_fileless(kind: str, script: str) -> bool:
    return kind in ("memfd", "anon", "deleted") or bool(_pseudo(script)) or _deleted(script)


def exe_writable(ev: ProcExec) -> bool:
    """True when the exec'ing uid could have written the binary (owner, or g/o write bits)."""
    mode = ev.exe_mode
    if mode < 0:
        return False
    if ev.uid != 0 and ev.exe_uid == ev.uid:
        return True
    return bool(mode & 0o002) or bool(mode & 0o020 and ev.exe_gid == ev.gid)


def trusted_image(kind: str, fileless: bool, writable: bool) -> bool:
    """An image whose program name may grant an exception: a real, system-owned file."""
    return kind in ("file", "fd", "") and not fileless and not writable


def trusted_script(script: str) -> bool:
    return script.startswith(TRUSTED_PREFIXES) and not _deleted(script)


def caller_argv(ev: ProcExec) -> list[str]:
    """For a #! script: the argv its caller passed, rebuilt from the kernel's rewritten argv
    (`interpreter [arg] script args…` → `argv0 args…`); [] otherwise or when unknown."""
    if not ev.interp or not ev.requested:
        return []
    argv = ev.argv
    for k in (1, 2):  # the script follows the interpreter and its optional #! argument
        if k < len(argv) and argv[k] == ev.requested:
            return [ev.caller_argv0 or ev.requested, *argv[k + 1 :]]
    return []
