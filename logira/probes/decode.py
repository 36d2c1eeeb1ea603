"""Bytes -> kernel events: the common header and the per-domain decoder registry.

Each domain module (`decode_exec`, `decode_file`, `decode_net`) exposes
`DECODERS: dict[int, Decoder]` and optionally `KIND_NAMES: dict[int, str]`. A decoder gets
the whole record (header included) as a memoryview, the parsed header and the base
keyword arguments of `KernelEvent`, and returns an event or None (record deliberately
ignored). Modules that do not exist yet are skipped, so domains can land independently.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import NamedTuple

from logira.model.kernel import KernelEvent
from logira.probes import layout

_DOMAIN_MODULES = ("logira.probes.decode_exec", "logira.probes.decode_file", "logira.probes.decode_net")


class Header(NamedTuple):
    ts_ns: int  # CLOCK_MONOTONIC
    cgroup_id: int
    pid: int
    tid: int
    ppid: int
    uid: int
    gid: int
    kind: int
    size: int
    comm: bytes
    run_cgroup_id: int


Decoder = Callable[[memoryview, Header, dict], KernelEvent | None]

_unpack_hdr = layout.HDR.unpack_from


def parse_header(buf: memoryview | bytes) -> Header:
    """Parse the 64-byte record header at the start of `buf` (struct.error if short)."""
    return Header._make(_unpack_hdr(buf, 0))


def cstr(raw: bytes | memoryview) -> str:
    """A NUL-terminated C string, decoded so that every byte is recoverable."""
    b = bytes(raw)
    n = b.find(b"\0")
    if n >= 0:
        b = b[:n]
    return b.decode("utf-8", "surrogateescape")


class Clock:
    """Converts kernel CLOCK_MONOTONIC stamps to wall-clock UTC nanoseconds.

    The (wall, monotonic) pair is taken once, back to back, when the clock is made; a
    later wall-clock step does not reorder events of a run because `mono_ns` stays raw.
    """

    __slots__ = ("offset",)

    def __init__(self) -> None:
        m0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        w = time.time_ns()
        m1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        self.offset = w - (m0 + m1) // 2

    def wall(self, mono_ns: int) -> int:
        return mono_ns + self.offset

    @classmethod
    def fixed(cls, offset: int) -> Clock:
        """A clock with a known offset (replayed recordings decode to the same timestamps)."""
        c = cls()
        c.offset = offset
        return c


def common(hdr: Header, clock: Clock) -> dict:
    """The KernelEvent base kwargs for a record header."""
    comm = hdr.comm
    n = comm.find(b"\0")
    if n >= 0:
        comm = comm[:n]
    return {
        "ts": hdr.ts_ns + clock.offset,
        "mono_ns": hdr.ts_ns,
        "cgroup_id": hdr.cgroup_id,
        "run_cgroup_id": hdr.run_cgroup_id,
        "pid": hdr.pid,
        "tid": hdr.tid,
        "ppid": hdr.ppid,
        "uid": hdr.uid,
        "gid": hdr.gid,
        "comm": comm.decode("utf-8", "surrogateescape"),
    }


_registry: dict[int, Decoder] | None = None
_names: dict[int, str] | None = None


def _load() -> None:
    global _registry, _names
    reg: dict[int, Decoder] = {}
    names: dict[int, str] = dict(layout.KIND_NAMES)
    for modname in _DOMAIN_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name != modname:
                raise  # a real import error inside an existing module
            continue
        reg.update(getattr(mod, "DECODERS", {}))
        names.update(getattr(mod, "KIND_NAMES", {}))
    _registry, _names = reg, names


def decoders() -> dict[int, Decoder]:
    """kind -> decoder, merged from every domain module that exists."""
    if _registry is None:
        _load()
    assert _registry is not None
    return _registry


def all_kind_names() -> dict[int, str]:
    """kind -> name, merged from layout and every domain module."""
    if _names is None:
        _load()
    assert _names is not None
    return _names


class DecodeError(Exception):
    """A record that could not be decoded (counted by the reader, never fatal)."""


def decode(buf: bytes, clock: Clock) -> KernelEvent | None:
    """Decode one ring buffer record. Raises DecodeError for malformed/unknown records."""
    mv = memoryview(buf)
    try:
        hdr = Header._make(_unpack_hdr(mv, 0))
    except Exception as exc:
        raise DecodeError(f"short record ({len(buf)} bytes)") from exc
    dec = decoders().get(hdr.kind)
    if dec is None:
        raise DecodeError(f"unknown record kind {hdr.kind}")
    try:
        return dec(mv, hdr, common(hdr, clock))
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"kind {hdr.kind}: {exc}") from exc


class Decoded(NamedTuple):
    """One batch of raw records, decoded: the events and what could not be (counted, never raised)."""

    events: list[KernelEvent]
    errors: int  # malformed or unknown records (reader drops)
    ignored: int  # records a decoder deliberately returned None for
    last_error: str


def decode_batch(raw: list[bytes], clock: Clock) -> Decoded:
    """Decode raw ring records in order; never raises (the ring reader and replay both use it)."""
    out: list[KernelEvent] = []
    append = out.append
    table = decoders()
    unpack = _unpack_hdr
    make_hdr = Header._make
    errors = ignored = 0
    last = ""
    for rec in raw:
        try:
            hdr = make_hdr(unpack(rec, 0))
            fn = table.get(hdr.kind)
            if fn is None:
                raise DecodeError(f"unknown record kind {hdr.kind}")
            ev = fn(memoryview(rec), hdr, common(hdr, clock))
        except Exception as exc:
            errors += 1
            last = str(exc) or type(exc).__name__
            continue
        if ev is None:
            ignored += 1
        else:
            append(ev)
    return Decoded(out, errors, ignored, last)
