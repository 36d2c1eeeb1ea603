"""Path and name globs, compiled once into anchored regular expressions.

`*` and `?` never cross `/`; `**` does (`a/**/b` also matches `a/b`, a trailing `/**` also
matches the directory itself); `[...]` is a character class. `$HOME` and `$WORKSPACE` are
replaced by the run's values (escaped) when the rules are bound to a run.
"""

from __future__ import annotations

import re

GLOB_CHARS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    """True when the pattern has a wildcard (otherwise it is a literal)."""
    return any(c in GLOB_CHARS for c in pattern)


def glob_to_regex(pattern: str, *, home: str = "", workspace: str = "") -> str:
    """Regex source (without anchors) for one glob; `$HOME`/`$WORKSPACE` expanded."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith("$HOME", i):
            out.append(re.escape(home.rstrip("/")))
            i += 5
        elif pattern.startswith("$WORKSPACE", i):
            out.append(re.escape(workspace.rstrip("/")))
            i += 10
        elif pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == n:
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                out.append(re.escape("["))
                i += 1
                continue
            body = pattern[i + 1 : j]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = j + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def compile_globs(patterns: list[str], *, home: str = "", workspace: str = "") -> re.Pattern[str] | None:
    """One anchored regex matching any of the globs (None for an empty list)."""
    if not patterns:
        return None
    alts = "|".join(glob_to_regex(p, home=home, workspace=workspace) for p in patterns)
    return re.compile(f"(?:{alts})\\Z", re.DOTALL)


def check_glob(pattern: str) -> str | None:
    """Why a glob is invalid, or None."""
    if not pattern:
        return "empty glob"
    try:
        re.compile(glob_to_regex(pattern, home="/h", workspace="/w"))
    except re.error as exc:
        return f"bad glob {pattern!r}: {exc}"
    return None
