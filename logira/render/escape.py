"""Make strings from the audited process safe to print on a terminal.

Everything the agent controls (argv, paths, host names, comm, rule messages that embed
them) may contain control characters, ANSI/OSC escape sequences, C1 controls, bidi
overrides or bytes that were not valid UTF-8 (kept as surrogateescape'd lone
surrogates). None of it may reach a terminal raw: each such character is shown as a
visible escape (`\\x1b`, `\\n`, `\\xff`, `\\u202e`). Backslashes are left alone: storage
already writes undecodable bytes as literal `\\xNN` text (backslashreplace), so doubling
them would only disguise those.
"""

from __future__ import annotations

import re

# C0, DEL, C1, lone surrogates, bidi and zero-width format characters,
# line/paragraph separators, BOM.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    cp = ord(ch)
    if cp <= 0x9F:
        return f"\\x{cp:02x}"
    if 0xDC80 <= cp <= 0xDCFF:  # surrogateescape'd byte: show the original byte
        return f"\\x{cp - 0xDC00:02x}"
    return f"\\u{cp:04x}"


def esc(s: str) -> str:
    """Return `s` with every terminal-unsafe character replaced by a visible escape."""
    if not _UNSAFE.search(s):
        return s
    return _UNSAFE.sub(_escape_char, s)


def esc_argv(argv: list[str]) -> str:
    """Join argv for display: escaped, and quoted where a reader would misparse it."""
    return " ".join(_quote(esc(a)) for a in argv)


_NEEDS_QUOTE = re.compile(r"[\s'\"$`;&|<>(){}*?#~]")


def _quote(a: str) -> str:
    if a == "":
        return "''"
    if not _NEEDS_QUOTE.search(a):
        return a
    return "'" + a.replace("'", "'\\''") + "'"


def esc_html(s: str) -> str:
    """Text for HTML (element content or a quoted attribute): markup characters become entities.

    Terminal-unsafe characters are made visible first (`esc`), so a bidi override or a control
    character in a recorded name cannot disguise it in the page either.
    """
    return (
        esc(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace('"', "&quot;").replace("'", "&#x27;")
    )  # fmt: skip


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()|~])")


def esc_md(s: str) -> str:
    """Text for GitHub-flavoured Markdown (tables included): no markup, no HTML, no line breaks.

    GitHub renders raw HTML in Markdown (sanitised, but still markup), so `<`, `>` and `&` become
    entities; the punctuation that opens emphasis, code, links or table cells is backslash-escaped
    (`|` included); recorded text never starts a line, so block markers need no escape.
    """
    t = esc(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", t)


def _markup_like(p: str) -> bool:
    return " -> " in p or p.endswith(" (deleted)") or p != p.strip()


def esc_path(p: str) -> str:
    """A recorded path for the terminal: escaped, and quoted when it would read like markup.

    A file may be named `a -> b` or `x (deleted)`, or start/end with spaces: shown bare, it reads
    like a rename arrow, the kernel's marker for an unlinked file, or a different name. Such paths
    (and only those) are shown in double quotes, with `"` and `\\` inside backslash-escaped.
    """
    e = esc(p)
    if not _markup_like(p):
        return e
    return '"' + e.replace("\\", "\\\\").replace('"', '\\"') + '"'


def file_summary(op: str, path: str, path2: str, summary: str) -> str:
    """The summary line of a file record for the terminal: rebuilt with esc_path when a path
    would read like markup, else the stored summary escaped."""
    if not (_markup_like(path) or (path2 and _markup_like(path2))):
        return esc(summary)
    # keep the outcome label of a failed op ("file modify DENIED (EACCES) <path>", convert.py)
    head = f"file {op} "
    rest = summary[len(head) :] if summary.startswith(head) else ""
    label = ""
    if rest.startswith(("DENIED (", "FAILED (")) and ") " in rest:
        label = rest[: rest.index(") ") + 1] + " "
    return f"file {esc(op)} {esc(label)}{esc_path(path)}" + (f" -> {esc_path(path2)}" if path2 else "")
