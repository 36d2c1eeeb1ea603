"""`logira hook`: forward one agent hook message (JSON on stdin) to logirad, and never hurt the agent.

The agent runs this on every tool call and waits for it, so it must be fast and harmless:
- it always exits 0 and never writes to stdout (an agent may read a hook's stdout as a decision);
- no daemon, a socket not served by root, a sender outside any run, a slow daemon: exit 0 at once
  (connect and reply are bounded by short timeouts);
- stdin is read up to a cap; an oversized payload is not sent, only its size (the daemon records
  that an oversized message was seen);
- startup is most of its cost, so only modules built into the interpreter or written in C are
  imported (`_socket`, not `socket`, whose enum import alone costs ~10 ms); the one frame it sends is
  written by hand (`frame()`, checked against `protocol.AgentHook` by the tests) and the reply is only
  scanned, not decoded;
- `logira agent hooks install` runs this file directly as `<python> -I -S …/logira/client/hook.py`:
  no site-packages, no .pth import hooks, no environment-driven imports, which halves the start-up
  (bench/bench_agents.py). `logira hook` runs the same code through the CLI.
Set LOGIRA_HOOK_DEBUG=1 to get one line on stderr saying what happened.
"""

from __future__ import annotations

import _socket
import _struct as struct
import os
import select
import sys
import time

MAX_PAYLOAD = 256 << 10  # = logira.agents.hookmsg.MAX_PAYLOAD (not imported: startup time)
STDIN_TIMEOUT = 2.0  # an agent writes the JSON then closes stdin; a hook never waits longer than this
CONNECT_TIMEOUT = 0.5
REPLY_TIMEOUT = 2.0
DEFAULT_SOCK = "/run/logira.sock"
MAX_FRAME = 1 << 20  # = logira.daemon.protocol.MAX_FRAME
PROTOCOL_VERSION = 1  # = logira.daemon.protocol.PROTOCOL_VERSION
_ESC = {i: f"\\u{i:04x}" for i in range(0x20)} | {ord('"'): '\\"', ord("\\"): "\\\\"}


def _json_str(s: str) -> str:
    return '"' + s.translate(_ESC) + '"'


def frame(agent: str, payload: str, payload_bytes: int) -> bytes:
    """The `agent_hook` frame: 4-byte length + the JSON of protocol.AgentHook (no lone surrogates)."""
    body = (
        f'{{"type":"agent_hook","v":{PROTOCOL_VERSION},"agent":{_json_str(agent)},'
        f'"payload":{_json_str(payload)},"payload_bytes":{int(payload_bytes)}}}'
    ).encode()
    return struct.pack(">I", len(body)) + body


def _recv_exact(sock: _socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def _debug(msg: str) -> None:
    if os.environ.get("LOGIRA_HOOK_DEBUG"):
        sys.stderr.write(f"logira hook: {msg}\n")


def read_stdin(fd: int, cap: int, timeout: float) -> tuple[bytes, int]:
    """(data up to cap bytes, total bytes seen). Stops at EOF, at the timeout, or after cap+1 bytes."""
    chunks: list[bytes] = []
    total = 0
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            ready, _, _ = select.select([fd], [], [], left)
        except (OSError, ValueError):
            break
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        total += len(chunk)
        if total <= cap:
            chunks.append(chunk)
        elif total > cap + (1 << 20):
            break  # far past the cap: only its size matters, stop reading
    return b"".join(chunks), total


def forward(agent: str, data: bytes, total: int, sock_path: str) -> str:
    """Send one agent_hook and wait briefly for the ack; returns what happened (for debugging)."""
    payload = data.decode("utf-8", "replace") if total <= MAX_PAYLOAD else ""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect(sock_path)
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12))
        if uid != 0:
            return f"{sock_path} is not served by root; nothing sent"
        data = frame(agent[:64], payload, total)
        if len(data) - 4 > MAX_FRAME:  # control characters escape to 6 bytes each
            data = frame(agent[:64], "", total)
        sock.sendall(data)
        sock.settimeout(REPLY_TIMEOUT)
        (n,) = struct.unpack(">I", _recv_exact(sock, 4))
        if n > MAX_FRAME:
            return "daemon reply too large"
        reply = _recv_exact(sock, n).decode("utf-8", "replace")
    finally:
        sock.close()
    if '"type":"hook_ack"' not in reply:
        return f"daemon replied {reply[:200]}"
    if '"recorded":true' in reply:
        return "recorded"
    cut = reply.find('"reason":"')
    reason = reply[cut + 10 :].rsplit('"', 1)[0] if cut >= 0 else reply[:300]
    return f"not recorded: {reason[:300]}"


def main(argv: list[str]) -> int:
    agent = ""
    it = iter(argv)
    for a in it:
        if a == "--agent":
            agent = next(it, "")
        elif a.startswith("--agent="):
            agent = a.split("=", 1)[1]
        elif a in ("-h", "--help"):
            sys.stderr.write(
                "usage: logira hook [--agent claude|codex|gemini]\n"
                "Forward the agent hook JSON on stdin to logirad (installed by `logira agent hooks install`).\n"
                "Always exits 0 and prints nothing on stdout.\n"
            )
            return 0
    try:
        data, total = read_stdin(0, MAX_PAYLOAD, STDIN_TIMEOUT)
        what = forward(agent, data, total, os.environ.get("LOGIRA_SOCK") or DEFAULT_SOCK)
    except (OSError, EOFError, ValueError, struct.error) as exc:  # type: ignore[attr-defined]  # _struct has it; its stub does not
        what = f"no daemon or no reply ({type(exc).__name__}: {exc})"
    except Exception as exc:  # never hurt the agent
        what = f"unexpected {type(exc).__name__}: {exc}"
    _debug(what)
    return 0


if __name__ == "__main__":  # the installed form: `<python> -I -S <this file> --agent NAME`
    sys.exit(main(sys.argv[1:]))
