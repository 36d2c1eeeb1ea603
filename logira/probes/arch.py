"""Which CPU architectures logira's BPF objects exist for, and the start-up check.

The CO-RE objects do not depend on the kernel version (libbpf relocates them against the running
kernel's BTF), but they are compiled for one architecture: `__TARGET_ARCH_*` selects the syscall
register layout (bpf/exec.bpf.c) and vmlinux.h comes from that arch's kernel. `make bpf-objects`
writes the arch next to the objects (logira/bpf/arch) and the wheel is tagged with it.
"""

from __future__ import annotations

import platform
from pathlib import Path

# What bpf/*.bpf.c and the Makefile's __TARGET_ARCH mapping handle (x86 -> x86_64, arm64 -> aarch64).
SUPPORTED = ("x86_64", "aarch64")


class ArchError(Exception):
    """This machine cannot use the BPF objects: one line naming what to do."""


def check(obj_dir: Path, machine: str | None = None) -> None:
    """Refuse an unsupported machine, or objects compiled for another arch."""
    machine = machine or platform.machine()
    if machine not in SUPPORTED:
        raise ArchError(
            f"unsupported architecture {machine}: logira's BPF probes exist for {' and '.join(SUPPORTED)}"
        )
    try:
        built = (obj_dir / "arch").read_text().strip()
    except OSError:
        return  # objects built before the marker existed (a clone's `make bpf`): nothing to compare
    if built and built != machine:
        raise ArchError(
            f"the BPF objects in {obj_dir} were compiled for {built}, this machine is {machine}: "
            f"install the {machine} wheel or rebuild with `make bpf`"
        )
