"""Start-up failures give one line that names the fix, never a traceback or libbpf spew."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from logira import cgroup2
from logira.probes import loader
from logira.probes.loader import ProbeConfig, ProbeError, Probes

REPO = Path(__file__).resolve().parents[2]


def _load_error(config: ProbeConfig | None = None) -> str:
    p = Probes(config or ProbeConfig(file=False, net=False))
    with pytest.raises(ProbeError) as ei:
        p.load()
    p.close()
    msg = str(ei.value)
    assert "\n" not in msg
    return msg


def test_missing_object_names_make_bpf(require_bpf, monkeypatch, tmp_path):
    monkeypatch.setenv("LOGIRA_EXEC_BPF_OBJ", str(tmp_path / "nope.bpf.o"))
    msg = _load_error()
    assert msg.startswith(f"BPF object for exec not found at {tmp_path}/nope.bpf.o")
    assert "make bpf" in msg


def test_text_file_is_not_an_elf(require_bpf, monkeypatch, tmp_path):
    f = tmp_path / "x.bpf.o"
    f.write_text("hello\n")
    monkeypatch.setenv("LOGIRA_EXEC_BPF_OBJ", str(f))
    assert _load_error() == f"{f} is not an ELF file: rebuild the BPF objects with `make bpf`"


def test_host_binary_is_not_a_bpf_object(require_bpf, monkeypatch):
    monkeypatch.setenv("LOGIRA_EXEC_BPF_OBJ", "/bin/true")
    msg = _load_error()
    assert msg.startswith("/bin/true is not a BPF object (ELF machine 62)")
    assert msg.endswith("rebuild with `make bpf`")


@pytest.mark.parametrize("ring", [3000, 4096 * 3, 0])
def test_bad_ring_size(ring):
    with pytest.raises(ProbeError, match=rf"^ring_bytes={ring} is invalid: it must be a power of two"):
        Probes(ProbeConfig(ring_bytes=ring))


def test_absurd_ring_size():
    with pytest.raises(ProbeError, match=r"^ring_bytes=1099511627776 is too large: use at most 1 GiB"):
        Probes(ProbeConfig(ring_bytes=1 << 40))


def test_bad_argv_max():
    with pytest.raises(ProbeError, match=r"^argv_max=20000 is invalid: use 1\.\.16383"):
        Probes(ProbeConfig(argv_max=20000))


def test_no_btf(require_bpf, monkeypatch):
    monkeypatch.setattr(loader, "BTF_PATH", "/nonexistent/vmlinux")
    assert "CONFIG_DEBUG_INFO_BTF=y" in _load_error()


def test_not_root(require_bpf, test_user):
    code = (
        "from logira.probes import Probes, ProbeError\n"
        "try:\n    Probes().load()\nexcept ProbeError as e:\n    print(e)\n"
    )
    r = subprocess.run(
        test_user.cmd(sys.executable, "-c", code), capture_output=True, text=True, cwd="/", check=False
    )
    assert r.stderr == ""
    assert r.stdout == "loading BPF needs root: run logirad as root (e.g. with sudo)\n"


VERIFIER_REJECT = r"""
#include "common.h"
SEC("tp_btf/sched_process_fork")
int BPF_PROG(bad_prog, struct task_struct *parent, struct task_struct *child)
{
	__u32 k = bpf_get_prandom_u32();
	__u64 *v = bpf_map_lookup_elem(&drops, &k); /* no NULL check: the verifier refuses */
	*v += 1;
	return 0;
}
"""


def test_verifier_refusal_names_program_and_reason(require_bpf, monkeypatch, tmp_path):
    src = tmp_path / "bad.bpf.c"
    src.write_text(VERIFIER_REJECT)
    obj = tmp_path / "bad.bpf.o"
    r = subprocess.run(
        ["clang", "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", f"-I{REPO}/build", f"-I{REPO}/bpf",
         "-c", str(src), "-o", str(obj)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot build the test object: {r.stderr.strip()[:200]}")
    monkeypatch.setenv("LOGIRA_EXEC_BPF_OBJ", str(obj))
    msg = _load_error()
    assert msg.startswith("the kernel refused BPF program bad_prog of bad.bpf.o (Permission denied): ")
    assert "map_value_or_null" in msg


def _memory_cgroup() -> Path | None:
    """A place to make a memory-limited cgroup: v1 memory hierarchy, or v2 with memory on."""
    v1 = Path("/sys/fs/cgroup/memory")
    if (v1 / "tasks").exists():
        return v1
    v2 = cgroup2.find_cgroup2_mount()
    if "memory" in (v2 / "cgroup.subtree_control").read_text().split():
        return v2
    return None


def test_ring_too_large_for_the_kernel_names_the_knob(require_bpf):
    # BPF maps are charged to the loader's memcg: a 1 GiB ring cannot fit in 200 MiB.
    base = _memory_cgroup()
    if base is None:
        pytest.skip("no memory cgroup controller to limit the loader with")
    cg = base / f"logira-test-{secrets.token_hex(4)}"
    cg.mkdir()
    try:
        limit = "memory.limit_in_bytes" if (cg / "memory.limit_in_bytes").exists() else "memory.max"
        (cg / limit).write_text("200M")
        code = (
            "from logira.probes import Probes, ProbeConfig, ProbeError\n"
            "p = Probes(ProbeConfig(file=False, net=False, ring_bytes=1 << 30))\n"
            "try:\n    p.load()\nexcept ProbeError as e:\n    print(e)\n"
        )
        tasks = cg / ("tasks" if (cg / "tasks").exists() else "cgroup.procs")
        r = subprocess.run(
            [sys.executable, "-c", code],
            preexec_fn=lambda: tasks.write_text("0"),
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        cg.rmdir()
    assert r.stderr == ""
    assert r.stdout == (
        "cannot create the 1073741824-byte ring buffer (Cannot allocate memory): lower ring_bytes in the logirad config\n"
    )
