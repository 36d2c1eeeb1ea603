"""Build steps pyproject.toml cannot express: compile the BPF objects into the wheel, tag it by arch.

Everything else (metadata, dependencies, entry points) is in pyproject.toml.

- `build_py` runs `make bpf-objects`, the Makefile's own compile (vmlinux.h from the running kernel's
  BTF with bpftool, then clang -target bpf), so a wheel and a clone build the same objects. clang and
  bpftool are needed here only; the installed wheel needs neither. Prebuilt objects in logira/bpf/
  are used as they are when the compiler is absent.
- `bdist_wheel` tags the wheel `py3-none-linux_<arch>`: the package is pure Python, but the CO-RE
  objects are compiled for one architecture (not for one kernel version or Python version).

Editable installs (`make setup`) skip the compile: there `make bpf` builds the objects in place.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

ROOT = Path(__file__).resolve().parent
OBJ_DIR = ROOT / "logira" / "bpf"
DOMAINS = ("exec", "file", "net")
# The arches bpf/*.bpf.c is written for (its __TARGET_ARCH_* blocks and the Makefile's mapping).
SUPPORTED_ARCHES = ("x86_64", "aarch64")


def _objects_present() -> bool:
    return all((OBJ_DIR / f"{d}.bpf.o").is_file() for d in DOMAINS) and (OBJ_DIR / "arch").is_file()


def build_bpf_objects() -> None:
    """Compile the objects with the Makefile, or keep prebuilt ones when there is no compiler."""
    machine = platform.machine()
    if machine not in SUPPORTED_ARCHES:
        raise SystemExit(
            f"error: logira's BPF probes support {' and '.join(SUPPORTED_ARCHES)}, not {machine}"
        )
    have_tools = all(shutil.which(t) for t in ("make", "clang", "bpftool"))
    if not have_tools:
        if _objects_present():
            print("logira: clang/bpftool/make not found: using the prebuilt BPF objects in logira/bpf/")
            return
        raise SystemExit(
            "error: building logira needs clang, bpftool and make to compile its BPF objects "
            "(Debian/Ubuntu: apt-get install clang bpftool make), or prebuilt objects in logira/bpf/"
        )
    done = subprocess.run(["make", "-s", "-C", str(ROOT), "bpf-objects"], check=False)
    if done.returncode != 0:
        raise SystemExit(f"error: compiling the BPF objects failed (make bpf-objects exited {done.returncode})")


class BuildPyWithBpf(build_py):
    def run(self) -> None:
        if not getattr(self, "editable_mode", False):
            build_bpf_objects()
        super().run()


class ArchDistribution(Distribution):
    """Not arch-independent (the BPF objects), so installed as platlib, like a package with C code."""

    def has_ext_modules(self) -> bool:
        return True


class ArchWheel(bdist_wheel):
    def get_tag(self) -> tuple[str, str, str]:
        arch_file = OBJ_DIR / "arch"
        arch = arch_file.read_text().strip() if arch_file.is_file() else platform.machine()
        return "py3", "none", f"linux_{arch}"


setup(distclass=ArchDistribution, cmdclass={"build_py": BuildPyWithBpf, "bdist_wheel": ArchWheel})
