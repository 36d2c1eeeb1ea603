"""Semantic checks of a decoded rule: enum values, regexes, globs, CIDRs, ports, templates.

Each problem is raised as `Invalid(path, message)`; the loader turns the path into a line
number of the YAML file.
"""

from __future__ import annotations

import re

from logira.detect import schema as S
from logira.detect.globs import check_glob, glob_to_regex, globs_regex, is_glob
from logira.detect.netmatch import check_addr_spec, parse_ports
from logira.detect.rx import MAX_MEM_UNTRUSTED, Regex, RegexError
from logira.detect.template import FIELDS, Template, TemplateError

_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_TAG = re.compile(r"T\d{4}(\.\d{3})?")
Path = tuple[str | int, ...]


class Invalid(Exception):
    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _regex(path: Path, src: str) -> None:
    """Compile-check a regex with RE2, the engine the rules use (`logira.detect.rx`): rules run in
    the root daemon on attacker-controlled strings, and RE2 matches in linear time whatever the
    pattern, refusing what cannot be linear (backreferences, lookaround)."""
    if not src:
        return
    try:
        Regex(src)
    except RegexError as exc:
        raise Invalid(path, f"bad regex {src!r}: {exc}") from None


def _globs(path: Path, globs: list[str]) -> None:
    for i, g in enumerate(globs):
        why = check_glob(g)
        if why:
            raise Invalid((*path, i), why)
        if g.count("*") > 8:
            raise Invalid((*path, i), f"glob {g!r} has more than 8 wildcards (slow to match); simplify it")


def _choices(path: Path, values: list[str], allowed: tuple[str, ...], what: str) -> None:
    for i, v in enumerate(values):
        if v not in allowed:
            raise Invalid((*path, i), f"unknown {what} {v!r} (one of: {', '.join(allowed)})")


def _flag_groups(path: Path, groups: list[str | list[str]], *, flags: bool) -> None:
    for i, g in enumerate(groups):
        alts = [g] if isinstance(g, str) else g
        if not alts:
            raise Invalid((*path, i), "empty alternative list")
        for a in alts:
            if not a:
                raise Invalid((*path, i), "empty token")
            if flags and (not a.startswith("-") or a in ("-", "--")):
                raise Invalid((*path, i), f"flag {a!r} must start with - or -- and name an option")


def _exec(path: Path, c: S.ExecCond) -> None:
    _choices((*path, "exe_kind"), c.exe_kind, S.EXE_KINDS, "exe kind")
    _globs((*path, "program"), c.program)
    _flag_groups((*path, "flags"), c.flags, flags=True)
    _flag_groups((*path, "args"), c.args, flags=False)
    _globs((*path, "paths"), c.paths)
    _globs((*path, "script"), c.script)
    for i, v in enumerate(c.value_opts):
        if not v.startswith("-") or v in ("-", "--"):
            raise Invalid((*path, "value_opts", i), f"option {v!r} must start with - or --")
    for i, v in enumerate(c.end_opts):
        if len(v) != 2 or v[0] != "-" or v == "--":
            raise Invalid((*path, "end_opts", i), f"option {v!r} must be one short option like -c")
    _regex((*path, "cmdline"), c.cmdline)
    if c.shell is not None:
        sp = (*path, "shell")
        if not (c.shell.pipe or c.shell.command or c.shell.regex):
            raise Invalid(sp, "shell needs pipe, command or regex")
        for i, sub in enumerate(c.shell.pipe):
            if sub.shell is not None:
                raise Invalid((*sp, "pipe", i, "shell"), "shell conditions do not nest")
            _exec((*sp, "pipe", i), sub)
        if c.shell.command is not None:
            if c.shell.command.shell is not None:
                raise Invalid((*sp, "command", "shell"), "shell conditions do not nest")
            _exec((*sp, "command"), c.shell.command)
        _regex((*sp, "regex"), c.shell.regex)


def _proc_cond(path: Path, c: S.ProcCond | None) -> None:
    if c is None:
        return
    if not c.program and not c.cmdline:
        raise Invalid(path, "needs program or cmdline")
    _globs((*path, "program"), c.program)
    _regex((*path, "cmdline"), c.cmdline)


def when_type(w: S.When) -> str | None:
    """The event type a condition is about (None for lineage-only conditions)."""
    types = [t for t in S.EVENT_TYPES if getattr(w, t) is not None]
    return types[0] if len(types) == 1 else None


def _when(path: Path, w: S.When, *, need_type: bool) -> str | None:
    types = [t for t in S.EVENT_TYPES if getattr(w, t) is not None]
    if len(types) > 1:
        raise Invalid(path, f"exactly one of exec/file/net/proc/flow per condition, got {', '.join(types)}")
    if need_type and not types:
        raise Invalid(path, "needs one of exec/file/net/proc/flow")
    if w.exec is not None:
        _exec((*path, "exec"), w.exec)
    if w.file is not None:
        f, fp = w.file, (*path, "file")
        _choices((*fp, "op"), f.op, S.FILE_OPS, "file op")
        for key in ("path", "path2", "src", "unverified"):
            _globs((*fp, key), getattr(f, key))
        if f.workspace not in ("", "inside", "outside"):
            raise Invalid((*fp, "workspace"), f"workspace must be inside or outside, not {f.workspace!r}")
    if w.net is not None:
        n, np_ = w.net, (*path, "net")
        _choices((*np_, "op"), n.op, S.NET_OPS, "net op")
        if n.direction not in ("", "outbound", "inbound"):
            raise Invalid((*np_, "direction"), f"direction must be outbound or inbound, not {n.direction!r}")
        ports = parse_ports(n.port)
        if isinstance(ports, str):
            raise Invalid((*np_, "port"), ports)
        for key in ("dst", "src"):
            for i, spec in enumerate(getattr(n, key)):
                why = check_addr_spec(spec)
                if why:
                    raise Invalid((*np_, key, i), why)
        _globs((*np_, "dns"), n.dns)
        if n.dns_label_min < 0 or n.dns_name_min < 0:
            raise Invalid(np_, "dns_label_min/dns_name_min must be >= 0")
        _choices((*np_, "outcome"), n.outcome, S.NET_OUTCOMES, "net outcome")
        if n.bytes_min < 0 or n.run_bytes_min < 0:
            raise Invalid(np_, "bytes_min/run_bytes_min must be >= 0")
    if w.proc is not None:
        _choices((*path, "proc", "op"), w.proc.op, S.PROC_OPS, "proc op")
    if w.flow is not None:
        _choices((*path, "flow", "via"), w.flow.via, S.FLOW_VIAS, "flow via")
        for key in ("into", "source"):
            sub = getattr(w.flow, key)
            if sub is not None:
                _exec((*path, "flow", key), sub)
    for key in ("process", "parent", "ancestor", "writer"):
        _proc_cond((*path, key), getattr(w, key))
    return types[0] if types else None


def step_alternatives(step: S.When | list[S.When]) -> list[S.When]:
    """The alternatives of a sequence step (a single condition is a list of one)."""
    return step if isinstance(step, list) else [step]


def rule_types(rule: S.Rule) -> list[str]:
    """Event types a rule listens to (sequence: the types of its steps)."""
    if rule.sequence is not None:
        return sorted({when_type(w) or "" for s in rule.sequence.steps for w in step_alternatives(s)} - {""})
    whens = rule.when if isinstance(rule.when, list) else [rule.when] if rule.when else []
    return sorted({when_type(w) or "" for w in whens} - {""})


def validate_rule(rule: S.Rule) -> None:
    """Raise Invalid for the first semantic problem of the rule."""
    if not _ID.fullmatch(rule.id):
        raise Invalid(("id",), f"id {rule.id!r} must be lower-case letters, digits, . _ - (max 64)")
    for key in ("title", "category", "description", "message"):
        if not getattr(rule, key).strip():
            raise Invalid((key,), f"{key} must not be empty")
    if rule.severity not in S.SEVERITY_ORDER:
        raise Invalid(
            ("severity",), f"severity {rule.severity!r} must be one of {', '.join(S.SEVERITY_ORDER)}"
        )
    for i, t in enumerate(rule.tags):
        if not _TAG.fullmatch(t):
            raise Invalid(("tags", i), f"tag {t!r} is not a MITRE ATT&CK technique id (T1234 or T1234.001)")
    if (rule.when is None) == (rule.sequence is None):
        raise Invalid(("when",), "a rule needs exactly one of when or sequence")
    types: set[str] = set()
    if rule.when is not None:
        whens = rule.when if isinstance(rule.when, list) else [rule.when]
        if not whens:
            raise Invalid(("when",), "when must not be an empty list")
        for i, w in enumerate(whens):
            p: tuple[str | int, ...] = ("when", i) if isinstance(rule.when, list) else ("when",)
            t = _when(p, w, need_type=True)
            types.add(t or "")
    else:
        seq = rule.sequence
        assert seq is not None
        if len(seq.steps) < 2:
            raise Invalid(("sequence", "steps"), "a sequence needs at least 2 steps")
        for i, step in enumerate(seq.steps):
            alts = step_alternatives(step)
            if not alts:
                raise Invalid(("sequence", "steps", i), "a step must not be an empty list")
            for j, w in enumerate(alts):
                wp: tuple[str | int, ...] = (
                    ("sequence", "steps", i, j) if isinstance(step, list) else ("sequence", "steps", i)
                )
                types.add(_when(wp, w, need_type=True) or "")
        if seq.scope not in S.SCOPES:
            raise Invalid(
                ("sequence", "scope"), f"scope must be one of {', '.join(S.SCOPES)}, not {seq.scope!r}"
            )
        if seq.same not in ("", "path"):
            raise Invalid(("sequence", "same"), f"same must be path or empty, not {seq.same!r}")
        if seq.same == "path" and any(
            w.exec is None and w.file is None for s in seq.steps for w in step_alternatives(s)
        ):
            raise Invalid(("sequence", "same"), "same: path needs exec or file steps only")
        if not 0 < seq.within <= 86400:
            raise Invalid(("sequence", "within"), "within must be between 0 and 86400 seconds")
        if not 1 <= seq.max_pending <= 100000:
            raise Invalid(("sequence", "max_pending"), "max_pending must be between 1 and 100000")
    for i, w in enumerate(rule.except_):
        t = _when(("except", i), w, need_type=False)
        if t is not None and rule.when is not None and t not in types:
            raise Invalid(
                ("except", i), f"except is about {t} events but the rule matches {', '.join(sorted(types))}"
            )
    if rule.sequence is not None:
        lasts = step_alternatives(rule.sequence.steps[-1])
        allowed: set[str] = set.intersection(*(set(FIELDS[when_type(w) or "exec"]) for w in lasts))
    else:
        allowed = set.intersection(*(set(FIELDS[t]) for t in types))
    for i, f in enumerate(rule.dedup):
        if f not in allowed:
            raise Invalid(
                ("dedup", i),
                f"dedup field {f!r} is not a field of this event type (one of: {', '.join(sorted(allowed))})",
            )
    if rule.dedup and rule.sequence is not None:
        raise Invalid(("dedup",), "dedup is for plain rules, not sequences")
    try:
        Template(rule.message, allowed)
    except TemplateError as exc:
        raise Invalid(("message",), str(exc)) from None


# Per-run rule files come from any local user and run in the root daemon on text the agent
# controls. RE2 makes each match linear, but the constant grows with the pattern: measured on
# adversarial 16 KiB text, ~0.45 us per byte per 100 RE2 instructions. And some conditions are
# evaluated many times per event: `paths` once per operand (each prefixed with a cwd of up to
# 4 KiB), shell `command`/`pipe` once per command of the script, `ancestor` once per ancestor.
# So every condition of one per-run file draws on one budget: RE2 instructions per pattern
# (at least PATTERN_MIN; a literal glob, a set lookup, LITERAL_COST) plus CONDITION_COST per
# condition, times FANOUT for the repeated kinds. Measured worst events at the budget are listed
# in docs/rules.md ("Safety of user rules"); the median built-in rule costs 132, all 63: 12910.
UNTRUSTED_BUDGET = 2000
PATTERN_MIN = 16  # floor per compiled pattern: also bounds how many DFA caches a budget buys
LITERAL_COST = 4
CONDITION_COST = 16  # Python work per evaluated condition, whatever its patterns
FANOUT = 8  # weight of conditions evaluated once per operand or per command of a script
ANCESTOR_FANOUT = 16  # `ancestor` is tried on up to 16 ancestors (ProcessTree.ancestors)


def _cost(src: str, *, glob: bool) -> int:
    """Cost of one pattern compiled as the engine compiles per-run rules."""
    if glob:
        if not is_glob(src):
            return LITERAL_COST
        rx = globs_regex([glob_to_regex(src, home="/h", workspace="/w")], max_mem=MAX_MEM_UNTRUSTED)
    else:
        rx = Regex(src, max_mem=MAX_MEM_UNTRUSTED)
    return max(rx.program_size, PATTERN_MIN)


def _patterns_cost(pats: list[tuple[str, bool]]) -> int:
    return sum(_cost(src, glob=glob) for src, glob in pats)


def _exec_cost(c: S.ExecCond) -> int:
    cost = CONDITION_COST + _patterns_cost([(g, True) for g in [*c.program, *c.script]])
    cost += _patterns_cost([(g, True) for grp in c.args for g in ([grp] if isinstance(grp, str) else grp)])
    cost += FANOUT * _patterns_cost([(g, True) for g in c.paths])
    if c.cmdline:
        cost += _cost(c.cmdline, glob=False)
    if c.shell is not None:
        cost += FANOUT * sum(_exec_cost(sub) for sub in [*c.shell.pipe, *filter(None, [c.shell.command])])
        if c.shell.regex:
            cost += _cost(c.shell.regex, glob=False)
    return cost


def _lineage_cost(pc: S.ProcCond) -> int:
    return CONDITION_COST + _patterns_cost(
        [(g, True) for g in pc.program] + ([(pc.cmdline, False)] if pc.cmdline else [])
    )


def _when_cost(w: S.When) -> int:
    cost = CONDITION_COST
    if w.exec is not None:
        cost += _exec_cost(w.exec)
    if w.flow is not None:
        cost += sum(_exec_cost(c) for c in (w.flow.into, w.flow.source) if c is not None)
    if w.file is not None:
        cost += _patterns_cost([(g, True) for g in [*w.file.path, *w.file.path2, *w.file.src, *w.file.unverified]])
    if w.net is not None:
        cost += _patterns_cost([(g.lower(), True) for g in w.net.dns])
    for pc in (w.process, w.parent, w.writer):
        if pc is not None:
            cost += _lineage_cost(pc)
    if w.ancestor is not None:
        cost += ANCESTOR_FANOUT * _lineage_cost(w.ancestor)
    return cost


def rule_cost(rule: S.Rule) -> int:
    """Matching cost of a validated rule (see UNTRUSTED_BUDGET).

    Raises Invalid when a pattern is too large for the per-run RE2 memory budget."""
    whens: list[tuple[Path, S.When]] = []
    if rule.sequence is not None:
        whens += [(("sequence",), w) for s in rule.sequence.steps for w in step_alternatives(s)]
    elif rule.when is not None:
        whens += [(("when",), w) for w in (rule.when if isinstance(rule.when, list) else [rule.when])]
    whens += [(("except",), w) for w in rule.except_]
    total = 0
    for path, w in whens:
        try:
            total += _when_cost(w)
        except RegexError as exc:
            raise Invalid(path, f"a pattern is too large for a per-run rule: {exc}") from None
    return total
