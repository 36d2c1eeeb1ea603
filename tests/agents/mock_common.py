"""What the scripted model APIs share: a loopback-only threaded HTTP server that records every request.

A real agent CLI talks to these instead of a model provider. Each mock decides its answer from the
conversation the request carries (how many tool calls the model already made in it), not from how
many requests it has seen, so a retry or an extra side request of the CLI cannot shift the script.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ToolCall:
    """One tool call the scripted model makes: the tool's name and its input, with an id made up front
    so a test knows which id each effect must be attributed to."""

    name: str
    input: dict[str, Any]
    id: str = ""


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the decoded JSON, or the raw text when it was not JSON


@dataclass
class Script:
    """Steps of one session: each step is the tool calls of one model turn, then a final text."""

    steps: list[list[ToolCall]]
    final_text: str = "done"
    key: str = ""  # the marker a prompt carries to select this script ("" = the default script)

    def __post_init__(self) -> None:
        for i, step in enumerate(self.steps):
            for j, call in enumerate(step):
                call.id = call.id or self.new_id(i, j)

    def new_id(self, step: int, index: int) -> str:  # overridden per API
        return f"call_{step}_{index}_{secrets.token_hex(4)}"

    @property
    def calls(self) -> list[ToolCall]:
        return [c for step in self.steps for c in step]


@dataclass
class MockServer:
    """Owns the HTTP server thread; subclasses answer POSTs in `answer`."""

    scripts: dict[str, Script] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    # called (in the server thread) with every request before it is answered: lets a test act at a
    # known point of the session (e.g. once a tool call's result came back), without sleeping
    on_request: Callable[[Recorded], None] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def _record(self) -> Recorded:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with mock._lock:
                    mock.requests.append(rec)
                if mock.on_request is not None:
                    mock.on_request(rec)
                return rec

            def do_POST(self) -> None:
                rec = self._record()
                status, ctype, chunks = mock.answer(rec)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Connection", "close")
                if ctype != "text/event-stream":
                    data = b"".join(chunks)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    self.end_headers()
                    for chunk in chunks:  # SSE: one write per event, ended by closing the connection
                        self.wfile.write(chunk)
                        self.wfile.flush()
                self.close_connection = True

            def do_GET(self) -> None:
                self._record()
                data = b'{"error": {"type": "not_found_error", "message": "mock: no such endpoint"}}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

            do_HEAD = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # loopback only, a free port
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=type(self).__name__, daemon=True
        )

    # -- lifecycle
    def start(self) -> MockServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- scripts
    def add(self, script: Script) -> Script:
        self.scripts[script.key] = script
        return script

    def script_for(self, conversation_text: str) -> Script | None:
        """The script whose key the conversation mentions, else the default one."""
        for key, script in self.scripts.items():
            if key and key in conversation_text:
                return script
        return self.scripts.get("")

    def posts(self, path_prefix: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.startswith(path_prefix)]

    def answer(self, rec: Recorded) -> tuple[int, str, list[bytes]]:
        raise NotImplementedError


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Sink(MockServer):
    """Where a test's agent sends data: answers every POST with 200 and keeps the body."""

    def answer(self, rec: Recorded) -> tuple[int, str, list[bytes]]:
        return 200, "text/plain", [b"ok\n"]

    def bodies(self) -> list[str]:
        return [r.body if isinstance(r.body, str) else json.dumps(r.body) for r in self.posts("/")]
