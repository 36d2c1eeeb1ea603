"""The logira <-> logirad wire protocol, shared by the daemon and every client.

Frames are a 4-byte big-endian length followed by the msgspec JSON encoding of one tagged
struct (tag field `type`). Every message carries `v` (protocol version). Frames larger
than MAX_FRAME are refused: the receiver replies `error` and closes, because after a bad
length prefix the stream cannot be resynchronised.

Both asyncio (StreamReader/StreamWriter) and blocking-socket helpers live here so the
daemon, `logira run`, `logira tail` and the tests frame messages identically.
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:  # asyncio is imported lazily: `logira hook` runs on every tool call, startup counts
    import asyncio

PROTOCOL_VERSION = 1
MAX_FRAME = 1 << 20  # 1 MiB, body only
_LEN = struct.Struct(">I")


class FrameError(Exception):
    """A malformed, oversized or undecodable frame (one line, safe to show)."""


class Msg(msgspec.Struct, kw_only=True, tag_field="type"):
    v: int = PROTOCOL_VERSION


# ---- client -> daemon -------------------------------------------------------------


class StartRun(Msg, kw_only=True, tag="start_run"):
    """Ask the daemon to record a run whose first process is `pid` (held by the client)."""

    tool: str
    argv: list[str]
    cwd: str
    pid: int
    home: str = ""  # absolute $LOGIRA_HOME, or "" for <passwd home>/.logira
    rules_yaml: str = ""  # custom rules (the file's text), "" for none
    rules_path: str = ""  # where the client read them, recorded in meta only
    exec: bool = True
    file: bool = True
    net: bool = True


class AgentExited(Msg, kw_only=True, tag="agent_exited"):
    """The run's root process exited (only accepted on the connection that started the run)."""

    exit_code: int = 0
    signal: int = 0


class Status(Msg, kw_only=True, tag="status"):
    pass


class AgentHook(Msg, kw_only=True, tag="agent_hook"):
    """`logira hook`: one hook message of an agent, as the agent wrote it on the hook's stdin.

    The daemon attributes it to a run by the sender's SO_PEERCRED pid (pinned by a pidfd) and
    cgroup, never by anything in `payload`; the payload is recorded as declared by the agent.
    `payload_bytes` > len(payload) means the client cut an oversized payload (it sends none then).
    """

    agent: str = ""  # claude | codex | gemini, from the hook command line (--agent)
    payload: str = ""
    payload_bytes: int = 0


class Canary(Msg, kw_only=True, tag="canary"):
    """`logira doctor`: run the capture canary (exec, file create, connect) and report what came back."""


class Follow(Msg, kw_only=True, tag="follow"):
    """Stream the records of a run: `last` = the peer's newest active run."""

    run_id: str = "last"


# ---- daemon -> client -------------------------------------------------------------


class RunStarted(Msg, kw_only=True, tag="run_started"):
    run_id: str
    run_dir: str


class RunFinished(Msg, kw_only=True, tag="run_finished"):
    run_id: str
    run_dir: str
    events: int = 0
    detections: int = 0
    dropped: int = 0
    complete: bool = True
    stragglers: list[int] = []
    status: str = "complete"  # meta.json status


class ProbeDomain(msgspec.Struct, kw_only=True):
    enabled: bool = False
    loaded: bool = False


class ActiveRun(msgspec.Struct, kw_only=True):
    run_id: str
    uid: int
    root_pid: int
    run_dir: str
    start_ts: int
    events: int = 0
    cgroup: str = ""


class StatusReply(Msg, kw_only=True, tag="status_reply"):
    pid: int
    uid: int
    version: str
    kernel_release: str
    btf: bool
    cgroup2_mount: str
    cgroup_parent: str
    probes_loaded: bool
    probes_attached: bool
    probes: dict[str, ProbeDomain] = {}
    ring_bytes: int = 0
    drops: dict[str, int] = {}  # kernel_total, kernel:<kind>, reader, unrouted, queue
    runs: list[ActiveRun] = []  # non-root peers see only their own
    runs_total: int = 0
    ready: bool = False
    reasons: list[str] = []
    uptime_s: float = 0.0
    reader_pauses: int = 0  # times back-pressure paused the ring reader (not loss)
    hooks: dict[str, int] = {}  # agent_hook messages since start: recorded, refused, outside_runs


class Following(Msg, kw_only=True, tag="following"):
    run_id: str
    next_seq: int


class Records(Msg, kw_only=True, tag="records"):
    lines: list[str]


class RunEnded(Msg, kw_only=True, tag="run_ended"):
    run_id: str
    reason: str = ""  # "" = the run finished; otherwise why the stream stopped


class Error(Msg, kw_only=True, tag="error"):
    message: str


class CanaryReply(Msg, kw_only=True, tag="canary_reply"):
    """Which canary actions were recorded and recognised; `domains` = probe domains loaded."""

    domains: list[str] = []
    exec_seen: bool = False
    file_seen: bool = False
    net_seen: bool = False
    events: int = 0
    error: str = ""  # the canary could not run at all


class HookAck(Msg, kw_only=True, tag="hook_ack"):
    """Reply to `agent_hook`: recorded (in the sender's run) or why not."""

    recorded: bool = False
    reason: str = ""


ClientMsg = StartRun | AgentExited | Status | Follow | AgentHook | Canary
DaemonMsg = (
    RunStarted | RunFinished | StatusReply | Following | Records | RunEnded | Error | HookAck | CanaryReply
)

_encoder = msgspec.json.Encoder()
_client_decoder = msgspec.json.Decoder(ClientMsg)
_daemon_decoder = msgspec.json.Decoder(DaemonMsg)


def encode_frame(msg: Msg) -> bytes:
    """Length prefix + JSON body. Raises FrameError if the body exceeds MAX_FRAME."""
    body = _encoder.encode(msg)
    if len(body) > MAX_FRAME:
        raise FrameError(f"message too large ({len(body)} > {MAX_FRAME} bytes)")
    return _LEN.pack(len(body)) + body


def decode_client(body: bytes) -> ClientMsg:
    """Decode a client->daemon body; FrameError names what was wrong."""
    try:
        return _client_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise FrameError(f"bad message: {exc}") from None


def decode_daemon(body: bytes) -> DaemonMsg:
    """Decode a daemon->client body; FrameError names what was wrong."""
    try:
        return _daemon_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise FrameError(f"bad message: {exc}") from None


def _check_len(n: int) -> None:
    if n > MAX_FRAME:
        raise FrameError(f"message too large ({n} > {MAX_FRAME} bytes)")


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """One frame body from an asyncio stream; None at a clean EOF between frames."""
    import asyncio

    try:
        head = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError("truncated frame header") from None
    (n,) = _LEN.unpack(head)
    _check_len(n)
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise FrameError("truncated frame body") from None


async def write_msg(writer: asyncio.StreamWriter, msg: Msg) -> None:
    """Send one message on an asyncio stream and wait for the transport to drain."""
    writer.write(encode_frame(msg))
    await writer.drain()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            if not buf:
                raise EOFError("connection closed")
            raise FrameError("truncated frame")
        buf += chunk
    return bytes(buf)


def send_msg(sock: socket.socket, msg: Msg) -> None:
    """Blocking send of one message."""
    sock.sendall(encode_frame(msg))


def recv_body(sock: socket.socket) -> bytes:
    """Blocking receive of one frame body. Raises EOFError on a clean close."""
    (n,) = _LEN.unpack(_recv_exact(sock, 4))
    _check_len(n)
    return _recv_exact(sock, n)


def recv_msg(sock: socket.socket) -> DaemonMsg:
    """Blocking receive of one daemon->client message."""
    return decode_daemon(recv_body(sock))
