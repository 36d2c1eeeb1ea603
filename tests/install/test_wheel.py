"""The wheel: built from this tree, it carries the BPF objects, and installed into a fresh venv on a
PATH without clang/LLVM/bpftool it runs a real logirad and records a real run as an unprivileged user."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import REPO, running_daemon

from logira.probes import arch

pytestmark = [pytest.mark.bpf, pytest.mark.slow]

# Build-time tools a user's machine does not need: hidden from the installed logira's PATH.
BUILD_TOOLS = ("clang", "llc", "llvm", "bpftool", "gcc", "cc", "ld.lld", "opt")


def path_without_build_tools(base: Path) -> str:
    """A PATH directory with every system command except the compilers (symlinks)."""
    hidden = base / "bin"
    hidden.mkdir()
    for d in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name.startswith(BUILD_TOOLS) or (hidden / name).exists():
                continue
            src = os.path.join(d, name)
            if os.access(src, os.X_OK) and not os.path.isdir(src):
                os.symlink(src, hidden / name)
    return str(hidden)


@pytest.fixture(scope="module")
def wheel_venv(require_bpf) -> Iterator[tuple[Path, Path]]:
    """(wheel, venv): `pip wheel` of this tree, installed into a brand-new venv (pip's cache reused)."""
    base = Path(tempfile.mkdtemp(prefix="lgw-", dir="/tmp"))
    os.chmod(base, 0o755)  # the test user runs the venv's logira
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(base / "dist"), str(REPO)],
            check=True,
            cwd=base,
        )
        (wheel,) = (base / "dist").glob("logira-*.whl")
        venv = base / "venv"
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, cwd=base)
        yield wheel, venv
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_wheel_is_tagged_by_arch_and_carries_the_objects(wheel_venv):
    wheel, _venv = wheel_venv
    machine = os.uname().machine
    assert wheel.name.endswith(f"-py3-none-linux_{machine}.whl"), wheel.name
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert zf.read("logira/bpf/arch").decode().strip() == machine
        wheel_meta = zf.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
    for dom in ("exec", "file", "net"):
        assert f"logira/bpf/{dom}.bpf.o" in names
    assert "Root-Is-Purelib: false" in wheel_meta


def test_installed_wheel_records_a_run_without_build_tools(wheel_venv, test_user):
    _wheel, venv = wheel_venv
    tools = venv.parent / "tools"  # inside the 0755 base: the test user must traverse it
    tools.mkdir(exist_ok=True)
    path = f"{venv / 'bin'}:{path_without_build_tools(tools)}"
    assert shutil.which("clang", path=path) is None and shutil.which("bpftool", path=path) is None
    env = {"PATH": path, "LANG": "C.UTF-8"}
    # the objects the installed package loads are the venv's, not this tree's
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "from logira.probes.loader import object_path as o; print(o('exec'))"],
        env=env, cwd="/", capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.strip().startswith(str(venv)), where.stdout
    with running_daemon(command=[str(venv / "bin" / "logirad")], cwd=Path("/"), env=env) as daemon:
        home = test_user.home / f"lw-{os.getpid()}"
        ws = test_user.home / f"ws-{os.getpid()}"
        ws.mkdir()
        os.chown(ws, test_user.uid, test_user.gid)
        user_env = test_user.env(PATH=path, LOGIRA_SOCK=daemon.sock, LOGIRA_HOME=str(home))
        try:
            done = subprocess.run(
                test_user.cmd("logira", "run", "--tool", "wheel", "--", "sh", "-c", "echo hi > made-by-agent"),
                env=user_env, cwd=ws, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert "logira: run " in done.stderr and "INCOMPLETE" not in done.stderr, done.stderr
            view = subprocess.run(
                test_user.cmd("logira", "query", "last", "--type", "file", "--json"),
                env=user_env, cwd=ws, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert view.returncode == 0, view.stderr
            assert str(ws / "made-by-agent") in view.stdout
        finally:
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(ws, ignore_errors=True)


def test_an_unsupported_architecture_is_one_line_at_start(wheel_venv):
    _wheel, venv = wheel_venv
    # setarch linux32 makes uname(2) report i686 on this x86_64 kernel: a real unsupported machine name
    done = subprocess.run(
        ["setarch", "linux32", str(venv / "bin" / "logirad"), "--sock", "/nonexistent/s", "--journald", "off"],
        capture_output=True, text=True, timeout=60, cwd="/", check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == (
        "logirad: error: unsupported architecture i686: logira's BPF probes exist for x86_64 and aarch64\n"
    )


def test_objects_of_another_arch_are_refused_in_one_line(tmp_path):
    (tmp_path / "arch").write_text("aarch64\n")
    with pytest.raises(arch.ArchError, match=r"compiled for aarch64, this machine is x86_64: install the x86_64"):
        arch.check(tmp_path, machine="x86_64")
    arch.check(tmp_path, machine="aarch64")  # matching: fine


def test_a_missing_libbpf_is_one_line_at_start(wheel_venv):
    """libbpf.so.1 is the one system library the installed wheel needs: hidden here by a bind mount
    of /dev/null over it, in a private mount namespace (nothing else on the machine sees it)."""
    _wheel, venv = wheel_venv
    lib = os.path.realpath("/usr/lib/x86_64-linux-gnu/libbpf.so.1")
    if not os.path.exists(lib):
        pytest.skip("libbpf.so.1 is not at the Debian x86_64 path")
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'mount --bind /dev/null "$1" && exec "$2" --journald off', "sh", lib,
         str(venv / "bin" / "logirad")],
        capture_output=True, text=True, timeout=60, cwd="/", check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == "logirad: error: libbpf.so.1 not found: install it (Debian/Ubuntu: apt-get install libbpf1)\n"
