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
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path

from logira.daemon import protocol as p
from logira.daemon.logging import get as get_logger
from logira.daemon.sessions import SessionManager, StartError

log = get_logger()
_UCRED = struct.Struct("3i")


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
    ) -> None:
        self.sessions = sessions
        self.sock_path = sock_path
        self.status = status
        self.follower_buffer = follower_buffer
        self.bad_frames = 0
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[ClientConn] = set()

    async def start(self) -> None:
        path = Path(self.sock_path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        self._server = await asyncio.start_unix_server(
            self._handle, path=self.sock_path, limit=p.MAX_FRAME + 8
        )
        # Anyone may connect: authorization is per message, by SO_PEERCRED.
        os.chmod(self.sock_path, 0o666)

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
        self.connections += 1
        self._conns.add(conn)
        try:
            await self._serve(conn)
        except Exception as exc:  # a bug in one handler must not take the daemon down
            log.error(
                "connection_failed", peer_pid=conn.pid, uid=conn.uid, error=f"{type(exc).__name__}: {exc}"
            )
            await conn.send(p.Error(message=f"internal error: {type(exc).__name__}"))
        finally:
            self._conns.discard(conn)
            self.sessions.connection_lost(conn)
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
        return p.Error(message=f"unexpected message {type(msg).__name__}")

    async def _follow(self, conn: ClientConn, msg: p.Follow) -> None:
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
            if not await conn.send(p.Records(lines=lines)):
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
