"""Pure rendering logic: escaping, tables, time formats, colour decisions."""

from __future__ import annotations

import io

import pytest

from logira.cli.errors import CliError
from logira.render.color import Palette, color_enabled
from logira.render.escape import esc, esc_argv
from logira.render.table import Column, render_table, truncate, width
from logira.render.timefmt import TimeFormatter, fmt_seconds, parse_duration, parse_time_spec

T = 1_767_366_245_000_000_000


def test_escape_controls_ansi_c1_bidi_and_undecodable_bytes():
    assert esc("a\x1b[31mb\x1b]0;t\x07") == "a\\x1b[31mb\\x1b]0;t\\x07"
    assert esc("l1\nl2\r\t") == "l1\\nl2\\r\\t"
    assert esc("c1\x9b\x85 del\x7f") == "c1\\x9b\\x85 del\\x7f"
    assert esc("x\u202ey\u2066\u200b\ufeff") == "x\\u202ey\\u2066\\u200b\\ufeff"
    assert esc("bad\udcff\udc80") == "bad\\xff\\x80"
    assert esc("ok ünïcødé 日本") == "ok ünïcødé 日本"


def test_escape_argv_quotes_what_would_misparse():
    assert esc_argv(["sh", "-c", "a; b", "", "it's", "x\ny"]) == "sh -c 'a; b' '' 'it'\\''s' x\\ny"


def test_table_pads_truncates_middle_columns_only_and_colours_after_padding():
    cols = [Column("seq", right=True), Column("path", 8), Column("msg", 3)]
    lines = render_table(
        cols, [["1", ("abcdefghijk", "31"), "long message"], ["22", "b", "z"]], Palette(True)
    )
    assert lines[0] == "seq  path      msg"
    assert lines[1] == "---  --------  ---"
    assert lines[2] == "  1  \x1b[31mabcdefg…\x1b[0m  long message"
    assert lines[3] == " 22  b         z"
    wide = render_table(cols, [["1", "abcdefghijk", "m"]], Palette(False), wide=True)
    assert wide[2] == "  1  abcdefghijk  m"


def test_width_and_truncate_count_wide_characters():
    assert width("日本") == 4
    assert truncate("日本語テキスト", 5) == "日本…"
    assert truncate("short", 10) == "short"


def test_time_formats():
    assert fmt_seconds(2_500_000_000) == "2.5s"
    assert fmt_seconds(62_500_000_000) == "1m02.5s"
    assert fmt_seconds(3_723_000_000_000) == "1h02m03s"
    assert TimeFormatter(T, "rel")(T + 1_500_000_000) == "+1.5s"
    assert TimeFormatter(T, "abs")(T + 1_500_000_000) == "15:04:06.500Z"
    assert TimeFormatter(T, "both")(T + 1_500_000_000) == "+1.5s (15:04:06.500Z)"
    assert TimeFormatter(T, "rel")(0) == "-"


def test_time_specs():
    assert parse_duration("1h30m", "--x") == 5400 * 10**9
    assert parse_duration("30d", "--x") == 30 * 86400 * 10**9
    assert parse_time_spec("+5s", "--since", T, T + 100 * 10**9) == T + 5 * 10**9
    assert parse_time_spec("5s", "--since", T, T + 100 * 10**9) == T + 5 * 10**9
    assert parse_time_spec("-10s", "--since", T, T + 100 * 10**9) == T + 90 * 10**9
    assert parse_time_spec("2026-01-02T15:04:06.5Z", "--since", 0, 0) == T + 1_500_000_000
    with pytest.raises(CliError, match=r"invalid --since 'soon'"):
        parse_time_spec("soon", "--since", T, T)
    with pytest.raises(CliError, match=r"invalid --older-than '30x'"):
        parse_duration("30x", "--older-than")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_decision(monkeypatch: pytest.MonkeyPatch):
    for v in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE"):
        monkeypatch.delenv(v, raising=False)
    assert color_enabled("auto", _Tty()) is True
    assert color_enabled("auto", io.StringIO()) is False
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert color_enabled("auto", io.StringIO()) is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert color_enabled("auto", _Tty()) is False
    assert color_enabled("always", io.StringIO()) is True
    assert color_enabled("never", _Tty()) is False
    with pytest.raises(CliError, match=r"invalid --color 'sometimes' \(expected auto\|always\|never\)"):
        color_enabled("sometimes", _Tty())
