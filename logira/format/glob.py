"""Glob syntax shared by the rules (detect/globs.py) and `query --path` (read/query.py).

Kept below both so the two readings of a `[...]` class can never drift apart.
"""

from __future__ import annotations


def char_class(pattern: str, i: int) -> tuple[str, int] | None:
    """The `[...]` class starting at pattern[i] as regex source (`[!x]` negates) and the index
    after it; None when it is not closed (the `[` is then a literal). Valid for RE2 and `re`."""
    j = pattern.find("]", i + 2)
    if j < 0:
        return None
    body = pattern[i + 1 : j]
    if body.startswith("!"):
        body = "^" + body[1:]
    return "[" + body.replace("\\", "\\\\") + "]", j + 1
