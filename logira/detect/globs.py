"""Path and name globs, compiled once into anchored RE2 regular expressions.

`*` and `?` never cross `/`; `**` does (`a/**/b` also matches `a/b`, a trailing `/**` also
matches the directory itself); `[...]` is a character class. `$HOME` and `$WORKSPACE` are
replaced by the run's values (escaped) when the rules are bound to a run. Globs become RE2
patterns (`logira.detect.rx`), so matching is linear in the text whatever the glob: with a
backtracking engine `**a**a**a**b` would be O(n^4).
"""

from __future__ import annotations

from logira.detect.rx import MAX_MEM, Regex, RegexError, escape
from logira.format.glob import char_class

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
            out.append(escape(home.rstrip("/")))
            i += 5
        elif pattern.startswith("$WORKSPACE", i):
            out.append(escape(workspace.rstrip("/")))
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
        elif pattern[i] == "[" and (cls := char_class(pattern, i)) is not None:
            out.append(cls[0])
            i = cls[1]
        else:
            out.append(escape(pattern[i]))
            i += 1
    return "".join(out)


def _expand(pattern: str, home: str, workspace: str) -> str:
    """A literal glob with `$HOME`/`$WORKSPACE` replaced, exactly as glob_to_regex reads them."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith("$HOME", i):
            out.append(home.rstrip("/"))
            i += 5
        elif pattern.startswith("$WORKSPACE", i):
            out.append(workspace.rstrip("/"))
            i += 10
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


def globs_regex(sources: list[str], *, max_mem: int = MAX_MEM) -> Regex:
    """One regex matching all of a text that matches any of the glob_to_regex() sources."""
    return Regex("(?s)(?:" + "|".join(sources) + ")", whole=True, max_mem=max_mem)


class Globs:
    """Any-of matcher for a list of globs: `test(text)` is True when one matches all of text.

    Literal globs (most program names, many paths) are a set lookup; the others are one RE2
    pattern. Either way the cost is linear in the text, and most calls never reach RE2.
    """

    __slots__ = ("literals", "regex", "test")

    def __init__(
        self, patterns: list[str], *, home: str = "", workspace: str = "", max_mem: int = MAX_MEM
    ) -> None:
        self.literals = frozenset(_expand(p, home, workspace) for p in patterns if not is_glob(p))
        wild = [glob_to_regex(p, home=home, workspace=workspace) for p in patterns if is_glob(p)]
        self.regex = globs_regex(sorted(set(wild)), max_mem=max_mem) if wild else None
        # bind the cheapest callable once: no Python-level wrapper when one part is empty
        if self.regex is None:
            self.test = self.literals.__contains__
        elif not self.literals:
            self.test = self.regex.test
        else:
            self.test = self._both

    def _both(self, text: str) -> bool:
        return text in self.literals or self.regex.test(text)  # type: ignore[union-attr]


def compile_globs(
    patterns: list[str], *, home: str = "", workspace: str = "", max_mem: int = MAX_MEM
) -> Globs | None:
    """One matcher for any of the globs (None for an empty list)."""
    if not patterns:
        return None
    return Globs(patterns, home=home, workspace=workspace, max_mem=max_mem)


def check_glob(pattern: str) -> str | None:
    """Why a glob is invalid, or None."""
    if not pattern:
        return "empty glob"
    try:
        globs_regex([glob_to_regex(pattern, home="/h", workspace="/w")])
    except RegexError as exc:
        return f"bad glob {pattern!r}: {exc}"
    return None
