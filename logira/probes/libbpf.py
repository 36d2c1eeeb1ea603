"""A small typed layer over the system libbpf.so.1 (1.1.x): the only ctypes in logira.

Functions return Python values and raise `LibbpfError` (errno + libbpf's own last
messages) instead of returning negative errno. libbpf's log output is captured with
`libbpf_set_print` so callers can turn the interesting tail into a one-line error
instead of letting it spill onto stderr.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as errno_mod
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator

c_void_p = ctypes.c_void_p
c_int = ctypes.c_int
c_char_p = ctypes.c_char_p
c_size_t = ctypes.c_size_t
c_uint32 = ctypes.c_uint32

BTF_KIND_VAR = 14
BTF_KIND_DATASEC = 15


class LibbpfError(OSError):
    """A libbpf call failed: `errno` is set; `log` holds libbpf's recent messages."""

    def __init__(self, err: int, what: str, log: list[str] | None = None):
        super().__init__(err, f"{what}: {os.strerror(err)}")
        self.what = what
        self.log = log or []


class _BtfType(ctypes.Structure):
    _fields_ = [("name_off", c_uint32), ("info", c_uint32), ("size_or_type", c_uint32)]


class _VarSecinfo(ctypes.Structure):
    _fields_ = [("type", c_uint32), ("offset", c_uint32), ("size", c_uint32)]


RingCallback = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t)
_PrintFn = ctypes.CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)


def _load_lib() -> ctypes.CDLL:
    try:
        return ctypes.CDLL("libbpf.so.1", use_errno=True)
    except OSError:
        raise LibbpfError(errno_mod.ENOENT, "libbpf.so.1 not found: install it (Debian/Ubuntu: apt-get install libbpf1)") from None


_lib = _load_lib()
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _sig(name: str, restype, *argtypes) -> None:
    fn = getattr(_lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


_sig("bpf_object__open_file", c_void_p, c_char_p, c_void_p)
_sig("bpf_object__load", c_int, c_void_p)
_sig("bpf_object__close", None, c_void_p)
_sig("bpf_object__find_map_by_name", c_void_p, c_void_p, c_char_p)
_sig("bpf_object__next_map", c_void_p, c_void_p, c_void_p)
_sig("bpf_object__next_program", c_void_p, c_void_p, c_void_p)
_sig("bpf_object__btf", c_void_p, c_void_p)
_sig("bpf_map__name", c_char_p, c_void_p)
_sig("bpf_map__set_max_entries", c_int, c_void_p, c_uint32)
_sig("bpf_map__reuse_fd", c_int, c_void_p, c_int)
_sig("bpf_map__fd", c_int, c_void_p)
_sig("bpf_map__type", c_int, c_void_p)
_sig("bpf_map__key_size", c_uint32, c_void_p)
_sig("bpf_map__value_size", c_uint32, c_void_p)
_sig("bpf_map__max_entries", c_uint32, c_void_p)
_sig("bpf_map__map_flags", c_uint32, c_void_p)
_sig("bpf_map__initial_value", c_void_p, c_void_p, ctypes.POINTER(c_size_t))
_sig("bpf_program__name", c_char_p, c_void_p)
_sig("bpf_program__section_name", c_char_p, c_void_p)
_sig("bpf_program__attach", c_void_p, c_void_p)
_sig("bpf_program__attach_tracepoint", c_void_p, c_void_p, c_char_p, c_char_p)
_sig("bpf_link__destroy", c_int, c_void_p)
_sig("bpf_map_update_elem", c_int, c_int, c_void_p, c_void_p, ctypes.c_uint64)


class _MapCreateOpts(ctypes.Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("btf_fd", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("inner_map_fd", c_uint32),
        ("map_flags", c_uint32),
        ("map_extra", ctypes.c_uint64),
        ("numa_node", c_uint32),
        ("map_ifindex", c_uint32),
    ]


_sig("bpf_map_create", c_int, c_int, c_char_p, c_uint32, c_uint32, c_uint32, ctypes.POINTER(_MapCreateOpts))
_sig("bpf_map_lookup_elem", c_int, c_int, c_void_p, c_void_p)
_sig("bpf_map_delete_elem", c_int, c_int, c_void_p)
_sig("bpf_map_get_next_key", c_int, c_int, c_void_p, c_void_p)
_sig("bpf_program__fd", c_int, c_void_p)
_sig("bpf_obj_get_info_by_fd", c_int, c_int, c_void_p, ctypes.POINTER(ctypes.c_uint32))
_sig("libbpf_num_possible_cpus", c_int)
_sig("ring_buffer__new", c_void_p, c_int, RingCallback, c_void_p, c_void_p)
_sig("ring_buffer__epoll_fd", c_int, c_void_p)
_sig("ring_buffer__consume", c_int, c_void_p)
_sig("ring_buffer__poll", c_int, c_void_p, c_int)
_sig("ring_buffer__free", None, c_void_p)
_sig("btf__find_by_name_kind", ctypes.c_int32, c_void_p, c_char_p, c_uint32)
_sig("btf__type_by_id", c_void_p, c_void_p, c_uint32)
_sig("btf__name_by_offset", c_char_p, c_void_p, c_uint32)
_sig("libbpf_set_print", c_void_p, _PrintFn)
_libc.vsnprintf.restype = c_int
_libc.vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]

# ---------------------------------------------------------------- libbpf's log

_log: deque[str] = deque(maxlen=400)
_echo = os.environ.get("LOGIRA_LIBBPF_DEBUG") == "1"  # also copy libbpf's messages to stderr
_log_lock = threading.Lock()


LIBBPF_DEBUG = 2


def _print_cb(level: int, fmt: bytes, args: int) -> int:
    # libbpf sends thousands of debug lines per load (one per CO-RE relocation); formatting
    # them cost ~25 ms of start-up and nothing reads them (failures are WARN level)
    if level >= LIBBPF_DEBUG and not _echo:
        return 0
    # va_list is an array type on x86-64/arm64, so it arrives as a pointer that
    # vsnprintf accepts as is.
    buf = ctypes.create_string_buffer(2048)
    _libc.vsnprintf(buf, len(buf), fmt, args)
    text = buf.value.decode("utf-8", "replace")
    if _echo:
        os.write(2, buf.value)
    with _log_lock:
        for line in text.splitlines():
            if line.strip():
                _log.append(line.rstrip())
    return 0


_print_ref = _PrintFn(_print_cb)  # keep alive: libbpf holds the pointer forever
_lib.libbpf_set_print(_print_ref)


def clear_log() -> None:
    with _log_lock:
        _log.clear()


def log_lines() -> list[str]:
    """libbpf's messages since the last `clear_log()` (bounded)."""
    with _log_lock:
        return [x for x in _log if x != "\0mark"]


# ---------------------------------------------------------------- helpers


def _err(what: str, rc: int | None = None) -> LibbpfError:
    e = -rc if rc is not None and rc < 0 else ctypes.get_errno() or errno_mod.EINVAL
    return LibbpfError(e, what, log_lines())


def _check(rc: int, what: str) -> int:
    if rc < 0:
        raise _err(what, rc)
    return rc


def _nonnull(ptr: int | None, what: str) -> int:
    if not ptr:
        raise _err(what)
    return ptr


def num_possible_cpus() -> int:
    return _check(_lib.libbpf_num_possible_cpus(), "libbpf_num_possible_cpus")


# ---------------------------------------------------------------- objects


class Map:
    """A map of an opened object (a borrowed pointer: lives as long as the object)."""

    def __init__(self, ptr: int):
        self.ptr = ptr

    @property
    def name(self) -> str:
        return _lib.bpf_map__name(self.ptr).decode()

    @property
    def fd(self) -> int:
        return _lib.bpf_map__fd(self.ptr)

    def set_max_entries(self, n: int) -> None:
        _check(_lib.bpf_map__set_max_entries(self.ptr, n), f"bpf_map__set_max_entries({self.name})")

    def create_like(self) -> int:
        """Create a new kernel map with this map's definition (as set before load); returns its fd."""
        opts = _MapCreateOpts(sz=ctypes.sizeof(_MapCreateOpts), map_flags=_lib.bpf_map__map_flags(self.ptr))
        fd = _lib.bpf_map_create(
            _lib.bpf_map__type(self.ptr),
            self.name.encode()[:15],
            _lib.bpf_map__key_size(self.ptr),
            _lib.bpf_map__value_size(self.ptr),
            _lib.bpf_map__max_entries(self.ptr),
            ctypes.byref(opts),
        )
        return _check(fd, f"bpf_map_create({self.name})")

    def reuse_fd(self, fd: int) -> None:
        _check(_lib.bpf_map__reuse_fd(self.ptr, fd), f"bpf_map__reuse_fd({self.name})")

    def initial_value(self) -> tuple[int, int]:
        """(address, size) of the map's initial data (.rodata/.data), writable before load."""
        size = c_size_t()
        addr = _nonnull(
            _lib.bpf_map__initial_value(self.ptr, ctypes.byref(size)), f"initial_value({self.name})"
        )
        return addr, size.value


_PROG_INFO_SIZE = 232  # struct bpf_prog_info (6.x), up to attach_btf_id


class Program:
    def __init__(self, ptr: int):
        self.ptr = ptr

    @property
    def name(self) -> str:
        return _lib.bpf_program__name(self.ptr).decode()

    @property
    def section(self) -> str:
        return _lib.bpf_program__section_name(self.ptr).decode()

    def attach(self) -> Link:
        return Link(_nonnull(_lib.bpf_program__attach(self.ptr), f"attach {self.name} ({self.section})"))

    def recursion_misses(self) -> int:
        """Runs the kernel skipped because this program was already running on that CPU
        (struct bpf_prog_info.recursion_misses, offset 208); 0 when unknown."""
        info = ctypes.create_string_buffer(_PROG_INFO_SIZE)
        size = ctypes.c_uint32(_PROG_INFO_SIZE)
        if _lib.bpf_obj_get_info_by_fd(_lib.bpf_program__fd(self.ptr), info, ctypes.byref(size)) != 0:
            return 0
        return int.from_bytes(info.raw[208:216], "little") if size.value >= 216 else 0

    def attach_tracepoint(self, category: str, name: str) -> Link:
        """Attach to a tracepoint other than the one its section names."""
        ptr = _lib.bpf_program__attach_tracepoint(self.ptr, category.encode(), name.encode())
        return Link(_nonnull(ptr, f"attach {self.name} (tracepoint/{category}/{name})"))


class Link:
    def __init__(self, ptr: int):
        self.ptr: int | None = ptr

    def destroy(self) -> None:
        if self.ptr:
            _lib.bpf_link__destroy(self.ptr)
            self.ptr = None


class Object:
    """bpf_object: open, tweak maps/.rodata, load, iterate programs, close."""

    def __init__(self, path: str):
        self.path = path
        self.ptr: int | None = _nonnull(_lib.bpf_object__open_file(os.fsencode(path), None), f"open {path}")

    def maps(self) -> Iterator[Map]:
        m = _lib.bpf_object__next_map(self.ptr, None)
        while m:
            yield Map(m)
            m = _lib.bpf_object__next_map(self.ptr, m)

    def programs(self) -> Iterator[Program]:
        p = _lib.bpf_object__next_program(self.ptr, None)
        while p:
            yield Program(p)
            p = _lib.bpf_object__next_program(self.ptr, p)

    def map(self, name: str) -> Map:
        return Map(
            _nonnull(_lib.bpf_object__find_map_by_name(self.ptr, name.encode()), f"map {name} in {self.path}")
        )

    def has_map(self, name: str) -> bool:
        return bool(_lib.bpf_object__find_map_by_name(self.ptr, name.encode()))

    def rodata_vars(self) -> dict[str, tuple[int, int]]:
        """name -> (offset, size) of every variable in the object's .rodata section (from BTF)."""
        btf = _lib.bpf_object__btf(self.ptr)
        if not btf:
            return {}
        tid = _lib.btf__find_by_name_kind(btf, b".rodata", BTF_KIND_DATASEC)
        if tid < 0:
            return {}
        t = _BtfType.from_address(_lib.btf__type_by_id(btf, tid))
        vlen = t.info & 0xFFFF
        base = _lib.btf__type_by_id(btf, tid) + ctypes.sizeof(_BtfType)
        out: dict[str, tuple[int, int]] = {}
        for i in range(vlen):
            vs = _VarSecinfo.from_address(base + i * ctypes.sizeof(_VarSecinfo))
            vt = _BtfType.from_address(_lib.btf__type_by_id(btf, vs.type))
            name = _lib.btf__name_by_offset(btf, vt.name_off).decode()
            out[name] = (vs.offset, vs.size)
        return out

    def set_rodata(self, values: dict[str, int]) -> None:
        """Write integer `const volatile` knobs into .rodata before load; unknown names raise."""
        rodata = next((m for m in self.maps() if m.name.endswith(".rodata")), None)
        if rodata is None:
            raise LibbpfError(errno_mod.ENOENT, f"{self.path} has no .rodata section")
        addr, size = rodata.initial_value()
        layout = self.rodata_vars()
        for name, value in values.items():
            if name not in layout:
                raise LibbpfError(errno_mod.ENOENT, f"{self.path}: no .rodata variable {name}")
            off, n = layout[name]
            if off + n > size:
                raise LibbpfError(errno_mod.EINVAL, f"{self.path}: .rodata variable {name} out of range")
            ctypes.memmove(addr + off, value.to_bytes(n, "little", signed=value < 0), n)

    def load(self) -> None:
        _check(_lib.bpf_object__load(self.ptr), f"load {self.path}")

    def close(self) -> None:
        if self.ptr:
            _lib.bpf_object__close(self.ptr)
            self.ptr = None


# ---------------------------------------------------------------- map syscalls


def map_update(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    rc = _lib.bpf_map_update_elem(fd, key, value, flags)
    if rc < 0:
        raise LibbpfError(-rc if rc != -1 else ctypes.get_errno(), "bpf_map_update_elem")


def map_delete(fd: int, key: bytes) -> bool:
    """Delete a key; False if it was not there."""
    rc = _lib.bpf_map_delete_elem(fd, key)
    if rc < 0:
        e = -rc if rc != -1 else ctypes.get_errno()
        if e == errno_mod.ENOENT:
            return False
        raise LibbpfError(e, "bpf_map_delete_elem")
    return True


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    buf = ctypes.create_string_buffer(value_size)
    rc = _lib.bpf_map_lookup_elem(fd, key, buf)
    if rc < 0:
        e = -rc if rc != -1 else ctypes.get_errno()
        if e == errno_mod.ENOENT:
            return None
        raise LibbpfError(e, "bpf_map_lookup_elem")
    return buf.raw


def map_keys(fd: int, key_size: int) -> list[bytes]:
    """Every key of a hash map (a snapshot: entries may come and go meanwhile)."""
    keys: list[bytes] = []
    cur = None
    nxt = ctypes.create_string_buffer(key_size)
    while _lib.bpf_map_get_next_key(fd, cur, nxt) == 0:
        keys.append(nxt.raw)
        cur = ctypes.create_string_buffer(nxt.raw, key_size)
        if len(keys) > 1 << 20:
            break
    return keys


def map_clear(fd: int, key_size: int) -> int:
    """Delete every key of a hash map; returns how many were deleted."""
    n = 0
    nxt = ctypes.create_string_buffer(key_size)
    while _lib.bpf_map_get_next_key(fd, None, nxt) == 0:
        if not map_delete(fd, nxt.raw):
            break
        n += 1
    return n


# ---------------------------------------------------------------- ring buffer


class RingBuffer:
    """ring_buffer__new on one map fd; `fn(addr, size)` is called per record (must return 0)."""

    def __init__(self, map_fd: int, fn: Callable[[int | None, int, int], int]):
        self._cb = RingCallback(fn)  # kept alive as long as the ring buffer
        self.ptr: int | None = _nonnull(
            _lib.ring_buffer__new(map_fd, self._cb, None, None), "ring_buffer__new"
        )

    @property
    def epoll_fd(self) -> int:
        return _lib.ring_buffer__epoll_fd(self.ptr)

    def consume(self) -> int:
        """Consume every available record; returns how many (or raises)."""
        return _check(_lib.ring_buffer__consume(self.ptr), "ring_buffer__consume")

    def poll(self, timeout_ms: int) -> int:
        return _check(_lib.ring_buffer__poll(self.ptr, timeout_ms), "ring_buffer__poll")

    def free(self) -> None:
        if self.ptr:
            _lib.ring_buffer__free(self.ptr)
            self.ptr = None
