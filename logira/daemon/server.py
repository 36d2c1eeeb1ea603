"""The unix-socket server: one asyncio task per connection, SO_PEERCRED for identity.

A bad frame never disturbs the daemon or other connections: a well-framed body that does
not decode gets an `error` reply and the connection keeps going; a bad length (oversized,
truncated) gets an `error` and the connection is closed, since the stream cannot be
resynchronised. Every reply goes through one per-connection lock so the run-end
notification and replies never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
import socket
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from logira.daemon import protocol as p
from logira.daemon.logging import get as get_logger
from logira.daemon.sessions import SessionManager, StartError

log = get_logger()
_UCRED = struct.Struct("3i")
# Connections are cheap to open and each holds an fd and up to one frame (1 MiB) of buffer. Without a
# cap, one local user could exhaust the daemon's fds (every other run's finalize then fails) or its
# memory. Root is not limited; a real user needs a handful (one per `logira run`/`tail`).
MAX_CONN_PER_UID = 64
MAX_CONN_TOTAL = 4096
# A follower that does not read holds up to `follower_buffer` lines (each up to ~20 KiB) before it is
# cut off: bounded per follower, so the number of followers per uid is bounded too.
MAX_FOLLOWS_PER_UID = 8
# Records frames carry JSONL lines as JSON strings: escaping can at most double a line, so chunks of
# half a frame always encode under MAX_FRAME (an oversized frame would silently drop the follower).
_RECORDS_CHUNK = p.MAX_FRAME // 2 - 4096


class ClientConn:
    """One client connection and its verified identity."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        sock: socket.socket = writer.get_extra_info("socket")
        self.pid, self.uid, self.gid = _UCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        )
        self.closed = False
        self._lock = asyncio.Lock()

    async def send(self, msg: p.Msg) -> bool:
        """Send one message; False if the peer is gone (never raises)."""
        if self.closed:
            return False
        async with self._lock:
            try:
                await p.write_msg(self.writer, msg)
                return True
            except (OSError, RuntimeError, p.FrameError):
                self.closed = True
                return False

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(Exception):
            self.writer.close()

    def cut_off(self, message: str) -> None:
        """Drop a client that cannot keep up, without ever waiting for it.

        The error is queued in the transport (not awaited); if the peer does not read it within a
        second the connection is aborted, which also unblocks any send still waiting on it.
        """
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self.writer.write(p.encode_frame(p.Error(message=message)))
            self.writer.close()
        transport = self.writer.transport
        asyncio.get_running_loop().call_later(1.0, transport.abort)


class Server:
    def __init__(
        self,
        sessions: SessionManager,
        sock_path: str,
        status: Callable[[ClientConn], p.StatusReply],
        follower_buffer: int,
        run_group: tuple[str, int] | None = None,
        canary: Any = None,
    ) -> None:
        self.sessions = sessions
        # (name, gid): only root and members may talk to the daemon (socket 0660 root:gid, and each
        # peer's groups are checked too, so a socket chmod'ed back to 0666 by mistake admits nobody new)
        self.run_group = run_group
        self.canary = canary  # daemon.canary.Canary: `logira doctor`'s capture check
        self.sock_path = sock_path
        self.status = status
        self.follower_buffer = follower_buffer
        self.bad_frames = 0
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[ClientConn] = set()
        self._per_uid: dict[int, int] = {}
        self._follows: dict[int, int] = {}
        self.refused_connections = 0

    async def start(self) -> None:
        path = Path(self.sock_path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        _raise_fd_limit()
        self._server = await asyncio.start_unix_server(
            self._handle, path=self.sock_path, limit=p.MAX_FRAME + 8
        )
        if self.run_group is None:
            # Anyone may connect: authorization is per message, by SO_PEERCRED.
            _chmod_socket(self.sock_path, 0o666)
        else:
            _chmod_socket(self.sock_path, 0o660, gid=self.run_group[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock_path)
        for c in list(self._conns):
            c.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            conn = ClientConn(reader, writer)
        except OSError:
            writer.close()
            return
        mine = self._per_uid.get(conn.uid, 0)
        if len(self._conns) >= MAX_CONN_TOTAL or (conn.uid != 0 and mine >= MAX_CONN_PER_UID):
            self.refused_connections += 1
            limit = MAX_CONN_TOTAL if len(self._conns) >= MAX_CONN_TOTAL else MAX_CONN_PER_UID
            conn.cut_off(f"too many connections (limit={limit}); close idle logira processes and retry")
            return
        self.connections += 1
        self._conns.add(conn)
        self._per_uid[conn.uid] = mine + 1
        try:
            # counted like any connection above, so refused peers are bounded by the same limits
            if self.run_group is not None and conn.uid != 0 and not _peer_in_group(conn, self.run_group[1]):
                self.refused_connections += 1
                log.info("connection_refused_group", peer_pid=conn.pid, uid=conn.uid, group=self.run_group[0])
                name = self.run_group[0]
                await self._refuse(
                    conn,
                    f"uid {conn.uid} is not in group {name}, the only users this logirad serves "
                    f"(ask an admin: usermod -aG {name} <user>, then log in again)",
                )
                return
            await self._serve(conn)
        except Exception as exc:  # a bug in one handler must not take the daemon down
            log.error(
                "connection_failed", peer_pid=conn.pid, uid=conn.uid, error=f"{type(exc).__name__}: {exc}"
            )
            await conn.send(p.Error(message=f"internal error: {type(exc).__name__}"))
        finally:
            self._conns.discard(conn)
            left = self._per_uid.get(conn.uid, 1) - 1
            if left > 0:
                self._per_uid[conn.uid] = left
            else:
                self._per_uid.pop(conn.uid, None)
            self.sessions.connection_lost(conn)
            conn.close()

    async def _refuse(self, conn: ClientConn, message: str) -> None:
        """Answer the peer's first request with `message`, then close (bounded: one frame, 5 s).

        Replying before the request has arrived would lose the reply: closing a unix socket with
        unread data resets the connection, and the client would see "connection closed" instead.
        """
        with contextlib.suppress(Exception):
            await asyncio.wait_for(p.read_frame(conn.reader), timeout=5)
            await conn.send(p.Error(message=message))
        conn.close()

    async def _serve(self, conn: ClientConn) -> None:
        while not conn.closed:
            try:
                body = await p.read_frame(conn.reader)
            except p.FrameError as exc:
                self.bad_frames += 1
                await conn.send(p.Error(message=str(exc)))
                return
            except (ConnectionError, OSError):
                return
            if body is None:
                return
            try:
                msg = p.decode_client(body)
            except p.FrameError as exc:
                self.bad_frames += 1
                await conn.send(p.Error(message=str(exc)))
                continue
            if msg.v != p.PROTOCOL_VERSION:
                await conn.send(
                    p.Error(
                        message=f"unsupported protocol version {msg.v} (logirad speaks "
                        f"{p.PROTOCOL_VERSION}); use a matching logira"
                    )
                )
                continue
            if isinstance(msg, p.Follow):
                await self._follow(conn, msg)
                return
            reply = await self._dispatch(conn, msg)
            if reply is not _NO_REPLY:
                await conn.send(reply)

    async def _dispatch(self, conn: ClientConn, msg: p.ClientMsg) -> p.Msg:
        if isinstance(msg, p.StartRun):
            try:
                return await self.sessions.start_run(conn, msg)
            except StartError as exc:
                log.info("run_refused", peer_pid=conn.pid, uid=conn.uid, reason=str(exc))
                return p.Error(message=str(exc))
        if isinstance(msg, p.AgentExited):
            try:
                self.sessions.agent_exited(conn, msg)
            except StartError as exc:
                return p.Error(message=str(exc))
            # The reply (run_finished) is sent by the run's lifecycle when it is finalized.
            return _NO_REPLY
        if isinstance(msg, p.Status):
            return self.status(conn)
        if isinstance(msg, p.Canary):
            if self.canary is None or self.sessions.shutting_down:
                return p.Error(message="the canary is not available (logirad is starting or stopping)")
            return await self.canary.run()
        if isinstance(msg, p.AgentHook):
            return self.sessions.agent_hook(conn, msg)
        return p.Error(message=f"unexpected message {type(msg).__name__}")

    async def _follow(self, conn: ClientConn, msg: p.Follow) -> None:
        mine = self._follows.get(conn.uid, 0)
        if conn.uid != 0 and mine >= MAX_FOLLOWS_PER_UID:
            await conn.send(p.Error(message=f"too many followers for uid {conn.uid} (limit={MAX_FOLLOWS_PER_UID})"))
            return
        self._follows[conn.uid] = mine + 1
        try:
            await self._follow_run(conn, msg)
        finally:
            left = self._follows.get(conn.uid, 1) - 1
            if left > 0:
                self._follows[conn.uid] = left
            else:
                self._follows.pop(conn.uid, None)

    async def _follow_run(self, conn: ClientConn, msg: p.Follow) -> None:
        run = self.sessions.find_for_follow(conn.uid, msg.run_id)
        if run is None:
            await conn.send(p.Error(message=f"run {msg.run_id} is not active"))
            return
        pipe = run.pipeline
        next_seq = pipe.follow_position()
        follower = pipe.live.add(self.follower_buffer)  # no await since the flush: no line is missed

        def overflow() -> None:
            log.warning("follower_cut_off", run_id=run.run_id, peer_pid=conn.pid, uid=conn.uid)
            conn.cut_off(
                f"follower too slow: disconnected from run {run.run_id} (the stored run is complete; "
                "read it with logira view)"
            )

        follower.on_overflow = overflow
        if not await conn.send(p.Following(run_id=run.run_id, next_seq=next_seq)):
            pipe.live.remove(follower)
            return

        async def send(lines: list[str]) -> None:
            for chunk in _chunks(lines, _RECORDS_CHUNK):
                if not await conn.send(p.Records(lines=chunk)):
                    raise ConnectionError

        eof = asyncio.ensure_future(conn.reader.read(1))  # the client closing ends the follow
        pump = asyncio.ensure_future(follower.pump(send))
        try:
            done, _ = await asyncio.wait({eof, pump}, return_when=asyncio.FIRST_COMPLETED)
            if pump in done and not pump.cancelled():
                why = "disconnected" if pump.exception() else pump.result()
                if why == "ended":
                    await conn.send(p.RunEnded(run_id=run.run_id))
        finally:
            pipe.live.remove(follower)
            for t in (eof, pump):
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t


class _NoReply(p.Msg, kw_only=True, tag="_none"):
    pass


_NO_REPLY = _NoReply()


def _raise_fd_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: connections, run files and /proc reads all need fds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux >= 4.13


def _peer_in_group(conn: ClientConn, gid: int) -> bool:
    """The peer's primary gid or supplementary groups (as the kernel saw them at connect) include gid."""
    if conn.gid == gid:
        return True
    sock: socket.socket = conn.writer.get_extra_info("socket")
    size = 256 * 4
    while size <= 65536 * 4:
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, size)
        except OSError as exc:
            if exc.errno == errno.ERANGE:
                size *= 4
                continue
            return False  # cannot tell: refuse
        return gid in struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4])
    return False


def _chmod_socket(path: str, mode: int, gid: int | None = None) -> None:
    """chmod the socket we just bound without following a symlink someone put in its place.

    os.chmod(path) follows symlinks: if the socket's directory were writable by others, the socket
    could be swapped for a link to /etc/shadow between bind and chmod. An O_PATH|O_NOFOLLOW fd
    pins what is there now; it must be a socket, and it is changed through /proc/self/fd.
    """
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            raise OSError(f"{path} was replaced by a non-socket after bind; refusing to chmod it")
        if gid is not None:
            os.chown(f"/proc/self/fd/{fd}", 0, gid)
        os.chmod(f"/proc/self/fd/{fd}", mode)
    finally:
        os.close(fd)


def _chunks(lines: list[str], budget: int) -> list[list[str]]:
    """Split lines into runs whose total length is at most `budget` (a longer line goes alone)."""
    out: list[list[str]] = []
    cur: list[str] = []
    size = 0
    for line in lines:
        n = len(line.encode("utf-8", "surrogatepass"))
        if cur and size + n > budget:
            out.append(cur)
            cur, size = [], 0
        cur.append(line)
        size += n
    if cur:
        out.append(cur)
    return out
