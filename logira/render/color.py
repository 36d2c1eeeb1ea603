"""Colour decisions and the palette.

`--color auto` (the default) colours only when stdout is a TTY; NO_COLOR (non-empty)
turns auto off, FORCE_COLOR / CLICOLOR_FORCE (non-empty, not "0") turn it on. An explicit
`--color always|never` wins over the environment. Colour is applied to already
escaped and padded text, so escape sequences never come from recorded data.
"""

from __future__ import annotations

import os
from typing import TextIO

from logira.errors import LogiraError

COLOR_MODES = ("auto", "always", "never")

SEVERITY_CODES = {"critical": "1;31", "high": "31", "medium": "33", "low": "36", "info": "34"}
TYPE_CODES = {"exec": "32", "proc": "90", "file": "35", "net": "36", "detection": "31"}


def color_enabled(mode: str, stream: TextIO) -> bool:
    """Decide whether to colour output written to `stream` under `--color mode`."""
    if mode not in COLOR_MODES:
        raise LogiraError(f"invalid --color {mode!r} (expected auto|always|never)", exit_code=2)
    if mode == "always":
        return True
    if mode == "never":
        return False
    if os.environ.get("NO_COLOR"):
        return False
    for var in ("FORCE_COLOR", "CLICOLOR_FORCE"):
        val = os.environ.get(var)
        if val and val != "0":
            return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Palette:
    """Wraps text in SGR codes when enabled; identity otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def paint(self, text: str, code: str | None) -> str:
        if not self.enabled or not code or not text:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"

    def severity(self, text: str, severity: str) -> str:
        return self.paint(text, SEVERITY_CODES.get(severity))

    def type(self, text: str, typ: str) -> str:
        return self.paint(text, TYPE_CODES.get(typ))

    def bold(self, text: str) -> str:
        return self.paint(text, "1")

    def dim(self, text: str) -> str:
        return self.paint(text, "2")

    def warn(self, text: str) -> str:
        return self.paint(text, "31")

    def ok(self, text: str) -> str:
        return self.paint(text, "32")
