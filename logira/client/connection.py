"""A blocking client connection to logirad (used by `logira run`, `status`, `tail`).

Framing and message types come from `logira.daemon.protocol` (4-byte big-endian length +
msgspec JSON of a tagged struct). Every failure a user can hit here becomes a one-line
`LogiraError` that says what to do: daemon not running, socket permission, daemon error reply.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time
from typing import Any

from logira.daemon import protocol
from logira.errors import LogiraError

DEFAULT_SOCK = "/run/logira.sock"
START_HINT = "start it as root: sudo logirad &, or systemctl start logirad"


def socket_path(sock_path: str | None = None) -> str:
    """The daemon socket: the argument, else $LOGIRA_SOCK, else /run/logira.sock."""
    return sock_path or os.environ.get("LOGIRA_SOCK") or DEFAULT_SOCK


def _check_daemon_is_root(sock: socket.socket, path: str) -> None:
    """Refuse a socket not served by root: logirad always is.

    The audited agent runs as the user and can change the user's environment for later sessions
    (LOGIRA_SOCK in a shell rc file) and serve a fake daemon on its own socket, which would
    "start" runs that record nothing and print a clean summary. The kernel's SO_PEERCRED says who
    really listens.
    """
    try:
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    except OSError as exc:
        sock.close()
        raise LogiraError(f"cannot identify the process behind {path}: {exc.strerror}") from None
    if uid != 0:
        sock.close()
        raise LogiraError(
            f"{path} is served by uid {uid}, not root: that is not logirad (check LOGIRA_SOCK and "
            "where it is set); refusing to use it"
        )


def _permission_hint(path: str) -> str:
    """Why connect() was refused: a daemon limited to a group (run_group), or a broken socket mode."""
    import grp

    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and st.st_mode & 0o070 == 0o060 and not st.st_mode & 0o007 and st.st_gid != 0:
        try:
            name = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            name = str(st.st_gid)
        return (
            f"logirad only serves members of group {name} ({path} is root:{name} 0660): ask an admin to "
            f"add you (sudo usermod -aG {name} $USER), then log in again"
        )
    return (
        f"permission denied on the logirad socket {path}; it must be mode 0666 and its "
        f"directory searchable (restart logirad, or: sudo chmod 0666 {path})"
    )


class DaemonError(LogiraError):
    """The daemon answered with an `error` message."""


class Connection:
    """One stream connection to the daemon. Not thread-safe; one request at a time."""

    def __init__(self, sock: socket.socket, path: str):
        self._sock = sock
        self.path = path
        self._buf = bytearray()

    @classmethod
    def open(cls, sock_path: str | None = None, timeout: float = 5.0) -> Connection:
        """Connect to the daemon socket; raise LogiraError with the fix when that is impossible."""
        path = socket_path(sock_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except FileNotFoundError:
            sock.close()
            raise LogiraError(f"logirad is not running (no socket at {path}); {START_HINT}") from None
        except ConnectionRefusedError:
            sock.close()
            raise LogiraError(
                f"logirad is not running (stale socket at {path}, connection refused); {START_HINT}"
            ) from None
        except PermissionError:
            sock.close()
            raise LogiraError(_permission_hint(path)) from None
        except TimeoutError:
            sock.close()
            raise LogiraError(f"logirad did not accept a connection on {path} within {timeout:g}s") from None
        except OSError as exc:
            sock.close()
            raise LogiraError(f"cannot connect to logirad at {path}: {exc.strerror or exc}") from None
        _check_daemon_is_root(sock, path)
        sock.settimeout(None)
        return cls(sock, path)

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, msg: Any) -> None:
        """Send one message (a protocol struct)."""
        try:
            frame = protocol.encode_frame(msg)
        except protocol.FrameError as exc:
            raise LogiraError(f"cannot send to logirad: {exc}") from None
        try:
            self._sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError):
            raise LogiraError(f"logirad closed the connection on {self.path} (daemon stopped?)") from None

    def recv(self, timeout: float | None = None) -> Any:
        """Receive one message. `timeout` None waits forever; raises LogiraError on EOF or timeout.

        An `error` message from the daemon is returned like any other; use `expect` to turn it
        into an exception.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            msg = self._parse_one()
            if msg is not None:
                return msg
            self._fill(deadline)

    def poll(self, timeout: float) -> bool:
        """True when a message (or EOF) can be read without blocking for longer than `timeout`."""
        if len(self._buf) >= 4:
            return True
        ready, _, _ = select.select([self._sock], [], [], timeout)
        return bool(ready)

    def expect(self, msg_type: type, timeout: float | None = None) -> Any:
        """Receive one message and check its type; an `error` reply becomes DaemonError."""
        msg = self.recv(timeout)
        if isinstance(msg, protocol.Error):
            raise DaemonError(f"logirad: {msg.message}")
        if not isinstance(msg, msg_type):
            raise LogiraError(
                f"logirad sent an unexpected {type(msg).__name__} message (expected {msg_type.__name__}); "
                "client and daemon versions differ?"
            )
        return msg

    def request(self, msg: Any, reply_type: type, timeout: float | None = 10.0) -> Any:
        """Send `msg` and wait for one reply of `reply_type`."""
        self.send(msg)
        return self.expect(reply_type, timeout)

    def _parse_one(self) -> Any | None:
        if len(self._buf) < 4:
            return None
        size = int.from_bytes(self._buf[:4], "big")
        if size > protocol.MAX_FRAME:
            raise LogiraError(
                f"logirad sent an oversized frame ({size} bytes); client and daemon versions differ?"
            )
        if len(self._buf) < 4 + size:
            return None
        body = bytes(self._buf[4 : 4 + size])
        del self._buf[: 4 + size]
        try:
            return protocol.decode_daemon(body)
        except protocol.FrameError as exc:  # version skew or garbage
            raise LogiraError(f"logirad sent a message this client cannot read: {exc}") from None

    def _fill(self, deadline: float | None) -> None:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._sock], [], [], left)[0]:
                raise LogiraError(f"logirad did not answer in time on {self.path}")
        try:
            chunk = self._sock.recv(1 << 16)
        except InterruptedError:
            return
        except OSError as exc:
            if exc.errno in (errno.ECONNRESET, errno.EPIPE):
                chunk = b""
            else:
                raise LogiraError(f"reading from logirad failed: {exc.strerror or exc}") from None
        if not chunk:
            raise LogiraError(f"logirad closed the connection on {self.path} (daemon stopped or restarted?)")
        self._buf += chunk
