"""Linear-time regular expressions (Google RE2) for every pattern a rule matches.

Rules run in the root daemon's single event loop on strings the audited agent controls.
Python's `re` backtracks: `(a|aa)*$` is exponential and a glob such as `**a**a**a**b`
(`.*a.*a.*a.*b`) is O(n^4) on a 16 KiB command line, so one crafted `--rules` file stalled
the recording of every user. RE2 runs in time linear in the text for any pattern it accepts,
and it refuses the features that cannot be linear (backreferences, lookaround).

We call the pybind11 layer `re2._re2` instead of the `re`-compatible wrapper of google-re2:
the wrapper re-maps every match span to str offsets through a generator, which more than
doubled the per-call cost; rules only need yes/no. Text is encoded with `surrogatepass` so
the surrogate-escaped bytes of undecodable paths are one character each, as in Python's
`re` (`*`, `?` and `.` match them).
"""

from __future__ import annotations

from re2 import _re2

_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_ANCHOR_BOTH = _re2.RE2.Anchor.ANCHOR_BOTH
_NO_MATCH = (-1, -1)
# RE2's memory budget per compiled pattern (program + DFA cache). The DFA falls back to the
# (still linear) NFA when its cache is full, so this bounds memory, never correctness.
# Built-in and site rules get RE2's default; per-run rules (any local user) get a small one so
# that their patterns cannot make the root daemon hold gigabytes of DFA state (measured: ~2.6 MiB
# per pattern after a few adversarial events at 8 MiB). A small budget is no slower on
# adversarial text (the DFA gives up instead of thrashing) but made the benchmark mix ~8% slower
# when tried on the built-ins too.
MAX_MEM = 8 << 20
MAX_MEM_UNTRUSTED = 256 << 10

# Features RE2 refuses, with the rewrite to suggest (checked against RE2's error text).
_HINTS = (
    ("invalid perl operator: (?=", "lookahead is not supported"),
    ("invalid perl operator: (?!", "lookahead is not supported"),
    ("invalid perl operator: (?<=", "lookbehind is not supported"),
    ("invalid perl operator: (?<!", "lookbehind is not supported"),
    ("invalid perl operator: (?", "inline flags are i, m, s and U only"),
    ("invalid escape sequence: \\Z", "write \\z for end of text"),
    *((f"invalid escape sequence: \\{d}", "backreferences are not supported") for d in "123456789"),
    ("bad repetition operator: *+", "possessive quantifiers are not needed (RE2 never backtracks)"),
    ("bad repetition operator: ++", "possessive quantifiers are not needed (RE2 never backtracks)"),
    ("bad repetition operator: ?+", "possessive quantifiers are not needed (RE2 never backtracks)"),
    ("pattern too large", "split or simplify it"),
)


class RegexError(ValueError):
    """A pattern RE2 cannot compile; str() is one line with a hint when one is known."""


def _options(max_mem: int) -> object:
    opts = _re2.RE2.Options()
    opts.max_mem = max_mem
    opts.log_errors = False  # errors are reported to the rule author, not RE2's stderr log
    opts.never_capture = True  # rules only ask whether there is a match
    return opts


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class Regex:
    """A compiled pattern: `test(text)` is `search` or, with `whole=True`, `fullmatch`."""

    __slots__ = ("_anchor", "_match", "max_mem", "pattern", "program_size")

    def __init__(self, pattern: str, *, whole: bool = False, max_mem: int = MAX_MEM) -> None:
        try:
            compiled = _re2.RE2(_encode(pattern), _options(max_mem))
        except UnicodeEncodeError:
            raise RegexError("pattern is not valid text") from None
        if not compiled.ok():
            err = compiled.error().decode("utf-8", "replace")
            hint = next((h for key, h in _HINTS if err.startswith(key)), "")
            raise RegexError(f"{err}{' (' + hint + ')' if hint else ''}")
        self.pattern = pattern
        self.max_mem = max_mem  # MAX_MEM_UNTRUSTED marks a per-run (untrusted) rule's pattern
        # RE2 instructions: the worst-case cost per byte of text grows with it (loader budget)
        self.program_size: int = compiled.ProgramSize()
        self._match = compiled.Match
        self._anchor = _ANCHOR_BOTH if whole else _UNANCHORED

    def test(self, text: str) -> bool:
        """True when the pattern occurs in text (whole=True: matches all of it)."""
        b = text.encode("utf-8", "surrogatepass")
        return self._match(self._anchor, b, 0, len(b))[0] != _NO_MATCH

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r}{', whole=True' if self._anchor == _ANCHOR_BOTH else ''})"


def escape(text: str) -> str:
    """RE2 source matching text literally (ASCII punctuation escaped, NUL as \\x00)."""
    out = []
    for ch in text:
        if ch == "\0":
            out.append("\\x00")
        elif ch.isascii() and not (ch.isalnum() or ch == "_"):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)
