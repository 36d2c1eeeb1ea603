"""Plain-text tables: header, dashes, two-space gaps.

Cells are escaped text (callers run `esc()` on recorded strings first) plus an optional
colour code; widths are computed on the visible text and colour is applied after padding,
so truncation never cuts an escape sequence. Columns with `max_width=None` (ids, times,
the last column) are never truncated; `wide=True` disables truncation everywhere.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from logira.render.color import Palette

Cell = str | tuple[str, str | None]  # text, or (text, SGR code)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    max_width: int | None = None
    right: bool = False


def width(s: str) -> int:
    """Terminal columns taken by `s` (wide East Asian characters count 2, combining 0)."""
    if s.isascii():
        return len(s)
    w = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def truncate(s: str, n: int) -> str:
    """Cut `s` to `n` columns, ending with `…` when something was cut."""
    if width(s) <= n:
        return s
    if n <= 1:
        return "…"[:n]
    out, w = [], 0
    for ch in s:
        cw = width(ch)
        if w + cw > n - 1:
            break
        out.append(ch)
        w += cw
    return "".join(out) + "…"


def render_table(
    columns: Sequence[Column], rows: Sequence[Sequence[Cell]], palette: Palette, wide: bool = False
) -> list[str]:
    """Lay out `rows` under `columns`; returns the lines (without newlines)."""
    texts: list[list[str]] = []
    codes: list[list[str | None]] = []
    last = len(columns) - 1
    for row in rows:
        t_row, c_row = [], []
        for i, cell in enumerate(row):
            text, code = (cell, None) if isinstance(cell, str) else cell
            col = columns[i]
            if not wide and col.max_width is not None and i != last:
                text = truncate(text, col.max_width)
            t_row.append(text)
            c_row.append(code)
        texts.append(t_row)
        codes.append(c_row)
    widths = [width(c.name) for c in columns]
    for t_row in texts:
        for i, text in enumerate(t_row):
            widths[i] = max(widths[i], width(text))
    lines = [_join([_pad(c.name, widths[i], c.right, i == last) for i, c in enumerate(columns)])]
    lines.append(
        _join(["-" * widths[i] if i != last else "-" * width(c.name) for i, c in enumerate(columns)])
    )
    for t_row, c_row in zip(texts, codes, strict=True):
        cells = []
        for i, text in enumerate(t_row):
            padded = _pad(text, widths[i], columns[i].right, i == last)
            if c_row[i]:
                stripped = padded.rstrip(" ") if not columns[i].right else padded.lstrip(" ")
                pad = len(padded) - len(stripped)
                painted = palette.paint(stripped, c_row[i])
                padded = (painted + " " * pad) if not columns[i].right else (" " * pad + painted)
            cells.append(padded)
        lines.append(_join(cells))
    return lines


def _pad(text: str, w: int, right: bool, is_last: bool) -> str:
    gap = w - width(text)
    if right:
        return " " * gap + text
    return text if is_last else text + " " * gap


def _join(cells: list[str]) -> str:
    return "  ".join(cells).rstrip(" ")
