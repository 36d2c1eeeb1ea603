"""Run ids and meta.json: pure logic."""

from __future__ import annotations

import pytest

from logira.format.meta import MetaError, RunMeta, decode_meta, encode_meta
from logira.storage.runids import base_run_id, run_id_start_ns, sanitize_tool, validate_run_id


@pytest.mark.parametrize(("raw", "want"), [
    ("Claude Code", "claude-code"),
    ("../../etc/passwd", "..-..-etc-passwd"),
    ("  --x--  ", "x"),
    ("", "unknown"),
    ("...", "unknown"),
    ("ÄÖÜ", "unknown"),
    ("a" * 60, "a" * 48),
    ("a" * 47 + "!b", "a" * 47),
    ("gpt_4.1-mini", "gpt_4.1-mini"),
])
def test_sanitize_tool(raw: str, want: str) -> None:
    assert sanitize_tool(raw) == want


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a b", "x" * 129, "run\n", "é"])
def test_validate_run_id_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid run id .*1-128 chars\)$") as exc:
        validate_run_id(bad)
    assert "\n" not in str(exc.value)


def test_validate_run_id_accepts() -> None:
    assert validate_run_id("20261126-030000-claude-2") == "20261126-030000-claude-2"
    assert validate_run_id("x" * 128) == "x" * 128


def test_base_run_id_is_utc() -> None:
    ns = 1_764_126_061_999_999_999  # 2025-11-26 03:01:01.999 UTC
    assert base_run_id("My Tool", ns) == "20251126-030101-my-tool"
    assert run_id_start_ns("20251126-030101-my-tool-3") == 1_764_126_061_000_000_000
    assert run_id_start_ns("custom") == 0


def test_meta_round_trip_and_order() -> None:
    m = RunMeta(run_id="r1", tool="t", command="echo hi", command_argv=["echo", "hi"], uid=1000, gid=1000,
                start_ts=5, end_ts=9, status="complete", complete=True, exit_code=0, counts={"exec": 2},
                detections={"high": 1}, suspicious_count=1, stragglers=[7], incomplete_reasons=[])
    m.drops.kernel["file_open"] = 3
    data = encode_meta(m)
    assert data.startswith(b'{\n  "version": 4,\n  "run_id": "r1",\n  "tool": "t",')
    assert data.endswith(b"}\n")
    assert decode_meta(data) == m
    assert encode_meta(decode_meta(data)) == data


def test_meta_tolerates_unknown_fields_and_rejects_garbage() -> None:
    m = decode_meta(b'{"run_id": "r", "version": 5, "from_the_future": {"x": 1}}')
    assert (m.run_id, m.version, m.status) == ("r", 5, "running")
    with pytest.raises(MetaError, match=r"^meta\.json is not valid: "):
        decode_meta(b"\x00garbage")
    with pytest.raises(MetaError, match=r"^meta\.json is not valid: .*run_id"):
        decode_meta(b'{"tool": "x"}')


def test_meta_with_undecodable_bytes_is_written_visibly() -> None:
    argv = [b"ls\xff".decode("utf-8", "surrogateescape")]
    m = decode_meta(encode_meta(RunMeta(run_id="r", command_argv=argv)))
    assert m.command_argv == ["ls\\xff"]
