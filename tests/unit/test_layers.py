"""Imports flow one way: cli → client/daemon/report → pipeline → probes/detect/sinks → read/storage/format → model.

Parses every module of the package (no import side effects) and fails on any import of a layer
above the importer's, and on any import of logira.cli from outside it. Same-layer imports across
packages are allowed (client uses daemon.protocol; detect and sinks are peers).
"""

from __future__ import annotations

import ast
from pathlib import Path

import logira

PKG = Path(logira.__file__).parent

# rank of each top-level part of the package; a module may import only ranks <= its own
RANK = {
    "__init__": 0,
    "errors": 0,
    "model": 0,
    "format": 1,
    "render": 1,
    "cgroup2": 2,
    "storage": 2,
    "read": 3,
    "probes": 4,
    "detect": 4,
    "agents": 4,  # hook messages, transcripts, the tool-call join (used by daemon and cli)
    "sinks": 4,
    "pipeline": 5,
    "client": 6,
    "daemon": 6,
    "report": 6,  # the report model and its renderers (read + detect texts + render), used by cli
    "cli": 7,
}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("logira")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("logira"):
            mod = node.module or ""
            if mod == "logira":  # `from logira import cgroup2` names a module, `__version__` is the root's
                out += [(node.lineno, f"logira.{a.name}" if (PKG / f"{a.name}.py").exists() else "logira")
                        for a in node.names]
            else:
                out.append((node.lineno, mod))
    return out


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {p.stem if p.is_file() else p.name for p in PKG.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}  # fmt: skip
    assert parts - set(RANK) == set(), "give the new part a rank in RANK (and docs/architecture.md)"


def test_no_module_imports_a_layer_above_it() -> None:
    upward: list[str] = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        me = ".".join(rel.parts)
        mine = _part(me)
        for line, target in _imports(path):
            theirs = _part(target)
            if theirs == mine:
                continue
            if RANK[theirs] > RANK[mine] or theirs == "cli":
                upward.append(f"{rel}.py:{line}: {me} ({mine}) imports {target} ({theirs})")
    assert upward == []
