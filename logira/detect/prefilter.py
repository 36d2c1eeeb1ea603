"""SQL prefilters of rules over a run's index (retro-hunt): which stored rows could a rule match?

For each event condition of a rule (`when`, or every step of a `sequence`) this builds a WHERE
clause over the indexed `events` columns that is a SUPERSET of what the condition matches: the
type (and op), plus the DNS name, the destination address, the path (or rename/link target) or
the program, whenever the rule names them. Globs are widened to SQLite GLOB (`**` → `*`,
character classes → `?`, `$HOME`/`$WORKSPACE` expanded), so the index never hides a match; the
rule engine then decides exactly. A rule whose condition cannot be narrowed still narrows to
its record type. `except` blocks and lineage conditions only remove matches, so they are ignored.
"""

from __future__ import annotations

import ipaddress

from logira.detect import schema as S

_GLOB_SPECIAL = str.maketrans({"*": "[*]", "?": "[?]", "[": "[[]"})


def _lit(s: str) -> str:
    """A literal for SQLite GLOB (its wildcards escaped as one-character classes)."""
    return s.translate(_GLOB_SPECIAL)


def widen_glob(pattern: str, home: str, workspace: str) -> str:
    """A SQLite GLOB matching at least what the rule glob matches."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith("$HOME", i):
            out.append(_lit(home.rstrip("/")))
            i += 5
        elif pattern.startswith("$WORKSPACE", i):
            out.append(_lit(workspace.rstrip("/")))
            i += 10
        elif (pattern.startswith("/**", i) and i + 3 == n) or pattern.startswith("**/", i):  # `dir/**` also matches `dir` itself
            out.append("*")
            i += 3
        elif pattern[i] == "*":
            out.append("*")
            i += 2 if pattern.startswith("**", i) else 1
        elif pattern[i] == "?":
            out.append("?")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append("[[]")
                i += 1
            else:  # any class matches one character: `?` is a superset of it
                out.append("?")
                i = end + 1
        else:
            out.append(_lit(pattern[i]))
            i += 1
    return "".join(out)


class Prefilter:
    """A rule's prefilter: OR of (sql, params) clauses; `None` clauses list = cannot prefilter."""

    def __init__(self, clauses: list[tuple[str, list]]):
        self.clauses = clauses

    def sql(self) -> tuple[str, list]:
        params: list = []
        parts = []
        for c, p in self.clauses:
            parts.append(f"({c})")
            params.extend(p)
        return " OR ".join(parts) or "0", params


def _in(col: str, values: list) -> tuple[str, list]:
    return f"{col} IN ({','.join('?' * len(values))})", list(values)


def _file(c: S.FileCond, home: str, ws: str, indexes: frozenset[str] = frozenset()) -> list[tuple[str, list]]:
    """Clauses for a file condition: the path names (ev_path) and, apart, rename/link targets (ev_change).

    Two clauses rather than `path GLOB ? OR path2 GLOB ?`: SQLite can answer the first from the
    ev_path index and the second from the partial ev_change index, but not the OR of both.
    """
    ops, params = "", []
    if c.op:
        ops, params = _in("op", c.op)
    names = [*c.path, *c.path2]
    if not names or c.src:
        return [("type = 'file'" + (f" AND {ops}" if ops else ""), params)]
    globs = [widen_glob(g, home, ws) if "/" in g else "*/" + widen_glob(g, home, ws) for g in names]
    # `+type`/`+op`: keep SQLite from walking every file row of ev_type; the GLOB prefix uses ev_path
    on_path = ("+type = 'file'" + (f" AND +{ops}" if ops else "") + " AND ("
               + " OR ".join(["path GLOB ?"] * len(globs)) + ")", params + globs)  # fmt: skip
    inner = ("type = 'file' AND op != 'read' AND path2 IS NOT NULL" + (f" AND {ops}" if ops else "") + " AND ("
             + " OR ".join(["path2 GLOB ?"] * len(globs)) + ")")  # fmt: skip
    if "ev_change" in indexes:  # a covering scan of the file-change index, not of the table
        on_path2 = (f"seq IN (SELECT seq FROM events INDEXED BY ev_change WHERE {inner})", params + globs)
    else:
        on_path2 = (inner, params + globs)
    return [on_path, on_path2]


def _dst(items: list[str]) -> tuple[str, list] | None:
    alts, params = [], []
    for d in items:
        try:
            net = ipaddress.ip_network(d, strict=False)
        except ValueError:
            return None  # a keyword (public, private, any…): no narrowing on the address
        if net.num_addresses == 1:
            alts.append("dst_ip = ?")
            params.append(str(net.network_address))
        elif net.version == 4:
            fixed = net.prefixlen // 8
            prefix = ".".join(str(net.network_address).split(".")[:fixed])
            alts.append("dst_ip GLOB ?")
            params.append((prefix + "." if fixed else "") + "*")
        else:
            return None
    return "(" + " OR ".join(alts) + ")", params


def _net(c: S.NetCond) -> tuple[str, list]:
    conds, params = ["type = 'net'"], []
    if c.op:
        s, p = _in("op", c.op)
        conds.append(s)
        params += p
    if c.dns:
        conds.append("dns IS NOT NULL AND (" + " OR ".join(["lower(rtrim(dns, '.')) GLOB ?"] * len(c.dns)) + ")")
        params += [widen_glob(g.lower(), "", "") for g in c.dns]
    elif c.dst and (c.direction == "outbound" or set(c.op) <= {"connect", "send"}):
        d = _dst(c.dst)
        if d is not None:
            conds.append(d[0])
            params += d[1]
    return " AND ".join(conds), params


def _exec(c: S.ExecCond, home: str, ws: str) -> tuple[str, list]:
    if not c.program:
        return "type = 'exec'", []
    alts, params = [], []
    for g in c.program:
        if "/" in g:
            alts.append("exe GLOB ?")
            params.append(widen_glob(g, home, ws))
        else:
            w = widen_glob(g, home, ws)
            alts.append("exe GLOB ? OR (data_json ->> '$.argv[0]') GLOB ? OR (data_json ->> '$.argv[0]') GLOB ?")
            params += ["*/" + w, w, "*/" + w]
    return "type = 'exec' AND (" + " OR ".join(alts) + ")", params


def _when(w: S.When, home: str, ws: str, indexes: frozenset[str] = frozenset()) -> list[tuple[str, list]]:
    if w.file is not None:
        return _file(w.file, home, ws, indexes)
    if w.net is not None:
        return [_net(w.net)]
    if w.exec is not None:
        return [_exec(w.exec, home, ws)]
    if w.proc is not None:
        return [("type = 'proc'", []) if not w.proc.op else (
            "type = 'proc' AND " + _in("op", w.proc.op)[0], list(w.proc.op))]  # fmt: skip
    return [("type != 'detection'", [])]


def steps_of(rule: S.Rule) -> list[list[S.When]]:
    """The rule's event conditions: one group for `when`, one per sequence step (alternatives inside)."""
    if rule.sequence is not None:
        return [s if isinstance(s, list) else [s] for s in rule.sequence.steps]
    if rule.when is None:
        return []
    return [rule.when if isinstance(rule.when, list) else [rule.when]]


def prefilters(rule: S.Rule, home: str, workspace: str, indexes: frozenset[str] = frozenset()) -> list[Prefilter]:
    """One prefilter per step (a plain rule has one); the rule can fire only if every step has rows.

    `indexes`: the names of the run database's indexes (ev_change lets rename targets be probed
    on the file-change index).
    """
    return [Prefilter([c for w in step for c in _when(w, home, workspace, indexes)]) for step in steps_of(rule)]
