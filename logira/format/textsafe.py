"""Exact bytes in JSON: how undecodable bytes (from paths, argv, DNS names) reach disk.

Kernel strings are decoded with `surrogateescape`, so an invalid UTF-8 byte 0xNN is the lone
surrogate U+DCNN in memory. JSON (and msgspec, both ways) cannot carry lone surrogates, so on disk:

- the text field holds a display form where each such byte is the 4 characters `\\xNN`
  (Python's `backslashreplace`; valid UTF-8, safe to search and print), and
- the record gets a `raw_bytes` object mapping the field's dotted path (`data_json.argv.2`) to the
  hex of its exact original bytes, so nothing is lost and the display form is never ambiguous.

Records without such bytes (nearly all) take the plain msgspec fast path and carry no `raw_bytes`.
"""

from __future__ import annotations

import codecs
from typing import Any

import msgspec

_encode = msgspec.json.encode


def _lone_surrogates(exc: UnicodeError) -> tuple[bytes, int]:
    # U+DC80..U+DCFF are surrogate-escaped bytes; any other lone surrogate (not produced by our
    # decoders, but a str can hold one) is kept as its CESU-8 bytes rather than failing the write.
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = bytearray()
    for ch in exc.object[exc.start : exc.end]:
        cp = ord(ch)
        out += bytes([cp - 0xDC00]) if 0xDC80 <= cp <= 0xDCFF else ch.encode("utf-8", "surrogatepass")
    return bytes(out), exc.end


codecs.register_error("logira-bytes", _lone_surrogates)


def to_bytes(s: str) -> bytes:
    """The exact bytes a (surrogate-escaped) string stands for."""
    return s.encode("utf-8", "logira-bytes")


def display(s: str) -> str:
    """The on-disk text form of a string that may hold surrogate-escaped bytes."""
    return to_bytes(s).decode("utf-8", "backslashreplace")


def has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _clean(obj: Any, path: str, raw: dict[str, str]) -> Any:
    if isinstance(obj, str):
        if has_surrogates(obj):
            raw[path] = to_bytes(obj).hex()
            return display(obj)
        return obj
    if isinstance(obj, list):
        return [_clean(v, f"{path}.{i}", raw) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        return {k: _clean(v, f"{path}.{k}" if path else k, raw) for k, v in obj.items()}
    return obj


def clean_builtins(obj: msgspec.Struct) -> tuple[Any, dict[str, str]]:
    """`obj` as builtins with display-form strings, and the exact bytes of the strings changed."""
    raw: dict[str, str] = {}
    return _clean(msgspec.to_builtins(obj), "", raw), raw


def encode_exact(obj: msgspec.Struct) -> bytes:
    """msgspec JSON of `obj`; if it holds undecodable bytes, display forms plus a `raw_bytes` member."""
    try:
        return _encode(obj)
    except UnicodeEncodeError:
        pass
    clean, raw = clean_builtins(obj)
    clean["raw_bytes"] = raw
    return _encode(clean)


def encode_display(obj: msgspec.Struct) -> bytes:
    """msgspec JSON of `obj` with display-form strings only (what SQLite's data_json holds)."""
    try:
        return _encode(obj)
    except UnicodeEncodeError:
        return _encode(clean_builtins(obj)[0])


def exact_strings(raw_bytes: dict[str, str]) -> dict[str, str]:
    """`raw_bytes` of a stored line → field path → the original string (surrogate-escaped)."""
    return {k: bytes.fromhex(v).decode("utf-8", "surrogateescape") for k, v in raw_bytes.items()}
