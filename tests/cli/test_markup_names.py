"""Names that look like markup (` -> `, ` (deleted)`, leading/trailing spaces) are quoted on the terminal."""

from __future__ import annotations

from pathlib import Path

from logira.model.record import FileData
from logira.render.escape import esc_path, file_summary

from .fixtures import rec, write_run

RID = "20260102-150000-markup"


def test_esc_path_quotes_only_what_reads_like_markup() -> None:
    assert esc_path("/tmp/plain name.txt") == "/tmp/plain name.txt"
    assert esc_path("/tmp/a -> b") == '"/tmp/a -> b"'
    assert esc_path("/tmp/x (deleted)") == '"/tmp/x (deleted)"'
    assert esc_path(" lead") == '" lead"' and esc_path("trail ") == '"trail "'
    assert esc_path('/t/q" -> \\') == '"/t/q\\" -> \\\\"'  # quotes and backslashes inside are escaped
    assert esc_path("/t/\x1b[31m -> x") == '"/t/\\\\x1b[31m -> x"'  # escaped first, then quoted
    # a rename of an honest file to a markup-like name: the arrow between them stays unambiguous
    assert file_summary("rename", "/t/a", "/t/b -> c", "file rename /t/a -> /t/b -> c") == 'file rename /t/a -> "/t/b -> c"'
    assert file_summary("create", "/t/ok", "", "file create /t/ok") == "file create /t/ok"


def test_query_view_and_tail_quote_markup_like_names(cli, home: Path) -> None:
    names = ["/w/a -> /etc/passwd", "/w/gone (deleted)", "/w/ spaced "]
    write_run(home, RID, [rec(RID, i + 1, 0.1 * i, "file", FileData(op="create", path=p), summary=f"file create {p}")
                          for i, p in enumerate(names)])  # fmt: skip
    code, out, _ = cli("query", RID, "--type", "file")
    assert code == 0
    for p in names:
        assert f'"{p}"' in out
    code, out, _ = cli("query", RID)
    assert code == 0 and 'file create "/w/a -> /etc/passwd"' in out and "file create /w/a -> /etc" not in out
    code, out, _ = cli("view", RID)
    assert code == 0 and '"/w/a -> /etc"/' in out and '"gone (deleted)"' in out and '" spaced "' in out
    assert "/w/a -> /etc/passwd," not in out and '"/w/a -> /etc/passwd"' in out  # the 'new in this run' list too
