"""Load rule files (built-in, site directory, per-run extras), validate and merge them.

Every problem is a `RuleError` whose text is one line: `file:line: rule <id>: what is wrong`.
Later sources may `disable: [ids]` at top level, or replace a rule with the same id by
setting `override: true` on it; any other repeated id is an error.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import msgspec
import yaml

from logira.detect.schema import Rule
from logira.detect.validate import UNTRUSTED_BUDGET, Invalid, rule_cost, validate_rule
from logira.errors import LogiraError

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "rules"
SITE_DIR = Path("/etc/logira/rules.d")
_TOP_KEYS = ("version", "rules", "disable")
MAX_NODES = 200_000  # expanded YAML nodes per source (the built-ins use a few thousand)
_MSGSPEC_AT = re.compile(r"^(.*?)(?: - at `\$(.*)`)?$")
_PATH_ELEM = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


class RuleError(LogiraError):
    """A rule file is invalid; str() is one line naming file, line and rule id."""


class LoadedRule(msgspec.Struct, frozen=True, kw_only=True):
    rule: Rule
    source: str
    line: int
    untrusted: bool = False  # from a per-run file: its patterns get a smaller RE2 memory budget


class RuleSet(msgspec.Struct, kw_only=True):
    rules: list[LoadedRule]  # active rules, in load order
    disabled: list[str]  # ids switched off by `disable:` or `enabled: false`
    sources: list[str]
    sha256: str  # over every source name and text, in order

    def get(self, rule_id: str) -> LoadedRule | None:
        for r in self.rules:
            if r.rule.id == rule_id:
                return r
        return None


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _locate(node: yaml.Node, path: tuple[str | int, ...]) -> int:
    """Line of the deepest node reachable along `path` (keys and list indexes)."""
    line = _line(node)
    for elem in path:
        nxt: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(elem, str):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == elem:
                    line = _line(k)
                    nxt = v
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(elem, int) and elem < len(node.value):
            nxt = node.value[elem]
            line = _line(nxt)
        if nxt is None:
            break
        node = nxt
    return line


def _expanded_size(node: yaml.Node) -> int:
    """Nodes visited when aliases are expanded, counting stops just past MAX_NODES."""
    n = 0
    stack = [node]
    while stack and n <= MAX_NODES:
        cur = stack.pop()
        n += 1
        if isinstance(cur, yaml.MappingNode):
            for k, v in cur.value:
                stack.append(k)
                stack.append(v)
        elif isinstance(cur, yaml.SequenceNode):
            stack.extend(cur.value)
    return n


def _dup_keys(node: yaml.Node, *, recursive: bool = True) -> tuple[yaml.Node, str] | None:
    """The first repeated mapping key under node (PyYAML would keep the last silently)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in seen:
                        return k, k.value
                    seen.add(k.value)
                if recursive:
                    stack.append(v)
        elif isinstance(n, yaml.SequenceNode) and recursive:
            stack.extend(n.value)
    return None


def _msgspec_problem(exc: msgspec.ValidationError) -> tuple[tuple[str | int, ...], str]:
    m = _MSGSPEC_AT.match(str(exc))
    assert m is not None
    text, where = m.group(1), m.group(2) or ""
    path: list[str | int] = [
        e.group(1) if e.group(1) is not None else int(e.group(2)) for e in _PATH_ELEM.finditer(where)
    ]
    unknown = re.match(r"Object contains unknown field `(.*)`", text)
    if unknown:
        path.append(unknown.group(1))
        return tuple(path), f"unknown key {unknown.group(1)!r}" + (
            f" in {'.'.join(map(str, path[:-1]))}" if len(path) > 1 else ""
        )
    missing = re.match(r"Object missing required field `(.*)`", text)
    if missing:
        return tuple(path), "missing required key " + repr(".".join([*map(str, path), missing.group(1)]))
    label = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
    return tuple(path), (f"{label}: " if label else "") + text[0].lower() + text[1:]


def _parse_source(
    name: str, text: str, *, untrusted: bool = False
) -> tuple[list[tuple[Rule, int]], list[tuple[str, int]]]:
    """(rules with their line, disabled ids with their line) of one source.

    untrusted (per-run files): the patterns of all its rules share UNTRUSTED_BUDGET."""
    spent = 0
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except RecursionError:
        raise RuleError(f"{name}:1: rule file nests too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RuleError(f"{name}:{line}: invalid YAML: {problem}") from None
    if root is None or data is None:
        return [], []
    if _expanded_size(root) > MAX_NODES:
        # aliases can make a small text expand exponentially ("billion laughs"); everything
        # below walks the expanded tree, inside the root daemon for per-run rules
        raise RuleError(
            f"{name}:1: rule file expands to more than {MAX_NODES} YAML nodes (too large or too many aliases)"
        )
    dup = _dup_keys(root, recursive=False)
    if dup:
        raise RuleError(f"{name}:{_line(dup[0])}: key {dup[1]!r} appears twice in one mapping")
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise RuleError(f"{name}:{_line(root)}: a rule file is a mapping with keys {', '.join(_TOP_KEYS)}")
    for key in data:
        if key not in _TOP_KEYS:
            raise RuleError(
                f"{name}:{_locate(root, (str(key),))}: unknown top-level key {key!r} (allowed: {', '.join(_TOP_KEYS)})"
            )
    if data.get("version", 1) != 1:
        raise RuleError(
            f"{name}:{_locate(root, ('version',))}: unsupported version {data.get('version')!r} (this logira reads version 1)"
        )
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        raise RuleError(f"{name}:{_locate(root, ('rules',))}: rules must be a list")
    rules_node = next((v for k, v in root.value if getattr(k, "value", None) == "rules"), None)
    out: list[tuple[Rule, int]] = []
    for i, raw in enumerate(raw_rules):
        node = rules_node.value[i] if isinstance(rules_node, yaml.SequenceNode) else root
        line = _line(node)
        rid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else f"#{i + 1}"
        if not isinstance(raw, dict):
            raise RuleError(f"{name}:{line}: rule {rid}: a rule is a mapping")
        dup = _dup_keys(node)
        if dup:
            raise RuleError(
                f"{name}:{_line(dup[0])}: rule {rid}: key {dup[1]!r} appears twice in one mapping"
            )
        try:
            rule = msgspec.convert(raw, Rule)
        except msgspec.ValidationError as exc:
            path, msg = _msgspec_problem(exc)
            raise RuleError(f"{name}:{_locate(node, path)}: rule {rid}: {msg}") from None
        try:
            validate_rule(rule)
        except Invalid as exc:
            raise RuleError(f"{name}:{_locate(node, exc.path)}: rule {rid}: {exc.message}") from None
        if untrusted:
            try:
                spent += rule_cost(rule)
            except Invalid as exc:
                raise RuleError(f"{name}:{_locate(node, exc.path)}: rule {rid}: {exc.message}") from None
            if spent > UNTRUSTED_BUDGET:
                raise RuleError(
                    f"{name}:{line}: rule {rid}: the conditions of a per-run rules file may cost "
                    f"{UNTRUSTED_BUDGET} in all (RE2 instructions, weighted by how often they run per event) "
                    f"and this rule brings the file to {spent}; use fewer or simpler conditions, "
                    "or have an admin install the file in /etc/logira/rules.d"
                )
        out.append((rule, line))
    disabled = data.get("disable") or []
    if not isinstance(disabled, list) or not all(isinstance(d, str) for d in disabled):
        raise RuleError(f"{name}:{_locate(root, ('disable',))}: disable must be a list of rule ids")
    dis = [(d, _locate(root, ("disable", j))) for j, d in enumerate(disabled)]
    return out, dis


def builtin_sources() -> list[tuple[str, str]]:
    """(name, text) of the built-in rule files, in name order."""
    return [(f"builtin:{p.name}", p.read_text()) for p in sorted(BUILTIN_DIR.glob("*.yaml"))]


def _site_sources(site_dir: Path) -> list[tuple[str, str]]:
    if not site_dir.is_dir():
        return []
    out = []
    for p in sorted(site_dir.glob("*.yaml")):
        try:
            out.append((str(p), p.read_text()))
        except OSError as exc:
            raise RuleError(f"{p}:1: cannot read rule file: {exc.strerror}") from None
    return out


def load_sources(sources: list[tuple[str, str]], *, untrusted_from: int | None = None) -> RuleSet:
    """Validate and merge (name, yaml text) sources, in order.

    Sources from index `untrusted_from` on are per-run files (any local user): their patterns
    are budgeted and compiled with a smaller RE2 memory budget."""
    merged: dict[str, LoadedRule] = {}
    disabled: set[str] = set()
    digest = hashlib.sha256()
    for i, (name, text) in enumerate(sources):
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
        untrusted = untrusted_from is not None and i >= untrusted_from
        rules, dis = _parse_source(name, text, untrusted=untrusted)
        seen_here: dict[str, int] = {}
        for rule, line in rules:
            if rule.id in seen_here:
                raise RuleError(
                    f"{name}:{line}: rule {rule.id}: duplicate id (first defined at line {seen_here[rule.id]})"
                )
            seen_here[rule.id] = line
            prev = merged.get(rule.id)
            if prev is not None and not rule.override:
                raise RuleError(
                    f"{name}:{line}: rule {rule.id}: duplicate id (already defined at {prev.source}:{prev.line}; "
                    "set override: true to replace it)"
                )
            if prev is None and rule.override:
                raise RuleError(
                    f"{name}:{line}: rule {rule.id}: override: true but no earlier rule has this id"
                )
            merged[rule.id] = LoadedRule(rule=rule, source=name, line=line, untrusted=untrusted)
            disabled.discard(rule.id)
        for rid, line in dis:
            if rid not in merged:
                raise RuleError(f"{name}:{line}: rule {rid}: cannot disable an unknown rule id")
            disabled.add(rid)
    active = [lr for rid, lr in merged.items() if rid not in disabled and lr.rule.enabled]
    off = sorted(disabled | {rid for rid, lr in merged.items() if not lr.rule.enabled})
    return RuleSet(rules=active, disabled=off, sources=[n for n, _ in sources], sha256=digest.hexdigest())


def load_rules(
    *,
    builtin: bool = True,
    site_dir: Path | None = SITE_DIR,
    extra: list[tuple[str, str]] | None = None,
) -> RuleSet:
    """Built-in rules, then `site_dir/*.yaml`, then `extra` (source name, yaml text)."""
    sources: list[tuple[str, str]] = []
    if builtin:
        sources += builtin_sources()
    if site_dir is not None:
        sources += _site_sources(site_dir)
    trusted = len(sources)
    sources += list(extra or [])
    return load_sources(sources, untrusted_from=trusted)
